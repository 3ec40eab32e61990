//! End-to-end over HTTP: the local API (the real handlers and authorizer
//! behind API Gateway's part) with the embedded store and with DynamoDB
//! Local, and the `local-api` binary itself.

use std::sync::Arc;

use apikeys::testing::fresh_dynamo_store;
use apikeys::{KeyStore, MemoryStore};
use keys_api::ApiConfig;
use local_stack::{LocalApi, jwt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use local_stack::testing::{Reply, request};

mod caching;

const ORIGIN: &str = "http://localhost:5173";

/// Starts the local API on a free loopback port; returns its base URL and a stopper.
async fn start<S: KeyStore + 'static>(store: S) -> (String, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let api = Arc::new(LocalApi::new(store, ApiConfig::new("sub", ORIGIN).unwrap()));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(local_stack::http::serve(listener, api, async {
        let _ = stopped.await;
    }));
    (base, stop)
}

fn bearer(sub: &str) -> String {
    format!("Bearer {}", jwt::unsigned_token(sub))
}

async fn create(base: &str, sub: &str, scopes: &[&str]) -> (String, String) {
    let body = json!({"name": "e2e", "scopes": scopes}).to_string();
    let r = request(
        base,
        "POST",
        "/apikeys",
        &[
            ("Authorization", &bearer(sub)),
            ("Content-Type", "application/json"),
        ],
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    (
        v["key"].as_str().unwrap().to_owned(),
        v["id"].as_str().unwrap().to_owned(),
    )
}

async fn patch(base: &str, sub: &str, id: &str, body: Value) -> Reply {
    request(
        base,
        "PATCH",
        &format!("/apikeys/{id}"),
        &[
            ("Authorization", &bearer(sub)),
            ("Content-Type", "application/json"),
        ],
        Some(&body.to_string()),
    )
    .await
}

async fn call(base: &str, method: &str, path: &str, key: &str) -> Reply {
    request(base, method, path, &[("x-api-key", key)], None).await
}

/// The flow of the local-API issue, step by step.
async fn the_whole_flow(base: &str) {
    // 1. create a key
    let (key, id) = create(base, "acct-e2e", &["links.read"]).await;

    // 2. a route its scope allows → 200, through the echo backend
    let r = call(base, "GET", "/links/lnk_1", &key).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let echo = r.json();
    assert_eq!(
        echo["route"],
        json!({"method": "GET", "resource": "/links/{id}", "scope": "links.read"})
    );
    assert_eq!(echo["headers"]["X-Account-Id"], "acct-e2e");
    assert_eq!(echo["headers"]["X-Key-Id"], id.as_str());
    assert_eq!(echo["headers"]["X-Key-Scopes"], "links.read");
    assert_eq!(echo["headers"]["x-api-key"], "redacted");
    assert!(!r.text().contains(&key), "the backend saw the key");
    let bearer_key = request(
        base,
        "GET",
        "/links",
        &[("Authorization", &format!("Bearer {key}"))],
        None,
    )
    .await;
    assert_eq!(bearer_key.status, 200, "Authorization: Bearer works too");

    // 3. a route it lacks → 403 (explicit deny)
    let r = call(base, "DELETE", "/links/lnk_1", &key).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json(),
        json!({"Message": "User is not authorized to access this resource with an explicit deny"})
    );

    // 4. PATCH scopes → now 200
    let r = patch(
        base,
        "acct-e2e",
        &id,
        json!({"scopes": ["links.read", "links.delete"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(call(base, "DELETE", "/links/lnk_1", &key).await.status, 200);

    // 5. deactivate → the very next call 401
    assert_eq!(
        patch(base, "acct-e2e", &id, json!({"active": false}))
            .await
            .status,
        200
    );
    let r = call(base, "GET", "/links/lnk_1", &key).await;
    assert_eq!(
        (r.status, r.json()),
        (401, json!({"message": "Unauthorized"}))
    );

    // 6. reactivate → 200
    assert_eq!(
        patch(base, "acct-e2e", &id, json!({"active": true}))
            .await
            .status,
        200
    );
    assert_eq!(call(base, "GET", "/links/lnk_1", &key).await.status, 200);

    // 9. another account's token cannot see or change the key (404)
    let other = bearer("acct-other");
    let r = request(
        base,
        "GET",
        &format!("/apikeys/{id}"),
        &[("Authorization", &other)],
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        patch(base, "acct-other", &id, json!({"active": false}))
            .await
            .status,
        404
    );
    let r = request(
        base,
        "DELETE",
        &format!("/apikeys/{id}"),
        &[("Authorization", &other)],
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    let listed = request(base, "GET", "/apikeys", &[("Authorization", &other)], None).await;
    assert_eq!(listed.json()["items"], json!([]));
    assert_eq!(
        call(base, "GET", "/links/lnk_1", &key).await.status,
        200,
        "still works for its owner"
    );

    // 7. delete → 401
    let r = request(
        base,
        "DELETE",
        &format!("/apikeys/{id}"),
        &[("Authorization", &bearer("acct-e2e"))],
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(call(base, "GET", "/links/lnk_1", &key).await.status, 401);

    // 8. no key or a garbage key on a declared route → 401; an undeclared route → 403
    assert_eq!(request(base, "GET", "/links", &[], None).await.status, 401);
    assert_eq!(call(base, "GET", "/links", "key-garbage").await.status, 401);
    let (live, _) = create(base, "acct-e2e", &["all"]).await;
    for (method, path) in [
        ("GET", "/nope"),
        ("PUT", "/links/lnk_1"),
        ("GET", "/links/a/b"),
        ("GET", "/apikeysx"),
    ] {
        let r = call(base, method, path, &live).await;
        assert_eq!(
            (r.status, r.json()),
            (403, json!({"message": "Missing Authentication Token"})),
            "{method} {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_over_http_with_the_embedded_store() {
    let (base, _stop) = start(MemoryStore::new()).await;
    the_whole_flow(&base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_over_http_with_dynamodb_local() {
    let (base, _stop) = start(fresh_dynamo_store("e2e").await).await;
    the_whole_flow(&base).await;
}

#[tokio::test]
async fn dashboard_routes_need_a_token_and_answer_cors() {
    let (base, _stop) = start(MemoryStore::new()).await;
    let r = request(&base, "GET", "/apikeys", &[], None).await;
    assert_eq!(
        (r.status, r.json()),
        (401, json!({"message": "Unauthorized"}))
    );
    assert_eq!(r.header("access-control-allow-origin"), Some(ORIGIN));
    let r = request(
        &base,
        "GET",
        "/apikeys",
        &[("Authorization", "Bearer not-a-jwt")],
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    // A key is no dashboard identity.
    let (key, _) = create(&base, "acct-1", &["all"]).await;
    let r = request(
        &base,
        "GET",
        "/apikeys",
        &[("Authorization", &format!("Bearer {key}"))],
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    // Preflight: unauthenticated, with CORS.
    let r = request(
        &base,
        "OPTIONS",
        "/apikeys/abc",
        &[
            ("Origin", ORIGIN),
            ("Access-Control-Request-Method", "PATCH"),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("access-control-allow-methods")
            .unwrap()
            .contains("PATCH")
    );
    // Handler errors carry CORS and the JSON error shape.
    let r = request(
        &base,
        "POST",
        "/apikeys",
        &[
            ("Authorization", &bearer("acct-1")),
            ("Content-Type", "application/json"),
        ],
        Some("{"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "malformed_json");
    assert_eq!(r.header("access-control-allow-origin"), Some(ORIGIN));
}

#[tokio::test]
async fn a_store_failure_behind_the_authorizer_is_a_500() {
    let (base, _stop) = start(apikeys::testing::store_that_never_answers().await).await;
    let key = apikeys::ApiKey::generate();
    let r = call(&base, "GET", "/links", key.expose_secret()).await;
    assert_eq!((r.status, r.json()), (500, json!({"message": null})));
}

/// A header value that is not text reaches the authorizer, which refuses
/// the request: it must not vanish and leave the other key header to win.
#[tokio::test]
async fn a_key_header_that_is_not_text_is_refused_not_dropped() {
    let (base, _stop) = start(MemoryStore::new()).await;
    let (key, _) = create(&base, "acct-bytes", &["links.read"]).await;
    let bearer_key = format!("Bearer {key}");
    let ok = request(
        &base,
        "GET",
        "/links/a",
        &[("authorization", &bearer_key)],
        None,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let r = local_stack::testing::request_bytes(
        &base,
        "GET",
        "/links/a",
        &[
            ("x-api-key", b"key-\xff\xfe".as_slice()),
            ("authorization", bearer_key.as_bytes()),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json(), json!({"message": "Unauthorized"}));
}

/// DynamoDB Local in memory loses its tables when it restarts: the local
/// API creates the table again and the call succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_created_again() {
    let store = fresh_dynamo_store("recreate").await;
    let (client, table) = (store.client().clone(), store.table().to_owned());
    let (base, _stop) = start(local_stack::store::RecreatingStore(store)).await;
    create(&base, "acct-recreate", &["links.read"]).await;
    client
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let (key, _) = create(&base, "acct-recreate", &["links.read"]).await;
    assert_eq!(call(&base, "GET", "/links/a", &key).await.status, 200);
    let listed = request(
        &base,
        "GET",
        "/apikeys",
        &[("Authorization", &bearer("acct-recreate"))],
        None,
    )
    .await;
    assert_eq!(
        listed.json()["items"].as_array().unwrap().len(),
        1,
        "a new, empty table"
    );
}

/// With DynamoDB Local stopped (nothing listens), every call fails within a
/// second: 503 from the dashboard, 500 (fail closed) from the protected API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_down_calls_fail_within_a_second() {
    use apikeys::dynamo::{ClientSettings, DynamoStore};
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let store = DynamoStore::new(
        ClientSettings::LOCAL_API.client_for_endpoint(&closed).await,
        "keys",
    )
    .with_write_settings(ClientSettings::LOCAL_API);
    let (base, _stop) = start(local_stack::store::RecreatingStore(store)).await;
    let auth = bearer("acct-down");
    let key = apikeys::ApiKey::generate();
    let body = json!({"name": "x", "scopes": ["all"]}).to_string();
    type Call<'a> = (
        &'a str,
        &'a str,
        Vec<(&'a str, &'a str)>,
        Option<&'a str>,
        u16,
    );
    let calls: [Call; 3] = [
        ("GET", "/apikeys", vec![("Authorization", &auth)], None, 503),
        (
            "POST",
            "/apikeys",
            vec![
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            Some(&body),
            503,
        ),
        (
            "GET",
            "/links/a",
            vec![("x-api-key", key.expose_secret())],
            None,
            500,
        ),
    ];
    for (method, path, headers, body, status) in calls {
        let started = std::time::Instant::now();
        let r = request(&base, method, path, &headers, body).await;
        let elapsed = started.elapsed();
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        assert!(
            elapsed < std::time::Duration::from_secs(1),
            "{method} {path}: {elapsed:?}"
        );
    }
}

/// A client cannot name the tenant: identity headers it sends, in any
/// letter case, are replaced by the authorizer's decision before the
/// backend sees them (the mapping read from template.yaml).
#[tokio::test]
async fn client_sent_identity_headers_never_reach_the_backend() {
    let (base, _stop) = start(MemoryStore::new()).await;
    let (key, id) = create(&base, "acct-real", &["links.read"]).await;
    let r = request(
        &base,
        "GET",
        "/links/a",
        &[
            ("x-api-key", &key),
            ("X-Account-Id", "acct-evil"),
            ("x-account-id", "acct-evil-2"),
            ("X-ACCOUNT-ID", "acct-evil-3"),
            ("x-key-scopes", "all"),
            ("X-Key-Id", "not-mine"),
            ("X-Origin-Verify", "guessed"),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let echo = r.json();
    assert_eq!(echo["account"], "acct-real");
    assert_eq!(echo["headers"]["X-Account-Id"], "acct-real");
    assert_eq!(echo["headers"]["X-Key-Scopes"], "links.read");
    assert_eq!(echo["headers"]["X-Key-Id"], id.as_str());
    assert!(!r.text().contains("acct-evil") && !r.text().contains(&key));
}

/// The echo backend holds to the backend's contract (docs/design.md): the origin
/// secret, exactly one X-Account-Id in any letter case, at most one
/// X-Key-Id and X-Key-Scopes, no key header but the gateway's placeholder.
#[test]
fn the_echo_backend_refuses_what_did_not_come_through_the_gateway() {
    use local_stack::{KEY_HEADER_PLACEHOLDER, LOCAL_ORIGIN_SECRET, echo_backend};
    let route = scopes::route_for_template("GET", "/links/{id}").unwrap();
    let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let call = |headers: &[(&str, &str)]| {
        echo_backend(&h(headers), route, "/links/a", serde_json::Map::new()).status
    };
    let good = [
        ("X-Origin-Verify", LOCAL_ORIGIN_SECRET),
        ("X-Account-Id", "acct-1"),
        ("x-api-key", KEY_HEADER_PLACEHOLDER),
    ];
    assert_eq!(call(&good), 200);
    assert_eq!(call(&good[1..]), 403, "no origin secret");
    assert_eq!(
        call(&[("X-Origin-Verify", "wrong"), good[1], good[2]]),
        403,
        "a wrong origin secret"
    );
    for second in ["x-account-id", "X-ACCOUNT-ID", "X-Account-Id"] {
        let mut two = good.to_vec();
        two.push((second, "acct-2"));
        assert_eq!(call(&two), 400, "two X-Account-Id ({second})");
    }
    for dup in ["X-Key-Id", "x-key-id", "X-Key-Scopes", "X-KEY-SCOPES"] {
        let mut two = good.to_vec();
        two.push(("X-Key-Id", "k1"));
        two.push(("X-Key-Scopes", "links.read"));
        assert_eq!(call(&two), 200, "one of each");
        two.push((dup, "all"));
        assert_eq!(call(&two), 400, "a second {dup}");
    }
    assert_eq!(call(&good[..2]), 200, "no key header at all is fine");
    assert_eq!(call(&[good[0], good[2]]), 400, "no X-Account-Id");
    let mut keyed = good.to_vec();
    keyed.push(("Authorization", "Bearer key-abc"));
    assert_eq!(call(&keyed), 400, "a key reached the backend");
}

/// The lifecycle over HTTP, as the issue's "done when" runs it against
/// `make run`: roll with grace 0 and 60, last used, events with the actor,
/// the key limit.
#[tokio::test]
async fn roll_last_used_events_and_the_key_limit_over_http() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = ApiConfig::new("sub", ORIGIN)
        .unwrap()
        .with_max_keys(3)
        .unwrap();
    let api = Arc::new(LocalApi::new(MemoryStore::new(), config));
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(local_stack::http::serve(listener, api, async {
        let _ = stopped.await;
    }));
    let sub = "acct-life";
    let auth = bearer(sub);
    let (key, id) = create(&base, sub, &["links.read"]).await;
    assert_eq!(call(&base, "GET", "/links/a", &key).await.status, 200);

    // lastUsedAt is set by the protected call.
    let got = request(
        &base,
        "GET",
        &format!("/apikeys/{id}"),
        &[("Authorization", &auth)],
        None,
    )
    .await;
    assert!(got.json()["lastUsedAt"].is_string(), "{}", got.text());

    // An update, then roll with grace 0: the old key is 401 at once.
    assert_eq!(
        patch(&base, sub, &id, json!({"name": "renamed"}))
            .await
            .status,
        200
    );
    let roll = |body: Option<&'static str>| {
        let (base, auth, id) = (base.clone(), auth.clone(), id.clone());
        async move {
            let mut headers = vec![("Authorization", auth.as_str())];
            if body.is_some() {
                headers.push(("Content-Type", "application/json"));
            }
            request(
                &base,
                "POST",
                &format!("/apikeys/{id}/roll"),
                &headers,
                body,
            )
            .await
        }
    };
    let rolled = roll(None).await;
    assert_eq!(rolled.status, 201, "{}", rolled.text());
    assert_eq!(rolled.header("cache-control"), Some("no-store"));
    let second = rolled.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(call(&base, "GET", "/links/a", &key).await.status, 401);
    assert_eq!(call(&base, "GET", "/links/a", &second).await.status, 200);

    // Roll with grace 60: both work.
    let rolled = roll(Some(r#"{"gracePeriodSeconds":60}"#)).await;
    assert_eq!(rolled.status, 201, "{}", rolled.text());
    let third = rolled.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(call(&base, "GET", "/links/a", &second).await.status, 200);
    assert_eq!(call(&base, "GET", "/links/a", &third).await.status, 200);

    // The events: newest first, with the actor; no secret.
    let events = request(
        &base,
        "GET",
        &format!("/apikeys/{id}/events"),
        &[("Authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(events.status, 200, "{}", events.text());
    let v = events.json();
    let actions: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["rolled", "rolled", "updated", "created"]);
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == sub)
    );
    for k in [&key, &second, &third] {
        assert!(!events.text().contains(&k[4..14]));
    }

    // The key limit (3): two more, then 409.
    create(&base, sub, &["links.read"]).await;
    create(&base, sub, &["links.read"]).await;
    let body = json!({"name": "one too many", "scopes": ["links.read"]}).to_string();
    let r = request(
        &base,
        "POST",
        "/apikeys",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "key_limit_reached");
}

/// GitHub's leak report over HTTP, as the issue's "done when" runs it
/// against `make run --github-keys-url …`: a signed report of a live key
/// answers true_positive and the key's next call is 401; a badly signed one
/// is 401 and the key still works; the leaked key cannot be reactivated.
#[tokio::test]
async fn a_signed_leak_report_revokes_the_key_at_its_next_call() {
    use secret_scanning::testing::{KeyServer, Signer};
    let github = Signer::generate("github-e2e");
    let server = KeyServer::start(&[&github]).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let keys = secret_scanning::GithubKeys::new(&server.url).unwrap();
    let api = Arc::new(
        LocalApi::new(MemoryStore::new(), ApiConfig::new("sub", ORIGIN).unwrap())
            .with_github_keys(keys),
    );
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(local_stack::http::serve(listener, api, async {
        let _ = stopped.await;
    }));
    let (key, id) = create(&base, "acct-leak", &["links.read"]).await;
    let (bystander, _) = create(&base, "acct-leak", &["links.read"]).await;
    let body = json!([{"token": key, "type": "prolinksqr_api_key", "url": "https://github.com/o/r", "source": "content"}])
        .to_string();
    let post = |sig: String| {
        let (base, body) = (base.clone(), body.clone());
        async move {
            request(
                &base,
                "POST",
                "/secret-scanning/github",
                &[
                    ("Content-Type", "application/json"),
                    ("Github-Public-Key-Identifier", "github-e2e"),
                    ("Github-Public-Key-Signature", &sig),
                ],
                Some(&body),
            )
            .await
        }
    };
    // A bad signature: 401, and the key still works.
    let forged = Signer::generate("github-e2e").sign(body.as_bytes());
    let r = post(forged).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(call(&base, "GET", "/links/a", &key).await.status, 200);

    // A signed report: true_positive, and the next call is 401.
    let r = post(github.sign(body.as_bytes())).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()[0]["label"], "true_positive");
    assert_eq!(call(&base, "GET", "/links/a", &key).await.status, 401);
    assert_eq!(call(&base, "GET", "/links/a", &bystander).await.status, 200);

    // The dashboard shows why, and refuses to reactivate it.
    let got = request(
        &base,
        "GET",
        &format!("/apikeys/{id}"),
        &[("Authorization", &bearer("acct-leak"))],
        None,
    )
    .await;
    assert_eq!(got.json()["deactivatedReason"], "leaked");
    let r = patch(&base, "acct-leak", &id, json!({"active": true})).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (409, json!("key_leaked"))
    );
    assert_eq!(call(&base, "GET", "/links/a", &key).await.status, 401);

    // Rolled: the leaked secret is gone for good, the key may come back.
    let rolled = request(
        &base,
        "POST",
        &format!("/apikeys/{id}/roll"),
        &[
            ("Authorization", &bearer("acct-leak")),
            ("Content-Type", "application/json"),
        ],
        Some(r#"{"gracePeriodSeconds":3600}"#),
    )
    .await;
    assert_eq!(rolled.status, 201, "{}", rolled.text());
    assert_eq!(rolled.json()["deactivatedReason"], serde_json::Value::Null);
    let new = rolled.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(
        patch(&base, "acct-leak", &id, json!({"active": true}))
            .await
            .status,
        200
    );
    assert_eq!(call(&base, "GET", "/links/a", &new).await.status, 200);
    assert_eq!(
        call(&base, "GET", "/links/a", &key).await.status,
        401,
        "no grace for a leaked secret"
    );
}

/// `Idempotency-Key` through the local API, on both stores: the preflight
/// allows the header, a repeat returns the first answer (the same key)
/// marked as a replay and exposed to the browser, another body is a 422.
async fn a_repeated_create_over_http_is_one_key(base: &str) {
    let preflight = request(
        base,
        "OPTIONS",
        "/apikeys",
        &[
            ("Origin", ORIGIN),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "idempotency-key"),
        ],
        None,
    )
    .await;
    assert!(
        preflight
            .header("access-control-allow-headers")
            .unwrap()
            .contains("Idempotency-Key")
    );
    let send = async |body: &str| {
        request(
            base,
            "POST",
            "/apikeys",
            &[
                ("Authorization", &bearer("acct-idem-e2e")),
                ("Content-Type", "application/json"),
                (
                    "Idempotency-Key",
                    "e2e-7d1f0c2b-3a4e-4f5a-9b8c-0d1e2f3a4b5c",
                ),
            ],
            Some(body),
        )
        .await
    };
    let body = json!({"name": "retried", "scopes": ["links.read"]}).to_string();
    let first = send(&body).await;
    assert_eq!(first.status, 201, "{}", first.text());
    let again = send(&body).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.text(), first.text());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert!(
        again
            .header("access-control-expose-headers")
            .unwrap()
            .contains("Idempotent-Replayed")
    );
    let key = first.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(call(base, "GET", "/links", &key).await.status, 200);
    let other = send(&json!({"name": "other", "scopes": ["links.read"]}).to_string()).await;
    assert_eq!(other.status, 422);
    let list = request(
        base,
        "GET",
        "/apikeys",
        &[("Authorization", &bearer("acct-idem-e2e"))],
        None,
    )
    .await;
    assert_eq!(list.json()["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn idempotency_key_over_http_on_the_embedded_store() {
    let (base, _stop) = start(MemoryStore::new()).await;
    a_repeated_create_over_http_is_one_key(&base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_over_http_on_dynamodb_local() {
    let (base, _stop) = start(fresh_dynamo_store("e2e-idem").await).await;
    a_repeated_create_over_http_is_one_key(&base).await;
}
