//! `GET /apikeys?limit=&nextToken=` → 200 `{items, nextToken?}`: the
//! caller's keys, `limit` 1–100 (default 50). The token is opaque and only
//! ever positions a query inside the caller's own partition.

use apikeys::ListKeys;
use keys_api::{ApiConfig, ApiError, Reply, caller, input, view};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

/// The Lambda handler: the work below, bounded by the invocation's deadline.
pub async fn handle<S: ListKeys>(store: &S, config: &ApiConfig, req: Request) -> Response<Body> {
    let outcome = keys_api::deadline(&req)
        .run(list(store, config, &req))
        .await;
    keys_api::finish(config, &req, "list-keys", outcome)
}

pub async fn list<S: ListKeys>(
    store: &S,
    config: &ApiConfig,
    req: &Request,
) -> Result<Reply, ApiError> {
    let caller = caller(req, config)?;
    let (limit, token) = input::page(req)?;
    let page = store.list(&caller.account, limit, token).await?;
    let mut body = json!({"items": page.items.iter().map(view::record).collect::<Vec<Value>>()});
    if let Some(t) = page.next_token {
        body["nextToken"] = Value::String(t);
    }
    Ok(Reply::json(StatusCode::OK, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use apikeys::MemoryStore;
    use keys_api::testing::*;
    use std::collections::HashSet;

    async fn seed(store: &MemoryStore, account: &str, n: usize) -> Vec<String> {
        let mut keys = Vec::new();
        for _ in 0..n {
            keys.push(seed_key(store, account).await.0.expose_secret().to_owned());
        }
        keys
    }

    async fn call(store: &MemoryStore, query: &[(&str, &str)]) -> Response<Body> {
        let mut ev = event(LIST_KEYS);
        set_query(&mut ev, query);
        handle(store, &config(), request(&ev)).await
    }

    #[tokio::test]
    async fn pages_through_the_callers_keys_only_with_no_secret() {
        let store = MemoryStore::new();
        let secrets = seed(&store, SAMPLE_SUB, 5).await;
        seed(&store, "someone-else", 4).await;
        let mut seen = HashSet::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![("limit", "2")];
            if let Some(t) = &token {
                q.push(("nextToken", t.as_str()));
            }
            let resp = call(&store, &q).await;
            assert_eq!(resp.status(), 200);
            let body = json_body(&resp);
            let text = body.to_string();
            assert!(
                secrets.iter().all(|s| !text.contains(s.as_str())),
                "a key in a list"
            );
            assert!(!text.contains("hash") && !text.contains("createdBy"));
            for item in body["items"].as_array().unwrap() {
                assert!(seen.insert(item["id"].as_str().unwrap().to_owned()));
            }
            match body["nextToken"].as_str() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 5);
    }

    #[tokio::test]
    async fn the_sample_event_lists_with_the_default_shape() {
        let store = MemoryStore::new();
        seed(&store, SAMPLE_SUB, 1).await;
        let resp = handle(&store, &config(), request(&event(LIST_KEYS))).await;
        assert_eq!(resp.status(), 200);
        let body = json_body(&resp);
        assert_eq!(body["items"].as_array().unwrap().len(), 1);
        assert!(body.get("nextToken").is_none());
    }

    #[tokio::test]
    async fn a_bad_limit_or_token_is_400() {
        let store = MemoryStore::new();
        seed(&store, SAMPLE_SUB, 3).await;
        for limit in ["0", "101", "-1", "abc", "", "1.5", "99999999999"] {
            let resp = call(&store, &[("limit", limit)]).await;
            assert_eq!(
                (resp.status().as_u16(), error_code(&resp)),
                (400, "invalid_limit".into()),
                "{limit}"
            );
        }
        for token in ["garbage", "AAAA", "%%"] {
            let resp = call(&store, &[("nextToken", token)]).await;
            assert_eq!(
                (resp.status().as_u16(), error_code(&resp)),
                (400, "invalid_token".into()),
                "{token}"
            );
        }
        for limit in ["1", "100"] {
            assert_eq!(call(&store, &[("limit", limit)]).await.status(), 200);
        }
    }

    #[tokio::test]
    async fn an_empty_token_is_the_first_page() {
        let store = MemoryStore::new();
        seed(&store, SAMPLE_SUB, 3).await;
        let resp = call(&store, &[("nextToken", ""), ("limit", "2")]).await;
        assert_eq!(resp.status(), 200);
        let first = json_body(&call(&store, &[("limit", "2")]).await);
        assert_eq!(json_body(&resp), first);
    }

    #[tokio::test]
    async fn another_accounts_token_is_400() {
        let store = MemoryStore::new();
        seed(&store, "someone-else", 3).await;
        let mut ev = event(LIST_KEYS);
        set_caller(&mut ev, "someone-else");
        set_query(&mut ev, &[("limit", "1")]);
        let theirs = json_body(&handle(&store, &config(), request(&ev)).await)["nextToken"]
            .as_str()
            .unwrap()
            .to_owned();
        let resp = call(&store, &[("nextToken", &theirs)]).await;
        assert_eq!(
            (resp.status().as_u16(), error_code(&resp)),
            (400, "invalid_token".into())
        );
    }

    #[tokio::test]
    async fn no_claims_is_401() {
        let mut ev = event(LIST_KEYS);
        remove_claims(&mut ev);
        let resp = handle(&MemoryStore::new(), &config(), request(&ev)).await;
        assert_eq!(resp.status(), 401);
    }
}
