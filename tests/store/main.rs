//! The key-store tests: the conformance suite on the in-memory store and on
//! DynamoDB Local (a fresh table per test), then DynamoDB-only properties.

mod at_rest;
mod conformance;
mod dynamodb;
mod faults;
mod history;
mod races;
mod repair;
mod streams;

use std::sync::Arc;

use apikeys::MemoryStore;
use apikeys::testing::fresh_dynamo_store;

/// Runs each named conformance test once per store.
macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::store::conformance::$name(&super::MemoryStore::new()).await;
                }
            )*
        }
        mod dynamo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::store::conformance::$name(&super::fresh_dynamo_store(stringify!($name)).await).await;
                }
            )*
        }
    };
}

conformance_tests!(
    created_key_is_found_by_hash_and_by_id,
    duplicate_create_fails_and_writes_nothing,
    missing_key_is_not_found,
    another_accounts_key_behaves_as_not_found,
    pagination_returns_every_key_of_the_caller_exactly_once,
    malformed_or_foreign_tokens_are_the_callers_error,
    create_then_update_and_delete_at_once,
    update_sets_only_the_given_fields_on_both_items,
    stale_expected_version_is_a_conflict,
    roll_without_grace_stops_the_old_secret_at_once,
    a_grace_period_ends_and_a_second_roll_ends_the_first_grace,
    deactivating_or_deleting_stops_every_live_secret,
    a_roll_at_a_stale_version_changes_nothing,
    a_delete_at_a_stale_version_changes_nothing,
    every_change_is_an_event_newest_first_and_outlives_the_key,
    the_key_limit_holds_and_a_delete_frees_a_place,
    a_use_is_recorded_at_most_once_per_interval,
    a_leaked_key_is_revoked_once_and_cannot_be_reactivated,
    expiries_and_grace_ends_are_in_the_expiry_log,
    many_lookups_at_once_find_exactly_the_stored_items,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_concurrent_updates_of_different_fields_all_survive() {
    conformance::concurrent_updates_of_different_fields_all_survive(Arc::new(MemoryStore::new()))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_concurrent_updates_of_different_fields_all_survive() {
    let store = fresh_dynamo_store("concurrent").await;
    conformance::concurrent_updates_of_different_fields_all_survive(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_concurrent_creates_at_the_limit_let_exactly_the_allowed_number_through() {
    conformance::concurrent_creates_at_the_limit_let_exactly_the_allowed_number_through(Arc::new(
        MemoryStore::new(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_concurrent_creates_at_the_limit_let_exactly_the_allowed_number_through() {
    let store = fresh_dynamo_store("limit-race").await;
    conformance::concurrent_creates_at_the_limit_let_exactly_the_allowed_number_through(Arc::new(
        store,
    ))
    .await;
}

/// Different changes to one key raced on both stores (`races.rs`).
macro_rules! race_tests {
    ($($name:ident: $a:ident + $b:ident),* $(,)?) => {
        mod race_memory {
            use crate::store::races::{Op, race_pair};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    race_pair(std::sync::Arc::new(super::MemoryStore::new()), Op::$a, Op::$b).await;
                }
            )*
        }
        mod race_dynamo {
            use crate::store::races::{Op, race_pair};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let store = super::fresh_dynamo_store(stringify!($name)).await;
                    race_pair(std::sync::Arc::new(store), Op::$a, Op::$b).await;
                }
            )*
        }
    };
}

race_tests!(
    roll_and_deactivate: Roll + Deactivate,
    roll_and_narrow: Roll + Narrow,
    roll_and_delete: Roll + Delete,
    roll_and_leak: Roll + Leak,
    roll_and_rename: Roll + Rename,
    roll_with_grace_and_deactivate: RollWithGrace + Deactivate,
    roll_with_grace_and_narrow: RollWithGrace + Narrow,
    roll_with_grace_and_delete: RollWithGrace + Delete,
    roll_with_grace_and_leak: RollWithGrace + Leak,
    deactivate_and_narrow: Deactivate + Narrow,
    narrow_and_delete: Narrow + Delete,
    deactivate_and_delete: Deactivate + Delete,
    leak_and_narrow: Leak + Narrow,
    leak_and_delete: Leak + Delete,
    leak_and_reactivate: Leak + Reactivate,
    roll_and_delete_at_the_version_shown: Roll + DeleteShown,
    narrow_and_delete_at_the_version_shown: Narrow + DeleteShown,
    deactivate_and_delete_at_the_version_shown: Deactivate + DeleteShown,
    leak_and_delete_at_the_version_shown: Leak + DeleteShown,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_sixteen_rolls_without_if_match_all_succeed() {
    races::rolls_without_if_match_all_succeed(Arc::new(MemoryStore::new()), 16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_sixteen_rolls_without_if_match_all_succeed() {
    let store = fresh_dynamo_store("burst").await;
    races::rolls_without_if_match_all_succeed(Arc::new(store), 16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_random_history_is_linearizable() {
    history::random_history_is_linearizable(Arc::new(MemoryStore::new()), "history").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_random_history_is_linearizable() {
    let store = fresh_dynamo_store("history").await;
    history::random_history_is_linearizable(Arc::new(store), "history").await;
}
