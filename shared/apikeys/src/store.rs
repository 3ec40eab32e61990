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

use crate::audit::{Audit, DELETED_EVENTS_KEPT, EventId, EventPage, KeyEvent};
use crate::change::{self, Change, Plan};
use crate::idempotency::{Claim, Completion, Entry, EntryId, Fingerprint, IdempotencyStore};
use crate::invariant::Snapshot;
use crate::material::{ApiKey, KeyHash};
use crate::model::{AccountId, KeyChanges, KeyId, KeyLookup, KeyRecord, Page, Timestamp};

/// Largest page a list may ask for.
pub const MAX_PAGE: u16 = 100;

/// An error from below the store (the SDK's), kept whole as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A store failure. The first six are outcomes of the caller's request
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
    #[error("the account has as many keys as it may have")]
    KeyLimitReached,
    #[error("the key leaked and cannot be reactivated")]
    KeyLeaked,
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
    /// The request's `Idempotency-Key` claim lapsed and another request
    /// holds it: the change was not written.
    #[error("another request holds this Idempotency-Key")]
    IdempotencyLost,
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

/// Many lookup items at once (consistently): the secret-scanning endpoint
/// reads every reported token's item in batches before acting on any.
pub trait LookupKeys: Send + Sync {
    /// The items that exist, by hash; absent hashes are simply missing.
    fn lookup_many(
        &self,
        hashes: &[KeyHash],
    ) -> impl Future<Output = Result<HashMap<KeyHash, KeyLookup>, StoreError>> + Send;
}

