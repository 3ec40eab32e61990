//! Authorizer result caching on the local API, which emulates API Gateway's
//! cache; the dashboard handlers flush it through the AWS SDK, at the local
//! API's `FlushStageAuthorizersCache`, as the deployed functions flush API
//! Gateway's. TTL 3600 throughout: only a flush can end an entry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use apikeys::{KeyStore, MemoryStore};
use authorizer_cache::CacheFlush;
use authorizer_cache::testing::FakeApiGateway;
use keys_api::ApiConfig;
use local_stack::LocalApi;
use serde_json::json;
use tokio::net::TcpListener;

use crate::e2e::*;

/// Starts a caching local API (TTL `ttl`) whose dashboard flushes through
/// `flush`, or, when `None`, through the SDK at the API itself.
async fn start_cached<S: KeyStore + 'static>(
    store: S,
    ttl: u32,
    flush: Option<CacheFlush>,
) -> (String, Arc<LocalApi<S>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let flush = match flush {
        Some(f) => f,
        None => LocalApi::<S>::cache_flush_for(&base).await,
    };
    let settings = authorizer::Settings::default().with_cache_ttl(ttl).unwrap();
    let api = Arc::new(
        LocalApi::new(store, ApiConfig::new("sub", ORIGIN).unwrap())
            .with_authorizer_settings(settings)
            .with_cache_flush(flush),
    );
    api.spawn_expiry_sweep();
    tokio::spawn(local_stack::http::serve(
        listener,
        api.clone(),
        std::future::pending::<()>(),
    ));
    (base, api)
}

