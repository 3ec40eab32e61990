//! Every row of the authorizer semantics table, on the in-memory store.

use apikeys::{ApiKey, CreateKey, MemoryStore};
use authorizer::{AuthError, Request};
use lambda_runtime::Diagnostic;
use scopes::policy::{Decision, evaluate_json};
use scopes::{ROUTES, Scope, ScopeSet};
use serde_json::{Value, json};

use crate::*;

fn links_get() -> &'static scopes::Route {
    route("GET", "/links/{id}")
}

async fn store_with(scopes: ScopeSet) -> (Counting<MemoryStore>, ApiKey) {
    let store = Counting::<MemoryStore>::default();
    let (key, _) = stored_key(&store, scopes, None).await;
    (store, key)
}

#[test]
fn fixtures_deserialise_as_the_runtime_does() {
    let generated: Request = serde_json::from_str(GENERATED).unwrap();
    assert_eq!(generated.resource.as_deref(), Some("/links/{id}"));
    assert_eq!(generated.http_method.as_deref(), Some("GET"));
    let adjusted: Request = serde_json::from_str(FIXTURE).unwrap();
    assert_eq!(
        adjusted.method_arn.as_deref(),
        Some("arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/GET/links/lnk_8f3a2c")
    );
    assert_eq!(adjusted.headers.api_key(), ["REPLACE_WITH_A_KEY"]);
}

/// The authorizer reads its few fields itself; the full event type of
/// `aws_lambda_events` reads the same from every sample event.
#[test]
fn the_lean_request_reads_what_the_full_event_type_reads() {
    use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest as Full;
    for json in [
        GENERATED,
        FIXTURE,
        SAMPLE_ALLOW,
        SAMPLE_DENY,
        SAMPLE_UNAUTHORIZED,
    ] {
        let lean: Request = serde_json::from_str(json).unwrap();
        let full: Full = serde_json::from_str(json).unwrap();
        assert_eq!(lean.method_arn, full.method_arn);
        assert_eq!(lean.resource, full.resource);
        assert_eq!(
            lean.http_method.as_deref(),
            full.http_method.as_ref().map(|m| m.as_str())
        );
        for (lean, full) in [
            (&lean.headers, &full.headers),
            (&lean.multi_value_headers, &full.multi_value_headers),
        ] {
            let values = |name| -> Vec<&str> {
                full.get_all(name)
                    .iter()
                    .map(|v| v.to_str().unwrap())
                    .collect()
            };
            assert_eq!(lean.api_key(), values("x-api-key"));
            assert_eq!(lean.authorization(), values("authorization"));
        }
    }
}

// Row 1: no key, malformed, over-long, bad checksum, conflicting → 401, no store read.

#[tokio::test]
async fn no_key_is_unauthorized_without_a_store_read() {
    let (store, _) = store_with(ScopeSet::from(Scope::All)).await;
    assert_unauthorized(decide(&store, &event_for(links_get(), &[])).await);
    let basic = event_for(links_get(), &[("Authorization", "Basic dXNlcjpwYXNz")]);
    assert_unauthorized(decide(&store, &basic).await);
    assert_eq!(store.calls(), 0);
}

