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

// ------------------------------------------------------------ lifecycle

pub fn audit(actor: &str, at: Timestamp) -> apikeys::Audit {
    apikeys::Audit {
        actor: actor.to_owned(),
        request_id: format!("req-{actor}"),
        at,
    }
}

pub async fn roll_without_grace_stops_the_old_secret_at_once<S: KeyStore>(store: &S) {
    let (old, record) = created(store, "acct-a").await;
    let new = ApiKey::generate();
    let rolled = store
        .roll(
            &record.account_id,
            &record.id,
            &new,
            Duration::zero(),
            None,
            &audit("u", now()),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            &rolled.id,
            &rolled.name,
            rolled.scopes,
            rolled.active,
            rolled.version
        ),
        (&record.id, &record.name, record.scopes, true, 2)
    );
    assert_eq!(rolled.prefix, new.display_prefix());
    assert_eq!(rolled.hash, new.hash());
    assert_eq!(
        store.lookup(&old.hash()).await.unwrap(),
        None,
        "the old secret is gone"
    );
    let lookup = store.lookup(&new.hash()).await.unwrap().unwrap();
    assert!(lookup.is_usable_at(now()));
    assert_eq!(
        store.get(&record.account_id, &record.id).await.unwrap(),
        rolled
    );
}

pub async fn a_grace_period_ends_and_a_second_roll_ends_the_first_grace<S: KeyStore>(store: &S) {
    let (first, record) = created(store, "acct-a").await;
    let t0 = now();
    let second = ApiKey::generate();
    let grace = Duration::seconds(60);
    store
        .roll(
            &record.account_id,
            &record.id,
            &second,
            grace,
            Some(1),
            &audit("u", t0),
        )
        .await
        .unwrap();
    let old = store.lookup(&first.hash()).await.unwrap().unwrap();
    assert!(old.is_usable_at(t0 + Duration::seconds(59)));
    assert!(
        !old.is_usable_at(t0 + grace),
        "decided by the time, not by TTL deletion"
    );
    assert!(
        store
            .lookup(&second.hash())
            .await
            .unwrap()
            .unwrap()
            .is_usable_at(t0 + grace)
    );

    // Rolling again during the grace period: the first secret stops at once.
    let third = ApiKey::generate();
    let rolled = store
        .roll(
            &record.account_id,
            &record.id,
            &third,
            grace,
            None,
            &audit("u", t0),
        )
        .await
        .unwrap();
    assert_eq!(store.lookup(&first.hash()).await.unwrap(), None);
    assert!(
        store
            .lookup(&second.hash())
            .await
            .unwrap()
            .unwrap()
            .is_usable_at(t0)
    );
    assert!(
        store
            .lookup(&third.hash())
            .await
            .unwrap()
            .unwrap()
            .is_usable_at(t0)
    );
    assert_eq!(rolled.previous.map(|p| p.hash), Some(second.hash()));
    assert_eq!(rolled.version, 3);
}

pub async fn deactivating_or_deleting_stops_every_live_secret<S: KeyStore>(store: &S) {
    let (old, record) = created(store, "acct-a").await;
    let new = ApiKey::generate();
    let (acct, id) = (&record.account_id, &record.id);
    store
        .roll(acct, id, &new, Duration::hours(1), None, &audit("u", now()))
        .await
        .unwrap();
    let off = KeyChanges {
        active: Some(false),
        scopes: Some(ScopeSet::from(Scope::CafeRead)),
        ..KeyChanges::default()
    };
    store
        .update(acct, id, &off, None, &audit("u", now()))
        .await
        .unwrap();
    for key in [&old, &new] {
        let l = store.lookup(&key.hash()).await.unwrap().unwrap();
        assert!(!l.active && !l.is_usable_at(now()));
        assert_eq!(
            l.scopes,
            ScopeSet::from(Scope::CafeRead),
            "narrowed on every secret"
        );
    }
    store.delete(acct, id, &audit("u", now())).await.unwrap();
    for key in [&old, &new] {
        assert_eq!(store.lookup(&key.hash()).await.unwrap(), None);
    }
}

