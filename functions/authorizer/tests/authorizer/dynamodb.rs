//! The authorizer against DynamoDB Local: the store it runs with in Lambda.

use std::time::{Duration, Instant};

use apikeys::dynamo::ClientSettings;
use apikeys::testing::{fresh_dynamo_store, store_that_never_answers};
use apikeys::{ApiKey, DeleteKey, KeyChanges, UpdateKey};
use authorizer::AuthError;
use chrono::Utc;
use scopes::{Scope, ScopeSet};

use crate::*;

fn get_link() -> &'static Route {
    route("GET", "/links/{id}")
}

#[tokio::test]
async fn a_stored_key_is_allowed_and_denied_by_scope() {
    let store = fresh_dynamo_store("auth-found").await;
    let (key, record) = stored_key(&store, ScopeSet::from(Scope::LinksRead), None).await;
    let resp = decide(
        &store,
        &event_for(get_link(), &[("x-api-key", key.expose_secret())]),
    )
    .await
    .unwrap();
    assert_eq!(effect_and_resource(&resp).0, "Allow");
    assert_eq!(resp.principal_id.as_deref(), Some(record.id.as_str()));
    let del = route("DELETE", "/links/{id}");
    let resp = decide(
        &store,
        &event_for(del, &[("x-api-key", key.expose_secret())]),
    )
    .await
    .unwrap();
    assert_eq!(effect_and_resource(&resp).0, "Deny");
}

#[tokio::test]
async fn a_key_not_in_the_table_is_unauthorized() {
    let store = fresh_dynamo_store("auth-notfound").await;
    let key = ApiKey::generate();
    assert_unauthorized(
        decide(
            &store,
            &event_for(get_link(), &[("x-api-key", key.expose_secret())]),
        )
        .await,
    );
}

#[tokio::test]
async fn an_inactive_key_is_unauthorized() {
    let store = fresh_dynamo_store("auth-inactive").await;
    let (key, record) = stored_key(&store, ScopeSet::from(Scope::All), None).await;
    let off = KeyChanges {
        active: Some(false),
        ..Default::default()
    };
    store
        .update(&record.account_id, &record.id, &off, None, Utc::now())
        .await
        .unwrap();
    assert_unauthorized(
        decide(
            &store,
            &event_for(get_link(), &[("x-api-key", key.expose_secret())]),
        )
        .await,
    );
}

#[tokio::test]
async fn an_expired_key_is_unauthorized() {
    let store = fresh_dynamo_store("auth-expired").await;
    let (key, _) = stored_key(
        &store,
        ScopeSet::from(Scope::All),
        Some(Utc::now() - chrono::Duration::minutes(1)),
    )
    .await;
    assert_unauthorized(
        decide(
            &store,
            &event_for(get_link(), &[("x-api-key", key.expose_secret())]),
        )
        .await,
    );
}

#[tokio::test]
async fn a_deleted_key_is_unauthorized_on_the_next_call() {
    let store = fresh_dynamo_store("auth-deleted").await;
    let (key, record) = stored_key(&store, ScopeSet::from(Scope::All), None).await;
    let ev = event_for(get_link(), &[("x-api-key", key.expose_secret())]);
    assert_eq!(
        effect_and_resource(&decide(&store, &ev).await.unwrap()).0,
        "Allow"
    );
    store.delete(&record.account_id, &record.id).await.unwrap();
    assert_unauthorized(decide(&store, &ev).await);
}

#[tokio::test]
async fn revocation_is_seen_by_the_very_next_call() {
    let store = fresh_dynamo_store("auth-revoke").await;
    let (key, record) = stored_key(&store, ScopeSet::from(Scope::LinksRead), None).await;
    let ev = event_for(
        get_link(),
        &[("Authorization", &format!("Bearer {}", key.expose_secret()))],
    );
    assert_eq!(
        effect_and_resource(&decide(&store, &ev).await.unwrap()).0,
        "Allow"
    );
    let off = KeyChanges {
        active: Some(false),
        ..Default::default()
    };
    store
        .update(&record.account_id, &record.id, &off, None, Utc::now())
        .await
        .unwrap();
    // No wait: the lookup is a consistent read.
    assert_unauthorized(decide(&store, &ev).await);
    let on = KeyChanges {
        active: Some(true),
        ..Default::default()
    };
    store
        .update(&record.account_id, &record.id, &on, None, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        effect_and_resource(&decide(&store, &ev).await.unwrap()).0,
        "Allow"
    );
}

#[tokio::test]
async fn a_store_that_never_answers_fails_closed_within_the_operation_timeout() {
    let store = store_that_never_answers().await;
    let key = ApiKey::generate();
    let started = Instant::now();
    let result = decide(
        &store,
        &event_for(get_link(), &[("x-api-key", key.expose_secret())]),
    )
    .await;
    let elapsed = started.elapsed();
    assert!(matches!(result, Err(AuthError::Store(_))), "{result:?}");
    let bound = ClientSettings::default().operation_timeout + Duration::from_secs(2);
    assert!(elapsed < bound, "took {elapsed:?}");
}
