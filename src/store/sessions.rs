//! Gateway sessions (`sessions`): `gw-` + UUID v7 ids, at most one active per CLI, the
//! provider session each is bound to, its cwd, and request/token/cost totals
//! (providers.md "Sessions").
//!
//! "At most one active per CLI" is enforced twice: every operation that activates a session
//! deactivates the CLI's other one in the same transaction, and the partial unique index
//! `sessions_one_active_per_cli` rejects anything that slips past (another tool, a bug).
//!
//! Not here: resolving which session a request uses (the request layer), and the session's
//! neutral dir and worktree (the caller removes them using the ids returned by
//! [`Store::delete_session`] and [`Store::clear_sessions`]).

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::types::{Usage, bool_col, parse_col};
use super::{Cx, Store, StoreError};
use crate::clock::now_iso;
use crate::providers::Provider;

/// The prefix that marks a gateway session id (anything else is a provider-native id).
pub const GATEWAY_SESSION_PREFIX: &str = "gw-";

/// A fresh gateway session id: `gw-` + UUID v7.
pub fn new_session_id() -> String {
    format!("{GATEWAY_SESSION_PREFIX}{}", uuid::Uuid::now_v7())
}

/// True when `id` is spelled as a gateway session id (`gw-` + a UUID).
pub fn is_gateway_session_id(id: &str) -> bool {
    id.strip_prefix(GATEWAY_SESSION_PREFIX)
        .is_some_and(|rest| uuid::Uuid::parse_str(rest).is_ok())
}

/// One gateway session with its totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionRow {
    pub id: String,
    pub cli: Provider,
    /// Null until the first successful run reports one.
    pub provider_session_id: Option<String>,
    pub description: Option<String>,
    pub cwd: Option<String>,
    pub is_active: bool,
    pub created_at: String,
    pub last_used_at: String,
    pub request_count: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost_usd: f64,
}

/// One run on a session: adds to its totals and, when the run succeeded, binds the
/// provider session id and cwd it reported (a failed run does not advance the binding).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionUse {
    pub session_id: String,
    pub provider_session_id: Option<String>,
    pub cwd: Option<String>,
    pub usage: Usage,
    pub succeeded: bool,
}

const SESSION_COLUMNS: &str = "id, cli, provider_session_id, description, cwd, is_active, \
    created_at, last_used_at, request_count, input_tokens, output_tokens, cache_read_tokens, \
    cache_creation_tokens, reasoning_tokens, cost_usd";

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: row.get("id")?,
        cli: parse_col(row, "cli")?,
        provider_session_id: row.get("provider_session_id")?,
        description: row.get("description")?,
        cwd: row.get("cwd")?,
        is_active: bool_col(row, "is_active")?,
        created_at: row.get("created_at")?,
        last_used_at: row.get("last_used_at")?,
        request_count: row.get("request_count")?,
        input_tokens: row.get("input_tokens")?,
        output_tokens: row.get("output_tokens")?,
        cache_read_tokens: row.get("cache_read_tokens")?,
        cache_creation_tokens: row.get("cache_creation_tokens")?,
        reasoning_tokens: row.get("reasoning_tokens")?,
        cost_usd: row.get("cost_usd")?,
    })
}

fn get_row(conn: &Connection, id: &str) -> Result<Option<SessionRow>, StoreError> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], session_from_row)
        .optional()?)
}

fn get_required(conn: &Connection, id: &str) -> Result<SessionRow, StoreError> {
    get_row(conn, id)?.ok_or_else(|| StoreError::UnknownSession(id.to_string()))
}

fn deactivate_cli(conn: &Connection, cli: Provider) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE sessions SET is_active = 0 WHERE cli = ?1 AND is_active = 1")?
        .execute([cli.key()])?;
    Ok(())
}

