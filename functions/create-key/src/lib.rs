//! `POST /apikeys` — body `{name, scopes, expiresAt?}` → 201 with the record
//! and the full key, with `Cache-Control: no-store`. This is the only
//! response that ever carries the key; it is never stored or logged
//! readably. With `Idempotency-Key`, a repeat gets this same answer (kept
//! sealed under the client's value: `keys_api::idempotency`).

use apikeys::idempotency::IdempotencyStore;
use apikeys::{ApiKey, CreateKey, KeyName, KeyRecord, Timestamp};
use keys_api::idempotency::{self, IdempotencyKey};
use keys_api::input::{self, etag};
use keys_api::{ApiConfig, ApiError, Reply, caller, view};
use lambda_http::http::header::{CACHE_CONTROL, ETAG};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use scopes::ScopeSet;
use serde::Deserialize;
use serde_json::Value;

/// The body as sent: serde checks its shape (no field but these), and
/// [`NewKey::try_from`] the values.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateBody {
    #[serde(default, deserialize_with = "input::present")]
    name: Option<Value>,
    #[serde(default, deserialize_with = "input::present")]
    scopes: Option<Value>,
    #[serde(default, deserialize_with = "input::present")]
    expires_at: Option<Value>,
}

/// A new key's settings, validated: a name, at least one catalogue scope,
/// an expiry or none.
pub struct NewKey {
    pub name: KeyName,
    pub scopes: ScopeSet,
    pub expires_at: Option<Timestamp>,
}

impl TryFrom<CreateBody> for NewKey {
    type Error = ApiError;

    /// Checks the fields in this order: `name`, `scopes`, `expiresAt`.
    fn try_from(body: CreateBody) -> Result<NewKey, ApiError> {
        Ok(NewKey {
            name: input::name(&input::required(body.name, "name")?)?,
            scopes: input::scopes(&input::required(body.scopes, "scopes")?)?,
            expires_at: input::expires_at(body.expires_at.as_ref())?,
        })
    }
}

/// The Lambda handler: the work below, bounded by the invocation's deadline.
pub async fn handle<S: CreateKey + IdempotencyStore>(
    store: &S,
    config: &ApiConfig,
    req: Request,
) -> Response<Body> {
    let outcome = keys_api::deadline(&req)
        .run(create(store, config, &req, lambda_support::now()))
        .await;
    keys_api::finish(config, &req, "create-key", outcome)
}

