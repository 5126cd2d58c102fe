//! Prompt parts and the cache-state resources through the real binary with the fake CLIs
//! (issue 5 items 3 and 7): the stable-prefix hash and token count recorded for every
//! provider, `cacheControl` accepted with `cache_control_noop`, the three `cache-state://`
//! resources (and the older `cache_state://` spellings) with hits, hit rate, tokens and
//! estimated savings, claude `ttlRemainingMs`, the `cache_ttl_expiring_soon` warning, and
//! that no resource ever carries prompt or response text.

use crate::common;

use common::fake_cli;
use common::{Client, TestHome, call, ok};
use rmcp::model::{ReadResourceRequestParams, ResourceContents};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// cli, stable_prefix_hash, stable_prefix_tokens, cache_control_blocks, prompt.
type Row = (String, Option<String>, Option<i64>, Option<i64>, String);

const PROVIDERS: [&str; 5] = ["claude", "codex", "gemini", "grok", "mistral"];

/// Distinctive words that appear only in prompts.
const SYSTEM: &str = "You are XYLOPHONEWHALE, a careful reviewer.";
const CONTEXT: &str = "The code base is called QUETZALCOATLUS.";
const TASK: &str = "Summarise MARZIPANGLACIER briefly.";

fn stable_hash() -> String {
    let digest = Sha256::digest(format!("{SYSTEM}\n\n{CONTEXT}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn home(config: &str) -> TestHome {
    let mut home = TestHome::with_config(config);
    fake_cli::install_all(&home);
    fake_cli::record_into(&mut home);
    home
}

async fn read(client: &Client, uri: &str) -> (String, Value) {
    let result = client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap_or_else(|e| panic!("read {uri}: {e}"));
    let ResourceContents::TextResourceContents { text, .. } = &result.contents[0] else {
        panic!("{uri}: not a text resource");
    };
    (text.clone(), serde_json::from_str(text).expect("JSON body"))
}

fn parts() -> Value {
    json!({"system": SYSTEM, "context": CONTEXT, "task": TASK, "cacheControl": {"system": true}})
}

fn assert_no_text(body: &str, response: &str) {
    for word in [
        "XYLOPHONEWHALE",
        "QUETZALCOATLUS",
        "MARZIPANGLACIER",
        response,
    ] {
        assert!(!body.contains(word), "a resource leaked {word:?}: {body}");
    }
}

#[tokio::test]
async fn stable_prefix_is_recorded_for_every_provider_and_cache_control_warns() {
    let home = home("");
    let client = home.connect().await;
    for cli in PROVIDERS {
        let s = ok(call(
            &client,
            &format!("{cli}_request"),
            json!({"promptParts": parts()}),
        )
        .await);
        let codes: Vec<&str> = s["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|w| w["code"].as_str())
            .collect();
        assert!(codes.contains(&"cache_control_noop"), "{cli}: {s}");
    }
    // A plain prompt records no prefix.
    ok(call(&client, "claude_request", json!({"prompt": "plain"})).await);
    let db = rusqlite::Connection::open(home.db_path()).unwrap();
    let mut stmt = db
        .prepare(
            "SELECT cli, stable_prefix_hash, stable_prefix_tokens, cache_control_blocks, prompt \
             FROM requests ORDER BY datetime_utc, id",
        )
        .unwrap();
    let rows: Vec<Row> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 6);
    let stable_len = format!("{SYSTEM}\n\n{CONTEXT}").len() as i64;
    for (cli, hash, tokens, blocks, prompt) in &rows[..5] {
        assert_eq!(hash.as_deref(), Some(stable_hash().as_str()), "{cli}");
        assert_eq!(*tokens, Some((stable_len + 3) / 4), "{cli}");
        assert_eq!(*blocks, Some(1), "{cli}");
        assert_eq!(prompt, &format!("{SYSTEM}\n\n{CONTEXT}\n\n{TASK}"), "{cli}");
    }
    assert_eq!((&rows[5].1, rows[5].2, rows[5].3), (&None, None, None));
}

#[tokio::test]
async fn resources_report_hits_tokens_savings_and_ttl_without_text() {
    let home = home("[cache_awareness]\nanthropic_ttl_seconds = 300\n");
    let client = home.connect().await;

    let listed = client.list_all_resources().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].uri, "cache-state://global");
    let templates = client.list_all_resource_templates().await.unwrap();
    let uris: Vec<&str> = templates.iter().map(|t| t.uri_template.as_str()).collect();
    assert_eq!(
        uris,
        [
            "cache-state://session/{sessionId}",
            "cache-state://prefix/{hash}"
        ]
    );

    // Empty at first: no division by zero.
    let (_, empty) = read(&client, "cache-state://global").await;
    assert_eq!(
        (empty["requests"].clone(), empty["hitRate"].clone()),
        (json!(0), json!(0.0))
    );

    let session = ok(call(&client, "session_create", json!({"cli": "claude"})).await);
    let session_id = session["session"]["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut response = String::new();
    for _ in 0..2 {
        let s = ok(call(
            &client,
            "claude_request",
            json!({"promptParts": parts(), "forceRefresh": true}),
        )
        .await);
        assert_eq!(s["gatewaySessionId"], session_id.as_str());
        response = s["response"].as_str().unwrap().to_string();
    }
    ok(call(
        &client,
        "codex_request",
        json!({"prompt": "MARZIPANGLACIER plain"}),
    )
    .await);
    assert!(response.len() > 8, "a distinctive response: {response:?}");

    for uri in ["cache-state://global", "cache_state://global"] {
        let (text, g) = read(&client, uri).await;
        assert_no_text(&text, &response);
        assert_eq!(g["scope"], "global");
        assert_eq!(g["requests"], 3, "{g}");
        // Both fakes report cache reads: every request is a hit.
        assert_eq!(g["cacheHits"], 3, "{g}");
        assert_eq!(g["hitRate"], 1.0);
        let claude = &g["byCli"][0];
        assert_eq!(claude["requests"], 2);
        assert_eq!(claude["cacheHits"], 2);
        assert_eq!(claude["cacheReadTokens"], 2 * 6789);
        let codex_reads = g["byCli"][1]["cacheReadTokens"].as_i64().unwrap();
        assert_eq!(g["cacheReadTokens"], 2 * 6789 + codex_reads);
        assert!(g["cacheCreationTokens"].as_i64().unwrap() > 0);
        // claude-sonnet-… at $3/MTok with a 0.1 cache-read multiplier; the codex run
        // reported no model, so it is unpriced and saves nothing in the estimate.
        let expected = 2.0 * 6789.0 * 3.0 / 1e6 * 0.9;
        assert!(
            (g["estimatedSavingsUsd"].as_f64().unwrap() - expected).abs() < 1e-9,
            "{g}"
        );
        assert_eq!(
            g["priceTable"]["unpricedModels"],
            json!(["codex:(unknown)"])
        );
        let by_cli: Vec<&str> = g["byCli"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["cli"].as_str().unwrap())
            .collect();
        assert_eq!(by_cli, ["claude", "codex"]);
        assert!(g["priceTable"]["date"].is_string());
        assert!(
            !g["priceTable"]["pricedModels"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }

    for scheme in ["cache-state", "cache_state"] {
        let (text, s) = read(&client, &format!("{scheme}://session/{session_id}")).await;
        assert_no_text(&text, &response);
        assert_eq!(s["sessionId"], session_id.as_str());
        assert_eq!(s["cli"], "claude");
        assert_eq!(s["requests"], 2);
        assert_eq!(s["anthropicTtlSeconds"], 300);
        let ttl = s["ttlRemainingMs"]
            .as_i64()
            .expect("ttlRemainingMs for claude");
        assert!(ttl > 200_000 && ttl <= 300_000, "{s}");
    }

    let got = ok(call(&client, "session_get", json!({"sessionId": session_id})).await);
    let state = &got["cacheState"];
    assert_eq!(
        (state["requests"].clone(), state["cacheHits"].clone()),
        (json!(2), json!(2))
    );
    assert!(state["ttlRemainingMs"].as_i64().unwrap() > 0, "{got}");
    assert_no_text(&got["cacheState"].to_string(), &response);

    let hash = stable_hash();
    let (text, p) = read(&client, &format!("cache-state://prefix/{hash}")).await;
    assert_no_text(&text, &response);
    assert_eq!(p["stablePrefixHash"], hash.as_str());
    assert_eq!(p["requests"], 2);
    let by_model = p["byModel"].as_array().unwrap();
    assert_eq!(by_model.len(), 1);
    assert_eq!(by_model[0]["cli"], "claude");
    assert_eq!(by_model[0]["model"], "claude-sonnet-5-5");
    assert_eq!(by_model[0]["cacheHits"], 2);

    let (_, none) = read(&client, &format!("cache-state://prefix/{}", "0".repeat(64))).await;
    assert_eq!(none["requests"], 0);

    for bad in [
        "cache-state://session/gw-nope",
        "cache-state://nothing",
        "file:///etc",
    ] {
        assert!(
            client
                .read_resource(ReadResourceRequestParams::new(bad))
                .await
                .is_err(),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn a_claude_session_near_its_cache_expiry_gets_a_warning() {
    let home = home("[cache_awareness]\nanthropic_ttl_seconds = 300\nwarn_on_ttl_expiry = true\n");
    let client = home.connect().await;
    ok(call(&client, "session_create", json!({"cli": "claude"})).await);
    let codes = |s: &Value| -> Vec<String> {
        s["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["code"].as_str().unwrap().to_string())
            .collect()
    };
    let first = ok(call(&client, "claude_request", json!({"prompt": "one"})).await);
    assert!(!codes(&first).contains(&"cache_ttl_expiring_soon".to_string()));
    // The session's last request was 285 s ago: its 300 s cache expires within 30 s.
    let at = chrono::Utc::now() - chrono::Duration::seconds(285);
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let db = rusqlite::Connection::open(home.db_path()).unwrap();
    db.execute("UPDATE sessions SET last_used_at = ?1", [&at])
        .unwrap();
    let second = ok(call(&client, "claude_request", json!({"prompt": "two"})).await);
    assert!(
        codes(&second).contains(&"cache_ttl_expiring_soon".to_string()),
        "{second}"
    );
}
