//! Property tests for the adapters (quality.md "Tests"):
//! - any prompt (unicode, leading dashes, quotes, newlines, up to the maximum) reaches the CLI
//!   exactly once and byte-exact, in the slot the provider uses, and nowhere else;
//! - parsers never panic on arbitrary bytes, and give the same outcome however a (possibly
//!   truncated) real stream is chunked.
//!
//! Case counts stay modest so the suite stays fast.

use crate::providers_support as support;

use llm_cli_gateway::providers::invocation::{Invocation, LARGE_PROMPT_BYTES, MAX_ARG_BYTES};
use llm_cli_gateway::providers::outcome::{Baseline, FinishInput};
use llm_cli_gateway::providers::progress::MAX_EVENT_CHARS;
use llm_cli_gateway::providers::request::ValidationKind;
use llm_cli_gateway::providers::{AnyRequest, Provider, new_parser};
use proptest::prelude::*;
use serde_json::json;
use support::*;

/// The prompt-carrying parts of an invocation, and the rest of argv with the prompt slot
/// blanked, so two builds can be compared outside that slot.
fn split_prompt(provider: Provider, inv: &Invocation) -> (Vec<String>, Vec<Vec<u8>>) {
    let mut delivered = Vec::new();
    let mut rest = inv.argv.clone();
    if let Some(stdin) = &inv.stdin {
        delivered.push(stdin.clone());
    }
    for file in &inv.temp_files {
        if file.path.ends_with("prompt.txt") {
            delivered.push(file.contents.clone());
        }
    }
    let n = rest.len();
    if provider == Provider::Claude && n >= 2 && rest[n - 2] == "--" {
        delivered.push(rest[n - 1].clone().into_bytes());
        rest[n - 1] = "<PROMPT>".into();
    } else if let Some(last) = rest.last_mut() {
        for flag in ["--prompt=", "--single="] {
            if let Some(prompt) = last.strip_prefix(flag) {
                delivered.push(prompt.as_bytes().to_vec());
                *last = format!("{flag}<PROMPT>");
                break;
            }
        }
    }
    (rest, delivered)
}

fn build_for(
    provider: Provider,
    prompt: &str,
) -> Result<Invocation, llm_cli_gateway::providers::request::ValidationError> {
    let mut c = ctx(provider.default_binary());
    c.max_prompt_chars = 1_000_000;
    AnyRequest::from_value(provider, json!({"prompt": prompt}))
        .expect("deserialises")
        .build(&c)
}

fn check_delivery(prompt: &str) -> Result<(), TestCaseError> {
    for provider in Provider::ALL {
        let built = build_for(provider, prompt);
        if provider == Provider::Gemini && prompt.len() + "--prompt=".len() > MAX_ARG_BYTES {
            // gemini has no byte-exact route for it: refused, never truncated.
            let err = built.expect_err("too large for one argument");
            prop_assert_eq!(err.kind, ValidationKind::InputTooLarge);
            continue;
        }
        let inv = built.map_err(|e| TestCaseError::fail(format!("{provider}: {e}")))?;
        let (rest, delivered) = split_prompt(provider, &inv);
        prop_assert_eq!(
            delivered.len(),
            1,
            "{}: delivered {} times",
            provider,
            delivered.len()
        );
        prop_assert_eq!(
            delivered[0].as_slice(),
            prompt.as_bytes(),
            "{}: not byte-exact",
            provider
        );
        // Over 100 KiB the prompt never travels as one argv element (except for gemini, which
        // has no other byte-exact route and is bounded by the argument limit above).
        if prompt.len() > LARGE_PROMPT_BYTES && provider != Provider::Gemini {
            prop_assert!(inv.argv.iter().all(|a| !a.contains(prompt)), "{}", provider);
        }
        // Outside its slot, argv does not depend on the prompt (it cannot become a flag).
        let reference = if prompt.len() > LARGE_PROMPT_BYTES {
            "r".repeat(LARGE_PROMPT_BYTES + 1)
        } else {
            "r".to_string()
        };
        let (reference_rest, _) = split_prompt(provider, &build_for(provider, &reference).unwrap());
        prop_assert_eq!(rest, reference_rest, "{}", provider);
        prop_assert!(inv.argv.iter().all(|a| a.len() <= MAX_ARG_BYTES));
    }
    Ok(())
}

/// Prompts that are valid: not blank, no NUL.
fn valid(s: &str) -> bool {
    !s.trim().is_empty() && !s.contains('\0')
}

fn tricky_prompt() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        ("-{1,3}", any::<String>()).prop_map(|(dashes, rest)| format!("{dashes}{rest}")),
        prop::sample::select(vec![
            "--",
            "-",
            "-p",
            "--help",
            "--prompt=x",
            "$(touch x)",
            "\"; rm -rf ~",
            "'single' \"double\" `back`",
            "line1\nline2\r\nline3",
            "tab\there",
            "emoji 👩‍💻 and RTL \u{202e}text",
        ])
        .prop_map(str::to_string),
        "[ -~\\n\\t]{1,300}",
    ]
    .prop_filter("valid prompt", |s| valid(s))
}

