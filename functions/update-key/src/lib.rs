//! `PATCH /apikeys/{id}` with any of `{name, scopes, active}` → 200 with the
//! updated record and its new `ETag`. Only the given fields change, on both
//! stored items at once. `If-Match: "<version>"` makes the update conditional
//! (mismatch → 409); without it there is no 409. A change of scopes or
//! state flushes the authorizer cache before answering (caching on).

use apikeys::{KeyChanges, Timestamp, UpdateKey};
use keys_api::input::{self, etag};
use keys_api::{ApiConfig, ApiError, Reply, caller, key_id, view};
use lambda_http::http::StatusCode;
use lambda_http::http::header::ETAG;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::Value;

/// The body as sent: serde checks its shape (no field but these), and
/// `KeyChanges::try_from` the values.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    #[serde(default, deserialize_with = "input::present")]
    name: Option<Value>,
    #[serde(default, deserialize_with = "input::present")]
    scopes: Option<Value>,
    #[serde(default, deserialize_with = "input::present")]
    active: Option<Value>,
}

impl TryFrom<UpdateBody> for KeyChanges {
    type Error = ApiError;

    /// Checks the given fields in this order: `name`, `scopes`, `active`.
    fn try_from(body: UpdateBody) -> Result<KeyChanges, ApiError> {
        Ok(KeyChanges {
            name: body.name.as_ref().map(input::name).transpose()?,
            scopes: body.scopes.as_ref().map(input::scopes).transpose()?,
            active: body.active.as_ref().map(input::active).transpose()?,
        })
    }
}

/// The Lambda handler: the work below, bounded by the invocation's deadline.
pub async fn handle<S: UpdateKey>(store: &S, config: &ApiConfig, req: Request) -> Response<Body> {
    let work = update(store, config, &req, lambda_support::now());
    keys_api::respond_change(config, &req, "update-key", work).await
}

pub async fn update<S: UpdateKey>(
    store: &S,
    config: &ApiConfig,
    req: &Request,
    now: Timestamp,
) -> Result<Reply, ApiError> {
    let caller = caller(req, config)?;
    let id = key_id(req)?;
    let expected = input::expected_version(req)?;
    let changes = KeyChanges::try_from(input::body::<UpdateBody>(req)?)?;
    if changes.is_empty() {
        return Err(ApiError::EmptyUpdate);
    }
    let audit = keys_api::audit(&caller, req, now);
    let record = store
        .update(&caller.account, &id, &changes, expected, &audit)
        .await?;
    // A cached authorizer answer carries the scopes and the state; a new name
    // changes no decision.
    let decisions_change = changes.scopes.is_some() || changes.active.is_some();
    Ok(Reply::json(StatusCode::OK, view::record(&record))
        .header(ETAG, etag(record.version))
        .flushing_cache(decisions_change))
}

