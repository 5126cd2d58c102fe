//! Privacy of what the store records: secret redaction, hashing, and the 1 MiB cut of
//! recorded answers (storage.md "Privacy and retention").
//!
//! Owns the secret patterns (compiled once) and `RecordedText`, the form in which a prompt or
//! an answer enters the flight recorder. Not here: deciding *where* redaction applies (the
//! table files call it for the columns people browse) — and never the prompt a CLI receives:
//! redaction only ever changes what the recorder writes.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use sha2::{Digest, Sha256};

/// The most bytes of an answer that `requests.response` keeps; the whole answer lives once,
/// in `jobs.response`.
pub const RECORDED_RESPONSE_MAX_BYTES: usize = 1024 * 1024;

/// One pattern per kind, as alternatives of a single regex so a text is scanned once.
/// Word boundaries and minimum lengths keep ordinary words ("risk-assessment", "sk-short")
/// intact. Order matters where prefixes overlap: `sk-ant-` before `sk-`.
const PATTERNS: &[(&str, &str)] = &[
    ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
    ("openai_key", r"\bsk-[A-Za-z0-9_-]{20,}"),
    ("xai_key", r"\bxai-[A-Za-z0-9]{20,}"),
    ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}"),
    (
        "github_token",
        r"\bgh[pousr]_[A-Za-z0-9]{36,}|\bgithub_pat_[A-Za-z0-9_]{22,}",
    ),
    ("slack_token", r"\bxox[bpas]-[A-Za-z0-9-]{10,}"),
    ("aws_access_key", r"\bAKIA[0-9A-Z]{16}\b"),
    // The scheme word stays so the text still reads as an Authorization header.
    (
        "bearer_token",
        r"\b(?P<bearer>(?i:bearer)\s+)[A-Za-z0-9._~+/=-]{20,}",
    ),
    // A block without its END line is redacted to the end of the text: a cut-off key is
    // still a key.
    (
        "private_key",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z ]*PRIVATE KEY-----|\z)",
    ),
];

static SECRETS: LazyLock<Regex> = LazyLock::new(|| {
    let alternatives: Vec<String> = PATTERNS
        .iter()
        .map(|(kind, pattern)| format!("(?P<{kind}>{pattern})"))
        .collect();
    Regex::new(&alternatives.join("|")).expect("secret patterns are valid regexes")
});

/// Replaces obvious secrets with `[REDACTED:<kind>]`; borrows when nothing matched.
///
/// Kinds: `anthropic_key`, `openai_key`, `xai_key`, `google_api_key`, `github_token`,
/// `slack_token`, `aws_access_key`, `bearer_token` (keeps the `Bearer ` word),
/// `private_key` (a whole PEM block). An `sk-` match must contain a digit: real keys always
/// do, while hyphenated words that happen to start with `sk-` ("sk-learn-compatible-…") do not.
pub fn redact_secrets(text: &str) -> Cow<'_, str> {
    let mut redacted: Option<String> = None;
    let mut copied_up_to = 0;
    for caps in SECRETS.captures_iter(text) {
        let (Some(whole), Some(replacement)) = (caps.get(0), replacement_for(&caps)) else {
            continue;
        };
        let out = redacted.get_or_insert_with(|| String::with_capacity(text.len()));
        out.push_str(&text[copied_up_to..whole.start()]);
        out.push_str(&replacement);
        copied_up_to = whole.end();
    }
    match redacted {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(&text[copied_up_to..]);
            Cow::Owned(out)
        }
    }
}

/// The `[REDACTED:<kind>]` text for one match, or `None` when the match is not a secret
/// after all (an `sk-` word without a digit).
fn replacement_for(caps: &Captures<'_>) -> Option<String> {
    let whole = caps.get(0)?.as_str();
    let kind = PATTERNS
        .iter()
        .map(|(kind, _)| *kind)
        .find(|kind| caps.name(kind).is_some())?;
    if matches!(kind, "anthropic_key" | "openai_key") && !whole.bytes().any(|b| b.is_ascii_digit())
    {
        return None;
    }
    let prefix = caps.name("bearer").map_or("", |m| m.as_str());
    Some(format!("{prefix}[REDACTED:{kind}]"))
}

