//! Parsing one big JSON object line in its own buffer (quality.md "Performance targets": a
//! 20 MB answer line must not exist twice).
//!
//! Owns: [`parse_object_in_place`] and the threshold [`IN_PLACE_MIN_BYTES`] above which
//! [`LineParser`](super::progress::LineParser) uses it. A CLI's answer arrives as one string
//! field of one line (claude's `result`). `serde_json::from_slice::<Value>` would build that
//! string as a second allocation next to the line; here the top level is parsed zero-copy
//! (`RawValue` spans), the largest string field is unescaped inside the line's buffer,
//! moved to its front and the buffer becomes the field's `String` without a new allocation.
//! The result is exactly the `Value` `serde_json::from_slice` gives; anything this does not
//! handle hands the line back untouched for the ordinary path.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Lines at least this long are parsed in place. Below it the second copy is cheap and the
/// ordinary parse is simpler; a progress line is a few KiB, an answer line that matters for
/// memory is megabytes.
pub const IN_PLACE_MIN_BYTES: usize = 1024 * 1024;

/// The first key serde_json (with `raw_value`) reads as "this object is a raw value": such an
/// object is left to serde_json so the result stays identical.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Parses `line`, one JSON object, into the same `Value` as `serde_json::from_slice`, reusing
/// the line's buffer for its largest top-level string. `Err(line)`, unchanged, when the line
/// is not a JSON object this handles (invalid JSON or UTF-8, not an object, no string field,
/// a lone surrogate escape): the caller parses it the ordinary way.
pub fn parse_object_in_place(mut line: Vec<u8>) -> Result<Value, Vec<u8>> {
    let Some((mut map, big)) = plan(&line) else {
        return Err(line);
    };
    let Big { key, start, end } = big;
    // Validated before the first write: after it, the line cannot be handed back.
    if unescape(&mut line[start..end], false).is_none() {
        return Err(line);
    }
    let len = unescape(&mut line[start..end], true).unwrap_or(0);
    line.copy_within(start..start + len, 0);
    line.truncate(len);
    // serde_json checked the line's UTF-8 and escapes decode to whole characters, so this is
    // valid; the lossy arm only keeps a bug from panicking.
    let text = String::from_utf8(line)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    if let Some(slot) = map.get_mut(&key) {
        *slot = Value::String(text);
    }
    Ok(Value::Object(map))
}

/// The biggest string field: its key and the byte range of its contents (inside the quotes)
/// in the line.
struct Big {
    key: String,
    start: usize,
    end: usize,
}

/// Every field but the big one parsed (that one holds `Null` for now), and the big one.
fn plan(line: &[u8]) -> Option<(Map<String, Value>, Big)> {
    let Entries(entries) = serde_json::from_slice(line).ok()?;
    if entries
        .first()
        .is_some_and(|(key, _)| key.0 == RAW_VALUE_TOKEN)
    {
        return None;
    }
    // A later duplicate key replaces an earlier value (serde_json: last wins), so only a
    // key's last occurrence can be the one kept.
    let last_of_key = |i: usize| !entries[i + 1..].iter().any(|(k, _)| k.0 == entries[i].0.0);
    let big = (0..entries.len())
        .filter(|&i| entries[i].1.get().starts_with('"') && last_of_key(i))
        .max_by_key(|&i| entries[i].1.get().len())?;
    let mut map = Map::new();
    for (i, (key, raw)) in entries.iter().enumerate() {
        let value = if i == big {
            Value::Null
        } else {
            // Inside `[…]` a value sits one level deep, as it did in the object, so
            // serde_json's nesting limit cuts it exactly where it cuts the whole line.
            let [value]: [Value; 1] = serde_json::from_str(&format!("[{}]", raw.get())).ok()?;
            value
        };
        map.insert(key.0.clone().into_owned(), value);
    }
    let raw = entries[big].1.get();
    // `raw` borrows from `line`: its offset there, past the opening quote.
    let start = raw.as_ptr() as usize - line.as_ptr() as usize + 1;
    Some((
        map,
        Big {
            key: entries[big].0.0.clone().into_owned(),
            start,
            end: start + raw.len() - 2,
        },
    ))
}

/// The top-level fields of an object in order, duplicates kept, values as spans of the line.
struct Entries<'a>(Vec<(Key<'a>, &'a RawValue)>);

/// An object key, borrowed from the line unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<'de>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// Decodes the JSON string contents in `buf` (between its quotes, already checked by
/// serde_json) to UTF-8 at the front of `buf` and returns the decoded length; with
/// `write == false` only checks that it can. Every escape is at least as long as what it
/// decodes to, so the write position never passes the read position. `None` for what
/// serde_json rejects when it builds the string (a lone surrogate) or a malformed escape.
fn unescape(buf: &mut [u8], write: bool) -> Option<usize> {
    let (mut read, mut written) = (0, 0);
    while read < buf.len() {
        let Some(at) = buf[read..].iter().position(|&b| b == b'\\') else {
            let rest = buf.len() - read;
            if write {
                buf.copy_within(read.., written);
            }
            return Some(written + rest);
        };
        if write {
            buf.copy_within(read..read + at, written);
        }
        written += at;
        read += at;
        let mut utf8 = [0u8; 4];
        let (decoded, used): (&[u8], usize) = match *buf.get(read + 1)? {
            b'"' => (b"\"", 2),
            b'\\' => (b"\\", 2),
            b'/' => (b"/", 2),
            b'b' => (b"\x08", 2),
            b'f' => (b"\x0c", 2),
            b'n' => (b"\n", 2),
            b'r' => (b"\r", 2),
            b't' => (b"\t", 2),
            b'u' => {
                let first = hex4(buf.get(read + 2..read + 6)?)?;
                let (code, used) = match first {
                    0xD800..=0xDBFF => {
                        if buf.get(read + 6..read + 8)? != b"\\u" {
                            return None;
                        }
                        let second = hex4(buf.get(read + 8..read + 12)?)?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return None;
                        }
                        (0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00), 12)
                    }
                    0xDC00..=0xDFFF => return None,
                    code => (code, 6),
                };
                let c = char::from_u32(code)?;
                (c.encode_utf8(&mut utf8).as_bytes(), used)
            }
            _ => return None,
        };
        if write {
            buf[written..written + decoded.len()].copy_from_slice(decoded);
        }
        written += decoded.len();
        read += used;
    }
    Some(written)
}

