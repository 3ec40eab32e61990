//! Different changes to one key, released together, many rounds; after each
//! round the invariant checker, the record (no answered change lost) and the
//! authorizer with every secret ever issued for the key.
//!
//! On the in-memory store these pass by construction (one lock); they are
//! run there only to keep both stores' semantics equal. The proof is the
//! DynamoDB Local run. `RACE_ROUNDS` sets the rounds per pair (default 50;
//! the large run uses 200).

use std::sync::Arc;

use apikeys::dynamo::DynamoStore;
use apikeys::invariant::{self, Snapshot};
use apikeys::{
    AccountId, ApiKey, Audit, Deadline, KeyChanges, KeyHash, KeyName, KeyRecord, KeyStore,
    LeakOutcome, MemoryStore, StoreError,
};
use authorizer::{AuthError, Settings};
use chrono::Utc;
use scopes::{ROUTES, Route, Scope, ScopeSet};
use tokio::sync::Barrier;

/// A store whose whole state the checker can read.
pub trait Inspect: KeyStore + 'static {
    fn snap(&self) -> impl std::future::Future<Output = Snapshot> + Send;
}

impl Inspect for MemoryStore {
    async fn snap(&self) -> Snapshot {
        self.snapshot().unwrap()
    }
}

impl Inspect for DynamoStore {
    async fn snap(&self) -> Snapshot {
        self.snapshot().await.unwrap()
    }
}

/// Rounds per pair: `RACE_ROUNDS`, else 50.
pub fn rounds() -> usize {
    std::env::var("RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Roll with no grace period: the old secret stops at once.
    Roll,
    /// Roll with an hour's grace: two live secrets.
    RollWithGrace,
    Deactivate,
    Reactivate,
    /// Scopes narrowed from read + delete to read.
    Narrow,
    Rename,
    Delete,
    /// A delete with `If-Match`: at the version the round started from.
    DeleteShown,
    /// A leak report for the key's first secret.
    Leak,
}

/// What an operation answered.
#[derive(Debug)]
pub enum Answer {
    Done,
    Rolled(ApiKey),
    Leak(LeakOutcome),
    Failed(StoreError),
}

pub fn audit() -> Audit {
    Audit::system("race-test", Utc::now())
}

pub const SEED_SCOPES: ScopeSet = ScopeSet::EMPTY
    .with(Scope::LinksRead)
    .with(Scope::LinksDelete);

/// Creates a key of `account` with links.read + links.delete.
pub async fn seed<S: KeyStore>(store: &S, account: &AccountId) -> (ApiKey, KeyRecord) {
    let key = ApiKey::generate();
    let record = KeyRecord::new(
        &key,
        account.clone(),
        KeyName::parse("race").unwrap(),
        SEED_SCOPES,
        None,
        "tester".to_owned(),
        Utc::now(),
    );
    store.create(&record, &audit(), u32::MAX).await.unwrap();
    (key, record)
}

pub async fn run<S: KeyStore>(store: &S, op: Op, record: &KeyRecord, first: &KeyHash) -> Answer {
    let (account, id) = (&record.account_id, &record.id);
    let update = |changes: KeyChanges| async move {
        match store.update(account, id, &changes, None, &audit()).await {
            Ok(_) => Answer::Done,
            Err(e) => Answer::Failed(e),
        }
    };
    match op {
        Op::Roll | Op::RollWithGrace => {
            let key = ApiKey::generate();
            let grace = if op == Op::Roll {
                chrono::Duration::zero()
            } else {
                chrono::Duration::hours(1)
            };
            match store.roll(account, id, &key, grace, None, &audit()).await {
                Ok(_) => Answer::Rolled(key),
                Err(e) => Answer::Failed(e),
            }
        }
        Op::Deactivate => {
            update(KeyChanges {
                active: Some(false),
                ..KeyChanges::default()
            })
            .await
        }
        Op::Reactivate => {
            update(KeyChanges {
                active: Some(true),
                ..KeyChanges::default()
            })
            .await
        }
        Op::Narrow => {
            update(KeyChanges {
                scopes: Some(ScopeSet::from(Scope::LinksRead)),
                ..KeyChanges::default()
            })
            .await
        }
        Op::Rename => {
            update(KeyChanges {
                name: Some(KeyName::parse("renamed").unwrap()),
                ..KeyChanges::default()
            })
            .await
        }
        Op::Delete => match store.delete(account, id, &audit()).await {
            Ok(()) => Answer::Done,
            Err(e) => Answer::Failed(e),
        },
        Op::DeleteShown => match store
            .delete_at(account, id, Some(record.version), &audit())
            .await
        {
            Ok(()) => Answer::Done,
            Err(e) => Answer::Failed(e),
        },
        Op::Leak => match store.revoke_leaked(first, &audit()).await {
            Ok(o) => Answer::Leak(o),
            Err(e) => Answer::Failed(e),
        },
    }
}

/// The authorizer's answer, in three words.
pub async fn decide<S: KeyStore>(store: &S, key: &ApiKey, route: &Route) -> &'static str {
    let event = authorizer::testing::event_for(route, &[("x-api-key", key.expose_secret())]);
    let answer = authorizer::authorize(
        store,
        &Settings::default(),
        &event,
        Utc::now(),
        "race",
        Deadline::after(std::time::Duration::from_secs(10)),
    )
    .await;
    match answer {
        Ok(resp) => {
            let (effect, _) = authorizer::testing::effect_and_resource(&resp);
            if effect == "Allow" { "allow" } else { "deny" }
        }
        Err(AuthError::Unauthorized) => "unauthorized",
        Err(AuthError::Store(e)) => panic!("store failed during a decision: {e}"),
    }
}