pub async fn a_roll_at_a_stale_version_changes_nothing<S: KeyStore>(store: &S) {
    let (old, record) = created(store, "acct-a").await;
    let new = ApiKey::generate();
    let r = store
        .roll(
            &record.account_id,
            &record.id,
            &new,
            Duration::zero(),
            Some(7),
            &audit("u", now()),
        )
        .await;
    assert!(matches!(r, Err(StoreError::VersionConflict)), "{r:?}");
    assert!(store.lookup(&old.hash()).await.unwrap().is_some());
    assert_eq!(store.lookup(&new.hash()).await.unwrap(), None);
    let r = store
        .roll(
            &account("acct-other"),
            &record.id,
            &new,
            Duration::zero(),
            None,
            &audit("u", now()),
        )
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
}

pub async fn a_delete_at_a_stale_version_changes_nothing<S: KeyStore>(store: &S) {
    let (key, record) = created(store, "acct-a").await;
    let (acct, id) = (&record.account_id, &record.id);
    let r = store
        .delete_at(acct, id, Some(record.version + 1), &audit("u", now()))
        .await;
    assert!(matches!(r, Err(StoreError::VersionConflict)), "{r:?}");
    assert!(store.lookup(&key.hash()).await.unwrap().is_some());
    assert_eq!(store.get(acct, id).await.unwrap().version, record.version);
    store
        .delete_at(acct, id, Some(record.version), &audit("u", now()))
        .await
        .unwrap();
    assert_eq!(store.lookup(&key.hash()).await.unwrap(), None);
    let again = store
        .delete_at(acct, id, Some(record.version), &audit("u", now()))
        .await;
    assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");
}

pub async fn every_change_is_an_event_newest_first_and_outlives_the_key<S: KeyStore>(store: &S) {
    let (key, record) = new_record("acct-a");
    let (acct, id) = (&record.account_id, &record.id);
    let t = now();
    store
        .create(&record, &audit("alice", t), u32::MAX)
        .await
        .unwrap();
    let rename = KeyChanges {
        name: Some(KeyName::parse("renamed").unwrap()),
        ..KeyChanges::default()
    };
    store
        .update(
            acct,
            id,
            &rename,
            None,
            &audit("bob", t + Duration::milliseconds(1)),
        )
        .await
        .unwrap();
    let new = ApiKey::generate();
    store
        .roll(
            acct,
            id,
            &new,
            Duration::seconds(30),
            None,
            &audit("carol", t + Duration::milliseconds(2)),
        )
        .await
        .unwrap();
    store
        .delete(acct, id, &audit("dave", t + Duration::milliseconds(3)))
        .await
        .unwrap();

    let page = store.events(acct, id, 50, None, now()).await.unwrap();
    let seen: Vec<(&str, &str, &str)> = page
        .items
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str(), e.request_id.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("deleted", "dave", "req-dave"),
            ("rolled", "carol", "req-carol"),
            ("updated", "bob", "req-bob"),
            ("created", "alice", "req-alice"),
        ]
    );
    assert_eq!(
        page.items[2].changes,
        vec![("name", apikeys::FieldValue::Text("renamed".into()))]
    );
    assert_eq!(
        page.items[1].changes,
        vec![
            ("prefix", apikeys::FieldValue::Text(new.display_prefix())),
            ("gracePeriodSeconds", apikeys::FieldValue::Number(30)),
        ]
    );
    let all = format!("{:?}", page.items);
    for secret in [key.expose_secret(), new.expose_secret()] {
        assert!(!all.contains(&secret[4..14]), "a key piece is in an event");
    }
    assert!(
        !all.contains(&key.hash().to_hex()[..16]),
        "a hash is in an event"
    );

    // Paged one at a time, newest first, each once.
    let mut token = None;
    let mut paged = Vec::new();
    loop {
        let p = store
            .events(acct, id, 1, token.as_deref(), now())
            .await
            .unwrap();
        paged.extend(p.items.into_iter().map(|e| e.action));
        match p.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(paged.len(), 4);
    // Another account never sees them; 90 days after the delete, nobody does.
    assert!(matches!(
        store.events(&account("acct-b"), id, 50, None, now()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .events(acct, id, 50, None, now() + Duration::days(91))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store
            .events(acct, id, 50, None, now() + Duration::days(89))
            .await
            .is_ok()
    );
    // A token is bound to its key.
    let other = created(store, "acct-a").await.1;
    let p = store.events(acct, id, 1, None, now()).await.unwrap();
    assert!(matches!(
        store
            .events(acct, &other.id, 1, p.next_token.as_deref(), now())
            .await,
        Err(StoreError::InvalidToken)
    ));
}

pub async fn the_key_limit_holds_and_a_delete_frees_a_place<S: KeyStore>(store: &S) {
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, r) = new_record("acct-limit");
        store.create(&r, &audit("u", now()), 3).await.unwrap();
        ids.push(r.id);
    }
    let (extra_key, extra) = new_record("acct-limit");
    assert!(matches!(
        store.create(&extra, &audit("u", now()), 3).await,
        Err(StoreError::KeyLimitReached)
    ));
    assert_eq!(
        store.lookup(&extra_key.hash()).await.unwrap(),
        None,
        "nothing written"
    );
    // Other accounts have places of their own.
    let (_, other) = new_record("acct-other");
    store.create(&other, &audit("u", now()), 3).await.unwrap();
    store
        .delete(&account("acct-limit"), &ids[0], &audit("u", now()))
        .await
        .unwrap();
    store.create(&extra, &audit("u", now()), 3).await.unwrap();
}

