//! Every dashboard handler answers by itself before the invocation's
//! deadline, whatever the store does: an endpoint that never answers, one
//! that cancels every transaction for a conflict, one that throttles.

use std::time::{Duration, Instant};

use apikeys::testing::{dynamodb_error, scripted_endpoint, silent_endpoint, store_on};
use keys_api::testing::*;
use serde_json::{Value, json};

use crate::dashboard::{sample, store_operations};

/// The function timeout the request's Lambda context gives in these tests.
const TIMEOUT: Duration = Duration::from_millis(2500);

fn ev(op: &str) -> Value {
    let mut ev = sample(op);
    if op != "createKey" && op != "listKeys" {
        set_id(&mut ev, "AAAAAAAAAAAAAAAAAAAAAA");
    }
    ev
}

async fn call_by(
    store: &apikeys::dynamo::DynamoStore,
    op: &str,
) -> (lambda_http::Response<lambda_http::Body>, Duration) {
    let (cfg, req) = (config(), with_deadline(request(&ev(op)), TIMEOUT));
    let started = Instant::now();
    let resp = match op {
        "createKey" => create_key::handle(store, &cfg, req).await,
        "listKeys" => list_keys::handle(store, &cfg, req).await,
        "getKey" => get_key::handle(store, &cfg, req).await,
        "updateKey" => update_key::handle(store, &cfg, req).await,
        "deleteKey" => delete_key::handle(store, &cfg, req).await,
        "rollKey" => roll_key::handle(store, &cfg, req).await,
        "listKeyEvents" => list_key_events::handle(store, &cfg, req).await,
        other => panic!("no operation {other}"),
    };
    (resp, started.elapsed())
}

fn assert_503_in_time(
    resp: &lambda_http::Response<lambda_http::Body>,
    elapsed: Duration,
    op: &str,
    code: &str,
) {
    assert_eq!(resp.status(), 503, "{op}: {}", json_body(resp));
    assert_eq!(error_code(resp), code, "{op}");
    assert_eq!(resp.headers()["retry-after"], "1", "{op}");
    assert!(
        elapsed < TIMEOUT - keys_api::DEADLINE_MARGIN / 2,
        "{op}: answered after {elapsed:?}, past the deadline less the margin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_never_answers_is_a_503_before_the_deadline() {
    let store = store_on(&silent_endpoint().await).await;
    for op in store_operations() {
        let (resp, elapsed) = call_by(&store, op).await;
        assert_503_in_time(&resp, elapsed, op, "service_unavailable");
    }
}

/// A write whose transactions DynamoDB cancels for a conflict, forever: the
/// conflict retries stop at the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_transaction_conflicts_are_a_503_before_the_deadline() {
    let conflict = json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": "Transaction cancelled",
        "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}],
    })
    .to_string();
    let record = json!({"Item": {
        "pk": {"S": format!("ACCT#{SAMPLE_SUB}")}, "sk": {"S": "KEY#AAAAAAAAAAAAAAAAAAAAAA"},
        "keyId": {"S": "AAAAAAAAAAAAAAAAAAAAAA"}, "accountId": {"S": SAMPLE_SUB},
        "keyHash": {"S": "00".repeat(32)}, "name": {"S": "CI bot"}, "prefix": {"S": "key-abcdef"},
        "scopes": {"L": [{"S": "links.read"}]}, "active": {"BOOL": true},
        "createdAt": {"S": "2026-01-01T00:00:00Z"}, "updatedAt": {"S": "2026-01-01T00:00:00Z"},
        "createdBy": {"S": SAMPLE_SUB}, "version": {"N": "1"},
    }})
    .to_string();
    for op in ["createKey", "updateKey", "deleteKey", "rollKey"] {
        // update and delete read the record first; then every send conflicts.
        let mut script = Vec::new();
        if op != "createKey" {
            script.push((200, record.clone()));
        }
        script.push((400, conflict.clone()));
        let endpoint = scripted_endpoint(script).await;
        let store = store_on(&endpoint.url).await;
        let (resp, elapsed) = call_by(&store, op).await;
        assert!(endpoint.count() > 2, "{op}: conflicts were retried");
        assert_503_in_time(&resp, elapsed, op, "service_unavailable");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_a_503_with_retry_after() {
    for code in [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    ] {
        let endpoint = scripted_endpoint(vec![dynamodb_error(code)]).await;
        let store = store_on(&endpoint.url).await;
        for op in store_operations() {
            let (resp, elapsed) = call_by(&store, op).await;
            assert_503_in_time(&resp, elapsed, op, "throttled");
        }
    }
}

/// A transaction DynamoDB cancels because one of its items is throttled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_transaction_is_a_503_with_retry_after() {
    let body = json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": "Transaction cancelled",
        "CancellationReasons": [{"Code": "ThrottlingError"}, {"Code": "None"}],
    });
    let endpoint = scripted_endpoint(vec![(400, body.to_string())]).await;
    let store = store_on(&endpoint.url).await;
    let (resp, elapsed) = call_by(&store, "createKey").await;
    assert_503_in_time(&resp, elapsed, "createKey", "throttled");
}
