//! The benchmark harness (`examples/gwbench`) in smoke mode, so it cannot rot: every
//! scenario once with tiny sizes against the debug binary. It checks the harness's own
//! assertions (dedup hits, truncation, paging back intact); it asserts no timings.

use crate::harness;

#[tokio::test(flavor = "multi_thread")]
async fn every_benchmark_scenario_runs_once() {
    let options = harness::Options {
        binary: env!("CARGO_BIN_EXE_llm-cli-gateway").into(),
        smoke: true,
        // Every scenario by name, so each name `--only` accepts stays wired to a scenario.
        only: harness::SCENARIOS.iter().map(|s| s.to_string()).collect(),
    };
    let report = harness::run(&options)
        .await
        .unwrap_or_else(|error| panic!("the benchmark harness failed: {error}"));
    let table = report.markdown();
    assert!(report.figures.len() >= 15, "{table}");
    for figure in &report.figures {
        assert!(
            !figure.samples.is_empty() && figure.samples.iter().all(|s| s.is_finite()),
            "{} has no sample:\n{table}",
            figure.name
        );
    }
}
