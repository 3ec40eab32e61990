//! The repair command's work on DynamoDB Local: a table broken as the races
//! of earlier versions left tables (a stale mirror, a missing lookup item,
//! orphans) is found by the invariant checker, left alone by a dry run, and
//! repaired by `--apply` through the guarded writes.

use apikeys::testing::fresh_dynamo_store;
use apikeys::{AccountId, ApiKey, KeyId, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use scopes::{ROUTES, Scope};

use crate::store::races::{decide, seed};

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repair_finds_every_break_leaves_a_dry_run_alone_and_applies_through_guarded_writes() {
    let store = fresh_dynamo_store("repair").await;
    let account = AccountId::parse("repair").unwrap();
    let (stale_key, stale) = seed(&store, &account).await;
    let (missing_key, missing) = seed(&store, &account).await;
    let (_, named) = seed(&store, &account).await;
    let (client, table) = (store.client(), store.table());

    // A stale mirror: the lookup item kept `all` (the record has read + delete).
    client
        .update_item()
        .table_name(table)
        .key("pk", s(&format!("HASH#{}", stale_key.hash().to_hex())))
        .key("sk", s("HASH"))
        .update_expression("SET scopes = :all")
        .expression_attribute_values(":all", AttributeValue::L(vec![s("all")]))
        .send()
        .await
        .unwrap();
    // A live secret without its lookup item.
    client
        .delete_item()
        .table_name(table)
        .key("pk", s(&format!("HASH#{}", missing_key.hash().to_hex())))
        .key("sk", s("HASH"))
        .send()
        .await
        .unwrap();
    // Orphans: a secret claiming a key that does not name it, and one
    // claiming a key that does not exist.
    let orphans = [
        (ApiKey::generate(), named.id.clone()),
        (ApiKey::generate(), KeyId::generate()),
    ];
    for (key, id) in &orphans {
        client
            .put_item()
            .table_name(table)
            .item("pk", s(&format!("HASH#{}", key.hash().to_hex())))
            .item("sk", s("HASH"))
            .item("accountId", s(account.as_str()))
            .item("keyId", s(id.as_str()))
            .item("scopes", AttributeValue::L(vec![s("all")]))
            .item("active", AttributeValue::Bool(true))
            .send()
            .await
            .unwrap();
    }
    let delete_route = ROUTES
        .iter()
        .find(|r| r.scope == Scope::FoldersDelete)
        .unwrap();
    assert_eq!(
        decide(&store, &stale_key, delete_route).await,
        "allow",
        "the break is real"
    );
    assert_eq!(decide(&store, &orphans[0].0, delete_route).await, "allow");

    let before = apikeys::testing::all_items(&store).await.len();
    let dry = local_stack::repair::run(&store, false).await.unwrap();
    let kinds: Vec<String> = dry.found.iter().map(|v| v.to_string()).collect();
    assert_eq!(dry.found.len(), 4, "{kinds:#?}");
    assert!(
        kinds
            .iter()
            .any(|k| k.starts_with("stale lookup") && k.contains(stale.id.as_str()))
    );
    assert!(
        kinds
            .iter()
            .any(|k| k.starts_with("missing lookup") && k.contains(missing.id.as_str()))
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| k.starts_with("orphan lookup"))
            .count(),
        2
    );
    assert_eq!(
        apikeys::testing::all_items(&store).await.len(),
        before,
        "a dry run writes nothing"
    );

    let applied = local_stack::repair::run(&store, true).await.unwrap();
    assert_eq!(applied.keys_rewritten, 2);
    assert_eq!(applied.orphans_removed, 2);
    assert!(applied.remaining.is_empty(), "{:#?}", applied.remaining);

    assert_eq!(
        decide(&store, &stale_key, delete_route).await,
        "deny",
        "scopes as recorded"
    );
    let read_route = ROUTES.iter().find(|r| r.scope == Scope::LinksRead).unwrap();
    assert_eq!(
        decide(&store, &missing_key, read_route).await,
        "allow",
        "the key works again"
    );
    for (key, _) in &orphans {
        assert_eq!(decide(&store, key, read_route).await, "unauthorized");
    }
    // Each repaired key has a new version and a `repaired` event.
    let r = apikeys::GetKey::get(&store, &account, &stale.id)
        .await
        .unwrap();
    assert_eq!(r.version, 2);
    let events =
        apikeys::ListEvents::events(&store, &account, &stale.id, 10, None, chrono::Utc::now())
            .await
            .unwrap();
    assert_eq!(events.items[0].action.as_str(), "repaired");
    // A second run finds nothing.
    assert!(
        local_stack::repair::run(&store, false)
            .await
            .unwrap()
            .found
            .is_empty()
    );
    assert!(matches!(
        store
            .repair_key(
                &account,
                &KeyId::generate(),
                &apikeys::Audit::system("t", chrono::Utc::now())
            )
            .await,
        Err(StoreError::NotFound)
    ));
}
