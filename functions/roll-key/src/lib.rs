//! `POST /apikeys/{id}/roll` with an optional body `{"gracePeriodSeconds": N}`
//! (0–86400, default 0) and an optional `If-Match` → 201 with the record and
//! the new full key (the only time it is shown, `Cache-Control: no-store`).
//! The key keeps its id, name, scopes and state; its prefix and mask change.
//! The secret it replaces keeps authenticating until the grace period ends
//! (with 0: not at the very next call); a secret still in an earlier grace
//! period stops at once.

use apikeys::idempotency::IdempotencyStore;
use apikeys::{ApiKey, KeyRecord, RollKey, Timestamp};
use keys_api::idempotency::{self, IdempotencyKey};
use keys_api::input::{self, etag};
use keys_api::{ApiConfig, ApiError, Reply, caller, key_id, view};
use lambda_http::http::header::{CACHE_CONTROL, ETAG};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::Value;

/// The body, which may be empty: serde checks its shape (no field but this).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RollBody {
    #[serde(default, deserialize_with = "input::present")]
    grace_period_seconds: Option<Value>,
}

/// The Lambda handler: the work below, bounded by the invocation's deadline.
pub async fn handle<S: RollKey + IdempotencyStore>(
    store: &S,
    config: &ApiConfig,
    req: Request,
) -> Response<Body> {
    let work = roll(store, config, &req, lambda_support::now());
    keys_api::respond_change(config, &req, "roll-key", work).await
}

pub async fn roll<S: RollKey + IdempotencyStore>(
    store: &S,
    config: &ApiConfig,
    req: &Request,
    now: Timestamp,
) -> Result<Reply, ApiError> {
    let caller = caller(req, config)?;
    let id = key_id(req)?;
    let expected = input::expected_version(req)?;
    let body: RollBody = input::optional_body(req)?;
    let seconds = input::grace_period(body.grace_period_seconds.as_ref())?;
    let grace = chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(0));

    let idempotency =
        IdempotencyKey::from_request(req, &caller.account, &format!("/apikeys/{id}/roll"))?;

    let key = ApiKey::generate();
    let audit = keys_api::audit(&caller, req, now);
    let answer = |r: &KeyRecord| {
        Reply::json(StatusCode::CREATED, view::created(r, &key))
            .header(CACHE_CONTROL, HeaderValue::from_static("no-store"))
            .header(ETAG, etag(r.version))
    };
    let reply = idempotency::run(
        store,
        idempotency.as_ref(),
        now,
        &answer,
        async |completion| {
            store
                .roll_with(
                    &caller.account,
                    &id,
                    &key,
                    grace,
                    expected,
                    &audit,
                    completion,
                )
                .await
        },
    )
    .await?;
    // The secret it replaces, or one still in an earlier grace period, may
    // stop at once (a replay changed nothing, and flushing is harmless).
    Ok(reply.flushing_cache(true))
}

