//! API Gateway's authorizer result cache, emulated for the local API.
//!
//! As API Gateway documents it for a REQUEST authorizer with a result TTL
//! above 0:
//! - the identity source (`x-api-key`) must be present and non-empty, else
//!   API Gateway answers 401 without calling the authorizer;
//! - an answer is cached under the identity source's value for the TTL, and
//!   the cached *policy* is evaluated against each later call's method ARN,
//!   whatever route that call is for;
//! - `FlushStageAuthorizersCache` empties the stage's cache.
//!
//! Choices where the documentation is silent, each on the safe side:
//! - only policies (Allow or Deny) are cached; an `Unauthorized` answer or
//!   a failure is not, so a reactivated key works at its next call (the
//!   dashboard flushes on every change of state anyway);
//! - an answer whose authorizer invocation began before a flush is not
//!   stored, so no call that starts after a flush is decided on state read
//!   before it. (On AWS the Streams consumer's second flush, after the
//!   authorizer's timeout, covers an invocation in flight during a flush.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Whether a call's decision came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    Hit,
    Miss,
}

impl CacheUse {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheUse::Hit => "hit",
            CacheUse::Miss => "miss",
        }
    }
}

/// One stage's cache.
#[derive(Debug)]
pub struct AuthorizerCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, authorizer::Response)>>,
    /// Bumped by every flush.
    generation: AtomicU64,
    flushes: AtomicU64,
}

impl AuthorizerCache {
    pub fn new(ttl: Duration) -> AuthorizerCache {
        AuthorizerCache {
            ttl,
            entries: Mutex::default(),
            generation: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The cached answer for `identity`, when one is younger than the TTL.
    pub fn get(&self, identity: &str) -> Option<authorizer::Response> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(identity) {
            Some((at, resp)) if at.elapsed() < self.ttl => Some(resp.clone()),
            Some(_) => {
                entries.remove(identity);
                None
            }
            None => None,
        }
    }

    /// Where an authorizer invocation begins: pass it to [`AuthorizerCache::put`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Stores the answer of an invocation that began at `generation`,
    /// unless a flush came in between.
    pub fn put(&self, identity: &str, response: authorizer::Response, generation: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if self.generation.load(Ordering::SeqCst) == generation {
            entries.insert(identity.to_owned(), (Instant::now(), response));
        }
    }

    /// `FlushStageAuthorizersCache`.
    pub fn flush(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.flushes.fetch_add(1, Ordering::Relaxed);
        entries.clear();
    }

    /// How many flushes the stage has had.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(id: &str) -> authorizer::Response {
        let mut r = authorizer::Response::default();
        r.principal_id = Some(id.to_owned());
        r
    }

    #[test]
    fn entries_live_for_the_ttl_and_a_flush_empties_the_cache() {
        let cache = AuthorizerCache::new(Duration::from_millis(200));
        let g = cache.generation();
        cache.put("k1", answer("a"), g);
        assert_eq!(
            cache.get("k1").and_then(|r| r.principal_id).as_deref(),
            Some("a")
        );
        assert!(cache.get("k2").is_none());
        cache.flush();
        assert!(cache.get("k1").is_none());
        cache.put("k1", answer("a"), cache.generation());
        std::thread::sleep(Duration::from_millis(250));
        assert!(cache.get("k1").is_none(), "expired");
        assert_eq!(cache.flushes(), 1);
    }

    #[test]
    fn an_answer_begun_before_a_flush_is_not_stored() {
        let cache = AuthorizerCache::new(Duration::from_secs(60));
        let g = cache.generation();
        cache.flush();
        cache.put("k1", answer("stale"), g);
        assert!(cache.get("k1").is_none());
    }
}