fn cache_use(r: &Reply) -> String {
    r.json()["authorizerCache"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// The "done when", on both stores.
async fn done_when(base: &str) {
    let (key, id) = create(base, "acct-cache", &["links.read", "links.delete"]).await;
    let r = call(base, "GET", "/links/a", &key).await;
    assert_eq!(
        (r.status, cache_use(&r)),
        (200, "miss".into()),
        "{}",
        r.text()
    );
    let r = call(base, "GET", "/links/b", &key).await;
    assert_eq!(
        (r.status, cache_use(&r)),
        (200, "hit".into()),
        "{}",
        r.text()
    );
    let r = call(base, "DELETE", "/links/a", &key).await;
    assert_eq!(
        (r.status, cache_use(&r)),
        (200, "hit".into()),
        "{}",
        r.text()
    );

    let r = patch(base, "acct-cache", &id, json!({"scopes": ["links.read"]})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-authorizer-cache-flush"), None);
    let r = call(base, "DELETE", "/links/a", &key).await;
    assert_eq!(r.status, 403, "scope removed: refused at the next call");
    assert_eq!(
        r.json(),
        json!({"Message": "User is not authorized to access this resource"})
    );

    let r = patch(base, "acct-cache", &id, json!({"active": false})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(call(base, "GET", "/links/a", &key).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_when_with_the_embedded_store() {
    let (base, api) = start_cached(MemoryStore::new(), 3600, None).await;
    done_when(&base).await;
    assert_eq!(api.authorizer_cache().unwrap().flushes(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_when_with_dynamodb_local() {
    let store = apikeys::testing::fresh_dynamo_store("e2e_cache_done_when").await;
    let (base, _) = start_cached(store, 3600, None).await;
    done_when(&base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_roll_are_refused_at_the_next_call() {
    let (base, _) = start_cached(MemoryStore::new(), 3600, None).await;
    let (key, id) = create(&base, "acct-c2", &["links.read"]).await;
    assert_eq!(call(&base, "GET", "/links/a", &key).await.status, 200);
    let rolled = request(
        &base,
        "POST",
        &format!("/apikeys/{id}/roll"),
        &[("Authorization", &bearer("acct-c2"))],
        None,
    )
    .await;
    assert_eq!(rolled.status, 201, "{}", rolled.text());
    let new = rolled.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(
        call(&base, "GET", "/links/a", &key).await.status,
        401,
        "grace 0"
    );
    assert_eq!(call(&base, "GET", "/links/a", &new).await.status, 200);
    let r = request(
        &base,
        "DELETE",
        &format!("/apikeys/{id}"),
        &[("Authorization", &bearer("acct-c2"))],
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(call(&base, "GET", "/links/a", &new).await.status, 401);
}

/// The identity source is required: without `x-api-key` API Gateway answers
/// 401 itself, so a Bearer key does not work with caching on.
#[tokio::test]
async fn without_x_api_key_the_gateway_answers_401() {
    let (base, api) = start_cached(MemoryStore::new(), 3600, None).await;
    let (key, _) = create(&base, "acct-c3", &["links.read"]).await;
    let r = request(
        &base,
        "GET",
        "/links",
        &[("Authorization", &format!("Bearer {key}"))],
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    let r = request(&base, "GET", "/links", &[("x-api-key", "")], None).await;
    assert_eq!(r.status, 401);
    assert_eq!(call(&base, "GET", "/links", &key).await.status, 200);
    assert_eq!(api.authorizer_cache().unwrap().flushes(), 0);
}

/// Callers hammer the API with one key while the dashboard deactivates it:
/// no call that started after the dashboard's success answer is allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_call_started_after_the_success_answer_is_allowed() {
    let (base, _) = start_cached(MemoryStore::new(), 3600, None).await;
    for change in [
        json!({"active": false}),
        json!({"scopes": ["folders.read"]}),
    ] {
        let (key, id) = create(&base, "acct-race", &["links.read"]).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut callers = Vec::new();
        for _ in 0..4 {
            let (base, key, stop) = (base.clone(), key.clone(), stop.clone());
            callers.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    let r = call(&base, "GET", "/links/a", &key).await;
                    seen.push((started, r.status));
                }
                seen
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = patch(&base, "acct-race", &id, change.clone()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let answered = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut seen = Vec::new();
        for c in callers {
            seen.extend(c.await.unwrap());
        }
        let before_ok = seen
            .iter()
            .filter(|(t, s)| *t < answered && *s == 200)
            .count();
        let after: Vec<u16> = seen
            .iter()
            .filter(|(t, _)| *t > answered)
            .map(|(_, s)| *s)
            .collect();
        assert!(
            before_ok > 10,
            "{change}: the key worked before ({before_ok} calls)"
        );
        assert!(
            after.len() > 10,
            "{change}: calls after the answer: {}",
            after.len()
        );
        let allowed = after.iter().filter(|s| **s == 200).count();
        assert_eq!(
            allowed, 0,
            "{change}: {allowed} allowed calls after the answer"
        );
    }
}

/// The flush fails (the control plane answers 500 to every try): the change
/// is applied and answered, marked pending; the cached entry still allows
/// the key, which is why the Streams consumer flushes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_flush_never_loses_the_change() {
    let fake = FakeApiGateway::failing(u32::MAX, 500).await;
    let flush = fake
        .flush_client(local_stack::API_ID, local_stack::STAGE)
        .await;
    let (base, _) = start_cached(MemoryStore::new(), 3600, Some(flush)).await;
    let (key, id) = create(&base, "acct-fail", &["links.read"]).await;
    assert_eq!(call(&base, "GET", "/links/a", &key).await.status, 200);
    let r = patch(&base, "acct-fail", &id, json!({"active": false})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-authorizer-cache-flush"), Some("pending"));
    assert_eq!(r.json()["active"], false, "the change is applied");
    assert_eq!(fake.seen().len(), 3, "the SDK tried three times");
    let r = call(&base, "GET", "/links/a", &key).await;
    assert_eq!((r.status, cache_use(&r)), (200, "hit".into()));
}

/// Expiry with caching on: the sweep flushes, so an expired key's cached
/// entry does not outlive its expiry (here within the local sweep's second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_key_is_refused_although_its_answer_was_cached() {
    let (base, api) = start_cached(MemoryStore::new(), 3600, None).await;
    let expires = chrono::Utc::now() + chrono::Duration::seconds(2);
    let body = json!({"name": "soon", "scopes": ["links.read"],
                      "expiresAt": expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)})
    .to_string();
    let r = request(
        &base,
        "POST",
        "/apikeys",
        &[
            ("Authorization", &bearer("acct-exp")),
            ("Content-Type", "application/json"),
        ],
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let key = r.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(call(&base, "GET", "/links/a", &key).await.status, 200);
    let r = call(&base, "GET", "/links/a", &key).await;
    assert_eq!((r.status, cache_use(&r)), (200, "hit".into()));
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(call(&base, "GET", "/links/a", &key).await.status, 401);
    assert!(api.authorizer_cache().unwrap().flushes() >= 1);
}

/// A repeated `x-api-key` decides the same way with the cache on and off:
/// its last value is the key (the value API Gateway keys its cache on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_x_api_key_decides_alike_with_the_cache_on_and_off() {
    let (off, _stop) = start(MemoryStore::new()).await;
    let (on, _api) = start_cached(MemoryStore::new(), 3600, None).await;
    for base in [off.as_str(), on.as_str()] {
        let (good, _) = create(base, "acct-dup", &["links.read"]).await;
        let unknown = apikeys::ApiKey::generate();
        let bad = unknown.expose_secret();
        let two = |first: &str, second: &str| {
            let (first, second) = (first.to_owned(), second.to_owned());
            async move {
                request(
                    base,
                    "GET",
                    "/links/a",
                    &[("x-api-key", &first), ("x-api-key", &second)],
                    None,
                )
                .await
                .status
            }
        };
        // Twice each: with the cache on, the second is served from it.
        for _ in 0..2 {
            assert_eq!(two(bad, &good).await, 200, "{base}: the last one counts");
            assert_eq!(two(&good, bad).await, 401, "{base}: the last one counts");
        }
    }
}
