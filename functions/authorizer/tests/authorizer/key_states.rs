//! The key-state rows of the semantics table, run on both stores
//! (`main.rs` instantiates each for the in-memory store and DynamoDB Local).

use apikeys::{ApiKey, KeyChanges, KeyStore};
use chrono::{Duration, Utc};
use scopes::{Scope, ScopeSet};

use crate::*;

fn get_link() -> &'static Route {
    route("GET", "/links/{id}")
}

async fn set_active<S: KeyStore>(store: &S, record: &apikeys::KeyRecord, active: bool) {
    let changes = KeyChanges {
        active: Some(active),
        ..Default::default()
    };
    store
        .update(
            &record.account_id,
            &record.id,
            &changes,
            None,
            &apikeys::Audit::system("test", Utc::now()),
        )
        .await
        .unwrap();
}

async fn decide_on<S: KeyStore>(
    store: &S,
    route: &Route,
    key: &ApiKey,
) -> Result<Response, AuthError> {
    decide(
        store,
        &event_for(route, &[("x-api-key", key.expose_secret())]),
    )
    .await
}

pub async fn a_stored_key_is_allowed_and_denied_by_scope<S: KeyStore>(store: &S) {
    let (key, record) = stored_key(store, ScopeSet::from(Scope::LinksRead), None).await;
    let resp = decide_on(store, get_link(), &key).await.unwrap();
    assert_eq!(effect_and_resource(&resp).0, "Allow");
    assert_eq!(resp.principal_id.as_deref(), Some(record.id.as_str()));
    let resp = decide_on(store, route("DELETE", "/links/{id}"), &key)
        .await
        .unwrap();
    assert_eq!(effect_and_resource(&resp).0, "Deny");
}

pub async fn a_key_not_in_the_store_is_unauthorized<S: KeyStore>(store: &S) {
    stored_key(store, ScopeSet::from(Scope::All), None).await;
    assert_unauthorized(decide_on(store, get_link(), &ApiKey::generate()).await);
}

pub async fn an_inactive_key_is_unauthorized<S: KeyStore>(store: &S) {
    let (key, record) = stored_key(store, ScopeSet::from(Scope::All), None).await;
    set_active(store, &record, false).await;
    assert_unauthorized(decide_on(store, get_link(), &key).await);
}

pub async fn an_expired_key_is_unauthorized_and_a_later_one_works<S: KeyStore>(store: &S) {
    let (key, _) = stored_key(
        store,
        ScopeSet::from(Scope::All),
        Some(Utc::now() - Duration::seconds(1)),
    )
    .await;
    assert_unauthorized(decide_on(store, get_link(), &key).await);
    let (key, _) = stored_key(
        store,
        ScopeSet::from(Scope::All),
        Some(Utc::now() + Duration::hours(1)),
    )
    .await;
    assert_eq!(
        effect_and_resource(&decide_on(store, get_link(), &key).await.unwrap()).0,
        "Allow"
    );
}

pub async fn a_deleted_key_is_unauthorized_on_the_next_call<S: KeyStore>(store: &S) {
    let (key, record) = stored_key(store, ScopeSet::from(Scope::All), None).await;
    assert_eq!(
        effect_and_resource(&decide_on(store, get_link(), &key).await.unwrap()).0,
        "Allow"
    );
    store
        .delete(
            &record.account_id,
            &record.id,
            &apikeys::Audit::system("test", chrono::Utc::now()),
        )
        .await
        .unwrap();
    assert_unauthorized(decide_on(store, get_link(), &key).await);
}

pub async fn revocation_is_seen_by_the_very_next_call<S: KeyStore>(store: &S) {
    let (key, record) = stored_key(store, ScopeSet::from(Scope::LinksRead), None).await;
    let ev = event_for(
        get_link(),
        &[("Authorization", &format!("Bearer {}", key.expose_secret()))],
    );
    assert_eq!(
        effect_and_resource(&decide(store, &ev).await.unwrap()).0,
        "Allow"
    );
    set_active(store, &record, false).await;
    // No wait: the lookup is a consistent read.
    assert_unauthorized(decide(store, &ev).await);
    set_active(store, &record, true).await;
    assert_eq!(
        effect_and_resource(&decide(store, &ev).await.unwrap()).0,
        "Allow"
    );
}

pub async fn a_rolled_secret_works_through_its_grace_then_is_unauthorized<S: KeyStore>(store: &S) {
    let (old, record) = stored_key(store, ScopeSet::from(Scope::LinksRead), None).await;
    let new = ApiKey::generate();
    store
        .roll(
            &record.account_id,
            &record.id,
            &new,
            Duration::seconds(60),
            None,
            &apikeys::Audit::system("test", Utc::now()),
        )
        .await
        .unwrap();
    for key in [&old, &new] {
        assert!(
            decide_on(store, get_link(), key).await.is_ok(),
            "both live in the grace"
        );
    }
    // After the grace period (decided from the stored time, not TTL).
    let ev = event_for(get_link(), &[("x-api-key", old.expose_secret())]);
    let later = Utc::now() + Duration::seconds(61);
    let deadline = apikeys::Deadline::after(authorizer::DEFAULT_BUDGET);
    let settings = authorizer::Settings::default();
    assert_unauthorized(authorizer::authorize(store, &settings, &ev, later, "t", deadline).await);
    let ev = event_for(get_link(), &[("x-api-key", new.expose_secret())]);
    assert!(
        authorizer::authorize(store, &settings, &ev, later, "t", deadline)
            .await
            .is_ok()
    );

    // Rolled without a grace period: the old secret is refused at the next call.
    let newest = ApiKey::generate();
    store
        .roll(
            &record.account_id,
            &record.id,
            &newest,
            Duration::zero(),
            None,
            &apikeys::Audit::system("test", Utc::now()),
        )
        .await
        .unwrap();
    assert_unauthorized(decide_on(store, get_link(), &new).await);
    assert_unauthorized(decide_on(store, get_link(), &old).await);
    assert!(decide_on(store, get_link(), &newest).await.is_ok());
}

pub async fn a_call_records_the_keys_use_once_per_interval<S: KeyStore>(store: &S) {
    let (key, record) = stored_key(store, ScopeSet::from(Scope::LinksRead), None).await;
    assert_eq!(
        store
            .get(&record.account_id, &record.id)
            .await
            .unwrap()
            .last_used_at,
        None
    );
    let ev = event_for(
        route("DELETE", "/links/{id}"),
        &[("x-api-key", key.expose_secret())],
    );
    let t = Utc::now();
    let settings = authorizer::Settings::default();
    let deadline = apikeys::Deadline::after(authorizer::DEFAULT_BUDGET);
    // A Deny is still a use of the key.
    let r = authorizer::authorize(store, &settings, &ev, t, "t", deadline)
        .await
        .unwrap();
    assert_eq!(authorizer::testing::effect_and_resource(&r).0, "Deny");
    let used = store
        .get(&record.account_id, &record.id)
        .await
        .unwrap()
        .last_used_at;
    assert_eq!(
        used.map(|u| u.timestamp_millis()),
        Some(t.timestamp_millis())
    );
    // Within the interval: no new record.
    let ev = event_for(get_link(), &[("x-api-key", key.expose_secret())]);
    authorizer::authorize(
        store,
        &settings,
        &ev,
        t + Duration::seconds(10),
        "t",
        deadline,
    )
    .await
    .unwrap();
    let again = store
        .get(&record.account_id, &record.id)
        .await
        .unwrap()
        .last_used_at;
    assert_eq!(again, used);
}
