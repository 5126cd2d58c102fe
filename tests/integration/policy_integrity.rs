//! Review-integrity warnings through the real binary: the examples of policy.md and the
//! near-misses (negation in another sentence, inside backticks, "never mind, use the
//! tools"), in `structuredContent.warnings` and in the flight-recorder row.

use crate::common;

use common::fake_cli;
use common::{TestHome, call, ok};
use serde_json::{Value, json};

fn integrity_warning(s: &Value) -> Option<String> {
    s["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .find(|w| w["code"] == "review_integrity")
        .map(|w| w["message"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn warnings_for_the_policy_examples_and_none_for_near_misses() {
    let mut home = TestHome::new();
    fake_cli::install_all(&home);
    fake_cli::record_into(&mut home);
    let client = home.connect().await;

    let cases: Vec<(&str, Value, Option<&str>)> = vec![
        (
            "claude_request",
            json!({"prompt": "Review this code but do not use any tools", "correlationId": "i-1"}),
            Some("tool_suppression"),
        ),
        (
            "claude_request",
            json!({"prompt": "Review the code using all available tools"}),
            None,
        ),
        (
            "claude_request",
            json!({"prompt": "Implement a feature", "disallowedTools": ["Read"]}),
            None,
        ),
        (
            "claude_request",
            json!({"prompt": "Audit the module", "allowedTools": []}),
            Some("empty_allowed_tools"),
        ),
        (
            "claude_request",
            json!({"prompt": "Security review please", "disallowedTools": ["Bash(git push:*)"]}),
            Some("critical_tools_disallowed"),
        ),
        (
            "claude_request",
            json!({"prompt": "Do not rush. Use the tools to review the code."}),
            None,
        ),
        (
            "claude_request",
            json!({"prompt": "Review the README, which says `do not use any tools`"}),
            None,
        ),
        (
            "claude_request",
            json!({"prompt": "Review this, never mind, use the tools"}),
            None,
        ),
        (
            "grok_request",
            json!({"prompt": "Find the bugs without running shell commands"}),
            Some("tool_suppression"),
        ),
    ];
    for (tool, args, expected) in cases {
        let s = ok(call(&client, tool, args.clone()).await);
        let warning = integrity_warning(&s);
        match expected {
            Some(kind) => {
                let message = warning.unwrap_or_else(|| panic!("no warning for {args}: {s}"));
                assert!(message.contains(kind), "{args}: {message}");
            }
            None => assert!(warning.is_none(), "{args}: unexpected {warning:?}"),
        }
    }

    // The flight recorder keeps the warning too.
    let row = ok(call(
        &client,
        "llm_request_result",
        json!({"correlationId": "i-1"}),
    )
    .await);
    let warnings = row["request"]["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w["code"] == "review_integrity"
            && w["message"].as_str().unwrap().contains("tool_suppression")),
        "{row}"
    );
}

#[tokio::test]
async fn integrity_score_counts_for_mcp_managed() {
    let mut home = TestHome::new();
    fake_cli::install_all(&home);
    let records = fake_cli::record_into(&mut home);
    let client = home.connect().await;
    // Review context with allowedTools: [] scores 6 > balanced 5: denied, nothing runs.
    let result = call(
        &client,
        "claude_request",
        json!({"prompt": "Review this code", "allowedTools": [], "approvalStrategy": "mcp_managed"}),
    )
    .await;
    assert_eq!(result.is_error, Some(true));
    let s = result.structured_content.expect("structured error");
    assert_eq!(s["errorCategory"], "approval_denied");
    assert_eq!(s["approval"]["score"], 6);
    assert!(
        s["approval"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("empty_allowed_tools"),
        "{s}"
    );
    assert!(fake_cli::recordings(&records).is_empty());
}
