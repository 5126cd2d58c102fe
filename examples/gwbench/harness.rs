//! The scenarios of the gateway benchmark (quality.md, "Performance targets"), shared by the
//! `gwbench` example (full runs against the release binary) and `tests/integration/bench_smoke.rs`
//! (`--smoke`: each scenario once with tiny sizes, against the debug binary, no timing
//! assertions).
//!
//! Every scenario starts the gateway binary with `serve` in its own temp dir: a cleared
//! environment, `HOME` and `LLM_GATEWAY_HOME` inside the temp dir, and the fake provider
//! CLIs (`tests/fake-cli/fake-cli.sh`, symlinked as claude, codex, …) first on `PATH`. It
//! talks to it over stdio with rmcp's client, as an MCP client would. Memory figures come
//! from `/proc/<pid>/status` (`VmRSS`), sampled every few ms where a peak is wanted.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ReadResourceRequestParams};
use rmcp::service::{Peer, RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use tempfile::TempDir;

/// What to run.
pub struct Options {
    /// The `llm-cli-gateway` binary to measure.
    pub binary: PathBuf,
    /// Each scenario once, tiny sizes: proves the harness works, measures nothing.
    pub smoke: bool,
    /// Run only the scenarios whose names are listed (see [`SCENARIOS`]); all when empty.
    pub only: Vec<String>,
}

/// The scenario names `--only` accepts, in the order a full run takes them.
pub const SCENARIOS: [&str; 5] = ["cold-start", "sync", "async", "big-output", "seeded-store"];

type Client = RunningService<RoleClient, ()>;
type Result<T> = std::result::Result<T, String>;

/// The longest any single call of the benchmark may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The fake CLI script installed under each provider's name.
fn fake_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-cli/fake-cli.sh")
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cli-samples")
}

const CLIS: [&str; 5] = ["claude", "codex", "gemini", "grok", "vibe"];

/// One measured figure: its samples, unit and the quality.md target it is held against.
pub struct Figure {
    pub name: String,
    pub unit: &'static str,
    pub samples: Vec<f64>,
    pub target: String,
}

impl Figure {
    fn new(name: impl Into<String>, unit: &'static str, target: impl Into<String>) -> Self {
        Figure {
            name: name.into(),
            unit,
            samples: Vec::new(),
            target: target.into(),
        }
    }

    pub fn median(&self) -> f64 {
        let mut sorted = self.samples.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }

    pub fn min(&self) -> f64 {
        self.samples.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn max(&self) -> f64 {
        self.samples
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

/// Everything measured in one run.
pub struct Report {
    pub smoke: bool,
    pub figures: Vec<Figure>,
    /// Facts checked along the way (dedup hits, truncation, paging), one line each.
    pub checks: Vec<String>,
}

impl Report {
    /// The figures as a markdown table, then the checks.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        if self.smoke {
            out.push_str("_smoke run: tiny sizes, one sample each; not a measurement_\n\n");
        }
        out.push_str("| figure | median | min | max | n | target |\n");
        out.push_str("|---|---:|---:|---:|---:|---|\n");
        for f in &self.figures {
            out.push_str(&format!(
                "| {} | {:.2} {unit} | {:.2} {unit} | {:.2} {unit} | {} | {} |\n",
                f.name,
                f.median(),
                f.min(),
                f.max(),
                f.samples.len(),
                f.target,
                unit = f.unit,
            ));
        }
        if !self.checks.is_empty() {
            out.push('\n');
            for check in &self.checks {
                out.push_str(&format!("- {check}\n"));
            }
        }
        out
    }
}

/// An isolated gateway home: `home/`, `gateway/` (config.toml, logs.db), `bin/` (fakes).
struct Home {
    root: TempDir,
    binary: PathBuf,
    env: Vec<(String, String)>,
}

impl Home {
    fn new(binary: &Path, config: &str) -> Result<Home> {
        let root = tempfile::Builder::new()
            .prefix("gwbench-")
            .tempdir()
            .map_err(|e| format!("create temp dir: {e}"))?;
        for sub in ["home", "gateway", "bin"] {
            std::fs::create_dir_all(root.path().join(sub)).map_err(|e| e.to_string())?;
        }
        std::fs::write(root.path().join("gateway/config.toml"), config)
            .map_err(|e| format!("write config.toml: {e}"))?;
        for cli in CLIS {
            std::os::unix::fs::symlink(fake_script(), root.path().join("bin").join(cli))
                .map_err(|e| format!("install fake {cli}: {e}"))?;
        }
        Ok(Home {
            root,
            binary: binary.to_path_buf(),
            env: Vec::new(),
        })
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.root.path().join(sub)
    }

