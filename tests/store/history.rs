//! A randomized history, checked for linearizability key by key.
//!
//! Eight workers issue a random mix of updates (name, scopes, active, some
//! with If-Match), rolls (with and without grace), deletes, leak reports and
//! protected calls (the real authorizer, which also records uses) on a small
//! pool of keys, and creates to replace deleted ones. Every invocation and
//! its answer is recorded with the moments it was sent and answered. Then,
//! for each key, a search in the style of Wing & Gong / porcupine looks for
//! one order of that key's operations, consistent with real time (an
//! operation answered before another was sent comes first), in which a
//! sequential model of a key gives every recorded answer. Protected calls
//! are operations like any other: their answers must be explained too.
//!
//! `HISTORY_OPS` sets the number of operations (default 1,000; the large run
//! 10,000), `HISTORY_SEED` the seed (default fixed).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use apikeys::{
    AccountId, ApiKey, Audit, Deadline, KeyChanges, KeyId, KeyName, KeyRecord, LeakOutcome,
    StoreError,
};
use authorizer::{AuthError, Settings};
use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scopes::{ROUTES, Route, Scope, ScopeSet};

use crate::store::races::Inspect;

const WORKERS: usize = 8;
const POOL: usize = 3;
/// The scopes updates choose from, and the routes calls use.
const SCOPES: [Scope; 3] = [Scope::LinksRead, Scope::LinksDelete, Scope::FoldersRead];