/// What the authorizer must answer for `key` on `route`, from the record.
pub fn expected_decision(record: Option<&KeyRecord>, key: &ApiKey, route: &Route) -> &'static str {
    let now = Utc::now();
    let Some(r) = record else {
        return "unauthorized";
    };
    let live = r.live_hashes(now).any(|h| h == key.hash());
    if !live || !r.active || r.deactivated_reason.is_some() {
        "unauthorized"
    } else if r.scopes.allows(route.scope) {
        "allow"
    } else {
        "deny"
    }
}

fn route(method: &str, resource: &str) -> &'static Route {
    ROUTES
        .iter()
        .find(|r| r.method == method && r.resource == resource)
        .unwrap()
}

/// Checks one round's aftermath; returns what went wrong, each as a line.
pub async fn check_key<S: Inspect>(
    store: &S,
    account: &AccountId,
    record: &KeyRecord,
    secrets: &[ApiKey],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut snap = store.snap().await;
    snap.records.retain(|r| &r.account_id == account);
    snap.lookups.retain(|(_, l)| &l.account_id == account);
    for v in invariant::check(&snap, Utc::now()) {
        problems.push(format!("invariant: {v}"));
    }
    let now_record = match store.get(account, &record.id).await {
        Ok(r) => Some(r),
        Err(StoreError::NotFound) => None,
        Err(e) => panic!("get failed: {e}"),
    };
    for (i, key) in secrets.iter().enumerate() {
        for route in [route("GET", "/links"), route("DELETE", "/links/{id}")] {
            let want = expected_decision(now_record.as_ref(), key, route);
            let got = decide(store, key, route).await;
            if got != want {
                problems.push(format!(
                    "secret #{i} on {} {}: authorizer says {got}, the record says {want}",
                    route.method, route.resource
                ));
            }
        }
    }
    problems
}