    fn gateway_dir(&self) -> PathBuf {
        self.path("gateway")
    }

    fn set_env(&mut self, key: &str, value: impl Into<String>) {
        self.env.push((key.to_string(), value.into()));
    }

    /// The environment every child of this home gets (cleared, then this).
    fn base_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("HOME".to_string(), self.path("home").display().to_string()),
            (
                "LLM_GATEWAY_HOME".to_string(),
                self.gateway_dir().display().to_string(),
            ),
            (
                "PATH".to_string(),
                format!(
                    "{}:/usr/local/bin:/usr/bin:/bin",
                    self.path("bin").display()
                ),
            ),
            ("TMPDIR".to_string(), self.root.path().display().to_string()),
        ];
        env.extend(self.env.iter().cloned());
        env
    }

    /// Starts `serve` and completes `initialize`; returns the client and the server's pid.
    async fn connect(&self) -> Result<(Client, u32)> {
        let mut command = tokio::process::Command::new(&self.binary);
        command.arg("serve").env_clear().envs(self.base_env());
        command.kill_on_drop(true);
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("stderr.log"))
            .map_err(|e| e.to_string())?;
        let (transport, _) = TokioChildProcess::builder(command)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.binary.display()))?;
        let pid = transport.id().ok_or("the server has no pid")?;
        let client = tokio::time::timeout(CALL_TIMEOUT, ().serve(transport))
            .await
            .map_err(|_| self.failure("initialize timed out"))?
            .map_err(|e| self.failure(&format!("initialize failed: {e}")))?;
        Ok((client, pid))
    }

    fn failure(&self, what: &str) -> String {
        let log = std::fs::read_to_string(self.path("stderr.log")).unwrap_or_default();
        format!("{what}\nserver stderr:\n{log}")
    }

    /// Runs the fake `cli` directly, as the gateway would (stdin = prompt, stdout read to
    /// the end), with this home's environment; returns its wall time in ms.
    fn run_fake_directly(&self, cli: &str) -> Result<f64> {
        use std::io::{Read, Write};
        let started = Instant::now();
        let mut child = std::process::Command::new(self.path("bin").join(cli))
            .args(["-p", "--output-format", "stream-json", "--verbose"])
            .env_clear()
            .envs(self.base_env())
            .current_dir(self.root.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("run the fake {cli}: {e}"))?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        stdin
            .write_all(b"the fake's own time")
            .map_err(|e| e.to_string())?;
        drop(stdin);
        let mut stdout = child.stdout.take().ok_or("no stdout")?;
        let mut sink = [0u8; 65536];
        while stdout.read(&mut sink).map_err(|e| e.to_string())? > 0 {}
        let status = child.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("the fake {cli} failed directly: {status}"));
        }
        Ok(ms(started.elapsed()))
    }

    /// `n` runs of the fake started at once, each on its own thread, without the gateway:
    /// wall from the first start to the last exit. On a small machine this, not the
    /// gateway, is most of the concurrent-jobs figure, so the benchmark reports it next to it.
    fn run_fakes_in_parallel(&self, cli: &str, n: usize) -> Result<f64> {
        let started = Instant::now();
        std::thread::scope(|scope| {
            let runs: Vec<_> = (0..n)
                .map(|_| scope.spawn(|| self.run_fake_directly(cli)))
                .collect();
            runs.into_iter().try_for_each(|run| {
                run.join()
                    .map_err(|_| "a fake run panicked".to_string())?
                    .map(drop)
            })
        })?;
        Ok(ms(started.elapsed()))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `VmRSS` of a process in MiB, `None` once it is gone.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Pids of this home's gateway processes: the server and its job supervisors, i.e. every
/// process running `binary` with this home's `LLM_GATEWAY_HOME`.
fn gateway_pids(binary: &Path, marker: &[u8]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if std::fs::read_link(entry.path().join("exe")).ok().as_deref() != Some(binary) {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|var| var == marker) {
            pids.push(pid);
        }
    }
    pids
}

