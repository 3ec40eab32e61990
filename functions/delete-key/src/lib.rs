//! `DELETE /apikeys/{id}` → 204. Both stored items go in one transaction, so
//! the key stops authenticating with the very next call (with caching on,
//! once the authorizer cache is flushed, before the answer). With `If-Match`,
//! only the version the caller saw is deleted (else 409 `version_conflict`).

use apikeys::DeleteKey;
use keys_api::{ApiConfig, ApiError, Reply, caller, input, key_id};
use lambda_http::{Body, Request, Response};

/// The Lambda handler: the work below, bounded by the invocation's deadline.
pub async fn handle<S: DeleteKey>(store: &S, config: &ApiConfig, req: Request) -> Response<Body> {
    let work = delete(store, config, &req, lambda_support::now());
    keys_api::respond_change(config, &req, "delete-key", work).await
}

pub async fn delete<S: DeleteKey>(
    store: &S,
    config: &ApiConfig,
    req: &Request,
    now: apikeys::Timestamp,
) -> Result<Reply, ApiError> {
    let caller = caller(req, config)?;
    let id = key_id(req)?;
    let expected = input::expected_version(req)?;
    let audit = keys_api::audit(&caller, req, now);
    store
        .delete_at(&caller.account, &id, expected, &audit)
        .await?;
    Ok(Reply::no_content().flushing_cache(true))
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

    #[tokio::test]
    async fn deletes_the_callers_key_and_its_lookup() {
        let store = MemoryStore::new();
        let (key, r) = seed_key(&store, SAMPLE_SUB).await;
        let mut ev = event(DELETE_KEY);
        set_id(&mut ev, r.id.as_str());
        let resp = handle(&store, &config(), request(&ev)).await;
        assert_eq!(resp.status(), 204);
        assert!(resp.body().as_ref().is_empty());
        assert_eq!(resp.headers()["access-control-allow-origin"], ORIGIN);
        assert!(store.lookup(&key.hash()).await.unwrap().is_none());
        let again = handle(&store, &config(), request(&ev)).await;
        assert_eq!(
            (again.status().as_u16(), error_code(&again)),
            (404, "not_found".into())
        );
    }

    #[tokio::test]
    async fn another_accounts_key_is_404_and_survives() {
        let store = MemoryStore::new();
        let (key, r) = seed_key(&store, "someone-else").await;
        let mut ev = event(DELETE_KEY);
        set_id(&mut ev, r.id.as_str());
        assert_eq!(handle(&store, &config(), request(&ev)).await.status(), 404);
        assert!(store.get(&r.account_id, &r.id).await.is_ok());
        assert!(store.lookup(&key.hash()).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn if_match_deletes_only_the_version_shown() {
        let store = MemoryStore::new();
        let (key, r) = seed_key(&store, SAMPLE_SUB).await;
        let mut ev = event(DELETE_KEY);
        set_id(&mut ev, r.id.as_str());
        set_header(&mut ev, "If-Match", Some("\"2\""));
        let stale = handle(&store, &config(), request(&ev)).await;
        assert_eq!(
            (stale.status().as_u16(), error_code(&stale)),
            (409, "version_conflict".into())
        );
        assert!(
            store.lookup(&key.hash()).await.unwrap().is_some(),
            "it still works"
        );
        set_header(&mut ev, "If-Match", Some("W/\"1\""));
        assert_eq!(handle(&store, &config(), request(&ev)).await.status(), 400);
        set_header(&mut ev, "If-Match", Some(&format!("\"{}\"", r.version)));
        assert_eq!(handle(&store, &config(), request(&ev)).await.status(), 204);
        assert!(store.lookup(&key.hash()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn no_claims_is_401() {
        let mut ev = event(DELETE_KEY);
        remove_claims(&mut ev);
        assert_eq!(
            handle(&MemoryStore::new(), &config(), request(&ev))
                .await
                .status(),
            401
        );
    }
}
