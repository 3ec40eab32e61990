//! Validated values and the stored shapes of a key.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use scopes::ScopeSet;

use crate::material::{self, ApiKey, KeyHash};

/// When something happened: UTC, printed as RFC 3339 with a `Z`.
pub type Timestamp = DateTime<Utc>;

/// RFC 3339 in UTC, seconds precision or finer as given (`2026-01-02T03:04:05Z`).
pub fn format_timestamp(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses any RFC 3339 timestamp and normalises it to UTC.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A key's public id: random, independent of the key and its hash; used in URLs.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    pub const LEN: usize = 22;

    pub fn generate() -> KeyId {
        KeyId(material::random_base62(Self::LEN))
    }

    /// `None` unless `s` has the shape of an id (22 characters of `[0-9A-Za-z]`).
    pub fn parse(s: &str) -> Option<KeyId> {
        (s.len() == Self::LEN && s.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| KeyId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Sorts before every real id: the start of an account's range.
    pub(crate) fn before_all() -> KeyId {
        KeyId(String::new())
    }
}

/// The account a key belongs to: the dashboard user's claim (Cognito `sub` by default).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    pub const MAX_LEN: usize = 128;

    /// `None` for an empty, over-long or control-character-bearing value.
    pub fn parse(s: &str) -> Option<AccountId> {
        (!s.is_empty() && s.len() <= Self::MAX_LEN && !s.chars().any(char::is_control))
            .then(|| AccountId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_display {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
    )*};
}
string_display!(KeyId, AccountId, KeyName);

/// A key's descriptive name: 1–100 characters after trimming, no control characters.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyName(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyNameError {
    #[error("name must not be empty")]
    Empty,
    #[error("name must be at most {} characters", KeyName::MAX_CHARS)]
    TooLong,
    #[error("name must not contain control characters")]
    Control,
}

impl KeyName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(s: &str) -> Result<KeyName, KeyNameError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(KeyNameError::Empty);
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(KeyNameError::TooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(KeyNameError::Control);
        }
        Ok(KeyName(s.to_owned()))
    }

    /// A name as it was stored: shown as it is, even where today's rules
    /// (which [`KeyName::parse`] applies to input) would refuse it.
    pub fn from_stored(s: &str) -> KeyName {
        KeyName(s.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The record of a key as its account sees and manages it. Holds the hash
/// (to reach the lookup item) but never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: KeyId,
    pub account_id: AccountId,
    pub name: KeyName,
    pub prefix: String,
    pub scopes: ScopeSet,
    pub active: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub created_by: String,
    /// The hash of the key's current secret.
    pub hash: KeyHash,
    pub version: u64,
    /// When the key last authenticated a call (recorded at most once per
    /// interval by the authorizer), if ever.
    pub last_used_at: Option<Timestamp>,
    /// The secret a roll replaced, while its grace period may still be running.
    pub previous: Option<PreviousSecret>,
    /// Why the key was deactivated, when the system did it.
    pub deactivated_reason: Option<DeactivatedReason>,
}

/// Why the system (not a dashboard user) deactivated a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeactivatedReason {
    /// Reported public by a secret scanner: it cannot be reactivated; roll
    /// it (the leaked secret stops at once) or create a new key.
    Leaked,
}

impl DeactivatedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeactivatedReason::Leaked => "leaked",
        }
    }

    pub fn parse(s: &str) -> Option<DeactivatedReason> {
        (s == "leaked").then_some(DeactivatedReason::Leaked)
    }
}

/// A rolled-over secret that keeps authenticating until `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousSecret {
    pub hash: KeyHash,
    pub until: Timestamp,
}

impl PreviousSecret {
    /// Still authenticating at `now`.
    pub fn is_live_at(&self, now: Timestamp) -> bool {
        now < self.until
    }
}