fn create(
    conn: &Connection,
    _cx: &Cx,
    cli: Provider,
    description: Option<String>,
    cwd: Option<String>,
    set_active: bool,
) -> Result<SessionRow, StoreError> {
    let id = new_session_id();
    let now = now_iso();
    if set_active {
        deactivate_cli(conn, cli)?;
    }
    conn.prepare_cached(
        "INSERT INTO sessions (id, cli, description, cwd, is_active, created_at, last_used_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?
    .execute(params![id, cli.key(), description, cwd, set_active, now])?;
    get_required(conn, &id)
}

fn get(conn: &Connection, _cx: &Cx, id: String) -> Result<Option<SessionRow>, StoreError> {
    get_row(conn, &id)
}

/// The directories a session's runs used: the cwd recorded on the session and each of its
/// jobs' cwd. A run that failed never records its cwd on the session (the binding only
/// advances on success), but its job row has it — which is how a gateway worktree created
/// for such a run is still found when the session is deleted.
fn run_dirs(conn: &Connection, _cx: &Cx, id: String) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT cwd FROM sessions WHERE id = ?1 AND cwd IS NOT NULL \
         UNION SELECT cwd FROM jobs WHERE session_id = ?1 AND cwd IS NOT NULL",
    )?;
    let dirs = stmt
        .query_map(params![id], |row| row.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(dirs)
}

/// Sessions newest use first (the active one is flagged, not moved).
fn list(conn: &Connection, _cx: &Cx, cli: Option<Provider>) -> Result<Vec<SessionRow>, StoreError> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE ?1 IS NULL OR cli = ?1 \
         ORDER BY last_used_at DESC, id DESC"
    );
    let rows = conn
        .prepare_cached(&sql)?
        .query_map([cli.map(Provider::key)], session_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn active(conn: &Connection, _cx: &Cx, cli: Provider) -> Result<Option<SessionRow>, StoreError> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE cli = ?1 AND is_active = 1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([cli.key()], session_from_row)
        .optional()?)
}

/// Makes `id` the CLI's active session (`None` clears it). An unknown id, or one of another
/// CLI, is an error the caller reports as `invalid_input`.
fn set_active(
    conn: &Connection,
    _cx: &Cx,
    cli: Provider,
    id: Option<String>,
) -> Result<Option<SessionRow>, StoreError> {
    let Some(id) = id else {
        deactivate_cli(conn, cli)?;
        return Ok(None);
    };
    let session = get_required(conn, &id)?;
    if session.cli != cli {
        return Err(StoreError::SessionCliMismatch {
            id,
            session_cli: session.cli,
            cli,
        });
    }
    deactivate_cli(conn, cli)?;
    conn.prepare_cached("UPDATE sessions SET is_active = 1 WHERE id = ?1")?
        .execute([&id])?;
    get_row(conn, &id)
}

fn delete(conn: &Connection, _cx: &Cx, id: String) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM sessions WHERE id = ?1")?
        .execute([id])?
        > 0)
}

/// Deletes every session (of one CLI, or all); returns the deleted ids.
fn clear(conn: &Connection, _cx: &Cx, cli: Option<Provider>) -> Result<Vec<String>, StoreError> {
    let ids = conn
        .prepare_cached("DELETE FROM sessions WHERE ?1 IS NULL OR cli = ?1 RETURNING id")?
        .query_map([cli.map(Provider::key)], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(ids)
}

fn find_by_provider_id_row(
    conn: &Connection,
    cli: Provider,
    provider_session_id: &str,
) -> Result<Option<SessionRow>, StoreError> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE cli = ?1 AND provider_session_id = ?2 \
         ORDER BY last_used_at DESC, id DESC LIMIT 1"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([cli.key(), provider_session_id], session_from_row)
        .optional()?)
}

fn find_by_provider_id(
    conn: &Connection,
    _cx: &Cx,
    cli: Provider,
    provider_session_id: String,
) -> Result<Option<SessionRow>, StoreError> {
    find_by_provider_id_row(conn, cli, &provider_session_id)
}

