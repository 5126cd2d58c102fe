//! Incremental parsing of a CLI's stdout: progress events while it runs (jobs.md
//! "Progress"), then the final [`Outcome`](super::outcome::Outcome).
//!
//! Owns: [`ProgressEvent`], the object-safe [`StreamParser`] the executor drives, and
//! [`LineParser`], the one implementation of what all five CLIs share — splitting arbitrary
//! byte chunks into lines (partial lines and invalid UTF-8 tolerated), telling JSON lines
//! from plain text and from a pretty-printed JSON document (the CLIs' `json` modes), keeping
//! the stdout tail for auth detection, and collapsing repetitive events.
//! Not here: what a line *means* (each provider's [`LineHandler`]), and the success/error
//! decision (`outcome::settle`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Provider;
use super::big_line::{IN_PLACE_MIN_BYTES, parse_object_in_place};
use super::outcome::{ErrorKind, FinishInput, Outcome, Parsed, settle};

/// The longest progress message, in characters (jobs.md).
pub const MAX_EVENT_CHARS: usize = 200;

/// How much of stdout's end is kept for the auth-signal match (mcp-surface.md: 64 KiB).
pub const STDOUT_TAIL_BYTES: usize = 64 * 1024;

/// The kinds of progress jobs.md names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgressKind {
    Started,
    Thinking,
    Tool,
    File,
    Writing,
    Usage,
    Finished,
}

impl ProgressKind {
    /// The snake_case name (`notifications/progress` messages are `<kind>: <message>`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProgressKind::Started => "started",
            ProgressKind::Thinking => "thinking",
            ProgressKind::Tool => "tool",
            ProgressKind::File => "file",
            ProgressKind::Writing => "writing",
            ProgressKind::Usage => "usage",
            ProgressKind::Finished => "finished",
        }
    }
}

/// One progress event: a kind and a one-line message of at most [`MAX_EVENT_CHARS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressEvent {
    pub kind: ProgressKind,
    pub message: String,
}

impl ProgressEvent {
    /// Collapses whitespace runs (newlines included) to one space and cuts the message to
    /// [`MAX_EVENT_CHARS`] characters, ending a cut message with `…`.
    pub fn new(kind: ProgressKind, message: impl AsRef<str>) -> Self {
        let flat = message
            .as_ref()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            kind,
            message: truncate_chars(&flat, MAX_EVENT_CHARS),
        }
    }
}

/// `text` cut to at most `max` characters, the last one `…` when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// What one chunk of stdout produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feed {
    /// Progress events, in order.
    pub events: Vec<ProgressEvent>,
    /// Whether the chunk counts as activity for the idle timer. False only when every
    /// complete line in it was marked as noise (codex's `Reconnecting…` errors: a CLI stuck
    /// retrying must still hit its idle timeout). A chunk that only extends a partial line
    /// counts as activity: bytes are flowing.
    pub activity: bool,
}

/// The executor's view of a provider parser: feed stdout chunks as they arrive, then finish
/// once with the exit status.
pub trait StreamParser: Send {
    /// Feeds a chunk of stdout, split anywhere (mid-line, mid-UTF-8 character).
    fn feed(&mut self, chunk: &[u8]) -> Feed;
    /// Ends the stream: flushes a trailing partial line and decides the outcome.
    fn finish(self: Box<Self>, input: &FinishInput<'_>) -> Outcome;
    /// The CLI's own session id as soon as the stream revealed it (claude's `init`, codex's
    /// `thread.started`, gemini's `init`, vibe's entries), so a runner can record it while
    /// the job still runs. `None` until then (grok reports it only in its `end` line).
    fn session_id(&self) -> Option<String>;
}

/// Whether a line resets the idle timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Real progress.
    Active,
    /// Output that says the CLI is stuck (retry loops): does not reset the idle timer.
    Noise,
}

/// Collects events, dropping an exact repeat of the previous event and consecutive
/// `writing` events (a streamed answer is one "writing" until something else happens).
#[derive(Debug, Default)]
pub struct EventSink {
    events: Vec<ProgressEvent>,
    last: Option<ProgressEvent>,
}

impl EventSink {
    /// Adds an event unless it repeats the previous one.
    pub fn push(&mut self, kind: ProgressKind, message: impl AsRef<str>) {
        let event = ProgressEvent::new(kind, message);
        if let Some(last) = &self.last
            && (last == &event
                || (last.kind == ProgressKind::Writing && kind == ProgressKind::Writing))
        {
            return;
        }
        self.last = Some(event.clone());
        self.events.push(event);
    }

    fn drain(&mut self) -> Vec<ProgressEvent> {
        std::mem::take(&mut self.events)
    }
}