pub async fn concurrent_creates_at_the_limit_let_exactly_the_allowed_number_through<
    S: KeyStore + 'static,
>(
    store: Arc<S>,
) {
    const LIMIT: u32 = 5;
    let barrier = Arc::new(Barrier::new(32));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let (_, r) = new_record("acct-race");
            barrier.wait().await;
            store.create(&r, &audit("u", now()), LIMIT).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::KeyLimitReached) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, LIMIT);
    let page = store.list(&account("acct-race"), 100, None).await.unwrap();
    assert_eq!(page.items.len(), LIMIT as usize);
}

pub async fn a_use_is_recorded_at_most_once_per_interval<S: KeyStore>(store: &S) {
    let (key, record) = created(store, "acct-a").await;
    let interval = Duration::minutes(5);
    let t = now();
    let lookup = store.lookup(&key.hash()).await.unwrap().unwrap();
    assert!(lookup.use_due_at(t, interval));
    assert!(
        store
            .record_use(&key.hash(), &lookup, t, interval)
            .await
            .unwrap()
    );
    let after = store.lookup(&key.hash()).await.unwrap().unwrap();
    assert_eq!(after.last_used_at, Some(t));
    assert!(!after.use_due_at(t + Duration::minutes(4), interval));
    // A second call within the interval (from a stale read) records nothing.
    assert!(
        !store
            .record_use(&key.hash(), &lookup, t + Duration::minutes(1), interval)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get(&record.account_id, &record.id)
            .await
            .unwrap()
            .last_used_at,
        Some(t)
    );
    let later = t + Duration::minutes(6);
    assert!(
        store
            .record_use(&key.hash(), &after, later, interval)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get(&record.account_id, &record.id)
            .await
            .unwrap()
            .last_used_at,
        Some(later)
    );
    // A deleted key's use is never recorded (nothing is created).
    store
        .delete(&record.account_id, &record.id, &audit("u", now()))
        .await
        .unwrap();
    assert!(
        !store
            .record_use(&key.hash(), &after, later + interval, interval)
            .await
            .unwrap()
    );
    assert_eq!(store.lookup(&key.hash()).await.unwrap(), None);
}

