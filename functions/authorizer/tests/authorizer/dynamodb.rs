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

/// The Lambda entry point gives up the read at the invocation's deadline
/// less the margin, failing closed by itself: here a deadline shorter than
/// the client's own timeouts.
#[tokio::test]
async fn the_read_is_given_up_at_the_invocations_deadline() {
    let store = store_that_never_answers().await;
    let key = ApiKey::generate();
    let ev = event_for(
        route("GET", "/links/{id}"),
        &[("x-api-key", key.expose_secret())],
    );
    let mut context = lambda_runtime::Context::default();
    let timeout = Duration::from_millis(800);
    context.deadline = u64::try_from(
        (std::time::SystemTime::now() + timeout)
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let started = Instant::now();
    let result = authorizer::handle(
        &store,
        &authorizer::Settings::default(),
        lambda_runtime::LambdaEvent::new(ev, context),
    )
    .await;
    let elapsed = started.elapsed();
    assert!(
        matches!(
            result,
            Err(AuthError::Store(apikeys::StoreError::DeadlineExceeded))
        ),
        "{result:?}"
    );
    assert!(elapsed < timeout, "answered after {elapsed:?}");
    assert!(elapsed >= timeout - authorizer::DEADLINE_MARGIN - Duration::from_millis(50));
}

/// Throttling is a store failure like any other: fail closed (500), never a 401.
#[tokio::test]
async fn a_throttled_read_fails_closed() {
    for code in [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    ] {
        let endpoint =
            apikeys::testing::scripted_endpoint(vec![apikeys::testing::dynamodb_error(code)]).await;
        let store = apikeys::testing::store_on(&endpoint.url).await;
        let key = ApiKey::generate();
        let ev = event_for(
            route("GET", "/links/{id}"),
            &[("x-api-key", key.expose_secret())],
        );
        let result = decide(&store, &ev).await;
        assert!(
            matches!(
                result,
                Err(AuthError::Store(apikeys::StoreError::Throttled(_)))
            ),
            "{code}: {result:?}"
        );
        assert!(endpoint.count() >= 1);
    }
}
