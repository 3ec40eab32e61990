//! The key store: one small trait per capability a handler needs, with a
//! DynamoDB implementation ([`crate::dynamo::DynamoStore`]) and an in-memory
//! one ([`MemoryStore`]) of identical semantics; one conformance suite runs
//! against both.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::material::KeyHash;
use crate::model::{AccountId, KeyChanges, KeyId, KeyLookup, KeyRecord, Page, Timestamp};

/// Largest page a list may ask for.
pub const MAX_PAGE: u16 = 100;

/// A store failure. The first four are outcomes of the caller's request
/// (→ 4xx); `Unavailable` and `Corrupt` are ours (→ 5xx/503).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("an item with this key already exists")]
    AlreadyExists,
    #[error("no such key in this account")]
    NotFound,
    #[error("the key's version is not the expected one")]
    VersionConflict,
    #[error("the pagination token is malformed or belongs to another account")]
    InvalidToken,
    #[error("the key store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("a stored item is malformed: {0}")]
    Corrupt(String),
}

/// The authorizer's one read: the lookup item by key hash, consistently.
pub trait LookupKey: Send + Sync {
    fn lookup(
        &self,
        hash: &KeyHash,
    ) -> impl Future<Output = Result<Option<KeyLookup>, StoreError>> + Send;
}