/// Lowercase hex SHA-256 of a text's UTF-8 bytes (prompt hashes, approval records).
pub fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a char boundary.
pub(crate) fn cut_at_bytes(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A prompt or answer as the flight recorder stores it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecordedText {
    /// The stored text: `None` when `store_prompts = false`; redacted when asked; cut to
    /// `max_bytes`.
    pub text: Option<String>,
    /// SHA-256 of the original text, always kept.
    pub sha256: String,
    /// Length of the original text in characters (Unicode scalar values).
    pub chars: i64,
    /// The stored text is shorter than the original because of the byte cap.
    pub truncated: bool,
}

impl RecordedText {
    /// Applies the privacy settings to `original`, keeping at most `max_bytes` bytes.
    pub fn new(original: &str, privacy: super::Privacy, max_bytes: usize) -> RecordedText {
        let sha256 = sha256_hex(original);
        let chars = i64::try_from(original.chars().count()).unwrap_or(i64::MAX);
        if !privacy.store_prompts {
            return RecordedText {
                text: None,
                sha256,
                chars,
                truncated: false,
            };
        }
        let cut = cut_at_bytes(original, max_bytes);
        let mut truncated = cut.len() < original.len();
        let text = if privacy.redact_secrets {
            // Redaction can lengthen a short match, so the cap is applied again after it.
            let redacted = redact_secrets(cut);
            let recut = cut_at_bytes(&redacted, max_bytes);
            truncated |= recut.len() < redacted.len();
            recut.to_string()
        } else {
            cut.to_string()
        };
        RecordedText {
            text: Some(text),
            sha256,
            chars,
            truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Privacy;

    fn redacted(text: &str) -> String {
        redact_secrets(text).into_owned()
    }

    #[test]
    fn each_kind_is_redacted() {
        let cases = [
            ("sk-ant-api03-AbCdEf0123456789_-xyzXYZ", "anthropic_key"),
            ("sk-proj-0123456789abcdefABCDEF0123", "openai_key"),
            ("sk-0123456789abcdefABCDEFghij", "openai_key"),
            ("xai-0123456789abcdefABCDEFghij", "xai_key"),
            ("AIzaSyA1234567890abcdefghijklmnopqrstuv", "google_api_key"),
            ("ghp_0123456789abcdefghijklmnopqrstuvwxyz", "github_token"),
            ("github_pat_11ABCDEFG0123456789_abcdefghij", "github_token"),
            ("xoxb-1234567890-abcdefghij", "slack_token"),
            ("AKIAIOSFODNN7EXAMPLE", "aws_access_key"),
        ];
        for (secret, kind) in cases {
            let text = format!("key: {secret} end");
            assert_eq!(
                redacted(&text),
                format!("key: [REDACTED:{kind}] end"),
                "{secret}"
            );
        }
    }

    #[test]
    fn bearer_keeps_its_scheme_word() {
        assert_eq!(
            redacted("Authorization: Bearer abcdefghijklmnop.qrstuvwx-yz123=="),
            "Authorization: Bearer [REDACTED:bearer_token]"
        );
        assert_eq!(
            redacted("authorization: bearer abcdefghijklmnopqrstuvwxyz"),
            "authorization: bearer [REDACTED:bearer_token]"
        );
    }

    #[test]
    fn private_key_blocks_are_redacted_whole() {
        let text = "before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n\
                    -----END RSA PRIVATE KEY-----\nafter";
        assert_eq!(redacted(text), "before\n[REDACTED:private_key]\nafter");
        let open = "x -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg";
        assert_eq!(redacted(open), "x [REDACTED:private_key]");
    }

    #[test]
    fn ordinary_words_survive() {
        for text in [
            "Please write a risk-assessment for the task-management tool.",
            "sk-short and sk-learn-compatible-estimators-for-everyone",
            "The bearer of this letter is welcome.",
            "AKIA is a prefix; AIza too; ghp_ alone; xoxb- alone",
            "desk-0123456789012345678901 is a desk id",
        ] {
            assert!(matches!(redact_secrets(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn recorded_text_applies_privacy_and_cap() {
        let keep = Privacy {
            store_prompts: true,
            redact_secrets: true,
        };
        let r = RecordedText::new("use sk-ant-0123456789abcdefghijk now", keep, 1024);
        assert_eq!(r.text.as_deref(), Some("use [REDACTED:anthropic_key] now"));
        assert_eq!(r.chars, 36);
        assert!(!r.truncated);

        let hidden = Privacy {
            store_prompts: false,
            redact_secrets: true,
        };
        let r = RecordedText::new("héllo", hidden, 1024);
        assert_eq!(r.text, None);
        assert_eq!(r.chars, 5);
        assert_eq!(r.sha256, sha256_hex("héllo"));

        let r = RecordedText::new("ééé", keep, 5);
        assert_eq!(r.text.as_deref(), Some("éé"));
        assert!(r.truncated);
    }
}