/// What a provider knows about its own output. [`LineParser`] calls it.
pub trait LineHandler: Send {
    /// Which CLI this is (messages, remediation).
    fn provider(&self) -> Provider;
    /// One complete stdout line that is a JSON object. It is handed over by value so a
    /// handler that keeps it (claude's result line, which can carry the whole answer) moves
    /// it instead of cloning it: a 20 MB answer line must not exist twice.
    fn json_line(&mut self, value: Value, sink: &mut EventSink) -> Activity;
    /// The whole stdout when it was one pretty-printed JSON document (a CLI's `json` mode).
    /// By default it is read like one JSON line.
    fn document(&mut self, value: Value, sink: &mut EventSink) {
        self.json_line(value, sink);
    }
    /// End of stdout: the provider's findings. `plain` holds the stdout lines that were not
    /// JSON (the answer in a CLI's text mode), joined by newlines.
    fn finish(&mut self, input: &FinishInput<'_>, plain: &str, sink: &mut EventSink) -> Parsed;
    /// Reads failure text (the reported error message, stderr tail and stdout tail joined)
    /// for this CLI's known failures. `None` = not recognised (the shared auth pattern and a
    /// generic failure come next).
    fn classify(&self, text: &str, exit_code: Option<i32>) -> Option<ErrorKind>;
    /// The session id the lines seen so far revealed (see [`StreamParser::session_id`]).
    fn session_id(&self) -> Option<&str> {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// No non-blank line yet.
    Undecided,
    /// JSON lines (NDJSON) and/or plain text.
    Lines,
    /// A pretty-printed JSON document: its first line was `{` or `[`.
    Document,
}

/// The shared [`StreamParser`] over a provider's [`LineHandler`].
#[derive(Debug)]
pub struct LineParser<H> {
    handler: H,
    partial: Vec<u8>,
    shape: Shape,
    document: Vec<u8>,
    plain: String,
    tail: Vec<u8>,
    sink: EventSink,
}

impl<H: LineHandler> LineParser<H> {
    pub fn new(handler: H) -> Self {
        Self {
            handler,
            partial: Vec::new(),
            shape: Shape::Undecided,
            document: Vec::new(),
            plain: String::new(),
            tail: Vec::new(),
            sink: EventSink::default(),
        }
    }

    fn keep_tail(&mut self, chunk: &[u8]) {
        self.tail.extend_from_slice(chunk);
        // Trim in batches so a byte-at-a-time feed stays linear.
        if self.tail.len() > 2 * STDOUT_TAIL_BYTES {
            let excess = self.tail.len() - STDOUT_TAIL_BYTES;
            self.tail.drain(..excess);
        }
    }

    /// One complete line, owned when it was assembled from several chunks (a big line
    /// always is): a big JSON object line is then parsed in its own buffer.
    fn line(&mut self, raw: Cow<'_, [u8]>) -> Activity {
        let mut raw = match raw {
            Cow::Borrowed(raw) => Cow::Borrowed(raw.strip_suffix(b"\r").unwrap_or(raw)),
            Cow::Owned(mut raw) => {
                if raw.last() == Some(&b'\r') {
                    raw.pop();
                }
                Cow::Owned(raw)
            }
        };
        if raw.len() >= IN_PLACE_MIN_BYTES
            && self.shape != Shape::Document
            && raw.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        {
            // A line this long is neither blank nor a lone `{`: the stream is lines.
            self.shape = Shape::Lines;
            match parse_object_in_place(raw.into_owned()) {
                Ok(value) => return self.handler.json_line(value, &mut self.sink),
                Err(line) => raw = Cow::Owned(line),
            }
        }
        let raw = &*raw;
        if self.shape == Shape::Document {
            self.document.extend_from_slice(raw);
            self.document.push(b'\n');
            return Activity::Active;
        }
        let text = String::from_utf8_lossy(raw);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Activity::Active;
        }
        if self.shape == Shape::Undecided {
            if trimmed == "{" || trimmed == "[" {
                self.shape = Shape::Document;
                self.document.extend_from_slice(raw);
                self.document.push(b'\n');
                return Activity::Active;
            }
            self.shape = Shape::Lines;
        }
        if trimmed.starts_with('{')
            && let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(trimmed)
        {
            return self.handler.json_line(value, &mut self.sink);
        }
        if !self.plain.is_empty() {
            self.plain.push('\n');
        }
        self.plain.push_str(&text);
        Activity::Active
    }
}

impl<H: LineHandler> LineParser<H> {
    /// Hands the whole stdout, when it was one JSON document, to the handler; a document
    /// that does not parse is kept as plain text rather than lost.
    fn whole_document(&mut self, document: Vec<u8>) {
        let document = if document.len() >= IN_PLACE_MIN_BYTES {
            match parse_object_in_place(document) {
                Ok(value) => return self.handler.document(value, &mut self.sink),
                Err(document) => document,
            }
        } else {
            document
        };
        // The bytes become the text without a copy (unless invalid UTF-8 is replaced), and
        // the text is dropped before the handler runs: a big document is not held as bytes,
        // text and value at once.
        let text = match String::from_utf8(document) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(value) => {
                drop(text);
                self.handler.document(value, &mut self.sink);
            }
            Err(_) => self.plain = text,
        }
    }
}

