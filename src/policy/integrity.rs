//! Review integrity (policy.md "Review integrity"): in a review context, find the
//! instructions that would blind a reviewing agent — `allowedTools: []`, a critical tool in
//! `disallowedTools`, a prompt sentence telling it not to use its tools — and report them
//! as one `review_integrity` warning (and as score for `mcp_managed` approvals).
//!
//! Owns: the review-context word list, the critical tool names, the sentence and code-span
//! rules of `tool_suppression`, and the wording of the warning. Pure functions only.
//! Not here: the approval score's other parts ([`super::approval`]), where the warning is
//! attached (admission).

use std::sync::LazyLock;

use regex::Regex;

use crate::store::Warning;

/// The warning code every finding is reported under.
pub const WARNING_CODE: &str = "review_integrity";

/// Tools without which a reviewer cannot look at the code (claude's names; compared before
/// any `(` or `:`, case-insensitively).
pub const CRITICAL_TOOLS: [&str; 4] = ["Read", "Grep", "Glob", "Bash"];

/// The most characters between a negation and its verb, and between the verb and its noun.
const MAX_GAP_CHARS: usize = 40;

static REVIEW_CONTEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:review|audit|analy[sz]e|analysis|inspect|assess|pentest|security|vulnerabilit(?:y|ies)|bugs?|defects?|quality|code review)\b",
    )
    .expect("review-context regex")
});

static NEGATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:do not|don't|don’t|never|without)\b").expect("negation regex")
});

/// Words right after a negation that turn it into an encouragement ("never mind, use the
/// tools", "don't hesitate to run the commands", "do not forget to use the shell").
static NOT_A_NEGATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\W*(?:mind|hesitate|hesitation|forget|fail|neglect|stop|skip|avoid)\b")
        .expect("not-a-negation regex")
});

static TOOL_VERB: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:use[sd]?|using|calls?|calling|invokes?|invoking|runs?|running|executes?|executing|access(?:es|ing)?)\b",
    )
    .expect("tool-verb regex")
});

static TOOL_NOUN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:tools?|shell|bash|commands?)\b").expect("tool-noun regex")
});