/// The authorizer's one write, at most once per key per interval: that the
/// secret with `hash` (whose lookup item said `lookup`) was used at `now`.
pub trait RecordUse: Send + Sync {
    /// Records the use on the secret's lookup item unless another call
    /// recorded one within `interval` (then `Ok(false)`), and on the key's
    /// record. Never creates an item.
    fn record_use(
        &self,
        hash: &KeyHash,
        lookup: &KeyLookup,
        now: Timestamp,
        interval: chrono::Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Writes a new key — its record, its lookup item, its `created` event and
/// its place in the account's count — together; never overwrites.
pub trait CreateKey: Send + Sync {
    /// Fails with [`StoreError::KeyLimitReached`] when the account already
    /// has `max_keys` keys.
    fn create(
        &self,
        record: &KeyRecord,
        audit: &Audit,
        max_keys: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.create_with(record, audit, max_keys, None)
    }

    /// [`CreateKey::create`], completing a claimed `Idempotency-Key` entry
    /// with the sealed answer in the same transaction
    /// ([`StoreError::IdempotencyLost`] when the claim lapsed: nothing written).
    fn create_with(
        &self,
        record: &KeyRecord,
        audit: &Audit,
        max_keys: u32,
        completion: Option<&Completion<'_>>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
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

/// Sets the given fields on every item of the key at once (the record and
/// each live secret's lookup item), bumping the version, with an `updated`
/// event.
pub trait UpdateKey: Send + Sync {
    /// With `expected_version`, fails with [`StoreError::VersionConflict`]
    /// unless the stored version is that one. Returns the record after the update.
    fn update(
        &self,
        account: &AccountId,
        id: &KeyId,
        changes: &KeyChanges,
        expected_version: Option<u64>,
        audit: &Audit,
    ) -> impl Future<Output = Result<KeyRecord, StoreError>> + Send;
}

/// Gives a key a new secret (`key`), keeping its id, name, scopes and state.
/// The secret it replaces keeps authenticating for `grace` (zero: not at
/// all); a secret still in an earlier grace period stops at once, so a key
/// has at most two live secrets. One transaction, with a `rolled` event.
pub trait RollKey: Send + Sync {
    fn roll(
        &self,
        account: &AccountId,
        id: &KeyId,
        key: &ApiKey,
        grace: chrono::Duration,
        expected_version: Option<u64>,
        audit: &Audit,
    ) -> impl Future<Output = Result<KeyRecord, StoreError>> + Send {
        self.roll_with(account, id, key, grace, expected_version, audit, None)
    }

    /// [`RollKey::roll`], completing a claimed `Idempotency-Key` entry with
    /// the answer sealed from the committed record, in the same transaction.
    #[allow(clippy::too_many_arguments)]
    fn roll_with(
        &self,
        account: &AccountId,
        id: &KeyId,
        key: &ApiKey,
        grace: chrono::Duration,
        expected_version: Option<u64>,
        audit: &Audit,
        completion: Option<&Completion<'_>>,
    ) -> impl Future<Output = Result<KeyRecord, StoreError>> + Send;
}

/// Deletes every item of a key at once (its record and every secret's
/// lookup item), frees its place in the account's count, and writes a
/// `deleted` event; its events stay readable for
/// [`DELETED_EVENTS_KEPT`].
pub trait DeleteKey: Send + Sync {
    /// Deletes the key if it is still at version `expected` (when given;
    /// else [`StoreError::VersionConflict`], and nothing changes).
    fn delete_at(
        &self,
        account: &AccountId,
        id: &KeyId,
        expected: Option<u64>,
        audit: &Audit,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes the key, whatever its version.
    fn delete(
        &self,
        account: &AccountId,
        id: &KeyId,
        audit: &Audit,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.delete_at(account, id, None, audit)
    }
}

/// Pages through a key's events, newest first: a key of the caller's
/// account, or one it deleted less than [`DELETED_EVENTS_KEPT`] ago; any
/// other id is [`StoreError::NotFound`].
pub trait ListEvents: Send + Sync {
    fn events(
        &self,
        account: &AccountId,
        id: &KeyId,
        limit: u16,
        token: Option<&str>,
        now: Timestamp,
    ) -> impl Future<Output = Result<EventPage, StoreError>> + Send;
}

/// What a leak report did to a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeakOutcome {
    /// A key of ours: deactivated now, with the reason `leaked`.
    Revoked(KeyId),
    /// A key of ours, already deactivated for a leak: nothing more changed.
    AlreadyRevoked(KeyId),
    /// No live secret of ours has this hash.
    NotOurs,
}

/// Deactivates the key whose secret has `hash` because it leaked: the key
/// and every live secret of it stop, with the reason `leaked` and a
/// `revoked` event, in one transaction. Idempotent.
pub trait RevokeLeaked: Send + Sync {
    fn revoke_leaked(
        &self,
        hash: &KeyHash,
        audit: &Audit,
    ) -> impl Future<Output = Result<LeakOutcome, StoreError>> + Send;
}

/// The moments a secret stops authenticating by itself — a key's expiry, the
/// end of a roll's grace period — that no write marks. With authorizer
/// caching on, the cache sweep (every minute) asks for those of the last
/// minute and flushes when there are any, so expiry takes effect within a
/// minute although no change flushed the cache. Both stores record each
/// moment with the write that sets it.
pub trait ExpiryLog: Send + Sync {
    /// How many such moments fall in `(after, until]`.
    fn expiring(
        &self,
        after: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;
}

/// Every capability: what the conformance suite and the local API need.
pub trait KeyStore:
    LookupKey
    + LookupKeys
    + RecordUse
    + CreateKey
    + GetKey
    + ListKeys
    + UpdateKey
    + RollKey
    + DeleteKey
    + ListEvents
    + RevokeLeaked
    + ExpiryLog
    + IdempotencyStore
{
}
impl<T> KeyStore for T where
    T: LookupKey
        + LookupKeys
        + RecordUse
        + CreateKey
        + GetKey
        + ListKeys
        + UpdateKey
        + RollKey
        + DeleteKey
        + ListEvents
        + RevokeLeaked
        + ExpiryLog
        + IdempotencyStore
{
}

/// The page token: opaque to callers, it encodes only a position inside the
/// caller's own partition (the last key id, or event id, returned) and a
/// 64-bit digest of the token's version, what it pages (the account, and
/// the key for its events) and that position. So a token from another
/// account or key, or one with any character changed, added or removed, is
/// rejected as [`StoreError::InvalidToken`] and never moves a query. It is
/// not encrypted (the position in it can be read) and the digest has no
/// secret: it detects edits and mix-ups, it does not authenticate — which it
/// need not, as the partition always comes from the caller.
pub mod token {
    use super::*;

    const VERSION: u8 = 2;
    const TAG_LEN: usize = 8;

    fn tag(scope: &[&str], last: &[u8]) -> [u8; TAG_LEN] {
        let mut h = Sha256::new()
            .chain_update(b"prolinksqr page token\0")
            .chain_update([VERSION]);
        for part in scope {
            h = h.chain_update(part.as_bytes()).chain_update(b"\0");
        }
        let digest = h.chain_update(last).finalize();
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&digest[..TAG_LEN]);
        out
    }

    fn encode_at(scope: &[&str], last: &str) -> String {
        let mut bytes = Vec::with_capacity(1 + TAG_LEN + last.len());
        bytes.push(VERSION);
        bytes.extend_from_slice(&tag(scope, last.as_bytes()));
        bytes.extend_from_slice(last.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn decode_at(scope: &[&str], token: &str, len: usize) -> Result<String, StoreError> {
        if token.len() > 64 {
            return Err(StoreError::InvalidToken);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| StoreError::InvalidToken)?;
        match bytes.split_first() {
            Some((&VERSION, rest)) if rest.len() == TAG_LEN + len => {
                let (t, last) = rest.split_at(TAG_LEN);
                if t != tag(scope, last) {
                    return Err(StoreError::InvalidToken);
                }
                String::from_utf8(last.to_vec()).map_err(|_| StoreError::InvalidToken)
            }
            _ => Err(StoreError::InvalidToken),
        }
    }

    /// A key-list token: after key `last` of `account`.
    pub fn encode(account: &AccountId, last: &KeyId) -> String {
        encode_at(&[account.as_str()], last.as_str())
    }

    /// The key a key-list token of `account` names, or `InvalidToken`.
    pub fn decode(account: &AccountId, token: &str) -> Result<KeyId, StoreError> {
        let last = decode_at(&[account.as_str()], token, KeyId::LEN)?;
        KeyId::parse(&last).ok_or(StoreError::InvalidToken)
    }

    /// An event-list token: after event `last` of key `id` of `account`.
    pub fn encode_event(account: &AccountId, id: &KeyId, last: &EventId) -> String {
        encode_at(&["events", account.as_str(), id.as_str()], last.as_str())
    }

    /// The event an event-list token of key `id` of `account` names.
    pub fn decode_event(
        account: &AccountId,
        id: &KeyId,
        token: &str,
    ) -> Result<EventId, StoreError> {
        let last = decode_at(
            &["events", account.as_str(), id.as_str()],
            token,
            EventId::LEN,
        )?;
        EventId::parse(&last).ok_or(StoreError::InvalidToken)
    }
}

/// The in-memory store: the local API's default and the unit tests' store.
/// Same semantics as DynamoDB's: every item of a change changes together
/// under one lock.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    lookups: HashMap<KeyHash, KeyLookup>,
    records: BTreeMap<(AccountId, KeyId), KeyRecord>,
    events: BTreeMap<(AccountId, KeyId, EventId), KeyEvent>,
    /// Deleted keys: when.
    gone: HashMap<(AccountId, KeyId), Timestamp>,
    counts: HashMap<AccountId, u32>,
    idempotency: HashMap<EntryId, Entry>,
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

    /// Every record and lookup item, for the invariant checker.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let state = self.state()?;
        Ok(Snapshot {
            records: state.records.values().cloned().collect(),
            lookups: state.lookups.iter().map(|(h, l)| (*h, l.clone())).collect(),
            undecodable: Vec::new(),
        })
    }
}

impl State {
    fn record_mut(
        &mut self,
        account: &AccountId,
        id: &KeyId,
    ) -> Result<&mut KeyRecord, StoreError> {
        self.records
            .get_mut(&(account.clone(), id.clone()))
            .ok_or(StoreError::NotFound)
    }

    fn event(&mut self, account: &AccountId, event: KeyEvent) {
        self.events.insert(
            (account.clone(), event.key_id.clone(), event.id.clone()),
            event,
        );
    }
}

impl LookupKey for MemoryStore {
    async fn lookup(&self, hash: &KeyHash) -> Result<Option<KeyLookup>, StoreError> {
        Ok(self.state()?.lookups.get(hash).cloned())
    }
}

impl LookupKeys for MemoryStore {
    async fn lookup_many(
        &self,
        hashes: &[KeyHash],
    ) -> Result<HashMap<KeyHash, KeyLookup>, StoreError> {
        let state = self.state()?;
        Ok(hashes
            .iter()
            .filter_map(|h| state.lookups.get(h).map(|l| (*h, l.clone())))
            .collect())
    }
}

impl RecordUse for MemoryStore {
    async fn record_use(
        &self,
        hash: &KeyHash,
        lookup: &KeyLookup,
        now: Timestamp,
        interval: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        let Some(stored) = state.lookups.get_mut(hash) else {
            return Ok(false);
        };
        if !stored.use_due_at(now, interval) {
            return Ok(false);
        }
        // To the millisecond, as DynamoDB keeps it.
        let now = chrono::SubsecRound::trunc_subsecs(now, 3);
        stored.last_used_at = Some(now);
        if let Ok(record) = state.record_mut(&lookup.account_id, &lookup.key_id) {
            record.last_used_at = Some(now);
        }
        Ok(true)
    }
}

impl State {
    /// Checks that `completion`'s claim still holds its entry and seals the
    /// answer for `record`; nothing is written yet.
    fn sealed_for(
        &self,
        completion: Option<&Completion<'_>>,
        record: &KeyRecord,
    ) -> Result<Option<(EntryId, crate::idempotency::Sealed)>, StoreError> {
        let Some(c) = completion else {
            return Ok(None);
        };
        match self.idempotency.get(&c.entry) {
            Some(e) if e.token == c.token && e.answer.is_none() => {
                Ok(Some((c.entry, (c.seal)(record)?)))
            }
            _ => Err(StoreError::IdempotencyLost),
        }
    }

    fn complete(&mut self, sealed: Option<(EntryId, crate::idempotency::Sealed)>) {
        if let Some((entry, answer)) = sealed
            && let Some(e) = self.idempotency.get_mut(&entry)
        {
            e.answer = Some(answer);
        }
    }
}

impl IdempotencyStore for MemoryStore {
    async fn claim(
        &self,
        entry: &EntryId,
        fingerprint: &Fingerprint,
        now: Timestamp,
    ) -> Result<Claim, StoreError> {
        let mut state = self.state()?;
        if let Some(found) = state.idempotency.get(entry)
            && !found.replaceable_at(now)
        {
            return Ok(found.answers(fingerprint));
        }
        let token = crate::material::random_base62(24);
        state.idempotency.insert(
            *entry,
            Entry {
                fingerprint: *fingerprint,
                created_at: now,
                token: token.clone(),
                answer: None,
                lock_until: now + crate::idempotency::LOCK,
            },
        );
        Ok(Claim::Claimed(token))
    }

    async fn release(&self, entry: &EntryId, token: &str) -> Result<(), StoreError> {
        let mut state = self.state()?;
        if state
            .idempotency
            .get(entry)
            .is_some_and(|e| e.token == token && e.answer.is_none())
        {
            state.idempotency.remove(entry);
        }
        Ok(())
    }
}

impl CreateKey for MemoryStore {
    async fn create_with(
        &self,
        record: &KeyRecord,
        audit: &Audit,
        max_keys: u32,
        completion: Option<&Completion<'_>>,
    ) -> Result<(), StoreError> {
        let mut state = self.state()?;
        let rk = (record.account_id.clone(), record.id.clone());
        if state.lookups.contains_key(&record.hash) || state.records.contains_key(&rk) {
            return Err(StoreError::AlreadyExists);
        }
        let sealed = state.sealed_for(completion, record)?;
        let count = state.counts.entry(record.account_id.clone()).or_default();
        if *count >= max_keys {
            return Err(StoreError::KeyLimitReached);
        }
        *count += 1;
        state.complete(sealed);
        state.lookups.insert(record.hash, record.lookup());
        state.records.insert(rk, record.clone());
        state.event(&record.account_id, KeyEvent::created(record, audit));
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

impl MemoryStore {
    /// The guarded mutation of the in-memory store: the same read, plan and
    /// writes as DynamoDB's ([`crate::change`]), under the one lock, so it
    /// can never race; DynamoDB's proves itself on DynamoDB Local.
    fn mutate(
        &self,
        account: &AccountId,
        id: &KeyId,
        change: &Change<'_>,
        expected: Option<u64>,
        audit: &Audit,
        completion: Option<&Completion<'_>>,
    ) -> Result<Option<Plan>, StoreError> {
        let mut state = self.state()?;
        let rk = (account.clone(), id.clone());
        let current = state
            .records
            .get(&rk)
            .cloned()
            .ok_or(StoreError::NotFound)?;
        let Some(plan) = change::plan(&current, change, expected, audit)? else {
            return Ok(None);
        };
        let named: Vec<KeyHash> = current.named_hashes().collect();
        let writes = change::lookup_writes(&named, plan.after.as_ref());
        let foreign = |l: &KeyLookup| l.key_id != *id || l.account_id != *account;
        for (hash, _, existed) in &writes.keep {
            match state.lookups.get(hash) {
                Some(_) if !existed => return Err(StoreError::AlreadyExists),
                Some(l) if foreign(l) => {
                    return Err(StoreError::Corrupt(
                        "a lookup item of this key belongs to another key".to_owned(),
                    ));
                }
                _ => {}
            }
        }
        for hash in &writes.remove {
            if state.lookups.get(hash).is_some_and(foreign) {
                return Err(StoreError::Corrupt(
                    "a lookup item of this key belongs to another key".to_owned(),
                ));
            }
        }
        let sealed = match &plan.after {
            Some(after) => state.sealed_for(completion, after)?,
            None => None,
        };
        state.complete(sealed);
        for hash in &writes.remove {
            state.lookups.remove(hash);
        }
        for (hash, lookup, _) in &writes.keep {
            let last_used_at = state.lookups.get(hash).and_then(|l| l.last_used_at);
            state.lookups.insert(
                *hash,
                KeyLookup {
                    last_used_at,
                    ..lookup.clone()
                },
            );
        }
        match &plan.after {
            Some(after) => {
                state.records.insert(rk, after.clone());
            }
            None => {
                state.records.remove(&rk);
                if let Some(c) = state.counts.get_mut(account) {
                    *c = c.saturating_sub(1);
                }
                state.gone.insert(rk, audit.at);
            }
        }
        state.event(account, plan.event.clone());
        Ok(Some(plan))
    }
}

impl UpdateKey for MemoryStore {
    async fn update(
        &self,
        account: &AccountId,
        id: &KeyId,
        changes: &KeyChanges,
        expected_version: Option<u64>,
        audit: &Audit,
    ) -> Result<KeyRecord, StoreError> {
        committed(self.mutate(
            account,
            id,
            &Change::Update(changes),
            expected_version,
            audit,
            None,
        )?)
    }
}

/// The record a committed plan wrote.
pub(crate) fn committed(plan: Option<Plan>) -> Result<KeyRecord, StoreError> {
    plan.and_then(|p| p.after)
        .ok_or_else(|| StoreError::Corrupt("a change planned no record".to_owned()))
}

impl RollKey for MemoryStore {
    async fn roll_with(
        &self,
        account: &AccountId,
        id: &KeyId,
        key: &ApiKey,
        grace: chrono::Duration,
        expected_version: Option<u64>,
        audit: &Audit,
        completion: Option<&Completion<'_>>,
    ) -> Result<KeyRecord, StoreError> {
        let change = Change::Roll {
            hash: key.hash(),
            prefix: key.display_prefix(),
            grace,
        };
        committed(self.mutate(account, id, &change, expected_version, audit, completion)?)
    }
}

impl DeleteKey for MemoryStore {
    async fn delete_at(
        &self,
        account: &AccountId,
        id: &KeyId,
        expected: Option<u64>,
        audit: &Audit,
    ) -> Result<(), StoreError> {
        self.mutate(account, id, &Change::Delete, expected, audit, None)
            .map(|_| ())
    }
}

impl ExpiryLog for MemoryStore {
    async fn expiring(&self, after: Timestamp, until: Timestamp) -> Result<usize, StoreError> {
        let state = self.state()?;
        let within = |t: &Option<Timestamp>| t.is_some_and(|t| after < t && t <= until);
        Ok(state
            .lookups
            .values()
            .filter(|l| within(&l.expires_at) || within(&l.grace_until))
            .count())
    }
}

impl RevokeLeaked for MemoryStore {
    async fn revoke_leaked(
        &self,
        hash: &KeyHash,
        audit: &Audit,
    ) -> Result<LeakOutcome, StoreError> {
        let Some(lookup) = self.lookup(hash).await? else {
            return Ok(LeakOutcome::NotOurs);
        };
        if lookup.is_expired_at(audit.at) {
            return Ok(LeakOutcome::NotOurs);
        }
        let (account, id) = (&lookup.account_id, &lookup.key_id);
        match self.mutate(account, id, &Change::RevokeLeaked(*hash), None, audit, None) {
            Ok(Some(_)) => Ok(LeakOutcome::Revoked(id.clone())),
            Ok(None) => Ok(LeakOutcome::AlreadyRevoked(id.clone())),
            Err(StoreError::NotFound) => Ok(LeakOutcome::NotOurs),
            Err(e) => Err(e),
        }
    }
}

impl ListEvents for MemoryStore {
    async fn events(
        &self,
        account: &AccountId,
        id: &KeyId,
        limit: u16,
        token: Option<&str>,
        now: Timestamp,
    ) -> Result<EventPage, StoreError> {
        let before = token
            .map(|t| token::decode_event(account, id, t))
            .transpose()?;
        let state = self.state()?;
        let key = (account.clone(), id.clone());
        let visible = state.records.contains_key(&key)
            || state
                .gone
                .get(&key)
                .is_some_and(|at| now < *at + DELETED_EVENTS_KEPT);
        if !visible {
            return Err(StoreError::NotFound);
        }
        let limit = usize::from(limit.clamp(1, MAX_PAGE));
        let mut items: Vec<KeyEvent> = state
            .events
            .iter()
            .rev()
            .filter(|((a, k, e), _)| {
                a == account && k == id && before.as_ref().is_none_or(|b| e < b)
            })
            .map(|(_, e)| e.clone())
            .take(limit + 1)
            .collect();
        let next_token = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .map(|e| token::encode_event(account, id, &e.id))
        } else {
            None
        };
        Ok(EventPage { items, next_token })
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