#[tokio::test]
async fn malformed_keys_are_unauthorized_without_a_store_read() {
    let (store, key) = store_with(ScopeSet::from(Scope::All)).await;
    let k = key.expose_secret();
    let mut bad_checksum = k.to_owned().into_bytes();
    let last = bad_checksum.len() - 1;
    bad_checksum[last] = if bad_checksum[last] == b'0' {
        b'1'
    } else {
        b'0'
    };
    let bad_checksum = String::from_utf8(bad_checksum).unwrap();
    let over_long = format!("{k}{}", "A".repeat(8000));
    let cases = [
        "".to_owned(),
        "key-".to_owned(),
        "not-a-key".to_owned(),
        k[..k.len() - 1].to_owned(),
        over_long,
        bad_checksum,
        k.replacen("key-", "KEY-", 1),
        format!("{}_{}", &k[..10], &k[11..]),
        // Not visible ASCII: the key header is not text.
        format!("{k}\u{1}"),
        format!("{k}\u{7f}"),
        format!("{}é{}", &k[..10], &k[11..]),
    ];
    for bad in &cases {
        assert_unauthorized(decide(&store, &event_for(links_get(), &[("x-api-key", bad)])).await);
        let bearer = format!("Bearer {bad}");
        assert_unauthorized(
            decide(
                &store,
                &event_for(links_get(), &[("Authorization", &bearer)]),
            )
            .await,
        );
    }
    assert_eq!(store.calls(), 0, "a malformed key reached the store");
}

#[tokio::test]
async fn conflicting_keys_are_unauthorized_without_a_store_read() {
    let (store, key) = store_with(ScopeSet::from(Scope::All)).await;
    let other = ApiKey::generate();
    let (a, b) = (key.expose_secret(), other.expose_secret());
    let both = event_for(
        links_get(),
        &[("x-api-key", a), ("Authorization", &format!("Bearer {b}"))],
    );
    assert_unauthorized(decide(&store, &both).await);
    assert_eq!(store.calls(), 0);
}

/// A repeated x-api-key presents its last value (the one API Gateway's
/// cache is keyed on): the same decision with caching on and off.
#[tokio::test]
async fn a_repeated_x_api_key_presents_its_last_value() {
    let (store, key) = store_with(ScopeSet::from(Scope::All)).await;
    let other = ApiKey::generate();
    let (a, b) = (key.expose_secret(), other.expose_secret());
    let last_known = event_for(links_get(), &[("x-api-key", b), ("x-api-key", a)]);
    let resp = decide(&store, &last_known).await.unwrap();
    assert_eq!(effect_and_resource(&resp).0, "Allow");
    let last_unknown = event_for(links_get(), &[("x-api-key", a), ("x-api-key", b)]);
    assert_unauthorized(decide(&store, &last_unknown).await);
}

#[tokio::test]
async fn the_same_key_in_both_headers_is_accepted() {
    let (store, key) = store_with(ScopeSet::from(Scope::LinksRead)).await;
    let k = key.expose_secret();
    let ev = event_for(
        links_get(),
        &[("X-Api-Key", k), ("authorization", &format!("bearer {k}"))],
    );
    let resp = decide(&store, &ev).await.unwrap();
    assert_eq!(effect_and_resource(&resp).0, "Allow");
}

#[tokio::test]
async fn header_names_and_the_bearer_scheme_are_case_insensitive() {
    let (store, key) = store_with(ScopeSet::from(Scope::LinksRead)).await;
    let k = key.expose_secret();
    for (name, value) in [
        ("X-API-KEY", k.to_owned()),
        ("x-Api-key", k.to_owned()),
        ("AUTHORIZATION", format!("BEARER {k}")),
        ("Authorization", format!("Bearer {k}")),
        ("authorization", format!("bEaReR {k}")),
    ] {
        let resp = decide(&store, &event_for(links_get(), &[(name, &value)]))
            .await
            .unwrap();
        assert_eq!(effect_and_resource(&resp).0, "Allow", "{name}: {value}");
    }
}

// Row 2: hash not found (never existed or deleted) → 401.

#[tokio::test]
async fn an_unknown_key_is_unauthorized_after_one_read() {
    let (store, _) = store_with(ScopeSet::from(Scope::All)).await;
    let stranger = ApiKey::generate();
    assert_unauthorized(
        decide(
            &store,
            &event_for(links_get(), &[("x-api-key", stranger.expose_secret())]),
        )
        .await,
    );
    assert_eq!(store.calls(), 1);
}

// Row 3 (inactive, expired), deletion and revocation: key_states.rs, on both stores.

