//! Properties of the DynamoDB store that only a real DynamoDB can show.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apikeys::dynamo::{ClientSettings, DynamoStore};
use apikeys::table::{self, Created};
use apikeys::testing::{
    dynamodb_local_client, fresh_dynamo_store, fresh_dynamo_store_with, scripted_endpoint,
    store_on, store_that_never_answers,
};
use apikeys::{AccountId, CreateKey, GetKey, KeyId, ListKeys, LookupKey, StoreError};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::store::conformance::{account, created};

#[test]
fn default_client_settings_are_the_architecture_documents() {
    let s = ClientSettings::default();
    assert_eq!(s.connect_timeout, Duration::from_millis(200));
    assert_eq!(s.attempt_timeout, Duration::from_millis(500));
    assert_eq!(s.operation_timeout, Duration::from_millis(1500));
    assert_eq!(s.max_attempts, 2);
    // Transactions get longer attempts, and may retry them: safe with one token.
    let w = ClientSettings::WRITES;
    assert!(w.attempt_timeout > s.attempt_timeout);
    assert!(w.max_attempts > 1);
}

#[tokio::test]
async fn create_table_is_idempotent() {
    let client = dynamodb_local_client().await;
    let name = apikeys::testing::unique_table_name("idempotent");
    assert_eq!(
        table::create_table(&client, &name).await.unwrap(),
        Created::Created
    );
    assert_eq!(
        table::create_table(&client, &name).await.unwrap(),
        Created::AlreadyExisted
    );
    let described = client
        .describe_table()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    let t = described.table().unwrap();
    let schema: Vec<(String, String)> = t
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_owned(),
                k.key_type().as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        schema,
        vec![("pk".into(), "HASH".into()), ("sk".into(), "RANGE".into())]
    );
    assert!(t.global_secondary_indexes().is_empty());
}

fn strings_in(v: &AttributeValue, out: &mut Vec<String>) {
    match v {
        AttributeValue::S(s) | AttributeValue::N(s) => out.push(s.clone()),
        AttributeValue::L(l) => l.iter().for_each(|v| strings_in(v, out)),
        AttributeValue::M(m) => m.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings_in(v, out)
        }),
        AttributeValue::Ss(ss) => out.extend(ss.iter().cloned()),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_scan_finds_no_piece_of_any_key() {
    let store = fresh_dynamo_store("scan").await;
    let mut keys = Vec::new();
    for i in 0..10 {
        keys.push(created(&store, &format!("acct-{}", i % 3)).await.0);
    }
    assert_eq!(
        apikeys::testing::key_items(&store).await.len(),
        20,
        "two items per key"
    );
    // Every item — events, counts and all — is searched for key pieces.
    let mut stored = Vec::new();
    for item in &apikeys::testing::all_items(&store).await {
        for (k, v) in item {
            stored.push(k.clone());
            strings_in(v, &mut stored);
        }
    }
    for key in &keys {
        let body = &key.expose_secret()[4..];
        for window in body.as_bytes().windows(8) {
            let piece = std::str::from_utf8(window).unwrap();
            assert!(
                !stored.iter().any(|s| s.contains(piece)),
                "a key piece is stored"
            );
        }
    }
}

/// Records the target and body of every request the SDK transmits.
#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(String, serde_json::Value)>>>);

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "Recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = context.request();
        let target = req
            .headers()
            .get("x-amz-target")
            .unwrap_or_default()
            .to_owned();
        let body = req.body().bytes().map(serde_json::from_slice).transpose()?;
        self.0
            .lock()
            .unwrap()
            .push((target, body.unwrap_or_default()));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_get_and_list_are_sent_with_consistent_read() {
    let recorder = Recorder::default();
    let base = dynamodb_local_client().await;
    let client = Client::from_conf(
        base.config()
            .to_builder()
            .interceptor(recorder.clone())
            .build(),
    );
    let store = fresh_dynamo_store_with(client, "consistent").await;
    let (key, record) = created(&store, "acct-a").await;
    recorder.0.lock().unwrap().clear();

    store.lookup(&key.hash()).await.unwrap().unwrap();
    store.get(&record.account_id, &record.id).await.unwrap();
    store.list(&record.account_id, 10, None).await.unwrap();

    let sent = recorder.0.lock().unwrap().clone();
    let targets: Vec<&str> = sent.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        targets,
        [
            "DynamoDB_20120810.GetItem",
            "DynamoDB_20120810.GetItem",
            "DynamoDB_20120810.Query"
        ]
    );
    for (target, body) in &sent {
        assert_eq!(
            body["ConsistentRead"],
            serde_json::Value::Bool(true),
            "{target}: {body}"
        );
    }
}

