//! Every change to an existing key, planned from the record as read.
//!
//! Both stores change a key the same way (the design document's "One
//! guarded mutation"): read the record, [`plan`] the record it becomes (or
//! its deletion) and the event, then commit every item at once — the record,
//! each secret's lookup item rewritten from the new record, the lookup items
//! of secrets it no longer names deleted — conditioned on the version read.
//! When another change committed in between, the condition fails and the
//! change is read and planned again. The planning is here, once, so the
//! in-memory store and DynamoDB cannot disagree about what a change does.

use crate::audit::{Audit, KeyEvent};
use crate::material::KeyHash;
use crate::model::{DeactivatedReason, KeyChanges, KeyRecord, PreviousSecret, Timestamp};
use crate::store::StoreError;

/// A change to one key.
#[derive(Debug, Clone)]
pub enum Change<'a> {
    /// Sets name, scopes or active state.
    Update(&'a KeyChanges),
    /// A new current secret; the old one lives for `grace` (none when the
    /// key leaked); a secret in an earlier grace period stops.
    Roll {
        hash: KeyHash,
        prefix: String,
        grace: chrono::Duration,
    },
    Delete,
    /// Deactivates the key because the secret with this hash leaked.
    RevokeLeaked(KeyHash),
    /// Rewrites every lookup item from the record (the repair command).
    Repair,
}

/// What a change writes, planned from a read of the record.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The record after the change; `None` deletes the key.
    pub after: Option<KeyRecord>,
    pub event: KeyEvent,
    /// A moment a secret stops by itself that the change sets (for the
    /// expiry log): the end of a roll's grace period.
    pub expires: Option<Timestamp>,
}

/// The plan of `change` on `current` (as read), or what to answer without
/// writing: `Ok(None)` when there is nothing to do (a leak already revoked).
///
/// `expected` is the client's `If-Match`: a stale one is a
/// [`StoreError::VersionConflict`], checked against this read; a change that
/// races this one makes the commit fail and the caller plan again from a
/// fresh read, where a stale `expected` then shows.
pub fn plan(
    current: &KeyRecord,
    change: &Change<'_>,
    expected: Option<u64>,
    audit: &Audit,
) -> Result<Option<Plan>, StoreError> {
    if expected.is_some_and(|v| v != current.version) {
        return Err(StoreError::VersionConflict);
    }
    let now = audit.at;
    let mut after = current.clone();
    // A previous secret past its grace period is dropped by any change.
    after.previous = current.previous.filter(|p| p.is_live_at(now));
    after.version = current.version + 1;
    let mut expires = None;
    let event = match change {
        Change::Update(changes) => {
            if changes.active == Some(true) && current.deactivated_reason.is_some() {
                return Err(StoreError::KeyLeaked);
            }
            changes.apply_to(&mut after, now);
            after.version = current.version + 1;
            KeyEvent::updated(&current.id, changes, audit)
        }
        Change::Roll {
            hash,
            prefix,
            grace,
        } => {
            // A leaked secret gets no grace; the new one may be reactivated.
            let leaked = after.deactivated_reason.take().is_some();
            let grace = if leaked {
                chrono::Duration::zero()
            } else {
                *grace
            };
            after.previous = (grace > chrono::Duration::zero()).then(|| PreviousSecret {
                hash: current.hash,
                until: now + grace,
            });
            expires = after.previous.map(|p| p.until);
            after.hash = *hash;
            after.prefix = prefix.clone();
            after.updated_at = now;
            let seconds = u64::try_from(grace.num_seconds()).unwrap_or(0);
            KeyEvent::rolled(&current.id, prefix, seconds, audit)
        }
        Change::Delete => {
            return Ok(Some(Plan {
                after: None,
                event: KeyEvent::deleted(&current.id, audit),
                expires: None,
            }));
        }
        Change::RevokeLeaked(hash) => {
            if !current.live_hashes(now).any(|h| h == *hash) {
                return Err(StoreError::NotFound);
            }
            if current.deactivated_reason == Some(DeactivatedReason::Leaked) {
                return Ok(None);
            }
            after.active = false;
            after.deactivated_reason = Some(DeactivatedReason::Leaked);
            after.updated_at = now;
            KeyEvent::revoked(&current.id, audit)
        }
        Change::Repair => KeyEvent::repaired(&current.id, audit),
    };
    Ok(Some(Plan {
        after: Some(after),
        event,
        expires,
    }))
}

