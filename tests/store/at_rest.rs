//! Strict at the edge, tolerant at rest: items written under older rules
//! (a scope the catalogue no longer has, a name today's rules refuse, no
//! schema version) keep working, and an item that cannot be decoded at all
//! is skipped by lists and fails closed everywhere else. The items are
//! written straight into DynamoDB Local.

use apikeys::dynamo::DynamoStore;
use apikeys::testing::fresh_dynamo_store;
use apikeys::{
    CreateKey, Deadline, DeleteKey, GetKey, KeyChanges, KeyName, ListKeys, LookupKey, StoreError,
    UpdateKey,
};
use authorizer::AuthError;
use authorizer::testing::{effect_and_resource, event_for};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use scopes::{Scope, ScopeSet, route_for_template};

use crate::store::conformance::{created, new_record, now};

type Item = std::collections::HashMap<String, AttributeValue>;

/// The key items (records and lookup items) of the table.
async fn items(store: &DynamoStore) -> Vec<Item> {
    apikeys::testing::key_items(store).await
}

/// Rewrites every stored item of the table for which `pick` is true.
async fn rewrite(store: &DynamoStore, pick: impl Fn(&Item) -> bool, edit: impl Fn(&mut Item)) {
    let mut n = 0;
    for mut item in items(store).await {
        if pick(&item) {
            edit(&mut item);
            store
                .client()
                .put_item()
                .table_name(store.table())
                .set_item(Some(item))
                .send()
                .await
                .unwrap();
            n += 1;
        }
    }
    assert!(n > 0, "nothing rewritten");
}

fn key_id_is(id: &apikeys::KeyId) -> impl Fn(&Item) -> bool + '_ {
    move |item| item.get("keyId").and_then(|v| v.as_s().ok()) == Some(&id.as_str().to_owned())
}

fn is_record(item: &Item) -> bool {
    item["pk"].as_s().unwrap().starts_with("ACCT#")
}

