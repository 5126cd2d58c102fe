//! The request key of jobs.md "Dedup" and the prompt placeholder of the recorded argv.
//!
//! Owns: the canonical form of a run (`[cli, argv, env additions, stdin digest, cwd,
//! gateway session id]`) with every gateway-generated path replaced by a placeholder — a
//! temp file by the hash of its content, the per-run temp dir by `<tempdir>` — and its
//! SHA-256. The model is already inside argv after alias resolution; `forceRefresh` and
//! `correlationId` never reach an invocation, so they cannot change the key.
//! Not here: the dedup rules themselves (the store applies them atomically).

use std::path::Path;

use serde_json::{Value, json};

use crate::providers::{Invocation, Provider};
use sha2::{Digest, Sha256};

/// What the key needs besides the invocation.
#[derive(Debug, Clone, Copy)]
pub struct KeyInput<'a> {
    pub cli: Provider,
    pub invocation: &'a Invocation,
    /// The run's private temp dir (its path is random, so it must not reach the key).
    pub temp_dir: &'a Path,
    /// Realpath of `workingDir`, or the session's recorded dir, or `None` for the scratch
    /// dir (`<default>`).
    pub cwd: Option<&'a str>,
    /// The gateway session in play.
    pub gateway_session: Option<&'a str>,
}

/// SHA-256 (hex) of the canonical JSON of the run.
pub fn request_key(input: KeyInput<'_>) -> String {
    let placeholders = placeholders(input.invocation, input.temp_dir);
    let scrub = |s: &str| scrub(s, &placeholders);
    let argv: Vec<String> = input.invocation.argv.iter().map(|a| scrub(a)).collect();
    let env: Vec<Value> = input
        .invocation
        .env_overrides
        .iter()
        .map(|(k, v)| json!([k, scrub(v)]))
        .collect();
    let stdin = input.invocation.stdin.as_deref().map(sha256_hex);
    // An array, not an object: its order is fixed whatever serde_json's map ordering is.
    let canonical = json!([
        input.cli.key(),
        argv,
        env,
        stdin,
        input.cwd.unwrap_or("<default>"),
        input.gateway_session,
    ]);
    sha256_hex(canonical.to_string().as_bytes())
}

/// The argv as stored in the `jobs` row: every occurrence of the prompt text replaced by
/// `<prompt sha256:…>` (the prompt may be a positional, or the value of `--prompt=` /
/// `--single=`).
pub fn redact_prompt(argv: &[String], prompt: &str) -> Vec<String> {
    if prompt.is_empty() {
        return argv.to_vec();
    }
    let placeholder = format!("<prompt sha256:{}>", sha256_hex(prompt.as_bytes()));
    argv.iter()
        .map(|a| a.replace(prompt, &placeholder))
        .collect()
}

/// (path, placeholder) pairs, longest path first so a file inside the temp dir is replaced
/// before the dir itself.
fn placeholders(invocation: &Invocation, temp_dir: &Path) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = invocation
        .temp_files
        .iter()
        .map(|f| {
            (
                f.path.to_string_lossy().into_owned(),
                format!("<file sha256:{}>", sha256_hex(&f.contents)),
            )
        })
        .collect();
    pairs.push((temp_dir.to_string_lossy().into_owned(), "<tempdir>".into()));
    pairs.retain(|(path, _)| !path.is_empty());
    pairs.sort_by_key(|pair| std::cmp::Reverse(pair.0.len()));
    pairs
}

/// SHA-256 (hex) of bytes (stdin and temp files need not be UTF-8).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn scrub(value: &str, placeholders: &[(String, String)]) -> String {
    let mut out = value.to_string();
    for (path, placeholder) in placeholders {
        if out.contains(path.as_str()) {
            out = out.replace(path.as_str(), placeholder);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{BuildContext, TempFile};
    use std::path::PathBuf;

    fn invocation(temp: &Path, prompt: &str) -> Invocation {
        let ctx = BuildContext::new("claude", "/tmp", temp);
        let mut inv =
            crate::providers::AnyRequest::from_value(Provider::Claude, json!({"prompt": prompt}))
                .unwrap()
                .build(&ctx)
                .unwrap();
        inv.temp_files
            .push(TempFile::new(temp, "schema.json", b"{}".to_vec()));
        inv.argv.push(format!(
            "--json-schema={}",
            temp.join("schema.json").display()
        ));
        inv
    }

    fn key(inv: &Invocation, temp: &Path, cwd: Option<&str>, session: Option<&str>) -> String {
        request_key(KeyInput {
            cli: Provider::Claude,
            invocation: inv,
            temp_dir: temp,
            cwd,
            gateway_session: session,
        })
    }

    #[test]
    fn generated_paths_do_not_change_the_key_but_content_does() {
        let (a, b) = (PathBuf::from("/t/run-a"), PathBuf::from("/t/run-b"));
        let ia = invocation(&a, "hello");
        let ib = invocation(&b, "hello");
        assert_eq!(key(&ia, &a, None, None), key(&ib, &b, None, None));
        assert_ne!(
            key(&ia, &a, None, None),
            key(&invocation(&a, "bye"), &a, None, None)
        );
        assert_ne!(key(&ia, &a, None, None), key(&ia, &a, Some("/w"), None));
        assert_ne!(key(&ia, &a, None, None), key(&ia, &a, None, Some("gw-1")));
        let mut other = ib.clone();
        other.temp_files[0].contents = b"{\"x\":1}".to_vec();
        assert_ne!(key(&ia, &a, None, None), key(&other, &b, None, None));
    }

    #[test]
    fn the_prompt_is_replaced_in_recorded_argv() {
        let argv = vec!["-p".to_string(), "--".into(), "secret words".into()];
        let out = redact_prompt(&argv, "secret words");
        assert_eq!(
            out[2],
            format!("<prompt sha256:{}>", sha256_hex(b"secret words"))
        );
        let argv = vec!["--prompt=secret words".to_string()];
        assert!(redact_prompt(&argv, "secret words")[0].starts_with("--prompt=<prompt sha256:"));
    }
}