pub async fn a_leaked_key_is_revoked_once_and_cannot_be_reactivated<S: KeyStore>(store: &S) {
    use apikeys::{DeactivatedReason, LeakOutcome};
    let (first, record) = created(store, "acct-a").await;
    let (acct, id) = (&record.account_id, &record.id);
    let second = ApiKey::generate();
    store
        .roll(
            acct,
            id,
            &second,
            Duration::hours(1),
            None,
            &audit("u", now()),
        )
        .await
        .unwrap();
    let scanner = audit("github-secret-scanning", now());

    // The old secret, still in its grace period, is reported: the whole key stops.
    assert_eq!(
        store.revoke_leaked(&first.hash(), &scanner).await.unwrap(),
        LeakOutcome::Revoked(id.clone())
    );
    for k in [&first, &second] {
        assert!(!store.lookup(&k.hash()).await.unwrap().unwrap().active);
    }
    let revoked = store.get(acct, id).await.unwrap();
    assert_eq!(revoked.deactivated_reason, Some(DeactivatedReason::Leaked));
    // Reported again: nothing more changes.
    assert_eq!(
        store.revoke_leaked(&second.hash(), &scanner).await.unwrap(),
        LeakOutcome::AlreadyRevoked(id.clone())
    );
    assert_eq!(store.get(acct, id).await.unwrap().version, revoked.version);
    let events = store.events(acct, id, 50, None, now()).await.unwrap();
    let revocations = events
        .items
        .iter()
        .filter(|e| e.action == apikeys::EventAction::Revoked)
        .count();
    assert_eq!(revocations, 1);

    // It cannot be reactivated; other changes are fine.
    let on = KeyChanges {
        active: Some(true),
        ..KeyChanges::default()
    };
    assert!(matches!(
        store.update(acct, id, &on, None, &audit("u", now())).await,
        Err(StoreError::KeyLeaked)
    ));
    let rename = KeyChanges {
        name: Some(KeyName::parse("leaked one").unwrap()),
        ..KeyChanges::default()
    };
    store
        .update(acct, id, &rename, None, &audit("u", now()))
        .await
        .unwrap();

    // Rolled: the leaked secrets go at once (no grace), and it may come back.
    let third = ApiKey::generate();
    let rolled = store
        .roll(
            acct,
            id,
            &third,
            Duration::hours(1),
            None,
            &audit("u", now()),
        )
        .await
        .unwrap();
    assert_eq!((rolled.deactivated_reason, rolled.previous), (None, None));
    assert_eq!(store.lookup(&second.hash()).await.unwrap(), None);
    store
        .update(acct, id, &on, None, &audit("u", now()))
        .await
        .unwrap();
    assert!(
        store
            .lookup(&third.hash())
            .await
            .unwrap()
            .unwrap()
            .is_usable_at(now())
    );

    // Not ours: an unknown hash.
    assert_eq!(
        store
            .revoke_leaked(&ApiKey::generate().hash(), &scanner)
            .await
            .unwrap(),
        LeakOutcome::NotOurs
    );
}

/// The expiry log the cache sweep reads: a key's expiry and the end of a
/// roll's grace period are found in a window that holds them, and nothing
/// is found in one that does not.
pub async fn expiries_and_grace_ends_are_in_the_expiry_log<S: KeyStore>(store: &S) {
    let (_, record) = created(store, "acct-x").await;
    let at = record.expires_at.unwrap();
    let s = Duration::seconds;
    assert!(store.expiring(at - s(70), at).await.unwrap() >= 1);
    assert!(store.expiring(at - s(1), at + s(1)).await.unwrap() >= 1);
    assert_eq!(
        store.expiring(at, at + s(70)).await.unwrap(),
        0,
        "(after, until]"
    );
    assert_eq!(store.expiring(at - s(200), at - s(1)).await.unwrap(), 0);

    let t0 = now();
    store
        .roll(
            &record.account_id,
            &record.id,
            &ApiKey::generate(),
            s(90),
            None,
            &audit("u", t0),
        )
        .await
        .unwrap();
    let grace_end = t0 + s(90);
    assert!(store.expiring(grace_end - s(70), grace_end).await.unwrap() >= 1);
    assert_eq!(store.expiring(t0, grace_end - s(1)).await.unwrap(), 0);
}

/// Many items at once: only those that exist, across several batches of
/// DynamoDB's 100, each as a single lookup reads it.
pub async fn many_lookups_at_once_find_exactly_the_stored_items<S: KeyStore>(store: &S) {
    let mut stored = Vec::new();
    for _ in 0..3 {
        stored.push(created(store, "acct-many").await);
    }
    let mut hashes: Vec<apikeys::KeyHash> = (0..247).map(|_| ApiKey::generate().hash()).collect();
    for (i, (key, _)) in stored.iter().enumerate() {
        hashes.insert(i * 100 + 10, key.hash());
    }
    hashes.push(stored[0].0.hash());
    let found = store.lookup_many(&hashes).await.unwrap();
    assert_eq!(found.len(), 3);
    for (key, record) in &stored {
        assert_eq!(
            found[&key.hash()],
            store.lookup(&key.hash()).await.unwrap().unwrap()
        );
        assert_eq!(found[&key.hash()].key_id, record.id);
    }
    assert!(store.lookup_many(&[]).await.unwrap().is_empty());
}