/// What a plan does to the lookup items, by hash: the items the new record's
/// secrets must have (each rewritten whole from the record, or created for a
/// new secret), and the secrets the old record named that the new one does
/// not (deleted).
pub struct LookupWrites {
    /// `(hash, the item it must hold, whether the old record named it)`.
    pub keep: Vec<(KeyHash, crate::model::KeyLookup, bool)>,
    pub remove: Vec<KeyHash>,
}

/// `named`: the hashes the record as read names (see
/// [`KeyRecord::named_hashes`]).
pub fn lookup_writes(named: &[KeyHash], after: Option<&KeyRecord>) -> LookupWrites {
    let named = named.to_vec();
    let keep: Vec<_> = after
        .map(|a| {
            a.mirrors()
                .map(|(h, l)| (h, l, named.contains(&h)))
                .collect()
        })
        .unwrap_or_default();
    let remove = named
        .into_iter()
        .filter(|h| !keep.iter().any(|(k, _, _)| k == h))
        .collect();
    LookupWrites { keep, remove }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::material::ApiKey;
    use crate::model::{AccountId, KeyName};
    use chrono::Utc;
    use scopes::{Scope, ScopeSet};

    fn record() -> KeyRecord {
        KeyRecord::new(
            &ApiKey::generate(),
            AccountId::parse("a").unwrap(),
            KeyName::parse("n").unwrap(),
            ScopeSet::from(Scope::LinksRead),
            None,
            "u".to_owned(),
            Utc::now(),
        )
    }

    fn audit() -> Audit {
        Audit::system("test", Utc::now())
    }

    #[test]
    fn a_stale_if_match_is_a_conflict_and_a_current_one_is_not() {
        let r = record();
        let change = Change::Delete;
        assert!(matches!(
            plan(&r, &change, Some(7), &audit()),
            Err(StoreError::VersionConflict)
        ));
        assert!(plan(&r, &change, Some(1), &audit()).unwrap().is_some());
    }

    #[test]
    fn a_roll_with_grace_keeps_two_secrets_and_a_second_roll_drops_the_first() {
        let r = record();
        let roll = |h: KeyHash| Change::Roll {
            hash: h,
            prefix: "key-x".to_owned(),
            grace: chrono::Duration::hours(1),
        };
        let (h1, h2) = (ApiKey::generate().hash(), ApiKey::generate().hash());
        let once = plan(&r, &roll(h1), None, &audit()).unwrap().unwrap();
        let after = once.after.unwrap();
        assert_eq!(after.named_hashes().collect::<Vec<_>>(), vec![h1, r.hash]);
        assert_eq!(after.version, 2);
        let twice = plan(&after, &roll(h2), None, &audit()).unwrap().unwrap();
        let named: Vec<_> = after.named_hashes().collect();
        let writes = lookup_writes(&named, twice.after.as_ref());
        assert_eq!(writes.remove, vec![r.hash], "the first secret stops");
        assert_eq!(writes.keep.len(), 2);
        assert!(writes.keep.iter().any(|(h, _, old)| *h == h2 && !old));
        assert!(
            writes
                .keep
                .iter()
                .any(|(h, l, old)| *h == h1 && *old && l.grace_until.is_some())
        );
    }

    #[test]
    fn a_leak_deactivates_every_secret_and_is_done_once() {
        let r = record();
        let p = plan(&r, &Change::RevokeLeaked(r.hash), None, &audit())
            .unwrap()
            .unwrap();
        let after = p.after.unwrap();
        assert!(after.mirrors().all(|(_, l)| !l.active));
        assert!(
            plan(&after, &Change::RevokeLeaked(r.hash), None, &audit())
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            plan(
                &after,
                &Change::Update(&KeyChanges {
                    active: Some(true),
                    ..KeyChanges::default()
                }),
                None,
                &audit()
            ),
            Err(StoreError::KeyLeaked)
        ));
        let other = ApiKey::generate().hash();
        assert!(matches!(
            plan(&r, &Change::RevokeLeaked(other), None, &audit()),
            Err(StoreError::NotFound)
        ));
    }

    #[test]
    fn a_delete_removes_every_named_secret() {
        let r = record();
        let writes = lookup_writes(&[r.hash], None);
        assert!(writes.keep.is_empty());
        assert_eq!(writes.remove, vec![r.hash]);
    }
}