async fn decide(
    store: &DynamoStore,
    method: &str,
    resource: &str,
    key: &apikeys::ApiKey,
) -> Result<authorizer::Response, AuthError> {
    let ev = event_for(
        route_for_template(method, resource).unwrap(),
        &[("x-api-key", key.expose_secret())],
    );
    authorizer::authorize(
        store,
        &authorizer::Settings::default(),
        &ev,
        Utc::now(),
        "at-rest",
        Deadline::after(authorizer::DEFAULT_BUDGET),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_item_written_carries_the_schema_version() {
    let store = fresh_dynamo_store("schema").await;
    created(&store, "acct-a").await;
    let all = items(&store).await;
    assert_eq!(all.len(), 2);
    for item in all {
        assert_eq!(
            item.get("schemaVersion"),
            Some(&AttributeValue::N(
                apikeys::dynamo::SCHEMA_VERSION.to_string()
            ))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_key_with_an_unknown_scope_and_an_old_name_keeps_working() {
    let store = fresh_dynamo_store("legacy").await;
    let (key, record) = created(&store, "acct-a").await;
    let long_name = "n".repeat(KeyName::MAX_CHARS + 20);
    rewrite(&store, key_id_is(&record.id), |item| {
        item.remove("schemaVersion");
        item.insert(
            "scopes".into(),
            AttributeValue::L(vec![
                AttributeValue::S("links.archive".into()),
                AttributeValue::S("links.read".into()),
                AttributeValue::N("7".into()),
            ]),
        );
        if is_record(item) {
            item.insert("name".into(), AttributeValue::S(long_name.clone()));
        }
    })
    .await;
    let known = ScopeSet::from(Scope::LinksRead);

    // The authorizer decides from the scopes it can read.
    let allowed = decide(&store, "GET", "/links/{id}", &key).await.unwrap();
    assert_eq!(effect_and_resource(&allowed).0, "Allow");
    let denied = decide(&store, "POST", "/links", &key).await.unwrap();
    assert_eq!(effect_and_resource(&denied).0, "Deny");
    assert_eq!(
        store.lookup(&key.hash()).await.unwrap().unwrap().scopes,
        known
    );

    // List and get show it as stored, with the scopes that mean something.
    let page = store.list(&record.account_id, 10, None).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].scopes, known);
    assert_eq!(page.items[0].name.as_str(), long_name);
    let got = store.get(&record.account_id, &record.id).await.unwrap();
    assert_eq!((got.scopes, got.name.as_str()), (known, long_name.as_str()));

    // It can be changed (a rename under today's rules) and deleted.
    let changes = KeyChanges {
        name: Some(KeyName::parse("renamed").unwrap()),
        ..KeyChanges::default()
    };
    let updated = store
        .update(
            &record.account_id,
            &record.id,
            &changes,
            Some(1),
            &apikeys::Audit::system("test", now()),
        )
        .await
        .unwrap();
    assert_eq!((updated.name.as_str(), updated.version), ("renamed", 2));
    store
        .delete(
            &record.account_id,
            &record.id,
            &apikeys::Audit::system("test", chrono::Utc::now()),
        )
        .await
        .unwrap();
    assert!(items(&store).await.is_empty());
    let gone = decide(&store, "GET", "/links/{id}", &key).await;
    assert!(matches!(gone, Err(AuthError::Unauthorized)), "{gone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_key_is_skipped_by_lists_and_fails_closed_elsewhere() {
    let store = fresh_dynamo_store("corrupt").await;
    let mut good = Vec::new();
    for _ in 0..4 {
        good.push(created(&store, "acct-a").await.1.id);
    }
    let (bad_key, bad) = created(&store, "acct-a").await;
    // Its state is no longer a boolean, and the record lost its creation time.
    rewrite(&store, key_id_is(&bad.id), |item| {
        item.insert("active".into(), AttributeValue::S("yes".into()));
        if is_record(item) {
            item.remove("createdAt");
        }
    })
    .await;

    // A list page returns the rest; paging one by one passes over it.
    let page = store.list(&bad.account_id, 50, None).await.unwrap();
    let mut ids: Vec<_> = page.items.iter().map(|r| r.id.clone()).collect();
    ids.sort();
    good.sort();
    assert_eq!(ids, good);
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = store
            .list(&bad.account_id, 1, token.as_deref())
            .await
            .unwrap();
        seen.extend(page.items.into_iter().map(|r| r.id));
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, good, "every decodable key once, across pages");

    // Get and update refuse it (500), and the update writes nothing.
    assert!(matches!(
        store.get(&bad.account_id, &bad.id).await,
        Err(StoreError::Corrupt(_))
    ));
    let before = items(&store).await;
    let changes = KeyChanges {
        active: Some(false),
        ..KeyChanges::default()
    };
    assert!(matches!(
        store
            .update(
                &bad.account_id,
                &bad.id,
                &changes,
                None,
                &apikeys::Audit::system("test", now())
            )
            .await,
        Err(StoreError::Corrupt(_))
    ));
    assert_eq!(items(&store).await.len(), before.len());

    // The authorizer fails closed (500): never an Allow, never a 401 that
    // would hide the fault.
    let decided = decide(&store, "GET", "/links/{id}", &bad_key).await;
    assert!(
        matches!(decided, Err(AuthError::Store(StoreError::Corrupt(_)))),
        "{decided:?}"
    );

    // Delete needs only the hash: the broken key can still be removed.
    store
        .delete(
            &bad.account_id,
            &bad.id,
            &apikeys::Audit::system("test", chrono::Utc::now()),
        )
        .await
        .unwrap();
    assert_eq!(items(&store).await.len(), 2 * good.len());
    assert!(store.lookup(&bad_key.hash()).await.unwrap().is_none());
}

/// A lookup item the authorizer cannot decode at all fails closed, and one
/// whose scopes list is gone grants nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorizer_fails_closed_only_for_an_undecodable_lookup() {
    let store = fresh_dynamo_store("lookup").await;
    let (key, record) = new_record("acct-a");
    store
        .create(
            &record,
            &apikeys::Audit::system("test", chrono::Utc::now()),
            u32::MAX,
        )
        .await
        .unwrap();
    let lookup = |item: &Item| !is_record(item);

    rewrite(&store, lookup, |item| {
        item.remove("scopes");
    })
    .await;
    let denied = decide(&store, "GET", "/links/{id}", &key).await.unwrap();
    assert_eq!(
        effect_and_resource(&denied).0,
        "Deny",
        "no scopes grant nothing"
    );

    rewrite(&store, lookup, |item| {
        item.insert("expiresAt".into(), AttributeValue::S("next tuesday".into()));
    })
    .await;
    let decided = decide(&store, "GET", "/links/{id}", &key).await;
    assert!(
        matches!(decided, Err(AuthError::Store(StoreError::Corrupt(_)))),
        "{decided:?}"
    );
}