impl KeyRecord {
    /// A new, active record for a freshly generated key.
    pub fn new(
        key: &ApiKey,
        account_id: AccountId,
        name: KeyName,
        scopes: ScopeSet,
        expires_at: Option<Timestamp>,
        created_by: String,
        now: Timestamp,
    ) -> KeyRecord {
        KeyRecord {
            id: KeyId::generate(),
            account_id,
            name,
            prefix: key.display_prefix(),
            scopes,
            active: true,
            created_at: now,
            updated_at: now,
            expires_at,
            created_by,
            hash: key.hash(),
            version: 1,
            last_used_at: None,
            previous: None,
            deactivated_reason: None,
        }
    }

    /// The hashes of the secrets that still authenticate at `now`: the
    /// current one, and a previous one still in its grace period.
    pub fn live_hashes(&self, now: Timestamp) -> impl Iterator<Item = KeyHash> + use<> {
        let previous = self.previous.filter(|p| p.is_live_at(now)).map(|p| p.hash);
        std::iter::once(self.hash).chain(previous)
    }

    /// The masked form shown in the dashboard.
    pub fn masked(&self) -> String {
        material::masked(&self.prefix)
    }

    /// The lookup items this record's secrets must have, as the invariant
    /// (the design document's "The invariant between a key's items") states
    /// them: the current secret's, and the previous secret's carrying its
    /// grace end. Each mirrors the record's account, id, scopes, active
    /// state and expiry; `last_used_at` is the authorizer's and not mirrored.
    pub fn mirrors(&self) -> impl Iterator<Item = (KeyHash, KeyLookup)> + use<> {
        let current = (self.hash, self.lookup());
        let previous = self.previous.map(|p| {
            let mut lookup = self.lookup();
            lookup.grace_until = Some(p.until);
            (p.hash, lookup)
        });
        std::iter::once(current).chain(previous)
    }

    /// The hash of every secret the record names (current, and previous
    /// whether or not its grace period is over).
    pub fn named_hashes(&self) -> impl Iterator<Item = KeyHash> + use<> {
        std::iter::once(self.hash).chain(self.previous.map(|p| p.hash))
    }

    /// The lookup item the authorizer reads for this record's current secret.
    pub fn lookup(&self) -> KeyLookup {
        KeyLookup {
            account_id: self.account_id.clone(),
            key_id: self.id.clone(),
            scopes: self.scopes,
            // A leaked key never authenticates, whatever else says active.
            active: self.active && self.deactivated_reason.is_none(),
            expires_at: self.expires_at,
            grace_until: None,
            last_used_at: None,
        }
    }
}

/// What the authorizer reads by key hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLookup {
    pub account_id: AccountId,
    pub key_id: KeyId,
    pub scopes: ScopeSet,
    pub active: bool,
    pub expires_at: Option<Timestamp>,
    /// For a secret a roll replaced: when its grace period ends.
    pub grace_until: Option<Timestamp>,
    /// When this secret's use was last recorded.
    pub last_used_at: Option<Timestamp>,
}

impl KeyLookup {
    /// Active, not expired and not past its grace period at `now` (a key
    /// expiring exactly now is expired). Decisions never wait for DynamoDB's
    /// TTL to remove an expired secret: the times here decide.
    pub fn is_usable_at(&self, now: Timestamp) -> bool {
        self.active && !self.is_expired_at(now)
    }

    /// Past the key's expiry or this secret's grace period.
    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|t| now >= t) || self.grace_until.is_some_and(|t| now >= t)
    }

    /// Whether this item mirrors `expected` (the record's view of it):
    /// everything but the authorizer's own `last_used_at`. The first field
    /// that differs, if any.
    pub fn differs_from(&self, expected: &KeyLookup) -> Option<&'static str> {
        if self.account_id != expected.account_id {
            Some("accountId")
        } else if self.key_id != expected.key_id {
            Some("keyId")
        } else if self.scopes != expected.scopes {
            Some("scopes")
        } else if self.active != expected.active {
            Some("active")
        } else if self.expires_at != expected.expires_at {
            Some("expiresAt")
        } else if self.grace_until != expected.grace_until {
            Some("graceUntil")
        } else {
            None
        }
    }

    /// Whether a use at `now` should be recorded: never recorded, or last
    /// recorded at least `interval` ago.
    pub fn use_due_at(&self, now: Timestamp, interval: chrono::Duration) -> bool {
        self.last_used_at.is_none_or(|t| now - t >= interval)
    }
}

