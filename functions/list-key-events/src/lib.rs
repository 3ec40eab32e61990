//! `GET /apikeys/{id}/events?limit=&nextToken=` → 200 `{items, nextToken?}`:
//! the key's audit trail, newest first, `limit` 1–100 (default 50), paged
//! like the key list. A key the account deleted less than 90 days ago still
//! shows its events; another account's key, like a missing one, is 404.

use apikeys::ListEvents;
use keys_api::{ApiConfig, ApiError, Reply, caller, input, key_id, view};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

/// The Lambda handler: the work below, bounded by the invocation's deadline.
pub async fn handle<S: ListEvents>(store: &S, config: &ApiConfig, req: Request) -> Response<Body> {
    let outcome = keys_api::deadline(&req)
        .run(list(store, config, &req))
        .await;
    keys_api::finish(config, &req, "list-key-events", outcome)
}

pub async fn list<S: ListEvents>(
    store: &S,
    config: &ApiConfig,
    req: &Request,
) -> Result<Reply, ApiError> {
    let caller = caller(req, config)?;
    let id = key_id(req)?;
    let (limit, token) = input::page(req)?;
    let page = store
        .events(&caller.account, &id, limit, token, lambda_support::now())
        .await?;
    let mut body = json!({"items": page.items.iter().map(view::event).collect::<Vec<Value>>()});
    if let Some(t) = page.next_token {
        body["nextToken"] = Value::String(t);
    }
    Ok(Reply::json(StatusCode::OK, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use apikeys::{Audit, DeleteKey, KeyChanges, MemoryStore, UpdateKey};
    use keys_api::testing::*;

    fn list_event(id: &str, query: &[(&str, &str)]) -> Value {
        let mut ev = event(GET_KEY);
        ev["resource"] = json!("/apikeys/{id}/events");
        set_id(&mut ev, id);
        set_query(&mut ev, query);
        ev
    }

    fn audit(actor: &str) -> Audit {
        Audit {
            actor: actor.to_owned(),
            request_id: "req-1".to_owned(),
            at: lambda_support::now(),
        }
    }

    #[tokio::test]
    async fn events_are_newest_first_with_the_actor_and_paged() {
        let store = MemoryStore::new();
        let (_, r) = seed_key(&store, SAMPLE_SUB).await;
        let changes = KeyChanges {
            active: Some(false),
            ..KeyChanges::default()
        };
        store
            .update(&r.account_id, &r.id, &changes, None, &audit("user-2"))
            .await
            .unwrap();
        let resp = handle(&store, &config(), request(&list_event(r.id.as_str(), &[]))).await;
        assert_eq!(resp.status(), 200, "{}", json_body(&resp));
        let body = json_body(&resp);
        let actions: Vec<&str> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["updated", "created"]);
        assert_eq!(body["items"][0]["actor"], "user-2");
        assert_eq!(body["items"][0]["changes"], json!({"active": false}));
        assert!(!body.to_string().contains("key-"), "no secret in events");

        let first = json_body(
            &handle(
                &store,
                &config(),
                request(&list_event(r.id.as_str(), &[("limit", "1")])),
            )
            .await,
        );
        assert_eq!(first["items"][0]["action"], "updated");
        let token = first["nextToken"].as_str().unwrap();
        let second = json_body(
            &handle(
                &store,
                &config(),
                request(&list_event(
                    r.id.as_str(),
                    &[("limit", "1"), ("nextToken", token)],
                )),
            )
            .await,
        );
        assert_eq!(second["items"][0]["action"], "created");
        assert!(second.get("nextToken").is_none());
    }

    #[tokio::test]
    async fn a_deleted_keys_events_stay_readable_another_accounts_are_404() {
        let store = MemoryStore::new();
        let (_, r) = seed_key(&store, SAMPLE_SUB).await;
        store
            .delete(&r.account_id, &r.id, &audit("user-1"))
            .await
            .unwrap();
        let resp = handle(&store, &config(), request(&list_event(r.id.as_str(), &[]))).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(json_body(&resp)["items"][0]["action"], "deleted");

        let (_, theirs) = seed_key(&store, "someone-else").await;
        let resp = handle(
            &store,
            &config(),
            request(&list_event(theirs.id.as_str(), &[])),
        )
        .await;
        assert_eq!(
            (resp.status().as_u16(), error_code(&resp)),
            (404, "not_found".into())
        );
        let bad = handle(
            &store,
            &config(),
            request(&list_event(r.id.as_str(), &[("nextToken", "AAAA")])),
        )
        .await;
        assert_eq!(bad.status(), 400);
    }
}
