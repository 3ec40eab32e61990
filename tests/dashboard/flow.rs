//! A key created by `create-key` as the authorizer sees it, on DynamoDB Local:
//! allowed within its scopes, denied (403) outside them, rejected (401) right
//! after deactivation and after deletion.

use apikeys::testing::fresh_dynamo_store;
use authorizer::AuthError;
use authorizer::testing::{effect_and_resource, event_for};
use chrono::Utc;
use scopes::{ROUTES, Scope};

use crate::dashboard::*;

async fn decide<S: LookupKey + apikeys::RecordUse>(
    store: &S,
    route: &scopes::Route,
    key: &str,
) -> Result<authorizer::Response, AuthError> {
    let ev = event_for(route, &[("x-api-key", key)]);
    authorizer::authorize(
        store,
        &authorizer::Settings::default(),
        &ev,
        Utc::now(),
        "flow",
        apikeys::Deadline::after(authorizer::DEFAULT_BUDGET),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_key_is_authorized_by_scope_until_deactivated_or_deleted() {
    let store = fresh_dynamo_store("flow").await;
    let mut create = sample("createKey");
    set_body(
        &mut create,
        Some(r#"{"name":"Zapier","scopes":["links.read","cafe.create"]}"#),
    );
    let created = json_body(&call(&store, "createKey", &create).await);
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();

    for route in &ROUTES {
        let resp = decide(&store, route, &key).await.unwrap();
        let want = if matches!(route.scope, Scope::LinksRead | Scope::CafeCreate) {
            "Allow"
        } else {
            "Deny"
        };
        assert_eq!(effect_and_resource(&resp).0, want, "{route:?}");
        assert_eq!(resp.principal_id.as_deref(), Some(id.as_str()));
        if want == "Allow" {
            assert_eq!(resp.context["accountId"], SAMPLE_SUB);
            assert_eq!(resp.context["scopes"], "links.read,cafe.create");
        }
    }

    let get_link = scopes::route_for_template("GET", "/links/{id}").unwrap();
    let mut off = sample("updateKey");
    set_id(&mut off, &id);
    set_header(&mut off, "If-Match", None);
    set_body(&mut off, Some(r#"{"active":false}"#));
    assert_eq!(call(&store, "updateKey", &off).await.status(), 200);
    assert!(
        matches!(
            decide(&store, get_link, &key).await,
            Err(AuthError::Unauthorized)
        ),
        "deactivated → 401 at once"
    );

    set_body(
        &mut off,
        Some(r#"{"active":true,"scopes":["links.delete"]}"#),
    );
    assert_eq!(call(&store, "updateKey", &off).await.status(), 200);
    assert_eq!(
        effect_and_resource(&decide(&store, get_link, &key).await.unwrap()).0,
        "Deny",
        "new scopes apply at once"
    );
    let del_link = scopes::route_for_template("DELETE", "/links/{id}").unwrap();
    assert_eq!(
        effect_and_resource(&decide(&store, del_link, &key).await.unwrap()).0,
        "Allow"
    );

    let mut del = sample("deleteKey");
    set_id(&mut del, &id);
    assert_eq!(call(&store, "deleteKey", &del).await.status(), 204);
    assert!(
        matches!(
            decide(&store, del_link, &key).await,
            Err(AuthError::Unauthorized)
        ),
        "deleted → 401 at once"
    );
}
