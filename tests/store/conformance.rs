//! The key-store conformance suite: every behaviour here must hold for the
//! in-memory store and the DynamoDB store alike (`main.rs` runs each test on both).

use std::collections::BTreeSet;
use std::sync::Arc;

use apikeys::{
    AccountId, ApiKey, KeyChanges, KeyId, KeyName, KeyRecord, KeyStore, StoreError, Timestamp,
};
use chrono::{Duration, SubsecRound, Utc};
use scopes::{Scope, ScopeSet};
use tokio::sync::Barrier;

pub fn account(name: &str) -> AccountId {
    AccountId::parse(name).unwrap()
}

pub fn now() -> Timestamp {
    Utc::now().trunc_subsecs(3)
}

pub fn new_record(account_name: &str) -> (ApiKey, KeyRecord) {
    let key = ApiKey::generate();
    let record = KeyRecord::new(
        &key,
        account(account_name),
        KeyName::parse("CI bot").unwrap(),
        ScopeSet::from(Scope::LinksRead).with(Scope::FoldersRead),
        Some(now() + Duration::days(30)),
        format!("user-of-{account_name}"),
        now(),
    );
    (key, record)
}

pub async fn created<S: KeyStore>(store: &S, account_name: &str) -> (ApiKey, KeyRecord) {
    let (key, record) = new_record(account_name);
    store
        .create(
            &record,
            &apikeys::Audit::system("test", chrono::Utc::now()),
            u32::MAX,
        )
        .await
        .unwrap();
    (key, record)
}

pub async fn created_key_is_found_by_hash_and_by_id<S: KeyStore>(store: &S) {
    let (key, record) = created(store, "acct-a").await;
    assert_eq!(
        store.get(&record.account_id, &record.id).await.unwrap(),
        record
    );
    assert_eq!(
        store.lookup(&key.hash()).await.unwrap(),
        Some(record.lookup())
    );
}