fn ops_wanted() -> usize {
    std::env::var("HISTORY_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn seed() -> u64 {
    std::env::var("HISTORY_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(18)
}

fn route_for(scope: Scope) -> &'static Route {
    ROUTES
        .iter()
        .find(|r| r.scope == scope)
        .expect("every scope used here has a route")
}

/// A secret, by its place in the history's list of secrets.
type SecretNo = usize;

#[derive(Debug, Clone)]
enum Input {
    Update {
        changes: KeyChanges,
        expected: Option<u64>,
    },
    Roll {
        secret: SecretNo,
        grace: bool,
    },
    Delete,
    Leak {
        secret: SecretNo,
    },
    Call {
        secret: SecretNo,
        scope: Scope,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Output {
    Record {
        version: u64,
        active: bool,
        scopes: ScopeSet,
    },
    Rolled {
        version: u64,
    },
    Deleted,
    Revoked,
    AlreadyRevoked,
    NotOurs,
    NotFound,
    Conflict,
    Leaked,
    Allow,
    Deny,
    Unauthorized,
    /// The store failed: the change may or may not have applied.
    Unknown,
}

#[derive(Debug, Clone)]
struct Event {
    key: usize,
    input: Input,
    output: Output,
    sent: Instant,
    answered: Instant,
}

/// A key as a sequential machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Model {
    exists: bool,
    active: bool,
    leaked: bool,
    scopes: ScopeSet,
    current: SecretNo,
    previous: Option<SecretNo>,
    version: u64,
}

impl Model {
    fn live(&self, secret: SecretNo) -> bool {
        self.exists && (self.current == secret || self.previous == Some(secret))
    }

    /// The answer the operation gives from this state, and the next state.
    fn step(&self, input: &Input) -> (Output, Model) {
        let mut next = self.clone();
        let out = match input {
            _ if !self.exists && !matches!(input, Input::Leak { .. } | Input::Call { .. }) => {
                Output::NotFound
            }
            Input::Update { changes, expected } => {
                if expected.is_some_and(|v| v != self.version) {
                    Output::Conflict
                } else if changes.active == Some(true) && self.leaked {
                    Output::Leaked
                } else {
                    if let Some(s) = changes.scopes {
                        next.scopes = s;
                    }
                    if let Some(a) = changes.active {
                        next.active = a;
                    }
                    next.version += 1;
                    Output::Record {
                        version: next.version,
                        active: next.active,
                        scopes: next.scopes,
                    }
                }
            }
            Input::Roll { secret, grace } => {
                next.previous = (*grace && !self.leaked).then_some(self.current);
                next.current = *secret;
                next.leaked = false;
                next.version += 1;
                Output::Rolled {
                    version: next.version,
                }
            }
            Input::Delete => {
                next.exists = false;
                Output::Deleted
            }
            Input::Leak { secret } => {
                if !self.live(*secret) {
                    Output::NotOurs
                } else if self.leaked {
                    Output::AlreadyRevoked
                } else {
                    next.active = false;
                    next.leaked = true;
                    next.version += 1;
                    Output::Revoked
                }
            }
            Input::Call { secret, scope } => {
                if !self.live(*secret) || !self.active || self.leaked {
                    Output::Unauthorized
                } else if self.scopes.allows(*scope) {
                    Output::Allow
                } else {
                    Output::Deny
                }
            }
        };
        (out, next)
    }
}

/// Whether `events` (one key's) can be ordered, consistently with real
/// time, so that the model explains every answer. An `Unknown` answer may
/// have applied or not.
fn linearizable(events: &[Event], init: &Model) -> bool {
    let n = events.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| events[i].sent);
    let words = n.div_ceil(64);
    let mut seen: HashSet<(Vec<u64>, Model)> = HashSet::new();
    // Depth-first, with an explicit stack of (done set, state).
    let mut stack = vec![(vec![0u64; words], init.clone())];
    while let Some((done, state)) = stack.pop() {
        let is_done = |i: usize| done[i / 64] & (1 << (i % 64)) != 0;
        if (0..n).all(is_done) {
            return true;
        }
        if !seen.insert((done.clone(), state.clone())) {
            continue;
        }
        // The earliest answer among what is left: nothing sent after it can
        // come before it.
        let Some(horizon) = (0..n)
            .filter(|&i| !is_done(i))
            .map(|i| events[i].answered)
            .min()
        else {
            return true;
        };
        for &i in order.iter().filter(|&&i| !is_done(i)) {
            let e = &events[i];
            if e.sent > horizon {
                break;
            }
            let mut with = done.clone();
            with[i / 64] |= 1 << (i % 64);
            let (out, next) = state.step(&e.input);
            if e.output == Output::Unknown {
                stack.push((with.clone(), state.clone()));
                stack.push((with, next));
            } else if out == e.output {
                stack.push((with, next));
            }
        }
    }
    false
}

struct Known {
    id: KeyId,
    /// Secrets issued for the key (positions in the global list).
    secrets: Vec<SecretNo>,
    deleted: bool,
    /// The last version any answer showed.
    version: u64,
}

struct Shared {
    account: AccountId,
    keys: Mutex<Vec<Known>>,
    secrets: Mutex<Vec<ApiKey>>,
    inits: Mutex<Vec<Model>>,
    events: Mutex<Vec<Event>>,
}

fn audit() -> Audit {
    Audit::system("history-test", Utc::now())
}

impl Shared {
    fn add_secret(&self, key: ApiKey) -> SecretNo {
        let mut s = self.secrets.lock().unwrap();
        s.push(key);
        s.len() - 1
    }

    async fn create<S: Inspect>(&self, store: &S, rng: &mut StdRng) -> usize {
        let key = ApiKey::generate();
        let scopes = random_scopes(rng);
        let record = KeyRecord::new(
            &key,
            self.account.clone(),
            KeyName::parse("history").unwrap(),
            scopes,
            None,
            "tester".to_owned(),
            Utc::now(),
        );
        store.create(&record, &audit(), u32::MAX).await.unwrap();
        let secret = self.add_secret(key);
        let mut keys = self.keys.lock().unwrap();
        self.inits.lock().unwrap().push(Model {
            exists: true,
            active: true,
            leaked: false,
            scopes,
            current: secret,
            previous: None,
            version: 1,
        });
        keys.push(Known {
            id: record.id,
            secrets: vec![secret],
            deleted: false,
            version: 1,
        });
        keys.len() - 1
    }
}

fn random_scopes(rng: &mut StdRng) -> ScopeSet {
    SCOPES
        .iter()
        .filter(|_| rng.random_bool(0.5))
        .copied()
        .collect()
}

async fn call<S: Inspect>(store: &S, key: &ApiKey, scope: Scope) -> Output {
    let route = route_for(scope);
    let event = authorizer::testing::event_for(route, &[("x-api-key", key.expose_secret())]);
    let settings = Settings {
        // Uses are recorded often: the authorizer's writes race the changes.
        last_used_interval: chrono::Duration::milliseconds(50),
        ..Settings::default()
    };
    let deadline = Deadline::after(std::time::Duration::from_secs(10));
    match authorizer::authorize(store, &settings, &event, Utc::now(), "h", deadline).await {
        Ok(resp) => {
            let (effect, _) = authorizer::testing::effect_and_resource(&resp);
            if effect == "Allow" {
                Output::Allow
            } else {
                Output::Deny
            }
        }
        Err(AuthError::Unauthorized) => Output::Unauthorized,
        Err(AuthError::Store(_)) => Output::Unknown,
    }
}

fn failure(e: StoreError) -> Output {
    match e {
        StoreError::NotFound => Output::NotFound,
        StoreError::VersionConflict => Output::Conflict,
        StoreError::KeyLeaked => Output::Leaked,
        _ => Output::Unknown,
    }
}

async fn worker<S: Inspect>(store: Arc<S>, shared: Arc<Shared>, seed: u64, ops: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..ops {
        // A key of the pool (creating one where the pool has room).
        let live: Vec<usize> = {
            let keys = shared.keys.lock().unwrap();
            (0..keys.len()).filter(|&k| !keys[k].deleted).collect()
        };
        let k = if live.len() < POOL {
            shared.create(&*store, &mut rng).await
        } else {
            live[rng.random_range(0..live.len())]
        };
        let (id, secrets, version) = {
            let keys = shared.keys.lock().unwrap();
            (keys[k].id.clone(), keys[k].secrets.clone(), keys[k].version)
        };
        let any_secret = secrets[rng.random_range(0..secrets.len())];
        let roll = rng.random_range(0..100);
        let input = match roll {
            0..=34 => Input::Call {
                secret: any_secret,
                scope: SCOPES[rng.random_range(0..SCOPES.len())],
            },
            35..=59 => {
                let mut changes = KeyChanges::default();
                match rng.random_range(0..4) {
                    0 => changes.scopes = Some(random_scopes(&mut rng)),
                    1 => changes.active = Some(rng.random_bool(0.5)),
                    2 => changes.name = Some(KeyName::parse("renamed").unwrap()),
                    _ => {
                        changes.scopes = Some(random_scopes(&mut rng));
                        changes.active = Some(rng.random_bool(0.6));
                    }
                }
                Input::Update {
                    changes,
                    expected: rng.random_bool(0.2).then_some(version),
                }
            }
            60..=79 => Input::Roll {
                secret: shared.add_secret(ApiKey::generate()),
                grace: rng.random_bool(0.4),
            },
            80..=91 => Input::Leak { secret: any_secret },
            _ => Input::Delete,
        };
        if let Input::Roll { secret, .. } = input {
            // Known from the start: a call may present it while the roll runs.
            shared.keys.lock().unwrap()[k].secrets.push(secret);
        }
        let secret_of = |n: SecretNo| shared.secrets.lock().unwrap()[n].clone();
        let account = &shared.account;
        let sent = Instant::now();
        let output = match &input {
            Input::Update { changes, expected } => {
                match store
                    .update(account, &id, changes, *expected, &audit())
                    .await
                {
                    Ok(r) => Output::Record {
                        version: r.version,
                        active: r.active,
                        scopes: r.scopes,
                    },
                    Err(e) => failure(e),
                }
            }
            Input::Roll { secret, grace } => {
                let grace = if *grace {
                    chrono::Duration::hours(1)
                } else {
                    chrono::Duration::zero()
                };
                match store
                    .roll(account, &id, &secret_of(*secret), grace, None, &audit())
                    .await
                {
                    Ok(r) => Output::Rolled { version: r.version },
                    Err(e) => failure(e),
                }
            }
            Input::Delete => match store.delete(account, &id, &audit()).await {
                Ok(()) => Output::Deleted,
                Err(e) => failure(e),
            },
            Input::Leak { secret } => {
                match store
                    .revoke_leaked(&secret_of(*secret).hash(), &audit())
                    .await
                {
                    Ok(LeakOutcome::Revoked(_)) => Output::Revoked,
                    Ok(LeakOutcome::AlreadyRevoked(_)) => Output::AlreadyRevoked,
                    Ok(LeakOutcome::NotOurs) => Output::NotOurs,
                    Err(e) => failure(e),
                }
            }
            Input::Call { secret, scope } => call(&*store, &secret_of(*secret), *scope).await,
        };
        let answered = Instant::now();
        {
            let mut keys = shared.keys.lock().unwrap();
            match &output {
                Output::Record { version, .. } | Output::Rolled { version } => {
                    keys[k].version = keys[k].version.max(*version);
                }
                Output::Deleted | Output::NotFound => keys[k].deleted = true,
                _ => {}
            }
        }
        shared.events.lock().unwrap().push(Event {
            key: k,
            input,
            output,
            sent,
            answered,
        });
    }
}

/// Runs the history on `store` and checks it; panics with what failed.
pub async fn random_history_is_linearizable<S: Inspect>(store: Arc<S>, account: &str) {
    let total = ops_wanted();
    let shared = Arc::new(Shared {
        account: AccountId::parse(account).unwrap(),
        keys: Mutex::new(Vec::new()),
        secrets: Mutex::new(Vec::new()),
        inits: Mutex::new(Vec::new()),
        events: Mutex::new(Vec::new()),
    });
    let base = seed();
    let tasks: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (store, shared) = (store.clone(), shared.clone());
            tokio::spawn(worker(
                store,
                shared,
                base * 1000 + w as u64,
                total / WORKERS,
            ))
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // Once quiet: every secret of every key is presented on every scope,
    // one after another; those answers must fit the histories too.
    let keys = shared.keys.lock().unwrap().len();
    let racing = shared.events.lock().unwrap().len();
    for k in 0..keys {
        let secrets = shared.keys.lock().unwrap()[k].secrets.clone();
        for secret in secrets {
            for scope in SCOPES {
                let key = shared.secrets.lock().unwrap()[secret].clone();
                let sent = Instant::now();
                let output = call(&*store, &key, scope).await;
                shared.events.lock().unwrap().push(Event {
                    key: k,
                    input: Input::Call { secret, scope },
                    output,
                    sent,
                    answered: Instant::now(),
                });
            }
        }
    }

    let events = shared.events.lock().unwrap().clone();
    let inits = shared.inits.lock().unwrap().clone();
    let mut by_key: HashMap<usize, Vec<Event>> = HashMap::new();
    for e in events.iter().cloned() {
        by_key.entry(e.key).or_default().push(e);
    }
    let unknown = events
        .iter()
        .filter(|e| e.output == Output::Unknown)
        .count();
    let mut failed = Vec::new();
    for (k, evs) in &by_key {
        if !linearizable(evs, &inits[*k]) {
            failed.push(format!(
                "key {k}: no order of its {} operations explains the answers",
                evs.len()
            ));
        }
    }
    let mut snap = store.snap().await;
    snap.records.retain(|r| r.account_id == shared.account);
    snap.lookups.retain(|(_, l)| l.account_id == shared.account);
    let violations = apikeys::invariant::check(&snap, Utc::now());
    eprintln!(
        "history: {racing} concurrent operations and {} calls once quiet, on {keys} keys; {unknown} with unknown outcome, {} keys not linearizable, {} invariant violations",
        events.len() - racing,
        failed.len(),
        violations.len()
    );
    assert!(
        failed.is_empty() && violations.is_empty(),
        "{} of {keys} keys' histories are not linearizable:\n{}\ninvariant: {violations:#?}",
        failed.len(),
        failed.join("\n")
    );
    assert!(
        unknown * 100 <= events.len(),
        "{unknown} of {} operations failed in the store: the history proves little",
        events.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        Model {
            exists: true,
            active: true,
            leaked: false,
            scopes: ScopeSet::from(Scope::LinksRead),
            current: 0,
            previous: None,
            version: 1,
        }
    }

    fn ev(input: Input, output: Output, sent: Instant, answered: Instant) -> Event {
        Event {
            key: 0,
            input,
            output,
            sent,
            answered,
        }
    }

    /// The checker can fail: a call that succeeds with a secret that a
    /// roll answered before the call was sent is not explainable.
    #[test]
    fn the_checker_rejects_a_revoked_secret_that_still_works() {
        let t = Instant::now();
        let ms = |n| t + std::time::Duration::from_millis(n);
        let roll = ev(
            Input::Roll {
                secret: 1,
                grace: false,
            },
            Output::Rolled { version: 2 },
            ms(0),
            ms(10),
        );
        let call = ev(
            Input::Call {
                secret: 0,
                scope: Scope::LinksRead,
            },
            Output::Allow,
            ms(20),
            ms(30),
        );
        assert!(!linearizable(&[roll.clone(), call.clone()], &model()));
        // Overlapping, the call may have come first.
        let early = Event {
            sent: ms(5),
            ..call
        };
        assert!(linearizable(&[roll, early], &model()));
    }

    #[test]
    fn the_checker_rejects_a_lost_deactivation() {
        let t = Instant::now();
        let ms = |n| t + std::time::Duration::from_millis(n);
        let off = ev(
            Input::Update {
                changes: KeyChanges {
                    active: Some(false),
                    ..KeyChanges::default()
                },
                expected: None,
            },
            Output::Record {
                version: 2,
                active: false,
                scopes: ScopeSet::from(Scope::LinksRead),
            },
            ms(0),
            ms(10),
        );
        let roll = ev(
            Input::Roll {
                secret: 1,
                grace: false,
            },
            Output::Rolled { version: 3 },
            ms(0),
            ms(10),
        );
        let call = ev(
            Input::Call {
                secret: 1,
                scope: Scope::LinksRead,
            },
            Output::Allow,
            ms(20),
            ms(30),
        );
        assert!(!linearizable(&[off, roll, call], &model()));
    }
}