/// The fields an update may set; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyChanges {
    pub name: Option<KeyName>,
    pub scopes: Option<ScopeSet>,
    pub active: Option<bool>,
}

impl KeyChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.scopes.is_none() && self.active.is_none()
    }

    /// Applies the changes to `record` (what both stores do, field by field).
    pub fn apply_to(&self, record: &mut KeyRecord, now: Timestamp) {
        if let Some(name) = &self.name {
            record.name = name.clone();
        }
        if let Some(scopes) = self.scopes {
            record.scopes = scopes;
        }
        if let Some(active) = self.active {
            record.active = active;
        }
        record.updated_at = now;
        record.version += 1;
    }
}

/// One page of an account's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<KeyRecord>,
    /// Present when more keys follow; opaque to the caller.
    pub next_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(KeyName::parse("  CI bot ").unwrap().as_str(), "CI bot");
        assert_eq!(KeyName::parse("   "), Err(KeyNameError::Empty));
        assert_eq!(KeyName::parse(""), Err(KeyNameError::Empty));
        assert!(KeyName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(KeyName::parse(&"x".repeat(101)), Err(KeyNameError::TooLong));
        assert_eq!(KeyName::parse("a\u{7}b"), Err(KeyNameError::Control));
        assert_eq!(KeyName::parse("a\nb"), Err(KeyNameError::Control));
    }

    #[test]
    fn ids_have_a_fixed_shape() {
        let id = KeyId::generate();
        assert_eq!(KeyId::parse(id.as_str()), Some(id));
        assert_eq!(KeyId::parse("short"), None);
        assert_eq!(KeyId::parse(&"a/".repeat(11)), None);
        assert_eq!(AccountId::parse(""), None);
        assert_eq!(AccountId::parse("a\nb"), None);
        assert_eq!(AccountId::parse(&"a".repeat(129)), None);
        assert!(AccountId::parse("3f1c2a9e-1111-2222-3333-444455556666").is_some());
    }

    #[test]
    fn expiry_is_exclusive() {
        let t = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let lookup = KeyLookup {
            account_id: AccountId::parse("a").unwrap(),
            key_id: KeyId::generate(),
            scopes: ScopeSet::EMPTY,
            active: true,
            expires_at: Some(t),
            grace_until: None,
            last_used_at: None,
        };
        // A rolled-over secret stops at the end of its grace period.
        let rolled = KeyLookup {
            expires_at: None,
            grace_until: Some(t),
            ..lookup.clone()
        };
        assert!(rolled.is_usable_at(t - chrono::Duration::seconds(1)));
        assert!(!rolled.is_usable_at(t));
        assert!(lookup.is_usable_at(t - chrono::Duration::seconds(1)));
        assert!(!lookup.is_usable_at(t));
        assert!(
            !KeyLookup {
                active: false,
                expires_at: None,
                ..lookup.clone()
            }
            .is_usable_at(t)
        );
        assert!(
            KeyLookup {
                expires_at: None,
                ..lookup
            }
            .is_usable_at(t)
        );
    }

    #[test]
    fn timestamps_print_as_utc_rfc3339() {
        let t = parse_timestamp("2030-01-01T02:00:00+02:00").unwrap();
        assert_eq!(format_timestamp(&t), "2030-01-01T00:00:00Z");
        assert_eq!(parse_timestamp("2030-01-01"), None);
        assert_eq!(parse_timestamp("tomorrow"), None);
    }
}
