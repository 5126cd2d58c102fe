//! The database as Datasette shows it (storage.md, "For Datasette"): the full-text index
//! and the views, checked in SQL on a file the gateway wrote through `run`, and — when
//! `datasette` is on PATH — Datasette itself reading that file.

use crate::common;

use std::time::Duration;

use common::TestHome;
use common::fake_cli::install_all;
use rusqlite::Connection;
use serde_json::Value;

/// A home whose logs.db holds two recorded requests (claude and codex).
async fn recorded_home() -> TestHome {
    let home = TestHome::new();
    install_all(&home);
    for (cli, prompt) in [
        ("claude", "explain the flamingo parser"),
        ("codex", "refactor the walrus module"),
    ] {
        let out = home.run(["run", cli, prompt]).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    home
}

#[tokio::test]
async fn full_text_search_finds_prompts_and_responses() {
    let home = recorded_home().await;
    let db = Connection::open(home.db_path()).unwrap();
    let hits: Vec<String> = db
        .prepare(
            "SELECT r.cli FROM requests_fts f JOIN requests r ON r.seq = f.rowid \
             WHERE requests_fts MATCH ? ORDER BY r.cli",
        )
        .unwrap()
        .query_map(["flamingo"], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(hits, ["claude"]);
    // Responses are indexed too: every recorded answer is findable by one of its words.
    let (seq, response): (i64, String) = db
        .query_row(
            "SELECT seq, response FROM requests WHERE cli = 'codex'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let word: String = response
        .split(|c: char| !c.is_alphanumeric())
        .find(|w| w.len() >= 3)
        .expect("a word in the answer")
        .to_string();
    let found: i64 = db
        .query_row(
            "SELECT count(*) FROM requests_fts WHERE requests_fts MATCH ? AND rowid = ?",
            rusqlite::params![format!("response:\"{word}\""), seq],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(found, 1, "the answer word {word:?} is indexed");
    // Deleting a row removes it from the index (the triggers keep it in sync).
    db.execute("DELETE FROM requests WHERE cli = 'claude'", [])
        .unwrap();
    let left: i64 = db
        .query_row(
            "SELECT count(*) FROM requests_fts WHERE requests_fts MATCH 'flamingo'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn the_views_summarise_requests_and_jobs() {
    let home = recorded_home().await;
    let db = Connection::open(home.db_path()).unwrap();
    let recent: Vec<(String, String, String)> = db
        .prepare("SELECT cli, status, prompt_start FROM recent_requests")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0].0, "codex", "newest first");
    assert!(recent.iter().all(|(_, status, _)| status == "completed"));

    let (requests, day): (i64, String) = db
        .query_row(
            "SELECT sum(requests), max(day) FROM usage_by_day",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(requests, 2);
    assert_eq!(day.len(), 10, "a YYYY-MM-DD day: {day}");

    let jobs: Vec<(String, Option<i64>)> = db
        .prepare("SELECT status, duration_ms FROM job_overview")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(jobs.len(), 2);
    for (status, duration) in jobs {
        assert_eq!(status, "completed");
        assert!(duration.is_some_and(|ms| ms >= 0));
    }
}

fn datasette_on_path() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("datasette"))
        .find(|candidate| candidate.is_file())
}

async fn datasette_get(datasette: &std::path::Path, db: &std::path::Path, url: &str) -> Value {
    let mut command = tokio::process::Command::new(datasette);
    command.arg(db).arg("--get").arg(url).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("datasette --get did not finish within 60 s")
        .expect("run datasette");
    assert!(
        out.status.success(),
        "datasette --get {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "datasette --get {url} is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[tokio::test]
async fn datasette_serves_the_tables_views_and_search() {
    let Some(datasette) = datasette_on_path() else {
        eprintln!(
            "skipped: `datasette` is not on PATH (install it with `pipx install datasette` or `uv tool install datasette` to run this test)"
        );
        return;
    };
    let home = recorded_home().await;
    let db = home.db_path();

    let database = datasette_get(&datasette, &db, "/logs.json").await;
    let text = database.to_string();
    for name in [
        "requests",
        "jobs",
        "job_output",
        "job_events",
        "sessions",
        "approvals",
        "recent_requests",
        "usage_by_day",
        "job_overview",
    ] {
        assert!(
            text.contains(&format!("\"{name}\"")),
            "{name} missing: {text}"
        );
    }

    let rows = datasette_get(&datasette, &db, "/logs/requests.json?_shape=array").await;
    let rows = rows.as_array().expect("an array of rows");
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .any(|r| r["prompt"] == "explain the flamingo parser")
    );

    let hits = datasette_get(
        &datasette,
        &db,
        "/logs/requests.json?_search=walrus&_shape=array",
    )
    .await;
    let hits = hits.as_array().unwrap();
    assert_eq!(hits.len(), 1, "Datasette offers full-text search: {hits:?}");
    assert_eq!(hits[0]["cli"], "codex");
}