impl<H: LineHandler> StreamParser for LineParser<H> {
    fn feed(&mut self, chunk: &[u8]) -> Feed {
        self.keep_tail(chunk);
        let mut saw_line = false;
        let mut activity = false;
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(pos);
            rest = &tail[1..];
            saw_line = true;
            let line_activity = if self.partial.is_empty() {
                self.line(Cow::Borrowed(head))
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(head);
                self.line(Cow::Owned(whole))
            };
            activity |= line_activity == Activity::Active;
        }
        self.partial.extend_from_slice(rest);
        if !saw_line && !chunk.is_empty() {
            activity = true;
        }
        Feed {
            events: self.sink.drain(),
            activity,
        }
    }

    fn finish(mut self: Box<Self>, input: &FinishInput<'_>) -> Outcome {
        if !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.line(Cow::Owned(last));
        }
        if self.shape == Shape::Document {
            let document = std::mem::take(&mut self.document);
            self.whole_document(document);
        }
        let parsed = self.handler.finish(input, &self.plain, &mut self.sink);
        let handler = &self.handler;
        // Exactly the last 64 KiB, whatever the chunking was (the buffer trims in batches).
        let tail = &self.tail[self.tail.len().saturating_sub(STDOUT_TAIL_BYTES)..];
        let mut outcome = settle(handler.provider(), parsed, input, tail, &|text, exit| {
            handler.classify(text, exit)
        });
        outcome.events = self.sink.drain();
        outcome
    }

    fn session_id(&self) -> Option<String> {
        self.handler.session_id().map(str::to_string)
    }
}

/// Small readers for `serde_json::Value` the handlers share.
pub mod json {
    use serde_json::Value;

    /// `value[key]` as a string.
    pub fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
        value.get(key).and_then(Value::as_str)
    }

    /// The string at a path of object keys.
    pub fn str_path<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
        path.iter()
            .try_fold(value, |v, key| v.get(key))
            .and_then(Value::as_str)
    }

    /// The non-negative integer at a path of object keys (also accepts integral floats).
    pub fn u64_path(value: &Value, path: &[&str]) -> Option<u64> {
        let v = path.iter().try_fold(value, |v, key| v.get(key))?;
        v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0)
                .map(|f| f as u64)
        })
    }

    /// The finite number at a path of object keys.
    pub fn f64_path(value: &Value, path: &[&str]) -> Option<f64> {
        path.iter()
            .try_fold(value, |v, key| v.get(key))
            .and_then(Value::as_f64)
            .filter(|f| f.is_finite())
    }

    /// A short description of a tool call's input: its command, path, pattern, query or
    /// description, whichever comes first.
    pub fn tool_argument(input: &Value) -> Option<String> {
        const KEYS: [&str; 9] = [
            "command",
            "file_path",
            "path",
            "pattern",
            "query",
            "url",
            "description",
            "prompt",
            "text",
        ];
        if let Some(s) = input.as_str() {
            return Some(s.to_string());
        }
        KEYS.iter().find_map(|key| match input.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Array(items)) if !items.is_empty() => Some(
                items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .map_or_else(|| item.to_string(), str::to_string)
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            _ => None,
        })
    }

    /// `name: argument`, or just the name.
    pub fn tool_message(name: &str, input: Option<&Value>) -> String {
        match input.and_then(tool_argument) {
            Some(arg) => format!("{name}: {arg}"),
            None => name.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_flat_and_bounded() {
        let e = ProgressEvent::new(ProgressKind::Tool, format!("a\n  b {}", "x".repeat(300)));
        assert!(e.message.starts_with("a b x"));
        assert_eq!(e.message.chars().count(), MAX_EVENT_CHARS);
        assert!(e.message.ends_with('…'));
    }

    #[test]
    fn sink_collapses_repeats_and_writing_runs() {
        let mut sink = EventSink::default();
        sink.push(ProgressKind::Writing, "a");
        sink.push(ProgressKind::Writing, "b");
        sink.push(ProgressKind::Tool, "t");
        sink.push(ProgressKind::Tool, "t");
        sink.push(ProgressKind::Writing, "c");
        let kinds: Vec<_> = sink.drain().into_iter().map(|e| e.message).collect();
        assert_eq!(kinds, ["a", "t", "c"]);
    }
}