/// Races `a` against `b` on a fresh key of `account`; returns the problems.
pub async fn race_round<S: Inspect>(
    store: Arc<S>,
    a: Op,
    b: Op,
    account: AccountId,
) -> Vec<String> {
    let (first, record) = seed(&*store, &account).await;
    if a == Op::Reactivate || b == Op::Reactivate {
        let off = KeyChanges {
            active: Some(false),
            ..KeyChanges::default()
        };
        store
            .update(&account, &record.id, &off, None, &audit())
            .await
            .unwrap();
    }
    let barrier = Arc::new(Barrier::new(2));
    let spawn = |op: Op| {
        let (store, barrier, record, first) =
            (store.clone(), barrier.clone(), record.clone(), first.hash());
        tokio::spawn(async move {
            barrier.wait().await;
            run(&*store, op, &record, &first).await
        })
    };
    let (ha, hb) = (spawn(a), spawn(b));
    let answers = [(a, ha.await.unwrap()), (b, hb.await.unwrap())];

    let mut problems = Vec::new();
    let mut secrets = vec![first];
    let has = |op: Op| answers.iter().any(|(o, _)| *o == op);
    let ok = |op: Op| {
        answers
            .iter()
            .any(|(o, ans)| *o == op && !matches!(ans, Answer::Failed(_)))
    };
    let is_delete = |op: Op| op == Op::Delete || op == Op::DeleteShown;
    for (op, answer) in &answers {
        let other_ok = answers
            .iter()
            .any(|(o, ans)| o != op && !matches!(ans, Answer::Failed(_)));
        match answer {
            Answer::Rolled(k) => secrets.push(k.clone()),
            Answer::Failed(StoreError::NotFound)
                if answers.iter().any(|(o, _)| is_delete(*o)) && !is_delete(*op) => {}
            // The other change committed first: the version shown is gone.
            Answer::Failed(StoreError::VersionConflict) if *op == Op::DeleteShown && other_ok => {}
            Answer::Failed(StoreError::KeyLeaked) if *op == Op::Reactivate && has(Op::Leak) => {}
            Answer::Failed(e) => problems.push(format!("{op:?} answered an error: {e}")),
            Answer::Done | Answer::Leak(_) => {}
        }
    }
    let deleted = ok(Op::Delete) || ok(Op::DeleteShown);
    // A change that committed leaves the version shown behind: a delete at
    // that version after it must be refused (and before it, the change finds
    // no key).
    let committed_change = answers
        .iter()
        .any(|(o, ans)| *o != Op::DeleteShown && matches!(ans, Answer::Done | Answer::Rolled(_)));
    if ok(Op::DeleteShown) && committed_change {
        problems.push("deleted at a version another change had already moved".to_owned());
    }
    let now = store.get(&account, &record.id).await;
    match (&now, deleted) {
        (Err(StoreError::NotFound), true) => {}
        (Err(StoreError::NotFound), false) => {
            problems.push("the key is gone without a delete".to_owned())
        }
        (Ok(_), true) => problems.push("delete answered 204 but the record is back".to_owned()),
        (Err(e), _) => problems.push(format!("the key cannot be read: {e}")),
        (Ok(r), false) => {
            if ok(Op::Deactivate) && r.active {
                problems.push("deactivation answered 200, the record is active".to_owned());
            }
            if ok(Op::Narrow) && r.scopes != ScopeSet::from(Scope::LinksRead) {
                problems.push(format!(
                    "narrowing answered 200, the record has {}",
                    r.scopes
                ));
            }
            if ok(Op::Rename) && r.name.as_str() != "renamed" {
                problems.push("rename answered 200, the name is lost".to_owned());
            }
            let revoked = answers
                .iter()
                .any(|(_, a)| matches!(a, Answer::Leak(LeakOutcome::Revoked(_))));
            if revoked && r.active {
                problems.push("leak revoked the key, the record is active".to_owned());
            }
            if let Some(k) = secrets.get(1)
                && r.hash != k.hash()
            {
                problems.push("the roll answered 201, its secret is not current".to_owned());
            }
        }
    }
    problems.extend(check_key(&*store, &account, &record, &secrets).await);
    problems
}

/// Runs every round of one pair; fails with the counts if any round broke.
pub async fn race_pair<S: Inspect>(store: Arc<S>, a: Op, b: Op) {
    let rounds = rounds();
    let mut broken = 0;
    let mut examples = Vec::new();
    for i in 0..rounds {
        let account = AccountId::parse(&format!("race-{a:?}-{b:?}-{i}")).unwrap();
        let problems = race_round(store.clone(), a, b, account).await;
        if !problems.is_empty() {
            broken += 1;
            if examples.len() < 6 {
                examples.extend(problems.into_iter().map(|p| format!("round {i}: {p}")));
            }
        }
    }
    assert_eq!(
        broken,
        0,
        "{a:?} + {b:?}: {broken} of {rounds} rounds broke the invariant or lost an answer:\n{}",
        examples.join("\n")
    );
}

/// Many rolls at once without If-Match: all succeed, one after another.
pub async fn rolls_without_if_match_all_succeed<S: Inspect>(store: Arc<S>, n: usize) {
    let account = AccountId::parse("burst").unwrap();
    let (first, record) = seed(&*store, &account).await;
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (store, barrier, record, first) =
                (store.clone(), barrier.clone(), record.clone(), first.hash());
            tokio::spawn(async move {
                barrier.wait().await;
                run(&*store, Op::Roll, &record, &first).await
            })
        })
        .collect();
    let mut secrets = vec![first];
    let mut failures = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Answer::Rolled(k) => secrets.push(k),
            other => failures.push(format!("{other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "rolls without If-Match failed: {failures:?}"
    );
    let r = store.get(&account, &record.id).await.unwrap();
    assert_eq!(r.version, 1 + n as u64, "every roll is one version");
    let problems = check_key(&*store, &account, &record, &secrets).await;
    assert!(problems.is_empty(), "{problems:#?}");
    let live = secrets.iter().filter(|k| k.hash() == r.hash).count();
    assert_eq!(live, 1, "exactly one issued secret is current");
}
