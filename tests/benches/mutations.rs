//! Latency of the guarded mutation on DynamoDB Local: update and roll of one
//! key, p50 and p99, alone and with a second writer changing the same key
//! all the while (so commits race and are read and planned again).
//!
//! ```text
//! infra/scripts/with-dynamodb-local.sh cargo bench -p tests --bench mutations
//! ```
//!
//! Prints figures; asserts nothing about time. `BENCH_CALLS` sets the calls
//! per figure (default 300).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use apikeys::testing::fresh_dynamo_store;
use apikeys::{AccountId, ApiKey, Audit, KeyChanges, KeyName, KeyRecord, KeyStore};
use scopes::{Scope, ScopeSet};

fn audit() -> Audit {
    Audit::system("bench", chrono::Utc::now())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn seed<S: KeyStore>(store: &S) -> KeyRecord {
    let key = ApiKey::generate();
    let record = KeyRecord::new(
        &key,
        AccountId::parse("bench").unwrap(),
        KeyName::parse("bench").unwrap(),
        ScopeSet::from(Scope::LinksRead),
        None,
        "bench".to_owned(),
        chrono::Utc::now(),
    );
    store.create(&record, &audit(), u32::MAX).await.unwrap();
    record
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Update,
    Roll,
}

async fn once<S: KeyStore>(store: &S, r: &KeyRecord, op: Op, i: usize) {
    match op {
        Op::Update => {
            let changes = KeyChanges {
                name: Some(KeyName::parse(&format!("name {i}")).unwrap()),
                scopes: Some(if i.is_multiple_of(2) {
                    ScopeSet::from(Scope::LinksRead)
                } else {
                    ScopeSet::from(Scope::LinksRead).with(Scope::LinksDelete)
                }),
                ..KeyChanges::default()
            };
            store
                .update(&r.account_id, &r.id, &changes, None, &audit())
                .await
                .unwrap();
        }
        Op::Roll => {
            store
                .roll(
                    &r.account_id,
                    &r.id,
                    &ApiKey::generate(),
                    chrono::Duration::seconds(60),
                    None,
                    &audit(),
                )
                .await
                .unwrap();
        }
    }
}

async fn measure<S: KeyStore + 'static>(store: Arc<S>, op: Op, contended: bool, calls: usize) {
    let r = seed(&*store).await;
    let stop = Arc::new(AtomicBool::new(false));
    let rival = contended.then(|| {
        let (store, r, stop) = (store.clone(), r.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                // The other writer alternates the two changes.
                let op = if n.is_multiple_of(2) {
                    Op::Update
                } else {
                    Op::Roll
                };
                once(&*store, &r, op, n).await;
                n += 1;
            }
            n
        })
    });
    for i in 0..20 {
        once(&*store, &r, op, i).await;
    }
    let mut times = Vec::with_capacity(calls);
    for i in 0..calls {
        let t = Instant::now();
        once(&*store, &r, op, i).await;
        times.push(t.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let rival_writes = match rival {
        Some(h) => h.await.unwrap(),
        None => 0,
    };
    times.sort();
    println!(
        "{:<7} {:<22} p50 {:>7.2} ms   p99 {:>7.2} ms   ({calls} calls{})",
        format!("{op:?}").to_lowercase(),
        if contended {
            "with a second writer"
        } else {
            "alone"
        },
        percentile(&times, 0.50).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        if contended {
            format!(", {rival_writes} writes by the other")
        } else {
            String::new()
        }
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let calls = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let store = Arc::new(fresh_dynamo_store("bench-mutations").await);
    println!("guarded mutations on DynamoDB Local, one key");
    for contended in [false, true] {
        for op in [Op::Update, Op::Roll] {
            measure(store.clone(), op, contended, calls).await;
        }
    }
}
