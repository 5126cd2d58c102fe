//! "Did you mean …?": the valid name a mistyped one most likely meant.
//!
//! One rule for every place that names a valid alternative to an unknown name (config.toml
//! keys today; the MCP layer's parameter names can use the same function).

/// The candidate a mistyped name most likely meant: the same name in another case or
/// separator style (`retention_days` → `retentionDays`), else the closest candidate within
/// a small edit distance (one edit per five characters of the candidate, from 1 to 3).
pub fn closest<'a>(wrong: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let normalize = |text: &str| -> String {
        text.chars()
            .filter(|c| !matches!(c, '_' | '-'))
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let wanted = normalize(wrong);
    if let Some(same) = candidates.iter().find(|c| normalize(c) == wanted) {
        return Some(same);
    }
    candidates
        .iter()
        .map(|candidate| (edit_distance(wrong, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 5).clamp(1, 3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of config.toml's `[persistence]` and `[jobs]` sections.
    const PERSISTENCE_KEYS: &[&str] = &[
        "backend",
        "path",
        "retentionDays",
        "requestRetentionDays",
        "sessionTtlDays",
        "dedupWindowMs",
        "acknowledgeEphemeral",
    ];
    const JOBS_KEYS: &[&str] = &[
        "runner",
        "sync_deadline_ms",
        "cancel_on_exit",
        "kill_grace_ms",
    ];

    #[test]
    fn suggestions_prefer_the_same_key_in_another_style() {
        assert_eq!(
            closest("retention_days", PERSISTENCE_KEYS),
            Some("retentionDays")
        );
        assert_eq!(
            closest("SYNC_DEADLINE_MS", JOBS_KEYS),
            Some("sync_deadline_ms")
        );
        assert_eq!(closest("runer", JOBS_KEYS), Some("runner"));
        assert_eq!(closest("zzz", JOBS_KEYS), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
