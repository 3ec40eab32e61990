//! The key store: one small trait per capability a handler needs, with a
//! DynamoDB implementation ([`crate::dynamo::DynamoStore`]) and an in-memory
//! one ([`MemoryStore`]) of identical semantics; one conformance suite runs
//! against both.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::material::KeyHash;
use crate::model::{AccountId, KeyChanges, KeyId, KeyLookup, KeyRecord, Page, Timestamp};

/// Largest page a list may ask for.
pub const MAX_PAGE: u16 = 100;

/// An error from below the store (the SDK's), kept whole as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A store failure. The first four are outcomes of the caller's request
/// (→ 4xx); the rest are ours (→ 503, or 500 for `Corrupt`).
///
/// After `Unavailable`, `Throttled` or `DeadlineExceeded` a write may or may
/// not have been applied: its answer can be lost after DynamoDB committed it.
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
    Unavailable(#[source] BoxError),
    /// DynamoDB refused for capacity (`ProvisionedThroughputExceededException`,
    /// `ThrottlingException`, `RequestLimitExceeded`), after the SDK's retries.
    #[error("the key store is throttling requests")]
    Throttled(#[source] BoxError),
    /// DynamoDB answered `ResourceNotFoundException`: the table is missing.
    #[error("the keys table does not exist")]
    MissingTable(#[source] BoxError),
    /// The invocation's deadline came before the store's answer.
    #[error("the key store did not answer before the deadline")]
    DeadlineExceeded,
    #[error("a stored item is malformed: {0}")]
    Corrupt(String),
}

/// When the store work of one invocation must be over: the Lambda
/// deadline less a margin for answering, so the worst case is our own
/// answer (503, or the authorizer's fail-closed error), never the
/// function's timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(tokio::time::Instant);

impl Deadline {
    /// `budget` from now.
    pub fn after(budget: Duration) -> Deadline {
        Deadline(tokio::time::Instant::now() + budget)
    }

    /// The invocation's deadline (wall clock, as Lambda gives it) less `margin`.
    pub fn from_lambda(deadline: SystemTime, margin: Duration) -> Deadline {
        let left = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .saturating_sub(margin);
        Deadline::after(left)
    }

    /// Time left before the deadline (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.0
            .saturating_duration_since(tokio::time::Instant::now())
    }

    /// Runs `work`, giving up with [`StoreError::DeadlineExceeded`] when the
    /// deadline comes first (the work is dropped: nothing more is sent).
    pub async fn run<T, E: From<StoreError>>(
        self,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        tokio::time::timeout_at(self.0, work)
            .await
            .unwrap_or_else(|_| Err(StoreError::DeadlineExceeded.into()))
    }
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
/// caller's own partition (the last key id returned) and a 64-bit digest of
/// the token's version, the account it was issued to and that position. So
/// a token from another account, or one with any character changed, added
/// or removed, is rejected as [`StoreError::InvalidToken`] and never moves a
/// query. It is not encrypted (the key id in it can be read) and the digest
/// has no secret: it detects edits and mix-ups, it does not authenticate —
/// which it need not, as the partition always comes from the caller.
pub(crate) mod token {
    use super::*;

    const VERSION: u8 = 2;
    const TAG_LEN: usize = 8;

    fn tag(account: &AccountId, last: &[u8]) -> [u8; TAG_LEN] {
        let digest = Sha256::new()
            .chain_update(b"prolinksqr page token\0")
            .chain_update([VERSION])
            .chain_update(account.as_str().as_bytes())
            .chain_update(b"\0")
            .chain_update(last)
            .finalize();
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&digest[..TAG_LEN]);
        out
    }

    pub(crate) fn encode(account: &AccountId, last: &KeyId) -> String {
        let mut bytes = Vec::with_capacity(1 + TAG_LEN + KeyId::LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(&tag(account, last.as_str().as_bytes()));
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
                if t != tag(account, id) {
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

    /// Every single-character edit of a real token — any other character of
    /// the alphabet at any position, a character removed, one added — is
    /// rejected.
    #[test]
    fn every_single_character_edit_of_a_token_is_invalid() {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let a = AccountId::parse("acct-a").unwrap();
        for _ in 0..4 {
            let good = token::encode(&a, &KeyId::generate()).into_bytes();
            let mut edits = 0;
            for i in 0..=good.len() {
                for &c in ALPHABET {
                    if i < good.len() && c != good[i] {
                        let mut t = good.clone();
                        t[i] = c;
                        edits += 1;
                        let t = String::from_utf8(t).unwrap();
                        assert!(token::decode(&a, &t).is_err(), "substitution at {i}: {t}");
                    }
                    let mut t = good.clone();
                    t.insert(i, c);
                    let t = String::from_utf8(t).unwrap();
                    assert!(token::decode(&a, &t).is_err(), "insertion at {i}: {t}");
                }
                if i < good.len() {
                    let mut t = good.clone();
                    t.remove(i);
                    let t = String::from_utf8(t).unwrap();
                    assert!(token::decode(&a, &t).is_err(), "removal at {i}: {t}");
                }
            }
            assert_eq!(edits, good.len() * 63);
        }
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
