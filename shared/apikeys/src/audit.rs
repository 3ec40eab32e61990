//! The audit trail: every change to a key writes a [`KeyEvent`] in the same
//! transaction as the change — who (the dashboard user's claim), when, in
//! which request, what (the changed fields and their new values). Never a
//! key, a hash or any other secret.

use scopes::ScopeSet;

use crate::material;
use crate::model::{KeyChanges, KeyId, KeyRecord, Timestamp};

/// Who makes a change, in which request, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// The dashboard user's `sub` (or the system that acted).
    pub actor: String,
    /// API Gateway's request id.
    pub request_id: String,
    pub at: Timestamp,
}

impl Audit {
    /// The audit context of work no dashboard user asked for (tools, tests):
    /// `actor` names what did it.
    pub fn system(actor: &str, at: Timestamp) -> Audit {
        Audit {
            actor: actor.to_owned(),
            request_id: String::new(),
            at,
        }
    }
}

/// What happened to the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAction {
    Created,
    Updated,
    Rolled,
    Deleted,
    /// Deactivated because it leaked (reported by a secret scanner).
    Revoked,
    /// Its lookup items were rewritten from its record by the repair command.
    Repaired,
}

impl EventAction {
    pub fn as_str(self) -> &'static str {
        match self {
            EventAction::Created => "created",
            EventAction::Updated => "updated",
            EventAction::Rolled => "rolled",
            EventAction::Deleted => "deleted",
            EventAction::Revoked => "revoked",
            EventAction::Repaired => "repaired",
        }
    }

    pub fn parse(s: &str) -> Option<EventAction> {
        [
            EventAction::Created,
            EventAction::Updated,
            EventAction::Rolled,
            EventAction::Deleted,
            EventAction::Revoked,
            EventAction::Repaired,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// A changed field's new value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    Text(String),
    Bool(bool),
    Number(u64),
    Scopes(ScopeSet),
    /// A time, or none (`expiresAt: null`).
    Time(Option<Timestamp>),
}

/// An event's id: the event's time in milliseconds (13 digits), the clock's
/// microseconds within its millisecond when the id was made (3 digits: two
/// events of one key in the same millisecond still sort in the order they
/// were made), then 5 random characters, so ids never collide.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(String);

impl EventId {
    pub const LEN: usize = 21;

    /// An id for an event at `at`: its millisecond, then a sequence number
    /// within it, then 5 random characters. The ids this process issues
    /// sort in the order it made them ([`next_issue`]), even when requests
    /// started in different milliseconds make their events interleaved.
    pub fn new(at: Timestamp) -> EventId {
        use std::sync::atomic::{AtomicU64, Ordering};
        /// The last millisecond and sequence number issued, as `ms * 1000 + seq`.
        static LAST: AtomicU64 = AtomicU64::new(0);
        let ms = u64::try_from(at.timestamp_millis().clamp(0, 9_999_999_999_999)).unwrap_or(0);
        let mut last = LAST.load(Ordering::Relaxed);
        let issued = loop {
            let next = next_issue(last, ms);
            match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break next,
                Err(seen) => last = seen,
            }
        };
        let (ms, seq) = (issued / 1000, issued % 1000);
        EventId(format!("{ms:013}{seq:03}{}", material::random_base62(5)))
    }

    pub fn parse(s: &str) -> Option<EventId> {
        (s.len() == Self::LEN
            && s[..16].bytes().all(|b| b.is_ascii_digit())
            && s[16..].bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| EventId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The id number (`ms * 1000 + seq`) to issue for an event at millisecond
/// `ms` after `last`: the one after `last` when `last` is at most a second
/// ahead of `ms` (the same millisecond, or a request that started a little
/// later made its event first), so ids keep the order events were made in;
/// else the millisecond's first (time has moved on, or `last` is no guide).
fn next_issue(last: u64, ms: u64) -> u64 {
    let floor = ms * 1000;
    if (floor..floor + 1_000_000).contains(&last) {
        last + 1
    } else {
        floor
    }
}

/// One entry of a key's audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    pub id: EventId,
    pub key_id: KeyId,
    pub action: EventAction,
    pub actor: String,
    pub request_id: String,
    pub time: Timestamp,
    /// The changed fields and their new values, in a fixed order.
    pub changes: Vec<(&'static str, FieldValue)>,
}

impl KeyEvent {
    fn new(key_id: &KeyId, action: EventAction, audit: &Audit) -> KeyEvent {
        KeyEvent {
            id: EventId::new(audit.at),
            key_id: key_id.clone(),
            action,
            actor: audit.actor.clone(),
            request_id: audit.request_id.clone(),
            time: audit.at,
            changes: Vec::new(),
        }
    }

    /// A key was created with these fields.
    pub fn created(record: &KeyRecord, audit: &Audit) -> KeyEvent {
        let mut e = KeyEvent::new(&record.id, EventAction::Created, audit);
        e.changes = vec![
            ("name", FieldValue::Text(record.name.as_str().to_owned())),
            ("scopes", FieldValue::Scopes(record.scopes)),
            ("active", FieldValue::Bool(record.active)),
            ("expiresAt", FieldValue::Time(record.expires_at)),
        ];
        e
    }

    /// A key's fields were set.
    pub fn updated(key_id: &KeyId, changes: &KeyChanges, audit: &Audit) -> KeyEvent {
        let mut e = KeyEvent::new(key_id, EventAction::Updated, audit);
        if let Some(name) = &changes.name {
            e.changes
                .push(("name", FieldValue::Text(name.as_str().to_owned())));
        }
        if let Some(scopes) = changes.scopes {
            e.changes.push(("scopes", FieldValue::Scopes(scopes)));
        }
        if let Some(active) = changes.active {
            e.changes.push(("active", FieldValue::Bool(active)));
        }
        e
    }

    /// A key got a new secret; the previous one lives `grace_seconds` more.
    pub fn rolled(key_id: &KeyId, prefix: &str, grace_seconds: u64, audit: &Audit) -> KeyEvent {
        let mut e = KeyEvent::new(key_id, EventAction::Rolled, audit);
        e.changes = vec![
            ("prefix", FieldValue::Text(prefix.to_owned())),
            ("gracePeriodSeconds", FieldValue::Number(grace_seconds)),
        ];
        e
    }

    /// A leaked key was deactivated.
    pub fn revoked(key_id: &KeyId, audit: &Audit) -> KeyEvent {
        let mut e = KeyEvent::new(key_id, EventAction::Revoked, audit);
        e.changes = vec![
            ("active", FieldValue::Bool(false)),
            ("deactivatedReason", FieldValue::Text("leaked".to_owned())),
        ];
        e
    }

    /// The repair command rewrote the key's lookup items from its record.
    pub fn repaired(key_id: &KeyId, audit: &Audit) -> KeyEvent {
        KeyEvent::new(key_id, EventAction::Repaired, audit)
    }

    /// A key was deleted.
    pub fn deleted(key_id: &KeyId, audit: &Audit) -> KeyEvent {
        KeyEvent::new(key_id, EventAction::Deleted, audit)
    }
}

/// One page of a key's events, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    pub items: Vec<KeyEvent>,
    pub next_token: Option<String>,
}

/// How long a deleted key's events stay readable.
pub const DELETED_EVENTS_KEPT: chrono::Duration = chrono::Duration::days(90);

#[cfg(test)]
mod tests {
    use super::*;

    /// Events made one after another in one millisecond sort in that order
    /// (the e2e roll test's update then roll, in one millisecond, once
    /// sorted the other way round), and so do events of requests that
    /// started in different milliseconds but made them the other way round.
    #[test]
    fn ids_sort_as_the_events_were_made() {
        let ms = 978_307_200_123;
        assert_eq!(next_issue(0, ms), ms * 1000);
        assert_eq!(next_issue(ms * 1000, ms), ms * 1000 + 1);
        assert_eq!(next_issue(ms * 1000 + 7, ms + 1), (ms + 1) * 1000);
        // A request that started at ms made its event after one of ms + 2.
        assert_eq!(next_issue((ms + 2) * 1000, ms), (ms + 2) * 1000 + 1);
        // Far ahead (another clock, a made-up time): no guide.
        assert_eq!(next_issue((ms + 5_000) * 1000, ms), ms * 1000);
        let mut last = 0;
        let issued: Vec<u64> = (0..500)
            .map(|_| {
                last = next_issue(last, ms);
                last
            })
            .collect();
        assert!(issued.windows(2).all(|w| w[0] < w[1]));
        let Some(at) = chrono::DateTime::from_timestamp_millis(1_978_307_200_123) else {
            panic!("a valid time");
        };
        let id = EventId::new(at);
        assert!(EventId::parse(id.as_str()).is_some());
        assert!(id.as_str().starts_with("1978307200123"));
    }
}
