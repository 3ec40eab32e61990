//! Store failure, with the client settings the authorizer runs with in Lambda.

use std::time::{Duration, Instant};

use apikeys::ApiKey;
use apikeys::dynamo::ClientSettings;
use apikeys::testing::store_that_never_answers;
use authorizer::AuthError;

use crate::*;

#[tokio::test]
async fn a_store_that_never_answers_fails_closed_within_the_operation_timeout() {
    let store = store_that_never_answers().await;
    let key = ApiKey::generate();
    let started = Instant::now();
    let ev = event_for(
        route("GET", "/links/{id}"),
        &[("x-api-key", key.expose_secret())],
    );
    let result = decide(&store, &ev).await;
    let elapsed = started.elapsed();
    assert!(matches!(result, Err(AuthError::Store(_))), "{result:?}");
    let bound = ClientSettings::default().operation_timeout + Duration::from_secs(2);
    assert!(elapsed < bound, "took {elapsed:?}");
}

/// The init warm-up logs a failure and returns: DynamoDB being down can delay
/// a cold start by at most the operation timeout, never fail or hang it.
#[tokio::test]
async fn the_warm_up_returns_within_the_operation_timeout_when_the_store_is_down() {
    let store = store_that_never_answers().await;
    let started = Instant::now();
    authorizer::warm_up(&store).await;
    let bound = ClientSettings::default().operation_timeout + Duration::from_secs(2);
    assert!(started.elapsed() < bound, "took {:?}", started.elapsed());
}
