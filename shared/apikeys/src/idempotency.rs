//! What the store keeps for `Idempotency-Key`: one entry per key value and
//! account, found by a hash of both, holding the request's fingerprint, the
//! time it was made, and — once the request's change committed — its answer
//! as ciphertext the store cannot read (sealed by the dashboard API under a
//! key derived from the client's value, which the store never sees).
//!
//! An entry is claimed (a lock that expires) before the change runs; the
//! change's own transaction completes it with the sealed answer, so a
//! committed change always has its answer kept, and an entry left pending
//! means its change never committed.

use std::future::Future;

use crate::model::{KeyRecord, Timestamp};
use crate::store::StoreError;

/// How long an entry answers repeats: 24 hours from the first request.
pub const WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// How long a claim blocks repeats while its request runs (a crashed
/// request's claim lapses after this; the functions time out long before).
pub const LOCK: chrono::Duration = chrono::Duration::seconds(30);

/// The entry's id: a SHA-256 over the account and the client's value,
/// made by the dashboard API. Never the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntryId(pub [u8; 32]);

/// The request's fingerprint: a SHA-256 over its method, path and body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

/// A sealed answer: opaque to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request holds the entry now (its token completes or releases it).
    Claimed(String),
    /// The first request with this value is still running.
    InFlight,
    /// The value was used within the window for another request.
    Mismatch,
    /// The first request's answer.
    Replay(Sealed),
}

/// How a change completes its claimed entry, in its own transaction: with
/// the answer sealed from the record the change commits.
pub struct Completion<'a> {
    pub entry: EntryId,
    /// The claim's token: the entry is completed only while this request
    /// still holds it.
    pub token: String,
    pub seal: &'a (dyn Fn(&KeyRecord) -> Result<Sealed, StoreError> + Send + Sync),
}

impl std::fmt::Debug for Completion<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("entry", &self.entry)
            .finish_non_exhaustive()
    }
}

/// The store's part of `Idempotency-Key`.
pub trait IdempotencyStore: Send + Sync {
    /// Claims `entry` for a request with `fingerprint` made at `now`, unless
    /// an entry younger than [`WINDOW`] answers it (replay, mismatch) or a
    /// live claim holds it (in flight). An expired entry, or a claim whose
    /// [`LOCK`] lapsed (its change never committed), is taken over.
    fn claim(
        &self,
        entry: &EntryId,
        fingerprint: &Fingerprint,
        now: Timestamp,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Gives up a claim whose change did not commit, so the client may try
    /// again at once. Does nothing to a completed entry or another's claim.
    fn release(
        &self,
        entry: &EntryId,
        token: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The state of a stored entry, as both stores keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub fingerprint: Fingerprint,
    pub created_at: Timestamp,
    pub token: String,
    /// `None` while pending.
    pub answer: Option<Sealed>,
    pub lock_until: Timestamp,
}

impl Entry {
    /// Whether a new claim at `now` may replace this entry.
    pub fn replaceable_at(&self, now: Timestamp) -> bool {
        now >= self.created_at + WINDOW || (self.answer.is_none() && now >= self.lock_until)
    }

    /// What a claim that cannot replace it finds.
    pub fn answers(&self, fingerprint: &Fingerprint) -> Claim {
        if self.fingerprint != *fingerprint {
            Claim::Mismatch
        } else {
            match &self.answer {
                Some(sealed) => Claim::Replay(sealed.clone()),
                None => Claim::InFlight,
            }
        }
    }
}