/// The gateway session bound to a provider-native id, created (inactive, no description)
/// when there is none so the id shows in `session_list`. A given cwd replaces the recorded
/// one; `None` keeps it.
fn upsert_for_provider_id(
    conn: &Connection,
    _cx: &Cx,
    cli: Provider,
    provider_session_id: String,
    cwd: Option<String>,
) -> Result<SessionRow, StoreError> {
    let now = now_iso();
    if let Some(existing) = find_by_provider_id_row(conn, cli, &provider_session_id)? {
        conn.prepare_cached(
            "UPDATE sessions SET cwd = coalesce(?2, cwd), last_used_at = ?3 WHERE id = ?1",
        )?
        .execute(params![existing.id, cwd, now])?;
        return get_required(conn, &existing.id);
    }
    let id = new_session_id();
    conn.prepare_cached(
        "INSERT INTO sessions (id, cli, provider_session_id, cwd, is_active, created_at, \
             last_used_at) \
         VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
    )?
    .execute(params![id, cli.key(), provider_session_id, cwd, now])?;
    get_required(conn, &id)
}

/// Applies one run to a session (see [`SessionUse`]); `false` when the session no longer
/// exists (deleted while the run went on — nothing to update).
pub(crate) fn record_use(conn: &Connection, u: &SessionUse) -> Result<bool, StoreError> {
    let t = u.usage;
    Ok(conn
        .prepare_cached(
            "UPDATE sessions SET last_used_at = ?2, request_count = request_count + 1, \
                 input_tokens = input_tokens + coalesce(?3, 0), \
                 output_tokens = output_tokens + coalesce(?4, 0), \
                 cache_read_tokens = cache_read_tokens + coalesce(?5, 0), \
                 cache_creation_tokens = cache_creation_tokens + coalesce(?6, 0), \
                 reasoning_tokens = reasoning_tokens + coalesce(?7, 0), \
                 cost_usd = cost_usd + coalesce(?8, 0), \
                 provider_session_id = CASE WHEN ?9 THEN coalesce(?10, provider_session_id) \
                                            ELSE provider_session_id END, \
                 cwd = CASE WHEN ?9 THEN coalesce(?11, cwd) ELSE cwd END \
             WHERE id = ?1",
        )?
        .execute(params![
            u.session_id,
            now_iso(),
            t.input_tokens,
            t.output_tokens,
            t.cache_read_tokens,
            t.cache_creation_tokens,
            t.reasoning_tokens,
            t.cost_usd,
            u.succeeded,
            u.provider_session_id,
            u.cwd,
        ])?
        > 0)
}

fn record_use_op(conn: &Connection, _cx: &Cx, session_use: SessionUse) -> Result<bool, StoreError> {
    record_use(conn, &session_use)
}