fn large_prompt() -> impl Strategy<Value = String> {
    prop_oneof![
        // Around the 100 KiB threshold, in ASCII.
        (LARGE_PROMPT_BYTES - 3..LARGE_PROMPT_BYTES + 3).prop_map(|n| "a".repeat(n)),
        // Up to the 100 000-character maximum, in 1- to 4-byte characters.
        (any::<char>(), 30_000..=100_000usize).prop_map(|(c, n)| {
            let c = if c == '\0' || c.is_whitespace() {
                'x'
            } else {
                c
            };
            format!("-{}", c.to_string().repeat(n - 1))
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn any_prompt_reaches_the_cli_exactly_once_and_byte_exact(prompt in tricky_prompt()) {
        check_delivery(&prompt)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn large_prompts_reach_the_cli_exactly_once_and_byte_exact(prompt in large_prompt()) {
        check_delivery(&prompt)?;
    }
}

fn provider_of(cli: &str) -> Provider {
    match cli {
        "grok-vibekit" => Provider::Grok,
        other => other.parse().unwrap(),
    }
}

fn finish_input(exit: Option<i32>, stderr: &[u8], export: Option<&[u8]>) -> FinishInput<'static> {
    // Leaked so the input can outlive the strategy values; tests are short-lived.
    FinishInput {
        exit_code: exit,
        stderr_tail: Box::leak(stderr.to_vec().into_boxed_slice()),
        baseline: Baseline::Unknown,
        export_json: export.map(|e| &*Box::leak(e.to_vec().into_boxed_slice())),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(
        stdout in prop::collection::vec(any::<u8>(), 0..2048),
        chunk in 1usize..64,
        exit in prop::option::of(any::<i32>()),
        stderr in prop::collection::vec(any::<u8>(), 0..256),
        export in prop::option::of(prop::collection::vec(any::<u8>(), 0..128)),
    ) {
        let input = finish_input(exit, &stderr, export.as_deref());
        for provider in Provider::ALL {
            let p = run_parser(new_parser(provider), &stdout, chunk, &input);
            prop_assert!(p.events.iter().all(|e| e.message.chars().count() <= MAX_EVENT_CHARS));
            prop_assert_eq!(p.outcome.is_error, exit != Some(0) || p.outcome.error.is_some());
        }
    }

    #[test]
    fn parsers_never_panic_on_json_shaped_garbage(
        lines in prop::collection::vec(
            prop_oneof![
                Just("{\"type\":\"result\"}".to_string()),
                Just("{\"type\":\"end\",\"usage\":{\"input_tokens\":-1}}".to_string()),
                Just("{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":1e309}}".to_string()),
                Just("{\"type\":\"assistant\",\"message\":{\"content\":7}}".to_string()),
                Just("{\"type\":\"message\",\"role\":\"assistant\",\"content\":[1,{\"text\":2}]}".to_string()),
                Just("[".to_string()),
                Just("{".to_string()),
                "\\{\"type\":\"[a-z._]{1,16}\",\"[a-z_]{1,10}\":(null|true|1|\"x\"|\\[\\]|\\{\\})\\}",
            ],
            0..24,
        ),
        exit in prop::option::of(-2i32..256),
    ) {
        let stdout = lines.join("\n");
        let input = finish_input(exit, b"", Some(b"{\"outcome\":7,\"usage\":[]}"));
        for provider in Provider::ALL {
            let _ = run_parser(new_parser(provider), stdout.as_bytes(), 3, &input);
        }
    }
}

/// Every captured stdout, with its CLI and exit code.
fn captured() -> Vec<(String, String, i32)> {
    manifest()
        .into_iter()
        .filter(|c| has_sample(&c.cli, &c.case, "stdout"))
        .map(|c| (c.cli, c.case, c.exit_code))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn truncated_real_streams_parse_the_same_however_they_are_chunked(
        (cli, name, exit) in prop::sample::select(captured()),
        cut in 0.0f64..=1.0,
        chunk in 1usize..200,
    ) {
        let stdout = sample(&cli, &name, "stdout");
        let stderr = sample(&cli, &name, "stderr");
        let end = (stdout.len() as f64 * cut) as usize;
        let truncated = &stdout[..end.min(stdout.len())];
        let input = finish_input(Some(exit), &stderr, None);
        let provider = provider_of(&cli);
        let whole = run_parser(new_parser(provider), truncated, usize::MAX, &input);
        let pieces = run_parser(new_parser(provider), truncated, chunk, &input);
        prop_assert_eq!(&whole.outcome, &pieces.outcome, "{}/{} cut at {}", cli, name, end);
        prop_assert_eq!(&whole.events, &pieces.events);
    }
}

#[test]
fn a_split_multibyte_character_comes_out_intact() {
    let line = "{\"type\":\"text\",\"data\":\"héllo 👋\"}\n{\"type\":\"end\",\"stopReason\":\"end_turn\",\"sessionId\":\"s\"}\n";
    let bytes = line.as_bytes();
    for chunk in 1..8 {
        let p = run_parser(
            new_parser(Provider::Grok),
            bytes,
            chunk,
            &FinishInput::exited(0, b""),
        );
        assert_eq!(p.outcome.text, "héllo 👋", "chunk {chunk}");
    }
}