/// Validates the body, generates the key, stores its hash and record.
pub async fn create<S: CreateKey + IdempotencyStore>(
    store: &S,
    config: &ApiConfig,
    req: &Request,
    now: Timestamp,
) -> Result<Reply, ApiError> {
    let caller = caller(req, config)?;
    let idempotency = IdempotencyKey::from_request(req, &caller.account, "/apikeys")?;
    let audit = keys_api::audit(&caller, req, now);
    let NewKey {
        name,
        scopes,
        expires_at,
    } = input::body::<CreateBody>(req)?.try_into()?;
    input::in_future(expires_at, now)?;

    let key = ApiKey::generate();
    let record = KeyRecord::new(
        &key,
        caller.account,
        name,
        scopes,
        expires_at,
        caller.user,
        now,
    );
    let answer = |r: &KeyRecord| {
        Reply::json(StatusCode::CREATED, view::created(r, &key))
            .header(CACHE_CONTROL, HeaderValue::from_static("no-store"))
            .header(ETAG, etag(r.version))
    };
    idempotency::run(
        store,
        idempotency.as_ref(),
        now,
        &answer,
        async |completion| {
            store
                .create_with(&record, &audit, config.max_keys, completion)
                .await
                .map(|()| record.clone())
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use apikeys::{GetKey, KeyId, LookupKey, MemoryStore, StoreError};
    use keys_api::testing::*;
    use serde_json::{Value, json};

    async fn call(store: &MemoryStore, ev: &Value) -> Response<Body> {
        handle(store, &config(), request(ev)).await
    }

    fn with_body(body: &str) -> Value {
        let mut ev = event(CREATE_KEY);
        set_body(&mut ev, Some(body));
        ev
    }

    #[tokio::test]
    async fn the_sample_event_creates_a_key_returned_once() {
        let store = MemoryStore::new();
        let resp = call(&store, &event(CREATE_KEY)).await;
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.headers()["cache-control"], "no-store");
        assert_eq!(resp.headers()["access-control-allow-origin"], ORIGIN);
        assert_eq!(resp.headers()["etag"], "\"1\"");
        let body = json_body(&resp);
        let key = ApiKey::parse(body["key"].as_str().unwrap()).unwrap();
        assert_eq!(body["name"], "Zapier integration");
        assert_eq!(body["scopes"], json!(["links.read", "links.create"]));
        assert_eq!(body["expiresAt"], "2030-01-01T00:00:00Z");
        assert_eq!(body["active"], true);
        assert!(
            key.expose_secret()
                .starts_with(body["prefix"].as_str().unwrap())
        );
        assert!(
            !body["masked"]
                .as_str()
                .unwrap()
                .contains(&key.expose_secret()[10..])
        );

        // Stored: the hash leads to the lookup; the record names the creator.
        let lookup = store.lookup(&key.hash()).await.unwrap().unwrap();
        assert_eq!(lookup.account_id.as_str(), SAMPLE_SUB);
        let id = KeyId::parse(body["id"].as_str().unwrap()).unwrap();
        let record = store.get(&lookup.account_id, &id).await.unwrap();
        assert_eq!(record.created_by, SAMPLE_SUB);
        assert!(!format!("{record:?}").contains(key.expose_secret()));
    }

    #[tokio::test]
    async fn no_claims_is_401_and_writes_nothing() {
        let store = MemoryStore::new();
        let mut ev = event(CREATE_KEY);
        remove_claims(&mut ev);
        let resp = call(&store, &ev).await;
        assert_eq!(resp.status(), 401);
        assert_eq!(error_code(&resp), "unauthorized");
        assert_eq!(resp.headers()["access-control-allow-origin"], ORIGIN);
        assert!(store.all_records().is_empty());
    }

    #[tokio::test]
    async fn the_account_comes_from_the_configured_claim_only() {
        let store = MemoryStore::new();
        let mut ev = with_body(r#"{"name":"x","scopes":["all"]}"#);
        ev["requestContext"]["authorizer"]["claims"]["custom:account"] = json!("acct-42");
        let cfg = ApiConfig::new("custom:account", ORIGIN).unwrap();
        let resp = handle(&store, &cfg, request(&ev)).await;
        assert_eq!(resp.status(), 201);
        let records = store.all_records();
        assert_eq!(records[0].account_id.as_str(), "acct-42");
        assert_eq!(records[0].created_by, SAMPLE_SUB);
        // A body, query or path naming an account changes nothing: it is an unknown field.
        let ev = with_body(r#"{"name":"x","scopes":["all"],"accountId":"acct-evil"}"#);
        let resp = call(&store, &ev).await;
        assert_eq!(
            (resp.status().as_u16(), error_code(&resp)),
            (400, "unknown_field".into())
        );
    }

    #[tokio::test]
    async fn invalid_bodies_get_4xx_json_errors_naming_the_field() {
        let store = MemoryStore::new();
        let cases: &[(&str, u16, &str, &str)] = &[
            ("{", 400, "malformed_json", ""),
            ("", 400, "malformed_json", ""),
            ("[]", 400, "invalid_body", ""),
            (r#"{"scopes":["all"]}"#, 400, "missing_field", "name"),
            (r#"{"name":"x"}"#, 400, "missing_field", "scopes"),
            (
                r#"{"name":"  ","scopes":["all"]}"#,
                400,
                "invalid_field",
                "name",
            ),
            (
                r#"{"name":"a\u0007b","scopes":["all"]}"#,
                400,
                "invalid_field",
                "name",
            ),
            (
                r#"{"name":"x","scopes":[]}"#,
                400,
                "invalid_field",
                "scopes",
            ),
            (
                r#"{"name":"x","scopes":["links.write"]}"#,
                400,
                "invalid_field",
                "links.write",
            ),
            (
                r#"{"name":"x","scopes":"all"}"#,
                400,
                "invalid_field",
                "scopes",
            ),
            (
                r#"{"name":"x","scopes":["all"],"expiresAt":"2001-01-01T00:00:00Z"}"#,
                400,
                "invalid_field",
                "expiresAt",
            ),
            (
                r#"{"name":"x","scopes":["all"],"expiresAt":"soon"}"#,
                400,
                "invalid_field",
                "expiresAt",
            ),
            (
                r#"{"name":"x","scopes":["all"],"active":false}"#,
                400,
                "unknown_field",
                "active",
            ),
        ];
        for &(body, status, code, names) in cases {
            let resp = call(&store, &with_body(body)).await;
            assert_eq!(
                (resp.status().as_u16(), error_code(&resp).as_str()),
                (status, code),
                "{body}"
            );
            let message = json_body(&resp)["error"]["message"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(message.contains(names), "{body}: {message}");
            assert_eq!(resp.headers()["access-control-allow-origin"], ORIGIN);
        }
        assert!(store.all_records().is_empty(), "a refused request wrote");
    }

    #[tokio::test]
    async fn wrong_content_type_is_415_and_a_large_body_413() {
        let store = MemoryStore::new();
        let mut ev = event(CREATE_KEY);
        set_header(&mut ev, "Content-Type", Some("text/plain"));
        assert_eq!(call(&store, &ev).await.status(), 415);
        set_header(&mut ev, "Content-Type", None);
        assert_eq!(call(&store, &ev).await.status(), 415);
        let big = format!(
            r#"{{"name":"x","scopes":["all"],"pad":"{}"}}"#,
            "x".repeat(17 * 1024)
        );
        let resp = call(&store, &with_body(&big)).await;
        assert_eq!(
            (resp.status().as_u16(), error_code(&resp)),
            (413, "payload_too_large".into())
        );
    }

    #[tokio::test]
    async fn duplicate_scopes_are_folded() {
        let store = MemoryStore::new();
        let resp = call(
            &store,
            &with_body(r#"{"name":"x","scopes":["cafe.read","links.read","cafe.read"]}"#),
        )
        .await;
        assert_eq!(
            json_body(&resp)["scopes"],
            json!(["links.read", "cafe.read"])
        );
    }

    /// A store that is down.
    struct Down;
    impl CreateKey for Down {
        async fn create_with(
            &self,
            _: &KeyRecord,
            _: &apikeys::Audit,
            _: u32,
            _: Option<&apikeys::idempotency::Completion<'_>>,
        ) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("connection refused".into()))
        }
    }
    impl IdempotencyStore for Down {
        async fn claim(
            &self,
            _: &apikeys::idempotency::EntryId,
            _: &apikeys::idempotency::Fingerprint,
            _: Timestamp,
        ) -> Result<apikeys::idempotency::Claim, StoreError> {
            Err(StoreError::Unavailable("connection refused".into()))
        }
        async fn release(
            &self,
            _: &apikeys::idempotency::EntryId,
            _: &str,
        ) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("connection refused".into()))
        }
    }

    #[tokio::test]
    async fn an_unavailable_store_is_503_without_detail() {
        let resp = handle(&Down, &config(), request(&event(CREATE_KEY))).await;
        assert_eq!(
            (resp.status().as_u16(), error_code(&resp)),
            (503, "service_unavailable".into())
        );
        let body = json_body(&resp).to_string();
        assert!(
            !body.contains("refused") && !body.contains("key-"),
            "{body}"
        );
    }
}
