//! `gwbench`: the benchmark of quality.md's performance targets.
//!
//! Drives the release `llm-cli-gateway` binary over stdio through rmcp's client, exactly as
//! an MCP client would, with the fake provider CLIs of `tests/fake-cli` first on `PATH` and
//! an isolated `LLM_GATEWAY_HOME` per scenario, and prints a markdown table (median / min /
//! max per figure, with the target next to it).
//!
//! ```text
//! cargo build --release && cargo run --release --example gwbench
//! cargo run --release --example gwbench -- --smoke   # each scenario once, tiny sizes
//! cargo run --release --example gwbench -- --only async,big-output   # some scenarios
//! ```
//!
//! The scenarios live in `harness.rs`, shared with `tests/integration/bench_smoke.rs` so the harness is
//! exercised by `cargo test` (in smoke mode, against the debug binary).

mod harness;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut smoke = false;
    let mut binary: Option<PathBuf> = None;
    let mut only: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--smoke" => smoke = true,
            "--binary" => binary = args.next().map(PathBuf::from),
            "--only" => {
                let list = args.next().unwrap_or_default();
                for name in list.split(',').filter(|n| !n.is_empty()) {
                    if !harness::SCENARIOS.contains(&name) {
                        eprintln!(
                            "gwbench: unknown scenario {name}; the scenarios are {}",
                            harness::SCENARIOS.join(", ")
                        );
                        return ExitCode::from(2);
                    }
                    only.push(name.to_string());
                }
            }
            "-h" | "--help" => {
                println!(
                    "usage: gwbench [--smoke] [--binary PATH] [--only SCENARIO,…]\n\n\
                     Benchmarks the release llm-cli-gateway binary (default: next to this \
                     example, target/release/llm-cli-gateway) and prints a markdown table.\n\
                     Scenarios: {}",
                    harness::SCENARIOS.join(", ")
                );
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("gwbench: unknown argument {other} (try --help)");
                return ExitCode::from(2);
            }
        }
    }
    let binary = match binary.or_else(default_binary) {
        Some(path) if path.is_file() => path,
        Some(path) => {
            eprintln!(
                "gwbench: {} not found; run `cargo build --release` first (the benchmark \
                 measures the release binary)",
                path.display()
            );
            return ExitCode::from(2);
        }
        None => {
            eprintln!("gwbench: cannot locate the gateway binary; pass --binary PATH");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("build the tokio runtime");
    let options = harness::Options {
        binary,
        smoke,
        only,
    };
    match runtime.block_on(harness::run(&options)) {
        Ok(report) => {
            println!("{}", report.markdown());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("gwbench: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `target/<profile>/llm-cli-gateway`: the example runs from `target/<profile>/examples/`.
fn default_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    Some(profile_dir.join("llm-cli-gateway"))
}