/// Four hex digits.
fn hex4(digits: &[u8]) -> Option<u32> {
    digits
        .iter()
        .try_fold(0u32, |acc, &d| Some(acc * 16 + char::from(d).to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The in-place result, or the ordinary one when it handed the line back.
    fn both(line: &str) -> (Option<Value>, Option<Value>) {
        let expected = serde_json::from_slice::<Value>(line.as_bytes()).ok();
        let got = match parse_object_in_place(line.as_bytes().to_vec()) {
            Ok(value) => Some(value),
            Err(back) => {
                assert_eq!(back, line.as_bytes(), "a refused line comes back untouched");
                serde_json::from_slice::<Value>(&back).ok()
            }
        };
        (got, expected)
    }

    #[test]
    fn equal_to_from_slice_on_edge_cases() {
        let cases = [
            r#"{"type":"result","result":"plain answer","n":1}"#,
            r#"{"result":"line\nbreak \"quoted\" tab\t back\\slash \/ \b\f\r"}"#,
            r#"{"result":"caf\u00e9 \u20ac \ud83d\ude00 é € 😀 \u0000"}"#,
            r#"{"a":{"deep":"nested string much longer than the top one"},"b":"x"}"#,
            r#"{"r":"first, longer one","r":"last"}"#,
            r#"{"r":"short","r":"last wins and is longer"}"#,
            r#"{"k\u0041y":"escaped key","k":"v"}"#,
            r#"{"big":"a","other":[1,2.5,-3e10,true,null,{"x":"y"}]}"#,
            r#"  {"r":"surrounding whitespace"}  "#,
            r#"{"r":"lone \ud800 high"}"#,
            r#"{"r":"lone \udc00 low"}"#,
            r#"{"r":"bad pair \ud800\u0041"}"#,
            r#"{"$serde_json::private::RawValue":"{\"a\":1}"}"#,
            r#"{"n":1,"m":2}"#,
            r#"{}"#,
            r#"[1,"2"]"#,
            r#""just a string""#,
            r#"{"r":"unterminated}"#,
            r#"{"r":"x"} trailing"#,
            "{\"r\":\"raw\ncontrol\"}",
            r#"{"r":"\u00zz"}"#,
        ];
        for line in cases {
            let (got, expected) = both(line);
            assert_eq!(got, expected, "{line}");
        }
    }

    #[test]
    fn nesting_limit_matches() {
        for depth in [120, 126, 127, 128, 129, 130] {
            let line = format!(
                r#"{{"r":"answer","d":{}{}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            );
            let (got, expected) = both(&line);
            assert_eq!(got, expected, "depth {depth}");
        }
    }

    #[test]
    fn the_big_string_reuses_the_line_buffer() {
        let line = format!(
            r#"{{"type":"result","result":"{}","n":1}}"#,
            "x".repeat(4096)
        );
        let bytes = line.into_bytes();
        let ptr = bytes.as_ptr();
        let value = parse_object_in_place(bytes).unwrap();
        let text = value["result"].as_str().unwrap();
        assert_eq!(text.len(), 4096);
        assert_eq!(text.as_ptr(), ptr, "no new allocation for the answer");
    }

    fn json_string() -> impl Strategy<Value = String> {
        // Characters that need escapes (quotes, controls, non-BMP) and that do not.
        prop::collection::vec(
            prop_oneof![
                any::<char>(),
                Just('"'),
                Just('\\'),
                Just('\n'),
                Just('\u{1}'),
                Just('😀')
            ],
            0..40,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            json_string().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((json_string(), inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn equal_to_from_slice(
            fields in prop::collection::vec(
                (prop_oneof![json_string(), Just("r".to_string())], json_value()),
                0..6,
            ),
            escape_unicode in any::<bool>(),
        ) {
            // Duplicate keys are possible ("r"); serde_json writes them as given here.
            let body: Vec<String> = fields
                .iter()
                .map(|(k, v)| {
                    let mut value = serde_json::to_string(v).unwrap();
                    if escape_unicode {
                        value = value
                            .chars()
                            .map(|c| if c.is_ascii() { c.to_string() } else {
                                c.encode_utf16(&mut [0; 2])
                                    .iter()
                                    .map(|u| format!("\\u{u:04x}"))
                                    .collect()
                            })
                            .collect();
                    }
                    format!("{}:{}", serde_json::to_string(k).unwrap(), value)
                })
                .collect();
            let line = format!("{{{}}}", body.join(","));
            let (got, expected) = both(&line);
            prop_assert_eq!(got, expected, "{}", line);
        }
    }
}
