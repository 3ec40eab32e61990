//! The local API over HTTP with the authorizer cache off and on (TTL 300):
//! calls per second and latency percentiles of one key calling `GET
//! /links/{id}` from concurrent clients, then the time from the dashboard's
//! success answer (deactivation) to the first refused call, on the embedded
//! store and, when `AWS_ENDPOINT_URL_DYNAMODB` names one, on DynamoDB Local.
//! Prints figures; asserts nothing about time.
//!
//! ```text
//! cargo bench -p local-stack --bench authorizer_cache
//! infra/scripts/with-dynamodb-local.sh cargo bench -p local-stack --bench authorizer_cache
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use apikeys::MemoryStore;
use keys_api::ApiConfig;
use local_stack::LocalApi;
use local_stack::testing::request;
use serde_json::json;
use tokio::net::TcpListener;

const CLIENTS: usize = 8;
const RUN: Duration = Duration::from_secs(5);

async fn start<S: apikeys::KeyStore + 'static>(store: S, ttl: u32) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let settings = authorizer::Settings::default().with_cache_ttl(ttl).unwrap();
    let mut api = LocalApi::new(store, ApiConfig::new("sub", "http://localhost").unwrap())
        .with_authorizer_settings(settings);
    if ttl > 0 {
        api = api.with_cache_flush(LocalApi::<MemoryStore>::cache_flush_for(&base).await);
    }
    tokio::spawn(local_stack::http::serve(
        listener,
        Arc::new(api),
        std::future::pending::<()>(),
    ));
    base
}

fn bearer() -> String {
    format!("Bearer {}", local_stack::jwt::unsigned_token("acct-bench"))
}

async fn create(base: &str) -> (String, String) {
    let body = json!({"name": "bench", "scopes": ["links.read"]}).to_string();
    let r = request(
        base,
        "POST",
        "/apikeys",
        &[
            ("Authorization", &bearer()),
            ("Content-Type", "application/json"),
        ],
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 201);
    let v = r.json();
    (
        v["key"].as_str().unwrap().to_owned(),
        v["id"].as_str().unwrap().to_owned(),
    )
}

/// `CLIENTS` callers for `RUN`: (calls per second, p50, p99, share of 200s).
async fn load(base: &str, key: &str) -> (f64, Duration, Duration, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let (base, key, stop) = (base.to_owned(), key.to_owned(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let path = format!("/links/l{i}-{n}");
                let t = Instant::now();
                let r = request(&base, "GET", &path, &[("x-api-key", &key)], None).await;
                seen.push((t.elapsed(), r.status));
            }
            seen
        }));
    }
    tokio::time::sleep(RUN).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let ok = all.iter().filter(|(_, s)| *s == 200).count() as f64 / all.len() as f64;
    let mut lat: Vec<Duration> = all.iter().map(|(d, _)| *d).collect();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize];
    (
        all.len() as f64 / RUN.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        ok,
    )
}

/// Callers run while the key is deactivated: time from the dashboard's
/// success answer to the end of the first refused call, and the number of
/// allowed calls that started after the answer.
async fn revocation(base: &str) -> (Duration, usize) {
    let (key, id) = create(base).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (base, key, stop) = (base.to_owned(), key.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let r = request(&base, "GET", "/links/a", &[("x-api-key", &key)], None).await;
                seen.push((started, Instant::now(), r.status));
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = request(
        base,
        "PATCH",
        &format!("/apikeys/{id}"),
        &[
            ("Authorization", &bearer()),
            ("Content-Type", "application/json"),
        ],
        Some(r#"{"active":false}"#),
    )
    .await;
    assert_eq!(r.status, 200);
    let answered = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let first_refused = all
        .iter()
        .filter(|(_, ended, s)| *s == 401 && *ended > answered)
        .map(|(_, ended, _)| *ended - answered)
        .min()
        .unwrap();
    let late_allowed = all
        .iter()
        .filter(|(started, _, s)| *started > answered && *s == 200)
        .count();
    (first_refused, late_allowed)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "local API, {CLIENTS} clients, one connection per call, {} s per row",
            RUN.as_secs()
        );
        let dynamodb = std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some();
        for (label, ttl, on_dynamodb) in [
            ("embedded, cache off", 0, false),
            ("embedded, TTL 300", 300, false),
            ("DynamoDB Local, off", 0, true),
            ("DynamoDB Local, 300", 300, true),
        ] {
            if on_dynamodb && !dynamodb {
                continue;
            }
            let base = if on_dynamodb {
                let store = apikeys::testing::fresh_dynamo_store(&format!("bench_{ttl}")).await;
                start(store, ttl).await
            } else {
                start(MemoryStore::new(), ttl).await
            };
            let (key, _) = create(&base).await;
            let (rps, p50, p99, ok) = load(&base, &key).await;
            println!(
                "{label:<22} {rps:>8.0} calls/s   p50 {:>6.3} ms   p99 {:>6.3} ms   200s {:.1} %",
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3,
                ok * 100.0
            );
            let (first, late) = revocation(&base).await;
            println!(
                "{label:<22} deactivation answered → first refused call ended after {:.3} ms; allowed calls started after the answer: {late}",
                first.as_secs_f64() * 1e3
            );
        }
    });
}