// Row 4: route not in the table → Deny, whatever the scopes (`all` included).

#[tokio::test]
async fn an_undeclared_route_is_denied_even_for_all() {
    let (store, key) = store_with(ScopeSet::from(Scope::All)).await;
    for (method, resource) in [
        ("GET", "/apikeys"),
        ("PUT", "/links/{id}"),
        ("GET", "/links/abc"),
        ("get", "/links"),
        ("GET", "/{proxy+}"),
    ] {
        let mut ev: Value = serde_json::from_str(FIXTURE).unwrap();
        ev["httpMethod"] = json!(method);
        ev["resource"] = json!(resource);
        ev["methodArn"] = json!(format!("{API_ARN_PREFIX}/{method}/whatever"));
        set_headers(&mut ev, &[("x-api-key", key.expose_secret())]);
        let resp = decide(&store, &parse(&ev)).await.unwrap();
        assert_eq!(effect_and_resource(&resp).0, "Deny", "{method} {resource}");
    }
}

#[tokio::test]
async fn a_missing_or_malformed_method_arn_is_denied_not_a_panic() {
    let (store, key) = store_with(ScopeSet::from(Scope::All)).await;
    for arn in [
        None,
        Some(""),
        Some("garbage"),
        Some("arn:aws:execute-api:us-east-1:1:api/test/POST/links/abc123"),
    ] {
        let mut ev: Value = serde_json::from_str(FIXTURE).unwrap();
        match arn {
            Some(a) => ev["methodArn"] = json!(a),
            None => {
                ev.as_object_mut().unwrap().remove("methodArn");
            }
        }
        set_headers(&mut ev, &[("x-api-key", key.expose_secret())]);
        let resp = decide(&store, &parse(&ev)).await.unwrap();
        assert_eq!(
            effect_and_resource(&resp),
            ("Deny".to_owned(), "*".to_owned()),
            "{arn:?}"
        );
    }
}

// Row 5: scope missing → Deny.

#[tokio::test]
async fn a_key_without_the_routes_scope_is_denied() {
    let (store, key) = store_with(ScopeSet::from(Scope::LinksRead).with(Scope::FoldersRead)).await;
    let del = route("DELETE", "/links/{id}");
    let resp = decide(
        &store,
        &event_for(del, &[("x-api-key", key.expose_secret())]),
    )
    .await
    .unwrap();
    assert_eq!(
        effect_and_resource(&resp),
        ("Deny".to_owned(), method_arn(del))
    );
    assert_eq!(resp.principal_id.as_deref().map(str::len), Some(22));
}

#[tokio::test]
async fn an_empty_scope_set_is_denied_everywhere() {
    let (store, key) = store_with(ScopeSet::EMPTY).await;
    for r in &ROUTES {
        let resp = decide(&store, &event_for(r, &[("x-api-key", key.expose_secret())]))
            .await
            .unwrap();
        assert_eq!(effect_and_resource(&resp).0, "Deny", "{r:?}");
    }
}

// Row 6: scope present → Allow on exactly the method ARN, with the context.

#[tokio::test]
async fn an_allow_names_exactly_the_method_arn_and_carries_the_context() {
    let store = MemoryStore::new();
    let scopes = ScopeSet::from(Scope::LinksRead).with(Scope::CafeRead);
    let (key, record) = stored_key(&store, scopes, None).await;
    let ev = event_for(links_get(), &[("x-api-key", key.expose_secret())]);
    let resp = decide(&store, &ev).await.unwrap();
    assert_eq!(
        effect_and_resource(&resp),
        ("Allow".to_owned(), ev.method_arn.clone().unwrap())
    );
    assert_eq!(resp.principal_id.as_deref(), Some(record.id.as_str()));
    assert_eq!(
        resp.context,
        json!({"accountId": "acct-1", "keyId": record.id.as_str(), "scopes": "links.read,cafe.read"})
    );
    // The serialised response, as API Gateway reads it.
    let wire = serde_json::to_value(&resp).unwrap();
    assert_eq!(wire["principalId"], json!(record.id.as_str()));
    assert_eq!(wire["policyDocument"]["Version"], json!("2012-10-17"));
    assert_eq!(
        wire["policyDocument"]["Statement"][0]["Effect"],
        json!("Allow")
    );
    assert!(
        wire["context"]["scopes"].is_string(),
        "context values must be scalars"
    );
    assert!(!wire.to_string().contains(key.expose_secret()));
}