impl Store {
    store_ops! {
        /// Creates a session (`gw-` + UUID v7); with `set_active` it becomes the CLI's
        /// active one and the previous active one is deactivated in the same transaction.
        write fn create_session / create_session_blocking(
            cli: Provider,
            description: Option<String>,
            cwd: Option<String>,
            set_active: bool,
        ) -> SessionRow = create;

        /// One session by id.
        read fn get_session / get_session_blocking(session_id: String) -> Option<SessionRow>
            = get;

        /// The directories a session's runs used (its cwd and its jobs' cwds), distinct.
        read fn session_run_dirs / session_run_dirs_blocking(session_id: String)
            -> Vec<String> = run_dirs;

        /// Sessions (of one CLI, or all), most recently used first.
        read fn list_sessions / list_sessions_blocking(cli: Option<Provider>)
            -> Vec<SessionRow> = list;

        /// The CLI's active session, if any.
        read fn active_session / active_session_blocking(cli: Provider) -> Option<SessionRow>
            = active;

        /// Sets (`Some`) or clears (`None`) the CLI's active session. Errors:
        /// `UnknownSession`, `SessionCliMismatch` (both `invalid_input` for a caller).
        write fn set_active_session / set_active_session_blocking(
            cli: Provider,
            session_id: Option<String>,
        ) -> Option<SessionRow> = set_active;

        /// Deletes one session; `false` when there was none.
        write fn delete_session / delete_session_blocking(session_id: String) -> bool = delete;

        /// Deletes every session of `cli` (or of all CLIs); returns the deleted ids.
        write fn clear_sessions / clear_sessions_blocking(cli: Option<Provider>)
            -> Vec<String> = clear;

        /// The session bound to a provider-native session id, if any.
        read fn find_session_by_provider_id / find_session_by_provider_id_blocking(
            cli: Provider,
            provider_session_id: String,
        ) -> Option<SessionRow> = find_by_provider_id;

        /// The session bound to a provider-native id, created when missing.
        write fn upsert_session_for_provider_id / upsert_session_for_provider_id_blocking(
            cli: Provider,
            provider_session_id: String,
            cwd: Option<String>,
        ) -> SessionRow = upsert_for_provider_id;

        /// Adds one run's usage to a session and, on success, binds its provider id and cwd
        /// (the same bookkeeping [`Store::finish_job`] does for a job's binding).
        write fn record_session_use / record_session_use_blocking(session_use: SessionUse)
            -> bool = record_use_op;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store;

    #[test]
    fn ids_are_gw_plus_uuid_v7() {
        let id = new_session_id();
        assert!(is_gateway_session_id(&id), "{id}");
        let uuid = uuid::Uuid::parse_str(&id[3..]).unwrap();
        assert_eq!(uuid.get_version_num(), 7);
        assert!(!is_gateway_session_id("gw-nope"));
        assert!(!is_gateway_session_id(
            "0199c1c2-aaaa-7bbb-8ccc-dddddddddddd"
        ));
    }

    #[test]
    fn at_most_one_session_is_active_per_cli() {
        let (_dir, store) = store();
        let a = store
            .create_session_blocking(Provider::Claude, Some("a".into()), None, true)
            .unwrap();
        assert!(a.is_active);
        let b = store
            .create_session_blocking(Provider::Claude, None, Some("/repo".into()), true)
            .unwrap();
        let other_cli = store
            .create_session_blocking(Provider::Codex, None, None, true)
            .unwrap();
        let c = store
            .create_session_blocking(Provider::Claude, None, None, false)
            .unwrap();
        assert!(!c.is_active);

        let a_now = store.get_session_blocking(a.id.clone()).unwrap().unwrap();
        assert!(!a_now.is_active, "creating b deactivated a");
        assert_eq!(
            store
                .active_session_blocking(Provider::Claude)
                .unwrap()
                .map(|s| s.id),
            Some(b.id.clone())
        );
        assert!(
            store
                .get_session_blocking(other_cli.id.clone())
                .unwrap()
                .unwrap()
                .is_active
        );

        let switched = store
            .set_active_session_blocking(Provider::Claude, Some(c.id.clone()))
            .unwrap()
            .unwrap();
        assert!(switched.is_active);
        assert_eq!(
            store.query_i64("SELECT count(*) FROM sessions WHERE cli = 'claude' AND is_active = 1"),
            1
        );

        // The partial unique index rejects a second active row however it is written.
        let err = store
            .exec_raw(&format!(
                "UPDATE sessions SET is_active = 1 WHERE id = '{}'",
                a.id
            ))
            .unwrap_err();
        assert!(err.to_string().contains("UNIQUE"), "{err}");

        assert_eq!(
            store
                .set_active_session_blocking(Provider::Claude, None)
                .unwrap(),
            None
        );
        assert!(
            store
                .active_session_blocking(Provider::Claude)
                .unwrap()
                .is_none()
        );

        let err = store
            .set_active_session_blocking(Provider::Claude, Some(other_cli.id.clone()))
            .unwrap_err();
        assert!(matches!(err, StoreError::SessionCliMismatch { .. }));
        assert!(
            err.to_string().contains("belongs to codex, not claude"),
            "{err}"
        );
        let err = store
            .set_active_session_blocking(Provider::Claude, Some("gw-missing".into()))
            .unwrap_err();
        assert_eq!(err.to_string(), "Unknown gateway session \"gw-missing\"");
    }

    #[test]
    fn list_delete_and_clear() {
        let (_dir, store) = store();
        let a = store
            .create_session_blocking(Provider::Gemini, None, None, false)
            .unwrap();
        let b = store
            .create_session_blocking(Provider::Gemini, None, None, true)
            .unwrap();
        let c = store
            .create_session_blocking(Provider::Grok, None, None, false)
            .unwrap();
        store
            .exec_raw(&format!(
                "UPDATE sessions SET last_used_at = '2000-01-01T00:00:00.000Z' WHERE id = '{}'",
                b.id
            ))
            .unwrap();
        let gemini: Vec<String> = store
            .list_sessions_blocking(Some(Provider::Gemini))
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(gemini, vec![a.id.clone(), b.id.clone()]);
        assert_eq!(store.list_sessions_blocking(None).unwrap().len(), 3);

        assert!(store.delete_session_blocking(a.id.clone()).unwrap());
        assert!(!store.delete_session_blocking(a.id.clone()).unwrap());
        assert_eq!(
            store
                .clear_sessions_blocking(Some(Provider::Gemini))
                .unwrap(),
            vec![b.id.clone()]
        );
        assert_eq!(
            store.clear_sessions_blocking(None).unwrap(),
            vec![c.id.clone()]
        );
        assert!(store.list_sessions_blocking(None).unwrap().is_empty());
    }

    #[test]
    fn provider_ids_are_found_and_upserted() {
        let (_dir, store) = store();
        assert!(
            store
                .find_session_by_provider_id_blocking(Provider::Codex, "thread-1".into())
                .unwrap()
                .is_none()
        );
        let created = store
            .upsert_session_for_provider_id_blocking(
                Provider::Codex,
                "thread-1".into(),
                Some("/a".into()),
            )
            .unwrap();
        assert!(is_gateway_session_id(&created.id));
        assert!(!created.is_active);
        assert_eq!(created.cwd.as_deref(), Some("/a"));
        let again = store
            .upsert_session_for_provider_id_blocking(Provider::Codex, "thread-1".into(), None)
            .unwrap();
        assert_eq!(again.id, created.id);
        assert_eq!(again.cwd.as_deref(), Some("/a"));
        let found = store
            .find_session_by_provider_id_blocking(Provider::Codex, "thread-1".into())
            .unwrap()
            .unwrap();
        assert_eq!(found.id, created.id);
        // The same provider id under another CLI is another conversation.
        assert!(
            store
                .find_session_by_provider_id_blocking(Provider::Claude, "thread-1".into())
                .unwrap()
                .is_none()
        );

        let used = store
            .record_session_use_blocking(SessionUse {
                session_id: created.id.clone(),
                provider_session_id: Some("thread-2".into()),
                cwd: None,
                usage: Usage {
                    output_tokens: Some(7),
                    ..Usage::default()
                },
                succeeded: true,
            })
            .unwrap();
        assert!(used);
        let row = store.get_session_blocking(created.id).unwrap().unwrap();
        assert_eq!(row.provider_session_id.as_deref(), Some("thread-2"));
        assert_eq!((row.request_count, row.output_tokens), (1, 7));
        assert!(
            !store
                .record_session_use_blocking(SessionUse {
                    session_id: "gw-gone".into(),
                    provider_session_id: None,
                    cwd: None,
                    usage: Usage::default(),
                    succeeded: false,
                })
                .unwrap()
        );
    }
}
