//! `Idempotency-Key` on create and roll, on both stores: a repeat returns
//! the first answer (the same secret), another body is 422, a repeat while
//! the first runs is 409, an entry older than 24 hours answers nothing, and
//! another account's same value is another entry. On DynamoDB Local, a
//! scan of the table finds no piece of any key with entries present.

use std::sync::Arc;

use apikeys::idempotency::Claim;
use apikeys::testing::{all_items, fresh_dynamo_store};
use apikeys::{ApiKey, KeyStore, MemoryStore};
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Response};
use serde_json::Value;

use crate::dashboard::*;

const VALUE: &str = "4f7c2e1a-9b3d-4e8f-a6c5-1d2e3f4a5b6c";

fn create_event(value: Option<&str>, body: &str, sub: &str) -> Value {
    let mut ev = sample("createKey");
    set_body(&mut ev, Some(body));
    set_caller(&mut ev, sub);
    set_header(&mut ev, "Idempotency-Key", value);
    ev
}

fn roll_event(id: &str, value: Option<&str>, body: Option<&str>) -> Value {
    let mut ev = sample("rollKey");
    set_id(&mut ev, id);
    set_body(&mut ev, body);
    set_header(&mut ev, "If-Match", None);
    set_header(&mut ev, "Idempotency-Key", value);
    ev
}