#[tokio::test]
async fn every_row_allows_its_own_scope_and_all_and_nothing_else() {
    let store = MemoryStore::new();
    for r in &ROUTES {
        for &held in Scope::EVERY {
            let (key, _) = stored_key(&store, ScopeSet::from(held), None).await;
            let resp = decide(&store, &event_for(r, &[("x-api-key", key.expose_secret())]))
                .await
                .unwrap();
            let want = if held == Scope::All || held == r.scope {
                "Allow"
            } else {
                "Deny"
            };
            assert_eq!(effect_and_resource(&resp).0, want, "{held} on {r:?}");
        }
    }
}

/// Caching is off, but even so: an Allow never covers any other route.
#[tokio::test]
async fn an_allow_covers_no_other_route_of_the_table() {
    let store = MemoryStore::new();
    for &held in Scope::EVERY {
        let (key, _) = stored_key(&store, ScopeSet::from(held), None).await;
        for r in ROUTES
            .iter()
            .filter(|r| held == Scope::All || r.scope == held)
        {
            let resp = decide(&store, &event_for(r, &[("x-api-key", key.expose_secret())]))
                .await
                .unwrap();
            let policy = serde_json::to_value(&resp.policy_document).unwrap();
            assert_eq!(
                evaluate_json(&policy, &method_arn(r)).unwrap(),
                Decision::Allow
            );
            for other in ROUTES.iter().filter(|o| *o != r) {
                let d = evaluate_json(&policy, &method_arn(other)).unwrap();
                assert_ne!(
                    d,
                    Decision::Allow,
                    "{held}: the Allow for {r:?} covers {other:?}"
                );
            }
        }
    }
}

// Row 7: store error or timeout → another error (500), never Allow or Deny.

#[tokio::test]
async fn a_store_failure_is_an_error_other_than_unauthorized() {
    let key = ApiKey::generate();
    let result = decide(
        &Failing,
        &event_for(links_get(), &[("x-api-key", key.expose_secret())]),
    )
    .await;
    let err = result.unwrap_err();
    assert!(matches!(err, AuthError::Store(_)), "{err:?}");
    let diag = Diagnostic::from(err);
    assert_ne!(diag.error_message, "Unauthorized");
    assert!(
        !diag.error_message.contains("simulated outage"),
        "internal text leaks: {}",
        diag.error_message
    );
}

#[test]
fn the_401_error_message_is_exactly_unauthorized() {
    let diag = Diagnostic::from(AuthError::Unauthorized);
    assert_eq!(diag.error_message, "Unauthorized");
}

#[tokio::test]
async fn the_generated_event_with_a_key_is_decided_without_panic() {
    // The sam output as-is names the template in its ARN ({id}): a valid
    // ARN shape, so a links.read key is allowed on exactly that ARN.
    let store = MemoryStore::new();
    let (key, _) = stored_key(&store, ScopeSet::from(Scope::LinksRead), None).await;
    let mut ev: Value = serde_json::from_str(GENERATED).unwrap();
    ev["headers"]["x-api-key"] = json!(key.expose_secret());
    let req = parse(&ev);
    let resp = decide(&store, &req).await.unwrap();
    assert_eq!(
        effect_and_resource(&resp),
        ("Allow".to_owned(), req.method_arn.unwrap())
    );
}

