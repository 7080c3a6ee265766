//! What the SQL stores (SQLite and PostgreSQL) store the same way: how
//! the crate's values become 64-bit signed integers and back, the error a
//! driver failure becomes, and the columns rows are read in.
//!
//! Both databases have signed 64-bit integers only. Message ids are 64-bit
//! unsigned: they are stored bit-cast to `i64` and cast back, so every id
//! up to `u64::MAX` round-trips exactly.

use crate::error::Error;

use super::{JournalKey, ThrottleRecord};

/// Maps a driver or pool error into an [`Error`] for `operation`, the
/// driver's error kept as the source.
pub(super) fn db<E>(operation: &'static str) -> impl Fn(E) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |err| Error::store_with(operation, err)
}

/// A message id as stored (bit-cast, see the module docs).
pub(super) fn id_to_sql(id: u64) -> i64 {
    id as i64
}

/// A message id read back.
pub(super) fn id_from_sql(id: i64) -> u64 {
    id as u64
}

/// A journal key as stored.
pub(super) fn key_to_sql(key: JournalKey) -> i64 {
    i64::try_from(key.0).unwrap_or(i64::MAX)
}

/// A journal key read back.
pub(super) fn key_from_sql(key: i64) -> JournalKey {
    JournalKey(key as u64)
}

/// A stored count (attempts, budget use, failed probes) read back as
/// `u32`, clamped into its range.
pub(super) fn count(value: i64) -> u32 {
    value.clamp(0, i64::from(u32::MAX)) as u32
}

/// A `LIMIT` as bound: every `usize` the caller may pass, capped.
pub(super) fn limit_to_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The highest id-window sequence number to forget after a batch: the
/// window keeps the newest `id_window` places up to `next_seen`.
pub(super) fn evict_through(next_seen: i64, id_window: usize) -> i64 {
    next_seen.saturating_sub(limit_to_sql(id_window))
}

/// The throttle columns of an account as stored: since, next probe and
/// failed probes, all NULL when the account is not throttled.
pub(super) type ThrottleColumns = (Option<i64>, Option<i64>, Option<i64>);

/// A throttle state (or none) as stored.
pub(super) fn throttle_to_sql(record: Option<ThrottleRecord>) -> ThrottleColumns {
    (
        record.map(|r| r.since_ms),
        record.map(|r| r.next_probe_ms),
        record.map(|r| i64::from(r.failed_probes)),
    )
}

/// A throttle state read back: the account is throttled only when both
/// times are set; a missing failure count reads as 0.
pub(super) fn throttle_from_sql((since, probe, failed): ThrottleColumns) -> Option<ThrottleRecord> {
    match (since, probe) {
        (Some(since_ms), Some(next_probe_ms)) => Some(ThrottleRecord {
            since_ms,
            next_probe_ms,
            failed_probes: count(failed.unwrap_or(0)),
        }),
        _ => None,
    }
}

/// The journal columns, in the order each backend's `journal_row` reads
/// them.
pub(super) const JOURNAL_COLUMNS: &str =
    "key, message_id, sender, json, received_at, attempts, last_error, replies";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keys_and_counts_round_trip_or_clamp() {
        for id in [0, 1, u64::MAX / 2 + 1, u64::MAX] {
            assert_eq!(id_from_sql(id_to_sql(id)), id);
        }
        assert_eq!(key_from_sql(key_to_sql(JournalKey(7))), JournalKey(7));
        assert_eq!(key_to_sql(JournalKey(u64::MAX)), i64::MAX);
        assert_eq!(count(-1), 0);
        assert_eq!(count(i64::MAX), u32::MAX);
        assert_eq!(evict_through(10, 3), 7);
        assert_eq!(evict_through(10, usize::MAX), 10 - i64::MAX);
        let record = ThrottleRecord {
            since_ms: 5,
            next_probe_ms: 9,
            failed_probes: 2,
        };
        assert_eq!(
            throttle_from_sql(throttle_to_sql(Some(record))),
            Some(record)
        );
        assert_eq!(throttle_to_sql(None), (None, None, None));
        assert_eq!(throttle_from_sql((Some(5), None, Some(1))), None);
        assert_eq!(
            throttle_from_sql((Some(5), Some(9), None)).map(|r| r.failed_probes),
            Some(0)
        );
    }
}
