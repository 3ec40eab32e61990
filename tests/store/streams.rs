//! The Streams consumer (`functions/cache-flush`) on the records DynamoDB
//! Local's own stream gives for real changes made by the DynamoDB store,
//! flushing through the real SDK at a fake API Gateway. The records are read
//! with DynamoDB Streams' JSON API, whose record shape is what Lambda passes on.

use std::time::Duration;

use apikeys::testing::{dynamodb_local_endpoint, fresh_dynamo_store};
use apikeys::{DeleteKey, KeyChanges, LookupKey, RecordUse, UpdateKey};
use authorizer_cache::testing::FakeApiGateway;
use aws_lambda_events::event::dynamodb::EventRecord;
use aws_sdk_dynamodb::types::{StreamSpecification, StreamViewType};
use cache_flush::{Flusher, stream_batch};
use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::{Value, json};

use crate::store::conformance::{audit, created, now};

/// One DynamoDB Streams call on DynamoDB Local (it reads the credential
/// scope but checks no signature): its status and JSON answer.
async fn streams_call(target: &str, body: &Value) -> (u16, Value) {
    let endpoint = dynamodb_local_endpoint();
    let authority = endpoint.trim_start_matches("http://").to_owned();
    let req = hyper::Request::post("/")
        .header("host", &authority)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("DynamoDBStreams_20120810.{target}"))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=local/20261126/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = local_stack::testing::send(&authority, req).await.unwrap();
    (
        resp.status().as_u16(),
        serde_json::from_slice(resp.body()).unwrap(),
    )
}

async fn streams(target: &str, body: Value) -> Value {
    let (status, v) = streams_call(target, &body).await;
    assert_eq!(status, 200, "{target}: {v}");
    v
}

/// One shard being read: its iterator and the last record seen.
struct Shard {
    id: Value,
    iterator: String,
    last: Option<String>,
}

/// Reads a stream shard by shard from when it was opened, a batch at a time.
/// DynamoDB Local sometimes answers an iterator with
/// `TrimmedDataAccessException`; the reader then asks for a new one after
/// the last record it saw (from the shard's start before any), so no record
/// is lost or read twice.
struct Reader {
    arn: String,
    shards: Vec<Shard>,
}

impl Reader {
    async fn iterator(arn: &str, shard: &Value, after: Option<&str>) -> String {
        let request = match after {
            Some(seq) => {
                json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": seq})
            }
            None => {
                json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"})
            }
        };
        let it = streams("GetShardIterator", request).await;
        it["ShardIterator"].as_str().unwrap().to_owned()
    }

    async fn open(stream_arn: &str) -> Reader {
        let desc = streams("DescribeStream", json!({"StreamArn": stream_arn})).await;
        let mut shards = Vec::new();
        for shard in desc["StreamDescription"]["Shards"].as_array().unwrap() {
            let id = shard["ShardId"].clone();
            let iterator = Reader::iterator(stream_arn, &id, None).await;
            shards.push(Shard {
                id,
                iterator,
                last: None,
            });
        }
        Reader {
            arn: stream_arn.to_owned(),
            shards,
        }
    }

    /// The records written since the last batch (waiting up to 5 s for at least one).
    async fn batch(&mut self) -> Vec<EventRecord> {
        for _ in 0..50 {
            let mut records = Vec::new();
            for shard in &mut self.shards {
                let body = json!({"ShardIterator": shard.iterator});
                let (status, out) = streams_call("GetRecords", &body).await;
                if status == 400
                    && out["__type"]
                        .as_str()
                        .is_some_and(|t| t.ends_with("TrimmedDataAccessException"))
                {
                    shard.iterator =
                        Reader::iterator(&self.arn, &shard.id, shard.last.as_deref()).await;
                    continue;
                }
                assert_eq!(status, 200, "GetRecords: {out}");
                let got = out["Records"].as_array().cloned().unwrap_or_default();
                if let Some(seq) = got
                    .last()
                    .and_then(|r| r["dynamodb"]["SequenceNumber"].as_str())
                {
                    shard.last = Some(seq.to_owned());
                }
                records.extend(got);
                if let Some(next) = out["NextShardIterator"].as_str() {
                    shard.iterator = next.to_owned();
                }
            }
            if !records.is_empty() {
                // DynamoDB Local's own records, as the function reads them;
                // every lookup item's record is read whole (images and all).
                for r in &records {
                    let is_lookup = r["dynamodb"]["Keys"]["pk"]["S"]
                        .as_str()
                        .is_some_and(|pk| pk.starts_with("HASH#"));
                    if is_lookup {
                        assert!(
                            serde_json::from_value::<EventRecord>(r.clone()).is_ok(),
                            "a lookup item's record the types cannot read: {r}"
                        );
                    }
                }
                return cache_flush::records(&records);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no stream records arrived");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_streams_consumer_flushes_for_narrowing_changes_only() {
    let store = fresh_dynamo_store("streams_consumer").await;
    let out = store
        .client()
        .update_table()
        .table_name(store.table())
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let arn = out
        .table_description()
        .and_then(|t| t.latest_stream_arn())
        .expect("DynamoDB Local gives the table a stream")
        .to_owned();
    let mut reader = Reader::open(&arn).await;
    let fake = FakeApiGateway::start().await;
    let flusher = Flusher::new(fake.flush_client("api", "prod").await).with_settle(Duration::ZERO);

    // A new key and a recorded use: nothing a cached answer depends on.
    let (key, record) = created(&store, "acct-s").await;
    let lookup = store.lookup(&key.hash()).await.unwrap().unwrap();
    assert!(
        store
            .record_use(&key.hash(), &lookup, now(), chrono::Duration::seconds(60))
            .await
            .unwrap()
    );
    let batch = reader.batch().await;
    let out = stream_batch(&flusher, &batch).await.unwrap();
    assert_eq!(
        (out["narrowing"].clone(), out["flushed"].clone()),
        (json!(0), json!(false)),
        "{batch:?}"
    );
    assert_eq!(fake.flushes(), 0);

    // Deactivation: the lookup item's `active` changes.
    let off = KeyChanges {
        active: Some(false),
        ..KeyChanges::default()
    };
    store
        .update(
            &record.account_id,
            &record.id,
            &off,
            None,
            &audit("u", now()),
        )
        .await
        .unwrap();
    let out = stream_batch(&flusher, &reader.batch().await).await.unwrap();
    assert_eq!(
        (out["narrowing"].clone(), out["flushed"].clone()),
        (json!(1), json!(true))
    );
    assert_eq!(fake.flushes(), 1);

    // Deletion: the lookup item goes.
    store
        .delete(&record.account_id, &record.id, &audit("u", now()))
        .await
        .unwrap();
    let out = stream_batch(&flusher, &reader.batch().await).await.unwrap();
    assert_eq!(
        (out["narrowing"].clone(), out["flushed"].clone()),
        (json!(1), json!(true))
    );
    assert_eq!(fake.flushes(), 2);
}