/// Writes a new key's record and lookup item together; never overwrites.
pub trait CreateKey: Send + Sync {
    fn create(&self, record: &KeyRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Reads one key of an account (consistently).
pub trait GetKey: Send + Sync {
    fn get(
        &self,
        account: &AccountId,
        id: &KeyId,
    ) -> impl Future<Output = Result<KeyRecord, StoreError>> + Send;
}

/// Pages through an account's keys, in id order.
pub trait ListKeys: Send + Sync {
    /// `limit` is 1..=[`MAX_PAGE`]; `token` is a previous page's `next_token`.
    fn list(
        &self,
        account: &AccountId,
        limit: u16,
        token: Option<&str>,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;
}

/// Sets the given fields on both items at once, bumping the version.
pub trait UpdateKey: Send + Sync {
    /// With `expected_version`, fails with [`StoreError::VersionConflict`]
    /// unless the stored version is that one. Returns the record after the update.
    fn update(
        &self,
        account: &AccountId,
        id: &KeyId,
        changes: &KeyChanges,
        expected_version: Option<u64>,
        now: Timestamp,
    ) -> impl Future<Output = Result<KeyRecord, StoreError>> + Send;
}

/// Deletes both items of a key at once.
pub trait DeleteKey: Send + Sync {
    fn delete(
        &self,
        account: &AccountId,
        id: &KeyId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Every capability: what the conformance suite and the local API need.
pub trait KeyStore: LookupKey + CreateKey + GetKey + ListKeys + UpdateKey + DeleteKey {}
impl<T: LookupKey + CreateKey + GetKey + ListKeys + UpdateKey + DeleteKey> KeyStore for T {}

/// The page token: opaque to callers, it encodes only a position inside the
/// caller's own partition (the last key id returned) and a short digest of the
/// account it was issued to, so a token from another account, or a tampered
/// one, is rejected as [`StoreError::InvalidToken`] and never moves a query.
pub(crate) mod token {
    use super::*;

    const VERSION: u8 = 1;
    const TAG_LEN: usize = 8;

    fn tag(account: &AccountId) -> [u8; TAG_LEN] {
        let digest = Sha256::digest(account.as_str().as_bytes());
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&digest[..TAG_LEN]);
        out
    }

    pub(crate) fn encode(account: &AccountId, last: &KeyId) -> String {
        let mut bytes = Vec::with_capacity(1 + TAG_LEN + KeyId::LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(&tag(account));
        bytes.extend_from_slice(last.as_str().as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub(crate) fn decode(account: &AccountId, token: &str) -> Result<KeyId, StoreError> {
        if token.len() > 64 {
            return Err(StoreError::InvalidToken);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| StoreError::InvalidToken)?;
        match bytes.split_first() {
            Some((&VERSION, rest)) if rest.len() == TAG_LEN + KeyId::LEN => {
                let (t, id) = rest.split_at(TAG_LEN);
                if t != tag(account) {
                    return Err(StoreError::InvalidToken);
                }
                std::str::from_utf8(id)
                    .ok()
                    .and_then(KeyId::parse)
                    .ok_or(StoreError::InvalidToken)
            }
            _ => Err(StoreError::InvalidToken),
        }
    }
}

/// The in-memory store: the local API's default and the unit tests' store.
/// Same semantics as DynamoDB's: both items change together under one lock.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    lookups: HashMap<KeyHash, KeyLookup>,
    records: BTreeMap<(AccountId, KeyId), KeyRecord>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        // A poisoned lock means a panic mid-change: refuse to serve from it.
        self.state
            .lock()
            .map_err(|_| StoreError::Unavailable("in-memory store lock poisoned".into()))
    }

    /// Every record in the store (all accounts): for tests that look at raw state.
    pub fn all_records(&self) -> Vec<KeyRecord> {
        self.state()
            .map(|s| s.records.values().cloned().collect())
            .unwrap_or_default()
    }
}

impl LookupKey for MemoryStore {
    async fn lookup(&self, hash: &KeyHash) -> Result<Option<KeyLookup>, StoreError> {
        Ok(self.state()?.lookups.get(hash).cloned())
    }
}

impl CreateKey for MemoryStore {
    async fn create(&self, record: &KeyRecord) -> Result<(), StoreError> {
        let mut state = self.state()?;
        let rk = (record.account_id.clone(), record.id.clone());
        if state.lookups.contains_key(&record.hash) || state.records.contains_key(&rk) {
            return Err(StoreError::AlreadyExists);
        }
        state.lookups.insert(record.hash, record.lookup());
        state.records.insert(rk, record.clone());
        Ok(())
    }
}

impl GetKey for MemoryStore {
    async fn get(&self, account: &AccountId, id: &KeyId) -> Result<KeyRecord, StoreError> {
        self.state()?
            .records
            .get(&(account.clone(), id.clone()))
            .cloned()
            .ok_or(StoreError::NotFound)
    }
}

impl ListKeys for MemoryStore {
    async fn list(
        &self,
        account: &AccountId,
        limit: u16,
        token: Option<&str>,
    ) -> Result<Page, StoreError> {
        let lower = match token {
            Some(t) => Bound::Excluded((account.clone(), token::decode(account, t)?)),
            None => Bound::Included((account.clone(), KeyId::before_all())),
        };
        let limit = usize::from(limit.clamp(1, MAX_PAGE));
        let state = self.state()?;
        let mut items: Vec<KeyRecord> = state
            .records
            .range((lower, Bound::Unbounded))
            .take_while(|((a, _), _)| a == account)
            .map(|(_, r)| r.clone())
            .take(limit + 1)
            .collect();
        let next_token = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|r| token::encode(account, &r.id))
        } else {
            None
        };
        Ok(Page { items, next_token })
    }
}

impl UpdateKey for MemoryStore {
    async fn update(
        &self,
        account: &AccountId,
        id: &KeyId,
        changes: &KeyChanges,
        expected_version: Option<u64>,
        now: Timestamp,
    ) -> Result<KeyRecord, StoreError> {
        let mut state = self.state()?;
        let record = state
            .records
            .get_mut(&(account.clone(), id.clone()))
            .ok_or(StoreError::NotFound)?;
        if expected_version.is_some_and(|v| v != record.version) {
            return Err(StoreError::VersionConflict);
        }
        changes.apply_to(record, now);
        let record = record.clone();
        if let Some(lookup) = state.lookups.get_mut(&record.hash) {
            lookup.scopes = record.scopes;
            lookup.active = record.active;
        }
        Ok(record)
    }
}

impl DeleteKey for MemoryStore {
    async fn delete(&self, account: &AccountId, id: &KeyId) -> Result<(), StoreError> {
        let mut state = self.state()?;
        let record = state
            .records
            .remove(&(account.clone(), id.clone()))
            .ok_or(StoreError::NotFound)?;
        state.lookups.remove(&record.hash);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_for_its_account_only() {
        let a = AccountId::parse("account-a").unwrap();
        let b = AccountId::parse("account-b").unwrap();
        let id = KeyId::generate();
        let t = token::encode(&a, &id);
        assert_eq!(token::decode(&a, &t).unwrap(), id);
        assert!(matches!(
            token::decode(&b, &t),
            Err(StoreError::InvalidToken)
        ));
    }

    #[test]
    fn token_does_not_reveal_the_account() {
        let a = AccountId::parse("account-a").unwrap();
        let t = token::encode(&a, &KeyId::generate());
        let raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("account-a"));
    }

    #[test]
    fn malformed_tokens_are_invalid() {
        let a = AccountId::parse("a").unwrap();
        let good = token::encode(&a, &KeyId::generate());
        let mut tampered = good.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        for bad in [
            "",
            "!!!",
            "AAAA",
            &"A".repeat(65),
            &good[..good.len() - 1],
            &format!("{good}A"),
            std::str::from_utf8(&tampered).unwrap(),
        ] {
            assert!(
                matches!(token::decode(&a, bad), Err(StoreError::InvalidToken)),
                "{bad}"
            );
        }
    }
}