/// Samples memory every few ms on a thread until dropped; [`Sampler::finish`] gives the
/// peak (MiB) of the server alone and of the server plus its supervisors together.
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<(f64, f64)>>,
}

impl Sampler {
    fn start(home: &Home, server: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let binary = std::fs::canonicalize(&home.binary).unwrap_or(home.binary.clone());
        let marker = format!("LLM_GATEWAY_HOME={}", home.gateway_dir().display()).into_bytes();
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let (mut server_peak, mut total_peak) = (0f64, 0f64);
            loop {
                let done = flag.load(Ordering::Relaxed);
                let server_rss = rss_mib(server).unwrap_or(0.0);
                let total: f64 = gateway_pids(&binary, &marker)
                    .into_iter()
                    .filter(|pid| *pid != server)
                    .filter_map(rss_mib)
                    .sum::<f64>()
                    + server_rss;
                server_peak = server_peak.max(server_rss);
                total_peak = total_peak.max(total);
                if done {
                    return (server_peak, total_peak);
                }
                std::thread::sleep(Duration::from_millis(3));
            }
        });
        Sampler {
            stop,
            handle: Some(handle),
        }
    }

    fn finish(mut self) -> (f64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or((f64::NAN, f64::NAN))
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Calls a tool; `structuredContent` on success, the error text otherwise.
async fn call(peer: &Peer<RoleClient>, name: &str, arguments: Value) -> Result<Value> {
    let Value::Object(arguments) = arguments else {
        return Err(format!("{name}: arguments must be an object"));
    };
    let request = CallToolRequestParams::new(name.to_string()).with_arguments(arguments);
    let result = tokio::time::timeout(CALL_TIMEOUT, peer.call_tool(request))
        .await
        .map_err(|_| format!("{name} timed out"))?
        .map_err(|e| format!("{name}: {e}"))?;
    let text = result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default();
    if result.is_error == Some(true) {
        return Err(format!("{name} failed: {text}"));
    }
    result
        .structured_content
        .ok_or_else(|| format!("{name}: no structuredContent"))
}

/// Ends a server: closes its stdin (the client's cancel) and waits until the pid is gone.
async fn shut_down(client: Client, pid: u32) {
    let _ = client.cancel().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        // A zombie keeps its /proc entry until reaped; its status says so.
        let state = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if state.contains("State:\tZ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs every scenario and collects the figures.
pub async fn run(options: &Options) -> Result<Report> {
    let mut report = Report {
        smoke: options.smoke,
        figures: Vec::new(),
        checks: Vec::new(),
    };
    let wanted = |name: &str| options.only.is_empty() || options.only.iter().any(|o| o == name);
    if wanted("cold-start") {
        cold_start(options, &mut report).await?;
    }
    if wanted("sync") {
        sync_overhead(options, &mut report).await?;
    }
    if wanted("async") {
        concurrent_async(options, &mut report).await?;
    }
    if wanted("big-output") {
        big_output(options, &mut report).await?;
    }
    if wanted("seeded-store") {
        seeded_store(options, &mut report).await?;
    }
    Ok(report)
}

/// Spawn → `initialize` → `tools/list`, and `VmRSS` once it has answered and idles.
async fn cold_start(options: &Options, report: &mut Report) -> Result<()> {
    let runs = if options.smoke { 1 } else { 15 };
    let home = Home::new(&options.binary, "")?;
    // The first start creates logs.db (migrations); a user's later starts do not.
    let (client, pid) = home.connect().await?;
    shut_down(client, pid).await;
    let mut start = Figure::new(
        "cold start: spawn → initialize → tools/list",
        "ms",
        "median ≤ 10 ms (TS ~250 ms)",
    );
    let mut idle = Figure::new("idle RSS after initialize", "MiB", "≤ 12 MiB (TS ~81 MiB)");
    for _ in 0..runs {
        let began = Instant::now();
        let (client, pid) = home.connect().await?;
        let tools = client
            .list_all_tools()
            .await
            .map_err(|e| format!("tools/list: {e}"))?;
        start.samples.push(ms(began.elapsed()));
        if tools.is_empty() {
            return Err("tools/list answered no tools".into());
        }
        tokio::time::sleep(Duration::from_millis(if options.smoke { 10 } else { 200 })).await;
        idle.samples.push(rss_mib(pid).ok_or("the server is gone")?);
        shut_down(client, pid).await;
    }
    report.figures.push(start);
    report.figures.push(idle);
    Ok(())
}

/// Sync `claude_request` end to end minus the fake's own run time, per runner; then a
/// dedup hit on the completed job (supervisor runner).
async fn sync_overhead(options: &Options, report: &mut Report) -> Result<()> {
    let runs = if options.smoke { 1 } else { 25 };
    for runner in ["supervisor", "in-process"] {
        let home = Home::new(&options.binary, &format!("[jobs]\nrunner = \"{runner}\"\n"))?;
        let mut fake = Vec::new();
        for _ in 0..runs.max(3) {
            fake.push(home.run_fake_directly("claude")?);
        }
        let fake_own = Figure {
            samples: fake,
            ..Figure::new("", "ms", "")
        }
        .median();
        let (client, pid) = home.connect().await?;
        let peer = client.peer().clone();
        // One unmeasured request: the first one opens the store's pools, probes, etc.
        call(&peer, "claude_request", json!({"prompt": "warm up"})).await?;
        let (target, label) = if runner == "supervisor" {
            ("median ≤ 10 ms (TS ~1 000 ms)", "supervised")
        } else {
            ("median ≤ 3 ms", "in-process")
        };
        let mut e2e = Figure::new(
            format!("sync request end to end, {label} (fake alone: {fake_own:.1} ms)"),
            "ms",
            "—",
        );
        let mut overhead = Figure::new(format!("sync request overhead, {label}"), "ms", target);
        for i in 0..runs {
            let began = Instant::now();
            let answer = call(
                &peer,
                "claude_request",
                json!({"prompt": format!("sync {runner} {i}")}),
            )
            .await?;
            let elapsed = ms(began.elapsed());
            if answer["deduped"] != json!(false) || answer["response"].as_str().is_none() {
                return Err(format!("unexpected sync answer: {answer}"));
            }
            e2e.samples.push(elapsed);
            overhead.samples.push(elapsed - fake_own);
        }
        report.figures.push(e2e);
        report.figures.push(overhead);

        if runner == "supervisor" {
            let args = json!({"prompt": "dedup probe"});
            let first = call(&peer, "claude_request", args.clone()).await?;
            let mut dedup = Figure::new(
                "dedup hit on a completed job",
                "ms",
                "median ≤ 3 ms (TS ~3 ms)",
            );
            for _ in 0..runs {
                let began = Instant::now();
                let answer = call(&peer, "claude_request", args.clone()).await?;
                dedup.samples.push(ms(began.elapsed()));
                if answer["deduped"] != json!(true) || answer["jobId"] != first["jobId"] {
                    return Err(format!("expected a dedup hit, got {answer}"));
                }
            }
            report.figures.push(dedup);
            report.checks.push(format!(
                "dedup: {runs} identical calls all answered `deduped: true` with the first job's id"
            ));
        }
        shut_down(client, pid).await;
    }
    Ok(())
}

/// N `claude_request_async` at once with a fake that takes 200 ms: wall from the first
/// start to all seen completed (polling `llm_job_list`), and the server's peak RSS.
async fn concurrent_async(options: &Options, report: &mut Report) -> Result<()> {
    let (jobs, rounds, delay_ms) = if options.smoke {
        (3, 1, 20)
    } else {
        (50, 5, 200)
    };
    let mut home = Home::new(
        &options.binary,
        "[limits]\nmax_running_jobs = 64\nmax_running_jobs_per_provider = 64\n",
    )?;
    home.set_env("FAKE_CLI_DELAY_MS", delay_ms.to_string());
    let fake_own = home.run_fake_directly("claude")?;
    let (client, pid) = home.connect().await?;
    let peer = client.peer().clone();
    call(&peer, "claude_request", json!({"prompt": "warm up"})).await?;
    let mut wall = Figure::new(
        format!("{jobs} concurrent async jobs, {delay_ms} ms fake: first start → all done"),
        "ms",
        "≤ 300 ms (TS ~395 ms)",
    );
    let mut server_rss = Figure::new(
        format!("{jobs} concurrent async jobs: server peak RSS"),
        "MiB",
        "≤ 30 MiB (TS ~95 MiB)",
    );
    let mut total_rss = Figure::new(
        format!("{jobs} concurrent async jobs: server + {jobs} supervisors peak RSS"),
        "MiB",
        "— (informative)",
    );
    let mut floor = Figure::new(
        format!("{jobs} fakes alone at once, no gateway (the floor of the figure above)"),
        "ms",
        "— (informative)",
    );
    let mut gateway_share = Figure::new(
        format!("{jobs} concurrent async jobs: all done minus the fakes alone (same round)"),
        "ms",
        "— (informative)",
    );
    for round in 0..rounds {
        let fakes_alone = home.run_fakes_in_parallel("claude", jobs)?;
        floor.samples.push(fakes_alone);
        let sampler = Sampler::start(&home, pid);
        let began = Instant::now();
        let mut starts = tokio::task::JoinSet::new();
        for i in 0..jobs {
            let peer = peer.clone();
            starts.spawn(async move {
                call(
                    &peer,
                    "claude_request_async",
                    json!({"prompt": format!("async {round} {i}")}),
                )
                .await
            });
        }
        let mut ids = Vec::new();
        while let Some(started) = starts.join_next().await {
            let answer = started.map_err(|e| e.to_string())??;
            let id = answer["jobId"]
                .as_str()
                .ok_or_else(|| format!("no jobId in {answer}"))?;
            ids.push(id.to_string());
        }
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let list = call(&peer, "llm_job_list", json!({"limit": 200})).await?;
            let listed = list["jobs"].as_array().cloned().unwrap_or_default();
            let done = listed
                .iter()
                .filter(|job| {
                    job["jobId"]
                        .as_str()
                        .or(job["id"].as_str())
                        .is_some_and(|id| ids.iter().any(|mine| mine == id))
                })
                .filter(|job| job["status"] == "completed")
                .count();
            if done == jobs {
                break;
            }
            if let Some(failed) = listed.iter().find(|job| {
                matches!(
                    job["status"].as_str(),
                    Some("failed" | "canceled" | "orphaned")
                )
            }) {
                return Err(format!("an async job did not complete: {failed}"));
            }
            if Instant::now() > deadline {
                return Err(format!("{jobs} async jobs not done in time: {list}"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        wall.samples.push(ms(began.elapsed()));
        gateway_share
            .samples
            .push(ms(began.elapsed()) - fakes_alone);
        let (server_peak, total_peak) = sampler.finish();
        server_rss.samples.push(server_peak);
        total_rss.samples.push(total_peak);
    }
    report.checks.push(format!(
        "async: the fake alone takes {fake_own:.1} ms (with its {delay_ms} ms sleep); \
         completion is seen by polling `llm_job_list` every 5 ms"
    ));
    report.figures.push(wall);
    report.figures.push(floor);
    report.figures.push(gateway_share);
    report.figures.push(server_rss);
    report.figures.push(total_rss);
    shut_down(client, pid).await;
    Ok(())
}

/// A fixture dir where claude's case `big` answers `size` characters of `x`.
fn big_fixture(dir: &Path, size: usize) -> Result<()> {
    for cli in CLIS {
        std::fs::create_dir_all(dir.join(cli)).map_err(|e| e.to_string())?;
        std::fs::copy(
            fixtures_dir().join(cli).join("version.stdout"),
            dir.join(cli).join("version.stdout"),
        )
        .map_err(|e| format!("copy {cli} version fixture: {e}"))?;
    }
    let sample =
        std::fs::read_to_string(fixtures_dir().join("claude/stream-json-partial-ok.stdout"))
            .map_err(|e| e.to_string())?;
    let lines: Vec<&str> = sample.lines().filter(|l| !l.trim().is_empty()).collect();
    let (first, last) = (lines[0], lines[lines.len() - 1]);
    let mut result: Value = serde_json::from_str(last).map_err(|e| e.to_string())?;
    result["result"] = Value::String("x".repeat(size));
    let mut out = String::with_capacity(size + first.len() + 4096);
    out.push_str(first);
    out.push('\n');
    out.push_str(&result.to_string());
    out.push('\n');
    std::fs::write(dir.join("claude/big.stdout"), out).map_err(|e| e.to_string())
}

/// One sync job whose answer is 20 MB: truncated at `maxResponseChars`, pageable intact,
/// peak RSS of server + supervisor, overhead over the fake printing it alone.
async fn big_output(options: &Options, report: &mut Report) -> Result<()> {
    let (size, runs) = if options.smoke {
        (150_000, 1)
    } else {
        (20_000_000, 3)
    };
    let mut home = Home::new(&options.binary, "")?;
    let fixtures = home.path("big-fixtures");
    big_fixture(&fixtures, size)?;
    home.set_env("FAKE_CLI_FIXTURES", fixtures.display().to_string());
    home.set_env("FAKE_CLI_CASE", "big");
    let mut fake = Vec::new();
    for _ in 0..3 {
        fake.push(home.run_fake_directly("claude")?);
    }
    let fake_own = Figure {
        samples: fake,
        ..Figure::new("", "ms", "")
    }
    .median();
    let (client, pid) = home.connect().await?;
    let peer = client.peer().clone();
    let mb = size as f64 / 1e6;
    let mut peak = Figure::new(
        format!("{mb} MB answer: server + supervisor peak RSS"),
        "MiB",
        "≤ 64 MiB (TS ~520 MiB)",
    );
    let mut overhead = Figure::new(
        format!("{mb} MB answer: overhead (fake alone: {fake_own:.1} ms)"),
        "ms",
        "≤ 500 ms (TS ~3.8 s)",
    );
    let mut page_all = Figure::new(
        format!("{mb} MB answer: paging it all back (1 MB pages)"),
        "ms",
        "— (informative)",
    );
    for run in 0..runs {
        let sampler = Sampler::start(&home, pid);
        let began = Instant::now();
        let answer = call(
            &peer,
            "claude_request",
            json!({"prompt": format!("big {run}")}),
        )
        .await?;
        let elapsed = ms(began.elapsed());
        let (_, total_peak) = sampler.finish();
        let response = answer["response"].as_str().unwrap_or_default();
        if answer["truncated"] != json!(true) || response.chars().count() != 100_000 {
            return Err(format!(
                "expected the first 100000 chars with truncated: true, got {} chars, truncated {}",
                response.chars().count(),
                answer["truncated"]
            ));
        }
        let job = answer["jobId"].as_str().ok_or("no jobId")?.to_string();
        let paging = Instant::now();
        let (mut offset, mut total) = (0u64, 0usize);
        loop {
            let page = call(
                &peer,
                "llm_job_result",
                json!({"jobId": job, "maxChars": 1_000_000, "offset": offset}),
            )
            .await?;
            let text = page["response"].as_str().unwrap_or_default();
            if text.bytes().any(|b| b != b'x') {
                return Err("a page of the big answer is not the fake's output".into());
            }
            total += text.len();
            match page["nextOffset"].as_u64() {
                Some(next) => offset = next,
                None => break,
            }
        }
        page_all.samples.push(ms(paging.elapsed()));
        if total != size {
            return Err(format!("paged {total} chars back, expected {size}"));
        }
        peak.samples.push(total_peak);
        overhead.samples.push(elapsed - fake_own);
    }
    report.checks.push(format!(
        "{mb} MB answer: each sync answer was its first 100000 chars with `truncated: true`; \
         paging `llm_job_result` gave back all {size} chars intact"
    ));
    report.figures.push(peak);
    report.figures.push(overhead);
    report.figures.push(page_all);
    shut_down(client, pid).await;
    Ok(())
}

/// Copies row `template` of `table` `count - 1` times: UUID-like text columns in `fresh`
/// get a distinct last 12 hex digits per copy, columns in `fixed` get the given SQL value.
fn clone_rows(
    db: &rusqlite::Connection,
    table: &str,
    count: usize,
    fresh: &[&str],
    fixed: &[(&str, &str)],
) -> Result<()> {
    let mut statement = db
        .prepare(&format!(
            "SELECT name, pk FROM pragma_table_info('{table}')"
        ))
        .map_err(|e| e.to_string())?;
    let columns: Vec<(String, i64)> = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(|e| e.to_string())?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    let mut exprs = Vec::new();
    for (name, _pk) in columns
        .iter()
        .filter(|(name, pk)| !(*pk == 1 && name == "seq"))
    {
        names.push(name.clone());
        exprs.push(
            if let Some((_, value)) = fixed.iter().find(|(c, _)| c == name) {
                value.to_string()
            } else if fresh.contains(&name.as_str()) {
                format!(
                    "CASE WHEN t.{name} IS NULL THEN NULL ELSE \
                 substr(t.{name}, 1, length(t.{name}) - 12) || printf('%012x', n.i) END"
                )
            } else {
                format!("t.{name}")
            },
        );
    }
    let sql = format!(
        "INSERT INTO {table} ({}) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {}) \
         SELECT {} FROM (SELECT * FROM {table} LIMIT 1) AS t, n",
        names.join(", "),
        count.saturating_sub(1),
        exprs.join(", ")
    );
    db.execute(&sql, [])
        .map_err(|e| format!("seed {table}: {e}"))?;
    Ok(())
}

/// `cache-state://global`, `llm_job_list` and `session_list` on a store seeded with
/// 100 000 requests (and as many jobs, over 1 000 sessions), copied from one real request.
async fn seeded_store(options: &Options, report: &mut Report) -> Result<()> {
    let (rows, runs) = if options.smoke {
        (200, 1)
    } else {
        (100_000, 25)
    };
    let home = Home::new(&options.binary, "")?;
    let (client, pid) = home.connect().await?;
    call(
        client.peer(),
        "claude_request",
        json!({"prompt": "the template row"}),
    )
    .await?;
    shut_down(client, pid).await;

    let seeding = Instant::now();
    let db = rusqlite::Connection::open(home.gateway_dir().join("logs.db"))
        .map_err(|e| format!("open logs.db: {e}"))?;
    db.busy_timeout(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    db.execute_batch("BEGIN").map_err(|e| e.to_string())?;
    let sessions: i64 = db
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    // Each copy i belongs to session i % 1000 (0 = the template's own).
    let session_of = "CASE WHEN t.session_id IS NULL OR n.i % 1000 = 0 THEN t.session_id ELSE \
         substr(t.session_id, 1, length(t.session_id) - 12) || printf('%012x', n.i % 1000) END";
    if sessions > 0 {
        clone_rows(&db, "sessions", 1000, &["id"], &[("is_active", "0")])?;
    }
    clone_rows(
        &db,
        "jobs",
        rows,
        &["id", "correlation_id", "request_key"],
        &[("session_id", session_of)],
    )?;
    clone_rows(
        &db,
        "requests",
        rows,
        &["id", "correlation_id", "job_id"],
        &[("session_id", session_of)],
    )?;
    db.execute_batch("COMMIT; PRAGMA optimize;")
        .map_err(|e| e.to_string())?;
    let counted: i64 = db
        .query_row("SELECT count(*) FROM requests", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    drop(db);
    report.checks.push(format!(
        "store: seeded {counted} requests, {rows} jobs, {} sessions in {:.1} s",
        if sessions > 0 { 1000 } else { 0 },
        seeding.elapsed().as_secs_f64()
    ));

    let (client, pid) = home.connect().await?;
    let peer = client.peer().clone();
    let label = if options.smoke {
        format!("{rows} rows")
    } else {
        "100 000 rows".to_string()
    };
    let mut figures = [
        Figure::new(format!("`cache-state://global`, {label}"), "ms", "≤ 50 ms"),
        Figure::new(format!("`llm_job_list`, {label}"), "ms", "≤ 50 ms"),
        Figure::new(format!("`session_list`, {label}"), "ms", "≤ 50 ms"),
    ];
    for warm in [true, false] {
        for _ in 0..if warm { 1 } else { runs } {
            let began = Instant::now();
            tokio::time::timeout(
                CALL_TIMEOUT,
                peer.read_resource(ReadResourceRequestParams::new("cache-state://global")),
            )
            .await
            .map_err(|_| "cache-state://global timed out".to_string())?
            .map_err(|e| format!("cache-state://global: {e}"))?;
            let cache = ms(began.elapsed());
            let began = Instant::now();
            let jobs = call(&peer, "llm_job_list", json!({})).await?;
            let list = ms(began.elapsed());
            let began = Instant::now();
            call(&peer, "session_list", json!({})).await?;
            let sessions = ms(began.elapsed());
            if jobs["jobs"].as_array().is_none_or(|j| j.is_empty()) {
                return Err(format!("llm_job_list listed nothing: {jobs}"));
            }
            if !warm {
                figures[0].samples.push(cache);
                figures[1].samples.push(list);
                figures[2].samples.push(sessions);
            }
        }
    }
    report.figures.extend(figures);
    shut_down(client, pid).await;
    Ok(())
}