fn body_text(resp: &Response<Body>) -> String {
    match resp.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

fn replayed(resp: &Response<Body>) -> bool {
    resp.headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

const BODY: &str = r#"{"name":"CI bot","scopes":["links.read"]}"#;

async fn keys_of<S: KeyStore>(store: &S, sub: &str) -> usize {
    let mut ev = sample("listKeys");
    set_caller(&mut ev, sub);
    json_body(&call(store, "listKeys", &ev).await)["items"]
        .as_array()
        .unwrap()
        .len()
}

pub async fn a_repeated_create_returns_the_first_answer<S: KeyStore>(store: &S) {
    let first = call(
        store,
        "createKey",
        &create_event(Some(VALUE), BODY, "acct-idem"),
    )
    .await;
    assert_eq!(first.status(), 201, "{}", body_text(&first));
    assert!(!replayed(&first));
    let again = call(
        store,
        "createKey",
        &create_event(Some(VALUE), BODY, "acct-idem"),
    )
    .await;
    assert_eq!(again.status(), 201);
    assert!(replayed(&again), "a replay says so");
    assert_eq!(body_text(&again), body_text(&first), "byte for byte");
    assert_eq!(again.headers()["cache-control"], "no-store");
    assert_eq!(again.headers()["etag"], first.headers()["etag"]);
    assert_eq!(keys_of(store, "acct-idem").await, 1, "one key");

    // The quoted form of the draft is the same value.
    let quoted = format!("\"{VALUE}\"");
    let q = call(
        store,
        "createKey",
        &create_event(Some(&quoted), BODY, "acct-idem"),
    )
    .await;
    assert_eq!(body_text(&q), body_text(&first));

    // Another body with the same value: 422, nothing created.
    let other = r#"{"name":"another","scopes":["links.read"]}"#;
    let reused = call(
        store,
        "createKey",
        &create_event(Some(VALUE), other, "acct-idem"),
    )
    .await;
    assert_eq!(reused.status(), 422);
    assert_eq!(error_code(&reused), "idempotency_key_reused");
    assert_eq!(keys_of(store, "acct-idem").await, 1);

    // Another account with the same value: its own key.
    let theirs = call(
        store,
        "createKey",
        &create_event(Some(VALUE), BODY, "acct-other"),
    )
    .await;
    assert_eq!(theirs.status(), 201);
    assert!(!replayed(&theirs));
    assert_ne!(json_body(&theirs)["key"], json_body(&first)["key"]);

    // Without the header: a new key each time, as before.
    for _ in 0..2 {
        let plain = call(store, "createKey", &create_event(None, BODY, "acct-idem")).await;
        assert_eq!(plain.status(), 201);
    }
    assert_eq!(keys_of(store, "acct-idem").await, 3);

    // Malformed values are a 400 before anything happens.
    for bad in ["short", &"x".repeat(256), "tab\tinside-the-value-here"] {
        let resp = call(
            store,
            "createKey",
            &create_event(Some(bad), BODY, "acct-idem"),
        )
        .await;
        assert_eq!(resp.status(), 400, "{bad}");
        assert_eq!(error_code(&resp), "invalid_idempotency_key");
    }
    assert_eq!(keys_of(store, "acct-idem").await, 3);
}

pub async fn a_repeat_while_the_first_runs_is_409_and_a_failed_first_frees_the_value<
    S: KeyStore,
>(
    store: &S,
) {
    let req = request(&create_event(Some(VALUE), BODY, "acct-busy"));
    let key = keys_api::idempotency::IdempotencyKey::from_request(
        &req,
        &apikeys::AccountId::parse("acct-busy").unwrap(),
        "/apikeys",
    )
    .unwrap()
    .unwrap();
    // Another request holds the value.
    let Claim::Claimed(token) = store
        .claim(&key.entry, &key.fingerprint, lambda_support::now())
        .await
        .unwrap()
    else {
        panic!("a fresh value is claimed");
    };
    let busy = call(
        store,
        "createKey",
        &create_event(Some(VALUE), BODY, "acct-busy"),
    )
    .await;
    assert_eq!(busy.status(), 409);
    assert_eq!(error_code(&busy), "idempotency_in_progress");
    assert_eq!(busy.headers()["retry-after"], "1");
    // Its claim lapses after 30 s (it crashed): the value is free again.
    let later = lambda_support::now() + chrono::Duration::seconds(31);
    let taken = create_key::create(store, &config(), &req, later)
        .await
        .unwrap();
    assert_eq!(taken.status, 201);
    store.release(&key.entry, &token).await.unwrap();
    let replay = call(
        store,
        "createKey",
        &create_event(Some(VALUE), BODY, "acct-busy"),
    )
    .await;
    assert!(
        replayed(&replay),
        "the completed entry outlives the lapsed claim's release"
    );

    // A first request that fails (key limit) leaves the value free.
    let cfg = config().with_max_keys(1).unwrap();
    let value = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    let full = create_key::handle(
        store,
        &cfg,
        request(&create_event(Some(value), BODY, "acct-busy")),
    )
    .await;
    assert_eq!(full.status(), 409);
    assert_eq!(error_code(&full), "key_limit_reached");
    let cfg = config().with_max_keys(10).unwrap();
    let ok = create_key::handle(
        store,
        &cfg,
        request(&create_event(Some(value), BODY, "acct-busy")),
    )
    .await;
    assert_eq!(ok.status(), 201, "{}", body_text(&ok));
    assert!(!replayed(&ok));
}

pub async fn an_entry_older_than_a_day_answers_nothing<S: KeyStore>(store: &S) {
    let req = request(&create_event(Some(VALUE), BODY, "acct-old"));
    let now = lambda_support::now();
    let first = create_key::create(store, &config(), &req, now)
        .await
        .unwrap();
    let within = create_key::create(store, &config(), &req, now + chrono::Duration::hours(23))
        .await
        .unwrap();
    assert_eq!(within.body_text(), first.body_text());
    let after = create_key::create(store, &config(), &req, now + chrono::Duration::hours(25))
        .await
        .unwrap();
    assert_eq!(after.status, 201);
    assert_ne!(after.body_text(), first.body_text(), "a new key after 24 h");
}

pub async fn a_repeated_roll_returns_the_first_secret<S: KeyStore>(store: &S) {
    let created = call(store, "createKey", &create_event(None, BODY, SAMPLE_SUB)).await;
    let id = json_body(&created)["id"].as_str().unwrap().to_owned();
    let body = Some(r#"{"gracePeriodSeconds":0}"#);
    let first = call(store, "rollKey", &roll_event(&id, Some(VALUE), body)).await;
    assert_eq!(first.status(), 201, "{}", body_text(&first));
    let again = call(store, "rollKey", &roll_event(&id, Some(VALUE), body)).await;
    assert_eq!(again.status(), 201);
    assert!(replayed(&again));
    assert_eq!(body_text(&again), body_text(&first));
    let mut get = sample("getKey");
    set_id(&mut get, &id);
    let got = call(store, "getKey", &get).await;
    assert_eq!(got.headers()["etag"], "\"2\"", "one roll");
    let secret = ApiKey::parse(json_body(&first)["key"].as_str().unwrap()).unwrap();
    assert!(
        store.lookup(&secret.hash()).await.unwrap().is_some(),
        "the first secret is current"
    );
    // Another body on the same key: 422.
    let other = call(
        store,
        "rollKey",
        &roll_event(&id, Some(VALUE), Some(r#"{"gracePeriodSeconds":60}"#)),
    )
    .await;
    assert_eq!(other.status(), 422);
    // The same value on create (another path): 422.
    let create = call(
        store,
        "createKey",
        &create_event(Some(VALUE), BODY, SAMPLE_SUB),
    )
    .await;
    assert_eq!(create.status(), 422);
}

/// Eight identical creates at once: one key; every 201 carries the same
/// secret; the rest are 409 (still running).
pub async fn concurrent_repeats_make_one_key<S: KeyStore + 'static>(store: Arc<S>) {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                call(
                    &*store,
                    "createKey",
                    &create_event(Some(VALUE), BODY, "acct-burst"),
                )
                .await
            })
        })
        .collect();
    let mut secrets = std::collections::BTreeSet::new();
    for t in tasks {
        let resp = t.await.unwrap();
        match resp.status().as_u16() {
            201 => {
                secrets.insert(json_body(&resp)["key"].as_str().unwrap().to_owned());
            }
            409 => assert_eq!(error_code(&resp), "idempotency_in_progress"),
            other => panic!("{other}: {}", body_text(&resp)),
        }
    }
    assert_eq!(secrets.len(), 1, "every 201 shows the same key");
    assert_eq!(keys_of(&*store, "acct-burst").await, 1);
    let after = call(
        &*store,
        "createKey",
        &create_event(Some(VALUE), BODY, "acct-burst"),
    )
    .await;
    assert!(replayed(&after));
    assert_eq!(
        json_body(&after)["key"].as_str().unwrap(),
        secrets.first().unwrap()
    );
}

macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                super::$name(&apikeys::MemoryStore::new()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dynamo() {
                super::$name(&apikeys::testing::fresh_dynamo_store(stringify!($name)).await).await;
            }
        }
    )*};
}

both_stores!(
    a_repeated_create_returns_the_first_answer,
    a_repeat_while_the_first_runs_is_409_and_a_failed_first_frees_the_value,
    an_entry_older_than_a_day_answers_nothing,
    a_repeated_roll_returns_the_first_secret,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_concurrent_repeats_make_one_key() {
    concurrent_repeats_make_one_key(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_concurrent_repeats_make_one_key() {
    concurrent_repeats_make_one_key(Arc::new(fresh_dynamo_store("idem-burst").await)).await;
}

/// Every byte string a scan could find a key in: strings, binaries (as
/// bytes), numbers, in lists and maps.
fn texts(v: &AttributeValue, out: &mut Vec<Vec<u8>>) {
    match v {
        AttributeValue::S(s) | AttributeValue::N(s) => out.push(s.as_bytes().to_vec()),
        AttributeValue::B(b) => out.push(b.as_ref().to_vec()),
        AttributeValue::Ss(l) | AttributeValue::Ns(l) => {
            out.extend(l.iter().map(|s| s.as_bytes().to_vec()));
        }
        AttributeValue::Bs(l) => out.extend(l.iter().map(|b| b.as_ref().to_vec())),
        AttributeValue::L(l) => l.iter().for_each(|v| texts(v, out)),
        AttributeValue::M(m) => m.values().for_each(|v| texts(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_piece_of_any_key_is_stored_readably_with_entries_present() {
    let store = fresh_dynamo_store("idem-scan").await;
    let mut secrets = Vec::new();
    for (i, sub) in ["acct-s1", "acct-s2"].iter().enumerate() {
        let value = format!("{VALUE}-{i}");
        let created = call(&store, "createKey", &create_event(Some(&value), BODY, sub)).await;
        assert_eq!(created.status(), 201);
        let id = json_body(&created)["id"].as_str().unwrap().to_owned();
        secrets.push(json_body(&created)["key"].as_str().unwrap().to_owned());
        let mut roll = roll_event(&id, Some(&format!("{value}-roll")), None);
        set_caller(&mut roll, sub);
        let rolled = call(&store, "rollKey", &roll).await;
        assert_eq!(rolled.status(), 201, "{}", body_text(&rolled));
        secrets.push(json_body(&rolled)["key"].as_str().unwrap().to_owned());
    }
    let items = all_items(&store).await;
    assert!(
        items.iter().any(|i| i
            .get("pk")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|p| p.starts_with("IDEM#"))),
        "the entries are there"
    );
    let mut stored = Vec::new();
    for item in &items {
        for v in item.values() {
            texts(v, &mut stored);
        }
    }
    // Any 8 consecutive characters of a key's random body, or the
    // Idempotency-Key values, anywhere: the values are the AEAD's keys.
    for secret in &secrets {
        let body = &secret.as_bytes()[4..];
        for piece in body.windows(8) {
            for s in &stored {
                assert!(
                    !s.windows(8).any(|w| w == piece),
                    "a piece of a key is stored readably"
                );
            }
        }
    }
    for s in &stored {
        assert!(!s.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()));
    }
}