/// Code fences (closed or running to the end) and inline code spans.
static CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)```.*?(?:```|\z)|`[^`\n]*`").expect("code-span regex"));

/// Sentence ends: `.`, `!`, `?`, `;` and line breaks.
static SENTENCE_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[.!?;]+|\n").expect("sentence regex"));

/// What was found, with its score (policy.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// `allowedTools: []` (6).
    EmptyAllowedTools,
    /// `Read`, `Grep`, `Glob` or `Bash` in `disallowedTools` (6).
    CriticalToolsDisallowed,
    /// A sentence telling the agent not to use its tools (4).
    ToolSuppression,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::EmptyAllowedTools => "empty_allowed_tools",
            FindingKind::CriticalToolsDisallowed => "critical_tools_disallowed",
            FindingKind::ToolSuppression => "tool_suppression",
        }
    }

    pub fn score(self) -> i64 {
        match self {
            FindingKind::EmptyAllowedTools | FindingKind::CriticalToolsDisallowed => 6,
            FindingKind::ToolSuppression => 4,
        }
    }
}

/// One finding and what it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    /// e.g. `disallowedTools contains Read, Bash` or the offending sentence.
    pub detail: String,
}

/// What the check looks at: the prompt the CLI receives and the tool lists as given.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReviewInput<'a> {
    pub prompt: &'a str,
    pub allowed_tools: Option<&'a [String]>,
    pub disallowed_tools: Option<&'a [String]>,
}

/// Whether the prompt asks for a review (the words of policy.md, case-insensitive and
/// word-bounded).
pub fn is_review_context(prompt: &str) -> bool {
    REVIEW_CONTEXT.is_match(prompt)
}

/// The critical tools named in `disallowed` (compared before any `(` or `:`).
pub fn critical_disallowed(disallowed: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in disallowed {
        let name = entry.split(['(', ':']).next().unwrap_or_default().trim();
        if let Some(tool) = CRITICAL_TOOLS
            .iter()
            .find(|tool| tool.eq_ignore_ascii_case(name))
            && !found.iter().any(|f| f == tool)
        {
            found.push((*tool).to_string());
        }
    }
    found
}

/// The first sentence outside code that tells the agent not to use its tools.
pub fn tool_suppression(prompt: &str) -> Option<String> {
    let prose = CODE.replace_all(prompt, " ");
    SENTENCE_END
        .split(&prose)
        .find(|sentence| sentence_suppresses_tools(sentence))
        .map(|sentence| sentence.trim().to_string())
}

fn within_gap(text: &str, from: usize, to: usize) -> bool {
    text[from..to].chars().count() <= MAX_GAP_CHARS
}

fn sentence_suppresses_tools(sentence: &str) -> bool {
    NEGATION.find_iter(sentence).any(|negation| {
        let after = negation.end();
        if NOT_A_NEGATION.is_match(&sentence[after..]) {
            return false;
        }
        TOOL_VERB
            .find_iter(&sentence[after..])
            .map(|verb| (after + verb.start(), after + verb.end()))
            .take_while(|&(start, _)| within_gap(sentence, after, start))
            .any(|(_, verb_end)| {
                TOOL_NOUN
                    .find_iter(&sentence[verb_end..])
                    .next()
                    .is_some_and(|noun| within_gap(sentence, verb_end, verb_end + noun.start()))
            })
    })
}

/// Every finding of policy.md for this request; none outside a review context.
pub fn check(input: ReviewInput<'_>) -> Vec<Finding> {
    if !is_review_context(input.prompt) {
        return Vec::new();
    }
    let mut findings = Vec::new();
    if input.allowed_tools.is_some_and(<[String]>::is_empty) {
        findings.push(Finding {
            kind: FindingKind::EmptyAllowedTools,
            detail: "allowedTools is [], so the agent may use no tool at all".to_string(),
        });
    }
    let critical = critical_disallowed(input.disallowed_tools.unwrap_or_default());
    if !critical.is_empty() {
        findings.push(Finding {
            kind: FindingKind::CriticalToolsDisallowed,
            detail: format!("disallowedTools contains {}", critical.join(", ")),
        });
    }
    if let Some(sentence) = tool_suppression(input.prompt) {
        findings.push(Finding {
            kind: FindingKind::ToolSuppression,
            detail: format!("the prompt says \"{sentence}\""),
        });
    }
    findings
}

/// The sum of the findings' scores.
pub fn score(findings: &[Finding]) -> i64 {
    findings.iter().map(|f| f.kind.score()).sum()
}

/// The one `review_integrity` warning that lists every finding, or none.
pub fn warning(findings: &[Finding]) -> Option<Warning> {
    if findings.is_empty() {
        return None;
    }
    let parts: Vec<String> = findings
        .iter()
        .map(|f| format!("{}: {}", f.kind.as_str(), f.detail))
        .collect();
    Some(Warning::new(
        WARNING_CODE,
        format!(
            "This review request may blind the reviewing agent ({}); its findings may be incomplete.",
            parts.join("; ")
        ),
    ))
}

/// The review-integrity warning of any request (every provider, both approval strategies),
/// from its prompt and whatever `allowedTools` / `disallowedTools` it carries.
pub fn request_warning(request: &crate::providers::AnyRequest) -> Option<Warning> {
    let args = request.to_value();
    let list = |key: &str| -> Option<Vec<String>> {
        args.get(key)
            .and_then(serde_json::Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(serde_json::Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
    };
    let allowed = list("allowedTools");
    let disallowed = list("disallowedTools");
    let prompt = super::request_prompt(request);
    warning(&check(ReviewInput {
        prompt: &prompt,
        allowed_tools: allowed.as_deref(),
        disallowed_tools: disallowed.as_deref(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(
        prompt: &str,
        allowed: Option<&[String]>,
        disallowed: Option<&[String]>,
    ) -> Vec<&'static str> {
        check(ReviewInput {
            prompt,
            allowed_tools: allowed,
            disallowed_tools: disallowed,
        })
        .iter()
        .map(|f| f.kind.as_str())
        .collect()
    }

    fn list(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn policy_examples() {
        assert_eq!(
            kinds("Review this code but do not use any tools", None, None),
            vec!["tool_suppression"]
        );
        assert!(kinds("Review the code using all available tools", None, None).is_empty());
        assert!(kinds("Implement a feature", None, Some(&list(&["Read"]))).is_empty());
    }

    #[test]
    fn review_context_words_are_word_bounded_and_case_insensitive() {
        for prompt in [
            "REVIEW this",
            "audit the module",
            "analyse it",
            "analyze it",
            "an analysis please",
            "inspect main.rs",
            "assess the risk",
            "pentest the API",
            "security check",
            "find the vulnerability",
            "list vulnerabilities",
            "fix the bug",
            "any bugs?",
            "a defect",
            "defects here",
            "code quality",
            "do a code review",
        ] {
            assert!(is_review_context(prompt), "{prompt}");
        }
        for prompt in [
            "preview the page",
            "debugger output",
            "Implement a feature",
            "auditorium",
        ] {
            assert!(!is_review_context(prompt), "{prompt}");
        }
    }

    #[test]
    fn empty_allowed_tools_and_critical_tools() {
        let empty: Vec<String> = Vec::new();
        assert_eq!(
            kinds("Review it", Some(&empty), None),
            vec!["empty_allowed_tools"]
        );
        assert!(kinds("Review it", Some(&list(&["Read"])), None).is_empty());
        assert_eq!(
            kinds(
                "Review it",
                None,
                Some(&list(&["Bash(git push:*)", "WebFetch"]))
            ),
            vec!["critical_tools_disallowed"]
        );
        assert_eq!(
            critical_disallowed(&list(&["Read", "Grep:*", "glob", "Read(./x)", "Edit"])),
            vec!["Read", "Grep", "Glob"]
        );
        assert!(critical_disallowed(&list(&["ReadMe", "WebSearch"])).is_empty());
    }

    #[test]
    fn suppression_needs_negation_verb_and_noun_in_one_sentence() {
        for prompt in [
            "Review this code but do not use any tools",
            "Audit it. Don't run shell commands.",
            "Review the diff without using the shell",
            "Review it; never, under any circumstances, invoke a command",
            "Security audit:\nnever execute bash",
        ] {
            assert!(tool_suppression(prompt).is_some(), "{prompt}");
        }
        for prompt in [
            // The negation is in another sentence.
            "Do not rush. Use the tools to review the code.",
            "Review this, never mind, use the tools",
            "never mind, use the tools",
            "Don't hesitate to run the commands",
            "Do not forget to use the shell",
            // Inside code.
            "Review the script `do not use any tools` says",
            "Review this:\n```\n# never run shell commands here\n```\nthen report",
            // Too far apart.
            "Do not worry about the formatting of the files or the layout of the project, and then use the tools",
            // No tool noun.
            "Review it but do not use emojis",
        ] {
            assert!(tool_suppression(prompt).is_none(), "{prompt}");
        }
    }

    #[test]
    fn scores_and_single_warning() {
        let empty: Vec<String> = Vec::new();
        let findings = check(ReviewInput {
            prompt: "Review this code but do not use any tools",
            allowed_tools: Some(&empty),
            disallowed_tools: Some(&list(&["Read"])),
        });
        assert_eq!(score(&findings), 16);
        let warning = warning(&findings).expect("a warning");
        assert_eq!(warning.code, "review_integrity");
        for kind in [
            "empty_allowed_tools",
            "critical_tools_disallowed",
            "tool_suppression",
        ] {
            assert!(warning.message.contains(kind), "{}", warning.message);
        }
        assert!(super::warning(&[]).is_none());
    }
}