/// The sample events in `events/authorizer/` decide as their names say, once
/// a links.read record exists for the sample key they carry.
#[tokio::test]
async fn the_sample_events_decide_as_named() {
    let allow: Request = serde_json::from_str(SAMPLE_ALLOW).unwrap();
    let deny: Request = serde_json::from_str(SAMPLE_DENY).unwrap();
    let unauthorized: Request = serde_json::from_str(SAMPLE_UNAUTHORIZED).unwrap();
    let key = ApiKey::parse(&allow.headers.api_key()[0]).unwrap();
    let store = Counting::<MemoryStore>::default();
    store
        .create(
            &record_for(&key, ScopeSet::from(Scope::LinksRead), None),
            &apikeys::Audit::system("test", chrono::Utc::now()),
            u32::MAX,
        )
        .await
        .unwrap();

    let resp = decide(&store, &allow).await.unwrap();
    assert_eq!(
        effect_and_resource(&resp),
        ("Allow".to_owned(), allow.method_arn.clone().unwrap())
    );
    let resp = decide(&store, &deny).await.unwrap();
    assert_eq!(effect_and_resource(&resp).0, "Deny");
    let calls = store.calls();
    assert_unauthorized(decide(&store, &unauthorized).await);
    assert_eq!(store.calls(), calls, "the malformed key reached the store");
}

/// The exact JSON API Gateway receives, byte for byte: camelCase top-level
/// keys, `Version`/`Statement`/`Action`/`Effect`/`Resource` in IAM's casing,
/// `Action` and `Resource` as arrays, no `Condition` key at all (an older
/// `aws_lambda_events` wrote `"Condition": null`, which API Gateway rejects
/// with a 500), and context values that are all strings.
#[tokio::test]
async fn the_response_json_is_exactly_what_api_gateway_accepts() {
    let store = MemoryStore::new();
    let key = ApiKey::generate();
    let mut record = record_for(
        &key,
        ScopeSet::from(Scope::LinksRead).with(Scope::CafeRead),
        None,
    );
    record.id = apikeys::KeyId::parse("K0000000000000000000g1").unwrap();
    store
        .create(
            &record,
            &apikeys::Audit::system("test", chrono::Utc::now()),
            u32::MAX,
        )
        .await
        .unwrap();
    let arn = "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/GET/links/lnk_1";

    let mut allow = event_for(links_get(), &[("x-api-key", key.expose_secret())]);
    allow.method_arn = Some(arn.to_owned());
    let json = serde_json::to_string(&decide(&store, &allow).await.unwrap()).unwrap();
    assert_eq!(
        json,
        concat!(
            r#"{"principalId":"K0000000000000000000g1","#,
            r#""policyDocument":{"Version":"2012-10-17","Statement":[{"Action":["execute-api:Invoke"],"Effect":"Allow","Resource":["arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/GET/links/lnk_1"]}]},"#,
            r#""context":{"accountId":"acct-1","keyId":"K0000000000000000000g1","scopes":"links.read,cafe.read"},"#,
            r#""usageIdentifierKey":null}"#
        )
    );

    let mut deny = event_for(
        route("POST", "/links"),
        &[("x-api-key", key.expose_secret())],
    );
    deny.method_arn = Some(arn.replace("GET/links/lnk_1", "POST/links"));
    let json = serde_json::to_string(&decide(&store, &deny).await.unwrap()).unwrap();
    assert_eq!(
        json,
        concat!(
            r#"{"principalId":"K0000000000000000000g1","#,
            r#""policyDocument":{"Version":"2012-10-17","Statement":[{"Action":["execute-api:Invoke"],"Effect":"Deny","Resource":["arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/POST/links"]}]},"#,
            r#""context":{},"usageIdentifierKey":null}"#
        )
    );
}