#[tokio::test]
async fn a_store_that_never_answers_fails_within_the_operation_timeout() {
    let settings = ClientSettings::default();
    let store = store_that_never_answers().await;
    let started = Instant::now();
    let result = store.lookup(&apikeys::ApiKey::generate().hash()).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    // The operation timeout bounds the call (slack for a loaded machine);
    // without it the call would wait forever.
    assert!(
        elapsed < settings.operation_timeout + Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert!(
        elapsed >= settings.attempt_timeout,
        "{elapsed:?}: gave up before any timeout"
    );
}

#[tokio::test]
async fn a_missing_table_is_reported_as_such_not_as_not_found() {
    let store = DynamoStore::new(dynamodb_local_client().await, "no-such-table");
    let r = store.get(&account("a"), &KeyId::generate()).await;
    assert!(matches!(r, Err(StoreError::MissingTable(_))), "{r:?}");
    let r = store.list(&AccountId::parse("a").unwrap(), 5, None).await;
    assert!(matches!(r, Err(StoreError::MissingTable(_))), "{r:?}");
}

fn cancelled(codes: &[&str]) -> (u16, String) {
    let reasons: Vec<serde_json::Value> = codes
        .iter()
        .map(|c| serde_json::json!({"Code": c}))
        .collect();
    let body = serde_json::json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
        "CancellationReasons": reasons,
    });
    (400, body.to_string())
}

/// Real DynamoDB cancels a transaction that races another on the same item
/// (`TransactionConflict`); the store tries again, with jitter, and succeeds.
#[tokio::test]
async fn a_transaction_conflict_is_retried_until_it_goes_through() {
    let conflict = cancelled(&["TransactionConflict", "None"]);
    let endpoint = scripted_endpoint(vec![
        conflict.clone(),
        conflict.clone(),
        conflict,
        (200, "{}".into()),
    ])
    .await;
    let store = store_on(&endpoint.url).await;
    let (_, record) = crate::store::conformance::new_record("acct-a");
    store
        .create(
            &record,
            &apikeys::Audit::system("test", chrono::Utc::now()),
            u32::MAX,
        )
        .await
        .unwrap();
    assert_eq!(endpoint.count(), 4, "three conflicts, then success");
    assert_one_token(&endpoint.bodies());
}

/// Every send of one logical write carries the same `ClientRequestToken`.
fn assert_one_token(bodies: &[serde_json::Value]) {
    let tokens: Vec<&str> = bodies
        .iter()
        .map(|b| {
            b["ClientRequestToken"]
                .as_str()
                .expect("a ClientRequestToken on every send")
        })
        .collect();
    assert!(tokens.len() > 1);
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    assert!((1..=36).contains(&tokens[0].len()));
}

/// `TransactionInProgressException` is DynamoDB saying the same transaction
/// (same token) is still running: the store waits and sends it again with
/// the same token, and takes DynamoDB's answer — never a conflict.
#[tokio::test]
async fn transaction_in_progress_is_waited_for_with_the_same_token() {
    let endpoint = scripted_endpoint(vec![
        apikeys::testing::dynamodb_error("TransactionInProgressException"),
        apikeys::testing::dynamodb_error("TransactionInProgressException"),
        (200, "{}".into()),
    ])
    .await;
    let store = store_on(&endpoint.url).await;
    store
        .create(
            &crate::store::conformance::new_record("acct-a").1,
            &apikeys::Audit::system("test", chrono::Utc::now()),
            u32::MAX,
        )
        .await
        .unwrap();
    assert_eq!(endpoint.count(), 3);
    assert_one_token(&endpoint.bodies());
}

/// Two logical writes never share a token (else DynamoDB would answer the
/// second as the first, without applying it).
#[tokio::test]
async fn each_logical_write_has_a_token_of_its_own() {
    let endpoint = scripted_endpoint(vec![(200, "{}".into())]).await;
    let store = store_on(&endpoint.url).await;
    for _ in 0..2 {
        store
            .create(
                &crate::store::conformance::new_record("acct-a").1,
                &apikeys::Audit::system("test", chrono::Utc::now()),
                u32::MAX,
            )
            .await
            .unwrap();
    }
    let bodies = endpoint.bodies();
    assert_ne!(
        bodies[0]["ClientRequestToken"],
        bodies[1]["ClientRequestToken"]
    );
}

#[tokio::test]
async fn endless_conflicts_end_as_unavailable_and_a_failed_condition_is_not_retried() {
    let endpoint = scripted_endpoint(vec![cancelled(&["None", "TransactionConflict"])]).await;
    let r = store_on(&endpoint.url)
        .await
        .create(
            &crate::store::conformance::new_record("a").1,
            &apikeys::Audit::system("test", chrono::Utc::now()),
            u32::MAX,
        )
        .await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    assert_eq!(
        endpoint.count(),
        apikeys::dynamo::CONFLICT_ATTEMPTS as usize,
        "bounded attempts"
    );

    let endpoint = scripted_endpoint(vec![cancelled(&["ConditionalCheckFailed", "None"])]).await;
    let r = store_on(&endpoint.url)
        .await
        .create(
            &crate::store::conformance::new_record("a").1,
            &apikeys::Audit::system("test", chrono::Utc::now()),
            u32::MAX,
        )
        .await;
    assert!(matches!(r, Err(StoreError::AlreadyExists)), "{r:?}");
    assert_eq!(endpoint.count(), 1);
}
