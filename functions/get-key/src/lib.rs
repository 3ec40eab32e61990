//! `GET /apikeys/{id}` → 200 with the record (no secret) and `ETag` = its
//! version. Another account's key is 404, like a missing one.

use apikeys::GetKey;
use keys_api::input::etag;
use keys_api::{ApiConfig, ApiError, Reply, caller, key_id, view};
use lambda_http::http::StatusCode;
use lambda_http::http::header::ETAG;
use lambda_http::{Body, Request, Response};

/// The Lambda handler: the work below, bounded by the invocation's deadline.
pub async fn handle<S: GetKey>(store: &S, config: &ApiConfig, req: Request) -> Response<Body> {
    let outcome = keys_api::deadline(&req).run(get(store, config, &req)).await;
    keys_api::finish(config, &req, "get-key", outcome)
}

pub async fn get<S: GetKey>(
    store: &S,
    config: &ApiConfig,
    req: &Request,
) -> Result<Reply, ApiError> {
    let caller = caller(req, config)?;
    let id = key_id(req)?;
    let record = store.get(&caller.account, &id).await?;
    Ok(Reply::json(StatusCode::OK, view::record(&record)).header(ETAG, etag(record.version)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use apikeys::MemoryStore;
    use keys_api::testing::*;

    async fn seeded(account: &str) -> (MemoryStore, apikeys::KeyRecord, apikeys::ApiKey) {
        let store = MemoryStore::new();
        let (key, r) = seed_key(&store, account).await;
        (store, r, key)
    }

    #[tokio::test]
    async fn gets_the_callers_key_with_its_etag_and_no_secret() {
        let (store, r, key) = seeded(SAMPLE_SUB).await;
        let mut ev = event(GET_KEY);
        set_id(&mut ev, r.id.as_str());
        let resp = handle(&store, &config(), request(&ev)).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["etag"], "\"1\"");
        let body = json_body(&resp);
        assert_eq!(body["id"], r.id.as_str());
        assert_eq!(body["expiresAt"], serde_json::Value::Null);
        let text = body.to_string();
        assert!(!text.contains(&key.expose_secret()[10..]) && !text.contains(&r.hash.to_hex()));
    }

    /// Under a Lambda authorizer (the `sam local` harness's local identity)
    /// the caller comes from its context, which API Gateway sets beside the
    /// `principalId`; a context without one is no identity.
    #[tokio::test]
    async fn a_lambda_authorizers_context_names_the_caller_too() {
        let (store, r, _) = seeded(SAMPLE_SUB).await;
        let mut ev = event(GET_KEY);
        set_id(&mut ev, r.id.as_str());
        ev["requestContext"]["authorizer"] =
            serde_json::json!({"principalId": SAMPLE_SUB, "sub": SAMPLE_SUB});
        let resp = handle(&store, &config(), request(&ev)).await;
        assert_eq!(resp.status(), 200, "{}", json_body(&resp));
        ev["requestContext"]["authorizer"] = serde_json::json!({"sub": SAMPLE_SUB});
        assert_eq!(handle(&store, &config(), request(&ev)).await.status(), 401);
        ev["requestContext"]["authorizer"] =
            serde_json::json!({"principalId": "someone-else", "sub": "someone-else"});
        assert_eq!(handle(&store, &config(), request(&ev)).await.status(), 404);
    }

    #[tokio::test]
    async fn another_accounts_key_and_a_missing_one_are_the_same_404() {
        let (store, r, _) = seeded("someone-else").await;
        let mut theirs = event(GET_KEY);
        set_id(&mut theirs, r.id.as_str());
        let a = handle(&store, &config(), request(&theirs)).await;
        let missing = handle(&store, &config(), request(&event(GET_KEY))).await;
        let mut malformed = event(GET_KEY);
        set_id(&mut malformed, "not-an-id");
        let m = handle(&store, &config(), request(&malformed)).await;
        assert_eq!(a.status(), 404);
        assert_eq!(json_body(&a), json_body(&missing));
        assert_eq!(json_body(&a), json_body(&m));
    }

    #[tokio::test]
    async fn the_id_comes_from_path_parameters_not_the_uri() {
        let (store, r, _) = seeded(SAMPLE_SUB).await;
        let mut ev = event(GET_KEY);
        ev["pathParameters"] = serde_json::json!({"id": r.id.as_str()});
        // The path names another id (and carries the stage in the context).
        ev["path"] = serde_json::json!("/apikeys/7QbZ2kVnR4xW9pLmT3sHcA");
        let resp = handle(&store, &config(), request(&ev)).await;
        assert_eq!(json_body(&resp)["id"], r.id.as_str());
        ev["pathParameters"] = serde_json::Value::Null;
        assert_eq!(handle(&store, &config(), request(&ev)).await.status(), 404);
    }

    #[tokio::test]
    async fn no_claims_is_401() {
        let (store, r, _) = seeded(SAMPLE_SUB).await;
        let mut ev = event(GET_KEY);
        set_id(&mut ev, r.id.as_str());
        remove_claims(&mut ev);
        assert_eq!(handle(&store, &config(), request(&ev)).await.status(), 401);
    }
}