/// Recording a use costs a store call only when one is due, and a failed
/// record never changes the decision.
#[tokio::test]
async fn a_use_is_recorded_only_when_due_and_a_failed_record_changes_nothing() {
    struct Recording {
        inner: MemoryStore,
        records: std::sync::atomic::AtomicUsize,
        fail: bool,
    }
    impl apikeys::LookupKey for Recording {
        async fn lookup(
            &self,
            hash: &apikeys::KeyHash,
        ) -> Result<Option<apikeys::KeyLookup>, apikeys::StoreError> {
            self.inner.lookup(hash).await
        }
    }
    impl apikeys::RecordUse for Recording {
        async fn record_use(
            &self,
            hash: &apikeys::KeyHash,
            lookup: &apikeys::KeyLookup,
            now: apikeys::Timestamp,
            interval: chrono::Duration,
        ) -> Result<bool, apikeys::StoreError> {
            self.records
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.fail {
                return Err(apikeys::StoreError::Unavailable("write refused".into()));
            }
            self.inner.record_use(hash, lookup, now, interval).await
        }
    }
    for fail in [false, true] {
        let store = Recording {
            inner: MemoryStore::new(),
            records: Default::default(),
            fail,
        };
        let (key, _) = stored_key(&store.inner, ScopeSet::from(Scope::LinksRead), None).await;
        let ev = event_for(links_get(), &[("x-api-key", key.expose_secret())]);
        for _ in 0..3 {
            let r = decide(&store, &ev).await.unwrap();
            assert_eq!(effect_and_resource(&r).0, "Allow", "fail={fail}");
        }
        // Recorded once (then the lookup says it is not due); when recording
        // fails, each call tries again, and each is still allowed.
        let expected = if fail { 3 } else { 1 };
        assert_eq!(
            store.records.load(std::sync::atomic::Ordering::SeqCst),
            expected
        );
    }
}

/// The origin secret (read once per cold start) rides in an Allow's
/// context, for the integration to map to `X-Origin-Verify`; a Deny carries
/// none, and the settings never print it.
#[tokio::test]
async fn an_allow_carries_the_origin_secret_a_deny_does_not() {
    let store = MemoryStore::new();
    let (key, _) = stored_key(&store, ScopeSet::from(Scope::LinksRead), None).await;
    let settings = authorizer::Settings::default().with_origin_verify("origin-secret-value");
    assert!(!format!("{settings:?}").contains("origin-secret-value"));
    let run = |ev: Request| {
        let settings = settings.clone();
        let store = &store;
        async move {
            authorizer::authorize(
                store,
                &settings,
                &ev,
                Utc::now(),
                "test-request",
                apikeys::Deadline::after(authorizer::DEFAULT_BUDGET),
            )
            .await
            .unwrap()
        }
    };
    let allow = run(event_for(
        links_get(),
        &[("x-api-key", key.expose_secret())],
    ))
    .await;
    assert_eq!(
        allow.context[authorizer::ORIGIN_CONTEXT_KEY],
        "origin-secret-value"
    );
    let delete = route("DELETE", "/links/{id}");
    let deny = run(event_for(delete, &[("x-api-key", key.expose_secret())])).await;
    assert_eq!(effect_and_resource(&deny).0, "Deny");
    assert!(deny.context.get(authorizer::ORIGIN_CONTEXT_KEY).is_none());
    // Caching on: the cacheable Allow carries it too.
    let cached = authorizer::Settings::default()
        .with_origin_verify("origin-secret-value")
        .with_cache_ttl(300)
        .unwrap();
    let ev = event_for(links_get(), &[("x-api-key", key.expose_secret())]);
    let resp = authorizer::authorize(
        &store,
        &cached,
        &ev,
        Utc::now(),
        "test-request",
        apikeys::Deadline::after(authorizer::DEFAULT_BUDGET),
    )
    .await
    .unwrap();
    assert_eq!(
        resp.context[authorizer::ORIGIN_CONTEXT_KEY],
        "origin-secret-value"
    );
}