/// The function's state from the environment: a narrowing change flushes
/// the authorizer cache when caching is on.
pub async fn init() -> Result<keys_api::Dashboard, lambda_support::Error> {
    keys_api::dashboard_flushing(authorizer_cache::CacheFlush::from_env().await?).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use apikeys::{LookupKey, MemoryStore};
    use keys_api::testing::*;
    use serde_json::{Value, json};

    fn roll_event(id: &str, body: Option<&str>, if_match: Option<&str>) -> Value {
        let mut ev = event(UPDATE_KEY);
        ev["httpMethod"] = json!("POST");
        ev["resource"] = json!("/apikeys/{id}/roll");
        set_id(&mut ev, id);
        set_body(&mut ev, body);
        set_header(&mut ev, "If-Match", if_match);
        ev
    }

    #[tokio::test]
    async fn roll_without_grace_replaces_the_secret_at_once() {
        let store = MemoryStore::new();
        let (old, r) = seed_key(&store, SAMPLE_SUB).await;
        let resp = handle(
            &store,
            &config(),
            request(&roll_event(r.id.as_str(), None, None)),
        )
        .await;
        assert_eq!(resp.status(), 201, "{}", json_body(&resp));
        assert_eq!(resp.headers()["cache-control"], "no-store");
        assert_eq!(resp.headers()["etag"], "\"2\"");
        let body = json_body(&resp);
        let new = ApiKey::parse(body["key"].as_str().unwrap()).unwrap();
        assert_eq!(body["id"], r.id.as_str());
        assert_eq!(body["name"], r.name.as_str());
        assert_ne!(body["prefix"], r.prefix.as_str());
        assert!(
            new.expose_secret()
                .starts_with(body["prefix"].as_str().unwrap())
        );
        assert!(
            store.lookup(&old.hash()).await.unwrap().is_none(),
            "the old secret is gone"
        );
        assert!(store.lookup(&new.hash()).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_grace_period_keeps_the_old_secret_until_it_ends() {
        let store = MemoryStore::new();
        let (old, r) = seed_key(&store, SAMPLE_SUB).await;
        let resp = handle(
            &store,
            &config(),
            request(&roll_event(
                r.id.as_str(),
                Some(r#"{"gracePeriodSeconds":60}"#),
                Some("\"1\""),
            )),
        )
        .await;
        assert_eq!(resp.status(), 201, "{}", json_body(&resp));
        // 60.0 is the same whole number as 60 (JSON Schema's integers).
        let again = handle(
            &store,
            &config(),
            request(&roll_event(
                r.id.as_str(),
                Some(r#"{"gracePeriodSeconds":60.0}"#),
                None,
            )),
        )
        .await;
        assert_eq!(again.status(), 201, "{}", json_body(&again));
        let lookup = store.lookup(&old.hash()).await.unwrap();
        assert!(lookup.is_none(), "a second roll ends the first grace");
        let first = ApiKey::parse(json_body(&resp)["key"].as_str().unwrap()).unwrap();
        let lookup = store.lookup(&first.hash()).await.unwrap().unwrap();
        let now = lambda_support::now();
        assert!(lookup.is_usable_at(now));
        assert!(!lookup.is_usable_at(now + chrono::Duration::seconds(61)));
    }

    #[tokio::test]
    async fn bad_bodies_and_stale_versions_are_refused_without_a_change() {
        let store = MemoryStore::new();
        let (old, r) = seed_key(&store, SAMPLE_SUB).await;
        let id = r.id.as_str();
        let cases: &[(Option<&str>, Option<&str>, u16, &str)] = &[
            (
                Some(r#"{"gracePeriodSeconds":86401}"#),
                None,
                400,
                "invalid_field",
            ),
            (
                Some(r#"{"gracePeriodSeconds":-1}"#),
                None,
                400,
                "invalid_field",
            ),
            (
                Some(r#"{"gracePeriodSeconds":1.5}"#),
                None,
                400,
                "invalid_field",
            ),
            (Some(r#"{"grace":5}"#), None, 400, "unknown_field"),
            (Some("[]"), None, 400, "invalid_body"),
            (Some("{"), None, 400, "malformed_json"),
            (None, Some("\"7\""), 409, "version_conflict"),
            (None, Some("W/\"1\""), 400, "invalid_if_match"),
        ];
        for &(body, if_match, status, code) in cases {
            let resp = handle(&store, &config(), request(&roll_event(id, body, if_match))).await;
            assert_eq!(
                (resp.status().as_u16(), error_code(&resp).as_str()),
                (status, code),
                "{body:?} {if_match:?}"
            );
        }
        assert!(
            store.lookup(&old.hash()).await.unwrap().is_some(),
            "nothing changed"
        );
        let other = handle(
            &store,
            &config(),
            request(&roll_event("AAAAAAAAAAAAAAAAAAAAAA", None, None)),
        )
        .await;
        assert_eq!(other.status(), 404);
    }
}
