//! Waiting for another process's lock: the busy handler every connection gets.
//!
//! SQLite's own `busy_timeout` handler sleeps 1, 2, 5, 10, 15, 20, 25, … ms between tries.
//! Our write transactions hold the lock for well under a millisecond, so under contention
//! (50 supervisors writing claim, output and completion at once) a waiter that misses the
//! lock once slept far longer than the holder kept it, and the misses compounded. This
//! handler retries after short sleeps that grow slowly ([`MIN_DELAY`] doubling up to
//! [`MAX_DELAY`]), jittered so that waiters do not retry in lockstep, and gives up after the
//! same overall timeout as before.

use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

/// The first sleep after a busy lock.
const MIN_DELAY: Duration = Duration::from_micros(100);
/// The longest sleep between two tries.
const MAX_DELAY: Duration = Duration::from_millis(2);

/// Installs the handler on `conn`: retry until `timeout` has passed since the lock was
/// first found busy, then let SQLite answer `SQLITE_BUSY`.
pub(crate) fn install(conn: &mut Connection, timeout: Duration) -> rusqlite::Result<()> {
    let mut since = Instant::now();
    conn.busy_handler(Some(move |count: i32| {
        // `count` restarts at 0 for every new locking event.
        if count == 0 {
            since = Instant::now();
        }
        if since.elapsed() >= timeout {
            return false;
        }
        thread::sleep(delay(count));
        true
    }))
}

/// The sleep before try `count + 1`: `MIN_DELAY · 2^count` capped at `MAX_DELAY`, minus up
/// to a quarter of it as jitter.
fn delay(count: i32) -> Duration {
    let doublings = u32::try_from(count).unwrap_or(0).min(16);
    let base = MIN_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY);
    // Sub-second clock nanoseconds are random enough to spread waiters apart.
    let noise = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let quarter = u32::try_from(base.as_nanos() / 4)
        .unwrap_or(u32::MAX)
        .max(1);
    base - Duration::from_nanos(u64::from(noise % quarter))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_pair() -> (tempfile::TempDir, Connection, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let a = Connection::open(&path).unwrap();
        a.pragma_update(None, "journal_mode", "WAL").unwrap();
        a.execute_batch("CREATE TABLE t(x)").unwrap();
        let b = Connection::open(&path).unwrap();
        (dir, a, b)
    }

    #[test]
    fn delays_start_short_and_stay_capped() {
        assert!(delay(0) <= MIN_DELAY && delay(0) >= MIN_DELAY * 3 / 4);
        for count in [1, 3, 5, 10, 1000, i32::MAX, -1] {
            let d = delay(count);
            assert!(d <= MAX_DELAY, "{count}: {d:?}");
            assert!(d >= MIN_DELAY * 3 / 4, "{count}: {d:?}");
        }
    }

    #[test]
    fn a_writer_gets_the_lock_soon_after_it_is_released() {
        let (_dir, a, mut b) = wal_pair();
        install(&mut b, Duration::from_secs(10)).unwrap();
        a.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (1)")
            .unwrap();
        let waiter = thread::spawn(move || {
            let began = Instant::now();
            b.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (2); COMMIT")
                .unwrap();
            began.elapsed()
        });
        thread::sleep(Duration::from_millis(30));
        a.execute_batch("COMMIT").unwrap();
        let waited = waiter.join().unwrap();
        assert!(waited >= Duration::from_millis(25), "{waited:?}");
        // SQLite's own handler would be sleeping 10–15 ms at a time by then; ours at most
        // MAX_DELAY (generous bound: the machine may be busy).
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        let n: i64 = a
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn a_lock_held_past_the_timeout_answers_busy() {
        let (_dir, a, mut b) = wal_pair();
        install(&mut b, Duration::from_millis(60)).unwrap();
        a.execute_batch("BEGIN IMMEDIATE").unwrap();
        let began = Instant::now();
        let err = b.execute_batch("BEGIN IMMEDIATE").unwrap_err();
        let waited = began.elapsed();
        assert!(crate::store::error::is_busy(&err), "{err:?}");
        assert!(waited >= Duration::from_millis(60), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        a.execute_batch("COMMIT").unwrap();
        // The next locking event starts a fresh timeout.
        b.execute_batch("BEGIN IMMEDIATE; COMMIT").unwrap();
    }
}
