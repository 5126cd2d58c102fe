//! Wall-clock timestamps in the one text format the store and every report use.
//!
//! ISO-8601 UTC with millisecond precision and a `Z` suffix (`2026-11-21T04:55:45.123Z`):
//! fixed width, so text order is time order in SQLite and Datasette.

use chrono::{DateTime, SecondsFormat, Utc};

/// The current time as ISO-8601 UTC text.
pub fn now_iso() -> String {
    to_iso(Utc::now())
}

/// Formats a time as ISO-8601 UTC text with milliseconds.
pub fn to_iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_text_is_fixed_width_utc() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.006+02:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(to_iso(at), "2026-01-02T01:04:05.006Z");
        assert_eq!(now_iso().len(), "2026-01-02T01:04:05.006Z".len());
    }
}
