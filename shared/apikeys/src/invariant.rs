//! The invariant between a key's items, and one checker for it.
//!
//! The authorizer reads only lookup items, so what they say *is* what a
//! secret can do. After every committed change:
//!
//! 1. every secret a record names as live (its current secret, and its
//!    previous one while the grace period runs) has a lookup item;
//! 2. each lookup item is its record's current secret, or its previous secret
//!    carrying the record's grace end (`graceUntil`);
//! 3. each mirrors the record's account, key id, scopes, active state (false
//!    when leaked) and expiry;
//! 4. no lookup item exists for a deleted key, nor for a secret that is
//!    neither the current nor the previous one. A previous secret past its
//!    grace period may keep its item until it expires, as the authorizer
//!    refuses it by its `graceUntil`.
//!
//! [`check`] reports every item that breaks it; the tests run it on DynamoDB
//! Local after racing changes, and the repair command uses it to find what to
//! repair.

use std::collections::HashMap;
use std::fmt;

use crate::material::KeyHash;
use crate::model::{AccountId, KeyId, KeyLookup, KeyRecord, Timestamp};

/// Every record and lookup item of a table (or of the in-memory store).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub records: Vec<KeyRecord>,
    pub lookups: Vec<(KeyHash, KeyLookup)>,
    /// Items of a key (record or lookup) that cannot be decoded: `(pk, sk)`.
    pub undecodable: Vec<(String, String)>,
}

/// One item that breaks the invariant.
#[derive(Clone, PartialEq, Eq)]
pub enum Violation {
    /// A live secret of the record has no lookup item (the key, or this
    /// secret of it, does not authenticate although the record says it does).
    MissingLookup {
        account: AccountId,
        key: KeyId,
        hash: KeyHash,
    },
    /// A lookup item of the record's secret says something else than the
    /// record (`field` is the first that differs).
    StaleLookup {
        account: AccountId,
        key: KeyId,
        hash: KeyHash,
        field: &'static str,
    },
    /// A lookup item whose key does not exist, or does not name this secret:
    /// a secret nobody can revoke.
    Orphan {
        account: AccountId,
        key: KeyId,
        hash: KeyHash,
    },
    /// A key's item that cannot be decoded.
    Undecodable { pk: String, sk: String },
}

impl Violation {
    /// The record a repair goes through, when the violation has one.
    pub fn key(&self) -> Option<(&AccountId, &KeyId)> {
        match self {
            Violation::MissingLookup { account, key, .. }
            | Violation::StaleLookup { account, key, .. }
            | Violation::Orphan { account, key, .. } => Some((account, key)),
            Violation::Undecodable { .. } => None,
        }
    }
}

/// Only a short hash prefix: enough to find the item, never a full hash.
fn short(hash: &KeyHash) -> String {
    hash.to_hex()[..12].to_owned()
}

impl fmt::Debug for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::MissingLookup { account, key, hash } => write!(
                f,
                "missing lookup: key {key} of {account} names live secret {}… without a lookup item",
                short(hash)
            ),
            Violation::StaleLookup {
                account,
                key,
                hash,
                field,
            } => write!(
                f,
                "stale lookup: secret {}… of key {key} of {account} differs from its record in `{field}`",
                short(hash)
            ),
            Violation::Orphan { account, key, hash } => write!(
                f,
                "orphan lookup: secret {}… claims key {key} of {account}, which does not name it",
                short(hash)
            ),
            Violation::Undecodable { pk, sk } => write!(f, "undecodable item: {pk} / {sk}"),
        }
    }
}

/// Every violation of the invariant in `snapshot` at `now`, records first,
/// in a stable order.
pub fn check(snapshot: &Snapshot, now: Timestamp) -> Vec<Violation> {
    let lookups: HashMap<KeyHash, &KeyLookup> =
        snapshot.lookups.iter().map(|(h, l)| (*h, l)).collect();
    let mut records: Vec<&KeyRecord> = snapshot.records.iter().collect();
    records.sort_by(|a, b| (&a.account_id, &a.id).cmp(&(&b.account_id, &b.id)));
    let mut out = Vec::new();
    let mut named: HashMap<KeyHash, (&AccountId, &KeyId)> = HashMap::new();
    for record in records {
        for (hash, expected) in record.mirrors() {
            named.insert(hash, (&record.account_id, &record.id));
            let past_grace = expected.grace_until.is_some_and(|t| now >= t);
            match lookups.get(&hash) {
                None if past_grace => {}
                None => out.push(Violation::MissingLookup {
                    account: record.account_id.clone(),
                    key: record.id.clone(),
                    hash,
                }),
                Some(found) => {
                    // Past its grace, only its refusal matters: its
                    // own graceUntil must be over too.
                    let field = if past_grace {
                        (found.key_id != expected.key_id
                            || found.account_id != expected.account_id
                            || found.grace_until.is_none_or(|t| now < t))
                        .then_some("graceUntil")
                    } else {
                        found.differs_from(&expected)
                    };
                    if let Some(field) = field {
                        out.push(Violation::StaleLookup {
                            account: record.account_id.clone(),
                            key: record.id.clone(),
                            hash,
                            field,
                        });
                    }
                }
            }
        }
    }
    let mut orphans: Vec<Violation> = snapshot
        .lookups
        .iter()
        .filter(|(hash, lookup)| {
            named
                .get(hash)
                .is_none_or(|(a, k)| **a != lookup.account_id || **k != lookup.key_id)
        })
        .map(|(hash, lookup)| Violation::Orphan {
            account: lookup.account_id.clone(),
            key: lookup.key_id.clone(),
            hash: *hash,
        })
        .collect();
    orphans.sort_by_key(|v| v.to_string());
    out.extend(orphans);
    out.extend(
        snapshot
            .undecodable
            .iter()
            .map(|(pk, sk)| Violation::Undecodable {
                pk: pk.clone(),
                sk: sk.clone(),
            }),
    );
    out
}