/// The function's state from the environment: a narrowing change flushes
/// the authorizer cache when caching is on.
pub async fn init() -> Result<keys_api::Dashboard, lambda_support::Error> {
    keys_api::dashboard_flushing(authorizer_cache::CacheFlush::from_env().await?).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use apikeys::{GetKey, LookupKey, MemoryStore};
    use keys_api::testing::*;
    use serde_json::{Value, json};

    fn patch(id: &str, body: &str, if_match: Option<&str>) -> Value {
        let mut ev = event(UPDATE_KEY);
        set_id(&mut ev, id);
        set_body(&mut ev, Some(body));
        set_header(&mut ev, "If-Match", if_match);
        ev
    }

    #[tokio::test]
    async fn the_sample_event_renames_and_deactivates() {
        let store = MemoryStore::new();
        let (key, r) = seed_key(&store, SAMPLE_SUB).await;
        let mut ev = event(UPDATE_KEY);
        set_id(&mut ev, r.id.as_str());
        let resp = handle(&store, &config(), request(&ev)).await;
        assert_eq!(resp.status(), 200, "{}", json_body(&resp));
        assert_eq!(resp.headers()["etag"], "\"2\"");
        let body = json_body(&resp);
        assert_eq!(
            (body["name"].as_str(), body["active"].as_bool()),
            (Some("CI bot"), Some(false))
        );
        assert_eq!(body["scopes"], json!(["links.read"]), "scopes untouched");
        assert!(
            !store.lookup(&key.hash()).await.unwrap().unwrap().active,
            "the lookup item follows"
        );
    }

    #[tokio::test]
    async fn if_match_makes_the_update_conditional() {
        let store = MemoryStore::new();
        let (_, r) = seed_key(&store, SAMPLE_SUB).await;
        let id = r.id.as_str();
        let ok = handle(
            &store,
            &config(),
            request(&patch(id, r#"{"name":"one"}"#, Some("\"1\""))),
        )
        .await;
        assert_eq!(ok.status(), 200);
        let stale = handle(
            &store,
            &config(),
            request(&patch(id, r#"{"name":"two"}"#, Some("\"1\""))),
        )
        .await;
        assert_eq!(
            (stale.status().as_u16(), error_code(&stale)),
            (409, "version_conflict".into())
        );
        assert_eq!(
            store.get(&r.account_id, &r.id).await.unwrap().name.as_str(),
            "one"
        );
        let blind = handle(
            &store,
            &config(),
            request(&patch(id, r#"{"name":"three"}"#, None)),
        )
        .await;
        assert_eq!(blind.status(), 200, "no If-Match, no 409");
        let bad = handle(
            &store,
            &config(),
            request(&patch(id, r#"{"name":"four"}"#, Some("W/\"3\""))),
        )
        .await;
        assert_eq!(
            (bad.status().as_u16(), error_code(&bad)),
            (400, "invalid_if_match".into())
        );
    }

    #[tokio::test]
    async fn invalid_patches_are_4xx_naming_the_field_and_change_nothing() {
        let store = MemoryStore::new();
        let (_, r) = seed_key(&store, SAMPLE_SUB).await;
        let cases: &[(&str, u16, &str, &str)] = &[
            ("{}", 400, "empty_update", "name"),
            (r#"{"id":"x"}"#, 400, "unknown_field", "id"),
            (r#"{"expiresAt":null}"#, 400, "unknown_field", "expiresAt"),
            (r#"{"name":""}"#, 400, "invalid_field", "name"),
            (r#"{"name":null}"#, 400, "invalid_field", "name"),
            (r#"{"scopes":[]}"#, 400, "invalid_field", "scopes"),
            (
                r#"{"scopes":["links.read","nope"]}"#,
                400,
                "invalid_field",
                "nope",
            ),
            (r#"{"active":"no"}"#, 400, "invalid_field", "active"),
            (
                r#"{"name":"ok","active":1}"#,
                400,
                "invalid_field",
                "active",
            ),
            ("nope", 400, "malformed_json", ""),
            ("null", 400, "invalid_body", ""),
        ];
        for &(body, status, code, names) in cases {
            let resp = handle(
                &store,
                &config(),
                request(&patch(r.id.as_str(), body, None)),
            )
            .await;
            assert_eq!(
                (resp.status().as_u16(), error_code(&resp).as_str()),
                (status, code),
                "{body}"
            );
            assert!(
                json_body(&resp)["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(names),
                "{body}"
            );
        }
        assert_eq!(
            store.get(&r.account_id, &r.id).await.unwrap(),
            r,
            "a refused patch wrote"
        );
    }

    #[tokio::test]
    async fn another_accounts_key_is_404_and_untouched() {
        let store = MemoryStore::new();
        let (_, r) = seed_key(&store, "someone-else").await;
        let resp = handle(
            &store,
            &config(),
            request(&patch(r.id.as_str(), r#"{"active":false}"#, None)),
        )
        .await;
        assert_eq!(
            (resp.status().as_u16(), error_code(&resp)),
            (404, "not_found".into())
        );
        assert!(store.get(&r.account_id, &r.id).await.unwrap().active);
    }

    #[tokio::test]
    async fn wrong_content_type_is_415() {
        let store = MemoryStore::new();
        let (_, r) = seed_key(&store, SAMPLE_SUB).await;
        let mut ev = patch(r.id.as_str(), r#"{"active":false}"#, None);
        set_header(
            &mut ev,
            "Content-Type",
            Some("application/x-www-form-urlencoded"),
        );
        assert_eq!(handle(&store, &config(), request(&ev)).await.status(), 415);
    }
}
