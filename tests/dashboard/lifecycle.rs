//! A key's whole life through the five handlers on DynamoDB Local:
//! create → get/list (no secret anywhere) → update → deactivate → delete.

use apikeys::testing::fresh_dynamo_store;
use apikeys::{ApiKey, LookupKey};
use serde_json::json;

use crate::dashboard::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_read_update_deactivate_delete_on_dynamodb_local() {
    let store = fresh_dynamo_store("lifecycle").await;

    // Create: 201, the key once.
    let created = call(&store, "createKey", &sample("createKey")).await;
    assert_eq!(created.status(), 201, "{}", json_body(&created));
    let body = json_body(&created);
    let key = ApiKey::parse(body["key"].as_str().unwrap()).unwrap();
    let secret = key.expose_secret().to_owned();
    let id = body["id"].as_str().unwrap().to_owned();

    // Get and list: the record, never the key, its body or its hash.
    let mut get = sample("getKey");
    set_id(&mut get, &id);
    let got = call(&store, "getKey", &get).await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["etag"], "\"1\"");
    let listed = call(&store, "listKeys", &sample("listKeys")).await;
    assert_eq!(json_body(&listed)["items"].as_array().unwrap().len(), 1);
    for resp in [&got, &listed] {
        let text = json_body(resp).to_string();
        assert!(
            !text.contains(&secret[4..]) && !text.contains(&key.hash().to_hex()),
            "{text}"
        );
    }
    let mut record = body.clone();
    record.as_object_mut().unwrap().remove("key");
    assert_eq!(json_body(&got), record, "get returns what create described");

    // Update with If-Match: name and scopes; the lookup item follows.
    let mut patch = sample("updateKey");
    set_id(&mut patch, &id);
    set_body(
        &mut patch,
        Some(r#"{"name":"renamed","scopes":["cafe.read"]}"#),
    );
    let updated = call(&store, "updateKey", &patch).await;
    assert_eq!(updated.status(), 200, "{}", json_body(&updated));
    assert_eq!(updated.headers()["etag"], "\"2\"");
    let u = json_body(&updated);
    assert_eq!(
        (u["name"].clone(), u["scopes"].clone()),
        (json!("renamed"), json!(["cafe.read"]))
    );
    assert_eq!(u["createdAt"], body["createdAt"]);
    let lookup = store.lookup(&key.hash()).await.unwrap().unwrap();
    assert_eq!(lookup.scopes.to_string(), "cafe.read");

    // The same If-Match again is stale.
    let stale = call(&store, "updateKey", &patch).await;
    assert_eq!(
        (stale.status().as_u16(), error_code(&stale)),
        (409, "version_conflict".into())
    );

    // Deactivate (no If-Match): the lookup item is inactive at once.
    let mut off = sample("updateKey");
    set_id(&mut off, &id);
    set_body(&mut off, Some(r#"{"active":false}"#));
    set_header(&mut off, "If-Match", None);
    let deactivated = call(&store, "updateKey", &off).await;
    assert_eq!(json_body(&deactivated)["active"], false);
    assert!(!store.lookup(&key.hash()).await.unwrap().unwrap().active);

    // Another account sees nothing and changes nothing.
    let mut theirs = get.clone();
    set_caller(&mut theirs, "someone-else");
    assert_eq!(call(&store, "getKey", &theirs).await.status(), 404);
    set_caller(&mut off, "someone-else");
    assert_eq!(call(&store, "updateKey", &off).await.status(), 404);
    let mut their_delete = sample("deleteKey");
    set_id(&mut their_delete, &id);
    set_caller(&mut their_delete, "someone-else");
    assert_eq!(call(&store, "deleteKey", &their_delete).await.status(), 404);

    // Delete: both items gone.
    let mut del = sample("deleteKey");
    set_id(&mut del, &id);
    assert_eq!(call(&store, "deleteKey", &del).await.status(), 204);
    assert!(store.lookup(&key.hash()).await.unwrap().is_none());
    assert_eq!(call(&store, "getKey", &get).await.status(), 404);
    assert!(
        json_body(&call(&store, "listKeys", &sample("listKeys")).await)["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // No item of the key is left: only its tombstone, its events and the
    // account's count, none of which holds any piece of the key.
    assert!(
        apikeys::testing::key_items(&store).await.is_empty(),
        "key items left after delete"
    );
    let rest = format!("{:?}", apikeys::testing::all_items(&store).await);
    assert!(
        !rest.contains(&key.expose_secret()[4..14]),
        "a key piece is stored"
    );
    assert!(!rest.contains(&key.hash().to_hex()[..16]), "a hash is left");
}
