//! Warm decision time of the authorizer handler against the in-memory store.
//! Prints figures; asserts nothing about time.
//!
//! ```text
//! cargo bench -p authorizer --bench decision
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use apikeys::{AccountId, ApiKey, CreateKey, KeyName, KeyRecord, MemoryStore};
use authorizer::Request;
use chrono::Utc;
use scopes::{Scope, ScopeSet};
use serde_json::json;

fn event(key: &str) -> Request {
    let mut ev = authorizer::testing::fixture();
    ev["headers"]["x-api-key"] = json!(key);
    ev["multiValueHeaders"]["x-api-key"] = json!([key]);
    serde_json::from_value(ev).unwrap()
}

fn measure(rt: &tokio::runtime::Runtime, label: &str, store: &MemoryStore, req: &Request) {
    measure_with(rt, label, store, req, &authorizer::Settings::default());
}

fn measure_with(
    rt: &tokio::runtime::Runtime,
    label: &str,
    store: &MemoryStore,
    req: &Request,
    settings: &authorizer::Settings,
) {
    let run = |n: u32| {
        let start = Instant::now();
        for _ in 0..n {
            let r = rt.block_on(authorizer::authorize(
                store,
                settings,
                black_box(req),
                Utc::now(),
                "bench",
                apikeys::Deadline::after(authorizer::DEFAULT_BUDGET),
            ));
            black_box(&r);
        }
        start.elapsed()
    };
    run(2_000); // warm up
    let mut samples: Vec<Duration> = (0..15).map(|_| run(20_000) / 20_000).collect();
    samples.sort();
    println!(
        "{label:<40} median {:>7.2} µs   min {:>7.2} µs   max {:>7.2} µs",
        samples[samples.len() / 2].as_secs_f64() * 1e6,
        samples[0].as_secs_f64() * 1e6,
        samples[samples.len() - 1].as_secs_f64() * 1e6,
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let store = MemoryStore::new();
    let key = ApiKey::generate();
    let record = KeyRecord::new(
        &key,
        AccountId::parse("acct-bench").unwrap(),
        KeyName::parse("bench").unwrap(),
        ScopeSet::from(Scope::LinksRead),
        None,
        "user".to_owned(),
        Utc::now(),
    );
    rt.block_on(store.create(
        &record,
        &apikeys::Audit::system("test", chrono::Utc::now()),
        u32::MAX,
    ))
    .unwrap();
    // Logging stays off (no subscriber): this measures the decision itself.
    println!("authorizer warm decision time, in-memory store, 15 samples of 20 000 calls");
    measure(
        &rt,
        "allow (links.read on GET /links/{id})",
        &store,
        &event(key.expose_secret()),
    );
    let denied = ApiKey::generate();
    let mut r2 = record.clone();
    r2.hash = denied.hash();
    r2.id = apikeys::KeyId::generate();
    r2.scopes = ScopeSet::from(Scope::CafeRead);
    rt.block_on(store.create(
        &r2,
        &apikeys::Audit::system("test", chrono::Utc::now()),
        u32::MAX,
    ))
    .unwrap();
    measure(
        &rt,
        "deny (scope missing)",
        &store,
        &event(denied.expose_secret()),
    );
    measure(
        &rt,
        "401 unknown key (one lookup)",
        &store,
        &event(ApiKey::generate().expose_secret()),
    );
    measure(
        &rt,
        "401 bad checksum (no lookup)",
        &store,
        &event(&format!("{}0", &key.expose_secret()[..43])),
    );
    // Caching on: the policy names every route the scopes grant.
    let cached = authorizer::Settings::default().with_cache_ttl(300).unwrap();
    measure_with(
        &rt,
        "cacheable allow, links.read (2 routes)",
        &store,
        &event(key.expose_secret()),
        &cached,
    );
    let all = ApiKey::generate();
    let mut r3 = record.clone();
    r3.hash = all.hash();
    r3.id = apikeys::KeyId::generate();
    r3.scopes = ScopeSet::from(Scope::All);
    rt.block_on(store.create(
        &r3,
        &apikeys::Audit::system("test", chrono::Utc::now()),
        u32::MAX,
    ))
    .unwrap();
    measure_with(
        &rt,
        "cacheable allow, all (31 routes)",
        &store,
        &event(all.expose_secret()),
        &cached,
    );
}