pub async fn duplicate_create_fails_and_writes_nothing<S: KeyStore>(store: &S) {
    let (key, record) = created(store, "acct-a").await;

    // The very same record again.
    assert!(matches!(
        store
            .create(
                &record,
                &apikeys::Audit::system("test", chrono::Utc::now()),
                u32::MAX
            )
            .await,
        Err(StoreError::AlreadyExists)
    ));

    // Another id under the same key hash: the record item must not appear.
    let mut same_hash = new_record("acct-a").1;
    same_hash.hash = record.hash;
    assert!(matches!(
        store
            .create(
                &same_hash,
                &apikeys::Audit::system("test", chrono::Utc::now()),
                u32::MAX
            )
            .await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        store.get(&same_hash.account_id, &same_hash.id).await,
        Err(StoreError::NotFound)
    ));

    // The same id under another key: the lookup item must not appear.
    let (other_key, mut same_id) = new_record("acct-a");
    same_id.id = record.id.clone();
    assert!(matches!(
        store
            .create(
                &same_id,
                &apikeys::Audit::system("test", chrono::Utc::now()),
                u32::MAX
            )
            .await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(store.lookup(&other_key.hash()).await.unwrap(), None);

    // The original is untouched.
    assert_eq!(
        store.get(&record.account_id, &record.id).await.unwrap(),
        record
    );
    assert_eq!(
        store.lookup(&key.hash()).await.unwrap(),
        Some(record.lookup())
    );
}

pub async fn missing_key_is_not_found<S: KeyStore>(store: &S) {
    let acct = account("acct-a");
    let id = KeyId::generate();
    assert!(matches!(
        store.get(&acct, &id).await,
        Err(StoreError::NotFound)
    ));
    let changes = KeyChanges {
        active: Some(false),
        ..Default::default()
    };
    assert!(matches!(
        store
            .update(
                &acct,
                &id,
                &changes,
                None,
                &apikeys::Audit::system("test", now())
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .update(
                &acct,
                &id,
                &changes,
                Some(1),
                &apikeys::Audit::system("test", now())
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .delete(
                &acct,
                &id,
                &apikeys::Audit::system("test", chrono::Utc::now())
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.lookup(&ApiKey::generate().hash()).await.unwrap(),
        None
    );
}

pub async fn another_accounts_key_behaves_as_not_found<S: KeyStore>(store: &S) {
    let (key, record) = created(store, "acct-a").await;
    let intruder = account("acct-b");
    let changes = KeyChanges {
        active: Some(false),
        ..Default::default()
    };
    assert!(matches!(
        store.get(&intruder, &record.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .update(
                &intruder,
                &record.id,
                &changes,
                None,
                &apikeys::Audit::system("test", now())
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .delete(
                &intruder,
                &record.id,
                &apikeys::Audit::system("test", chrono::Utc::now())
            )
            .await,
        Err(StoreError::NotFound)
    ));
    // Nothing changed for the owner.
    assert_eq!(
        store.get(&record.account_id, &record.id).await.unwrap(),
        record
    );
    assert_eq!(
        store.lookup(&key.hash()).await.unwrap(),
        Some(record.lookup())
    );
}

pub async fn pagination_returns_every_key_of_the_caller_exactly_once<S: KeyStore>(store: &S) {
    let mut mine = BTreeSet::new();
    // Interleave other accounts' keys (including ones whose names sort right
    // before and after the caller's partition) with the caller's.
    for i in 0..15 {
        mine.insert(created(store, "acct-m").await.1.id);
        if i % 3 == 0 {
            created(store, "acct-l").await;
            created(store, "acct-n").await;
            created(store, "acct-m2").await;
        }
    }
    let acct = account("acct-m");
    for limit in [1u16, 2, 7] {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = store.list(&acct, limit, token.as_deref()).await.unwrap();
            pages += 1;
            assert!(page.items.len() <= usize::from(limit));
            assert!(page.items.iter().all(|r| r.account_id == acct));
            seen.extend(page.items.iter().map(|r| r.id.clone()));
            match page.next_token {
                Some(t) => {
                    assert_eq!(
                        page.items.len(),
                        usize::from(limit),
                        "a full page precedes a token"
                    );
                    token = Some(t);
                }
                None => break,
            }
            assert!(pages <= 20, "pagination does not end");
        }
        assert!(pages >= 3, "limit {limit}: only {pages} pages");
        assert_eq!(seen.len(), mine.len(), "limit {limit}: duplicates or gaps");
        assert_eq!(
            seen.iter().cloned().collect::<BTreeSet<_>>(),
            mine,
            "limit {limit}"
        );
    }
    // An account with no keys gets an empty page and no token.
    let empty = store.list(&account("acct-none"), 50, None).await.unwrap();
    assert!(empty.items.is_empty() && empty.next_token.is_none());
}

pub async fn malformed_or_foreign_tokens_are_the_callers_error<S: KeyStore>(store: &S) {
    for _ in 0..3 {
        created(store, "acct-a").await;
        created(store, "acct-b").await;
    }
    let b_token = store
        .list(&account("acct-b"), 1, None)
        .await
        .unwrap()
        .next_token
        .unwrap();
    let a = account("acct-a");
    assert!(matches!(
        store.list(&a, 1, Some(&b_token)).await,
        Err(StoreError::InvalidToken)
    ));
    for bad in [
        "",
        "garbage",
        "%%%",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &"x".repeat(500),
    ] {
        assert!(
            matches!(
                store.list(&a, 1, Some(bad)).await,
                Err(StoreError::InvalidToken)
            ),
            "{bad}"
        );
    }
}

pub async fn create_then_update_and_delete_at_once<S: KeyStore>(store: &S) {
    let (key, record) = created(store, "acct-a").await;
    let changes = KeyChanges {
        name: Some(KeyName::parse("renamed").unwrap()),
        ..Default::default()
    };
    let updated = store
        .update(
            &record.account_id,
            &record.id,
            &changes,
            None,
            &apikeys::Audit::system("test", now()),
        )
        .await
        .unwrap();
    assert_eq!(updated.name.as_str(), "renamed");
    store
        .delete(
            &record.account_id,
            &record.id,
            &apikeys::Audit::system("test", chrono::Utc::now()),
        )
        .await
        .unwrap();
    assert!(matches!(
        store.get(&record.account_id, &record.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.lookup(&key.hash()).await.unwrap(), None);
    assert!(matches!(
        store
            .delete(
                &record.account_id,
                &record.id,
                &apikeys::Audit::system("test", chrono::Utc::now())
            )
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn update_sets_only_the_given_fields_on_both_items<S: KeyStore>(store: &S) {
    let (key, record) = created(store, "acct-a").await;
    let later = record.updated_at + Duration::seconds(5);
    let scopes = ScopeSet::from(Scope::CafeRead);
    let changes = KeyChanges {
        scopes: Some(scopes),
        ..Default::default()
    };
    let updated = store
        .update(
            &record.account_id,
            &record.id,
            &changes,
            None,
            &apikeys::Audit::system("test", later),
        )
        .await
        .unwrap();

    let mut expected = record.clone();
    expected.scopes = scopes;
    expected.updated_at = later;
    expected.version = 2;
    assert_eq!(updated, expected);
    assert_eq!(
        store.get(&record.account_id, &record.id).await.unwrap(),
        expected
    );
    assert_eq!(
        store.lookup(&key.hash()).await.unwrap(),
        Some(expected.lookup())
    );

    let changes = KeyChanges {
        active: Some(false),
        ..Default::default()
    };
    let updated = store
        .update(
            &record.account_id,
            &record.id,
            &changes,
            None,
            &apikeys::Audit::system("test", later),
        )
        .await
        .unwrap();
    assert!(!updated.active);
    assert_eq!(updated.scopes, scopes);
    assert_eq!(updated.version, 3);
    let lookup = store.lookup(&key.hash()).await.unwrap().unwrap();
    assert!(!lookup.active && lookup.scopes == scopes);
}

pub async fn concurrent_updates_of_different_fields_all_survive<S: KeyStore + 'static>(
    store: Arc<S>,
) {
    let (key, record) = created(&*store, "acct-a").await;
    const UPDATERS: usize = 16;
    let barrier = Arc::new(Barrier::new(UPDATERS));
    let scope_choices: Vec<ScopeSet> = Scope::EVERY[1..]
        .iter()
        .take(UPDATERS - 2)
        .map(|&s| ScopeSet::from(s))
        .collect();
    let mut tasks = Vec::new();
    for i in 0..UPDATERS {
        let (store, barrier, record) = (store.clone(), barrier.clone(), record.clone());
        let changes = match i {
            0 => KeyChanges {
                name: Some(KeyName::parse("renamed concurrently").unwrap()),
                ..Default::default()
            },
            1 => KeyChanges {
                active: Some(false),
                ..Default::default()
            },
            _ => KeyChanges {
                scopes: Some(scope_choices[i - 2]),
                ..Default::default()
            },
        };
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .update(
                    &record.account_id,
                    &record.id,
                    &changes,
                    None,
                    &apikeys::Audit::system("test", now()),
                )
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let last = store.get(&record.account_id, &record.id).await.unwrap();
    assert_eq!(last.version, 1 + UPDATERS as u64, "an update was lost");
    assert_eq!(
        last.name.as_str(),
        "renamed concurrently",
        "the name update was overwritten"
    );
    assert!(!last.active, "the deactivation was overwritten");
    assert!(scope_choices.contains(&last.scopes));
    let lookup = store.lookup(&key.hash()).await.unwrap().unwrap();
    assert_eq!(
        (lookup.scopes, lookup.active),
        (last.scopes, last.active),
        "items disagree"
    );
}

pub async fn stale_expected_version_is_a_conflict<S: KeyStore>(store: &S) {
    let (_, record) = created(store, "acct-a").await;
    let rename = |n: &str| KeyChanges {
        name: Some(KeyName::parse(n).unwrap()),
        ..Default::default()
    };
    let v2 = store
        .update(
            &record.account_id,
            &record.id,
            &rename("first"),
            Some(1),
            &apikeys::Audit::system("test", now()),
        )
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    let stale = store
        .update(
            &record.account_id,
            &record.id,
            &rename("second"),
            Some(1),
            &apikeys::Audit::system("test", now()),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict)),
        "{stale:?}"
    );
    let current = store.get(&record.account_id, &record.id).await.unwrap();
    assert_eq!(
        (current.name.as_str(), current.version),
        ("first", 2),
        "a failed update wrote"
    );
    // Without an expected version there is no conflict.
    let v3 = store
        .update(
            &record.account_id,
            &record.id,
            &rename("third"),
            None,
            &apikeys::Audit::system("test", now()),
        )
        .await
        .unwrap();
    assert_eq!(v3.version, 3);
}
