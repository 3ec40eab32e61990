//! The guaranteed path for authorizer-cache flushes (deployed only with
//! caching on). Two kinds of event reach it:
//!
//! - **DynamoDB Streams batches** of the keys table. A change that may have
//!   made a cached answer wrong shows as a change of a lookup item
//!   (`pk = HASH#…`): removed (delete, roll), or modified in anything but
//!   `lastUsedAt` (deactivate, scopes, roll's grace, leak). For a batch with
//!   any, the stage's cache is flushed once — no earlier than
//!   [`SETTLE`] after the newest such change, so an authorizer invocation
//!   that read the key just before the change (and may have stored its
//!   answer after the dashboard's own flush) has ended. A failed flush fails
//!   the batch: Lambda retries it until it succeeds (the event source
//!   mapping retries without limit while the records live, 24 h) and the
//!   function's error alarm fires.
//! - **The minute sweep** (`{"sweep": "expiries"}`, from EventBridge
//!   Scheduler every minute): when a key expired or a rolled secret's grace
//!   period ended in the last [`SWEEP_WINDOW`] (the expiry log,
//!   [`apikeys::ExpiryLog`]), the cache is flushed, so expiry takes effect
//!   within a minute with caching on.
//!
//! Flushes are paced to at most one per [`MIN_INTERVAL`] per execution
//! environment. Nothing reserves concurrency (a new account may reserve
//! none), so several instances may flush at once: API Gateway throttles the
//! control plane, the SDK retries a throttled flush, and a flush still
//! throttled fails its batch, which Lambda retries (the sweep's, EventBridge
//! Scheduler).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use apikeys::{ExpiryLog, StoreError, Timestamp};
use authorizer_cache::{CacheFlush, FlushError, Flushed};
use aws_lambda_events::event::dynamodb::EventRecord;
use lambda_runtime::LambdaEvent;
use serde_dynamo::AttributeValue;
use serde_json::{Value, json};

/// The authorizer's timeout (3 s, template.yaml) and a second of margin.
pub const SETTLE: Duration = Duration::from_secs(4);
/// At most one flush per this interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// How far back the minute sweep looks: its period and 10 s of overlap for
/// the scheduler's jitter (a moment seen twice flushes twice, harmlessly).
pub const SWEEP_WINDOW: Duration = Duration::from_secs(70);
/// The time one flush may take, the SDK's retries included.
pub const FLUSH_BUDGET: Duration = Duration::from_secs(4);

#[derive(Debug, thiserror::Error)]
pub enum CacheFlushError {
    #[error("the authorizer cache flush failed; the batch will be retried")]
    Flush(#[from] FlushError),
    #[error("reading the expiry log failed")]
    Store(#[from] StoreError),
    #[error("an event this function does not handle: neither a Streams batch nor the sweep")]
    UnknownEvent,
}

impl From<CacheFlushError> for lambda_runtime::Diagnostic {
    fn from(err: CacheFlushError) -> lambda_runtime::Diagnostic {
        let error_type = match err {
            CacheFlushError::Flush(_) => "FlushFailed",
            CacheFlushError::Store(_) => "StoreError",
            CacheFlushError::UnknownEvent => "UnknownEvent",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: apikeys::error_chain(&err),
        }
    }
}

/// The flush client and its pacing: one per execution environment.
#[derive(Debug)]
pub struct Flusher {
    cache: CacheFlush,
    last: Mutex<Option<Instant>>,
    settle: Duration,
}

impl Flusher {
    pub fn new(cache: CacheFlush) -> Flusher {
        Flusher {
            cache,
            last: Mutex::new(None),
            settle: SETTLE,
        }
    }

    /// The same flusher with another settling time (tests).
    #[must_use]
    pub fn with_settle(mut self, settle: Duration) -> Flusher {
        self.settle = settle;
        self
    }

    /// Flushes, no earlier than [`MIN_INTERVAL`] after the previous flush.
    pub async fn flush(&self) -> Result<Flushed, FlushError> {
        let wait = self
            .last
            .lock()
            .map(|last| last.map_or(Duration::ZERO, |t| MIN_INTERVAL.saturating_sub(t.elapsed())))
            .unwrap_or_default();
        tokio::time::sleep(wait).await;
        let flushed = self.cache.flush(FLUSH_BUDGET).await?;
        if let Ok(mut last) = self.last.lock() {
            *last = Some(Instant::now());
        }
        Ok(flushed)
    }
}

/// Whether a Streams record is a change a cached authorizer answer may not
/// survive (module docs). Records without images count as such: when in
/// doubt, flush.
pub fn narrows(record: &EventRecord) -> bool {
    let change = &record.change;
    let is_lookup = matches!(
        change.keys.get("pk"),
        Some(AttributeValue::S(pk)) if pk.starts_with("HASH#")
    );
    if !is_lookup {
        return false;
    }
    match record.event_name.as_str() {
        "REMOVE" => true,
        "MODIFY" => {
            let (old, new) = (&change.old_image, &change.new_image);
            if old.is_empty() || new.is_empty() {
                return true;
            }
            old.keys()
                .chain(new.keys())
                .filter(|name| name.as_str() != "lastUsedAt")
                .any(|name| old.get(name) != new.get(name))
        }
        _ => false,
    }
}

/// When the record's change was written (`ApproximateCreationDateTime`);
/// `None` when the record does not say.
fn written_at(record: &EventRecord) -> Option<chrono::DateTime<chrono::Utc>> {
    let at = record.change.approximate_creation_date_time;
    (at.timestamp() > 0).then_some(at)
}

/// A Streams batch's records, typed. A record that is not a well-formed
/// Streams record (an image the types cannot read) is kept as what matters
/// here, its key and event name without images, so a lookup item's change
/// still counts as narrowing (when in doubt, flush) and no record fails the
/// batch for ever.
pub fn records(raw: &[Value]) -> Vec<EventRecord> {
    raw.iter()
        .map(|r| {
            serde_json::from_value::<EventRecord>(r.clone()).unwrap_or_else(|err| {
                // The error's kind and place only: its text may quote a
                // value, and a lookup item's key is a key hash.
                tracing::warn!(
                    kind = ?err.classify(),
                    line = err.line(),
                    column = err.column(),
                    "a Streams record the types cannot read; judged on its key alone"
                );
                let mut record = EventRecord::default();
                record.event_name = r["eventName"].as_str().unwrap_or("MODIFY").to_owned();
                if let Some(pk) = r["dynamodb"]["Keys"]["pk"]["S"].as_str() {
                    record
                        .change
                        .keys
                        .insert("pk".to_owned(), AttributeValue::S(pk.to_owned()));
                }
                record
            })
        })
        .collect()
}

/// The Lambda handler.
pub async fn handle<S: ExpiryLog>(
    store: &S,
    flusher: &Flusher,
    event: LambdaEvent<Value>,
) -> Result<Value, CacheFlushError> {
    let payload = event.payload;
    if let Some(raw) = payload["Records"].as_array() {
        stream_batch(flusher, &records(raw)).await
    } else if payload["sweep"] == "expiries" {
        let now = chrono::Utc::now();
        sweep(store, flusher, now).await
    } else {
        Err(CacheFlushError::UnknownEvent)
    }
}

/// One Streams batch: at most one flush, after the changes settled.
pub async fn stream_batch(
    flusher: &Flusher,
    records: &[EventRecord],
) -> Result<Value, CacheFlushError> {
    let narrowing: Vec<&EventRecord> = records.iter().filter(|r| narrows(r)).collect();
    let Some(newest) = narrowing
        .iter()
        .filter_map(|r| written_at(r))
        .max()
        .or_else(|| {
            // No creation time: count from now.
            (!narrowing.is_empty()).then(chrono::Utc::now)
        })
    else {
        tracing::debug!(records = records.len(), "no narrowing change in the batch");
        return Ok(json!({"records": records.len(), "narrowing": 0, "flushed": false}));
    };
    let settled_at = newest + chrono::Duration::from_std(flusher.settle).unwrap_or_default();
    if let Ok(wait) = (settled_at - chrono::Utc::now()).to_std() {
        tokio::time::sleep(wait.min(flusher.settle)).await;
    }
    let flushed = flusher.flush().await.inspect_err(|err| {
        tracing::error!(
            cache_flush = "failed",
            narrowing = narrowing.len(),
            error = %apikeys::error_chain(err),
            "authorizer cache flush failed; the batch will be retried"
        );
    })?;
    tracing::info!(
        records = records.len(),
        narrowing = narrowing.len(),
        "authorizer cache flushed for narrowing changes"
    );
    Ok(json!({
        "records": records.len(),
        "narrowing": narrowing.len(),
        "flushed": flushed == Flushed::Done,
    }))
}

/// The minute sweep at `now`: flush when a secret stopped by itself in the
/// last [`SWEEP_WINDOW`].
pub async fn sweep<S: ExpiryLog>(
    store: &S,
    flusher: &Flusher,
    now: Timestamp,
) -> Result<Value, CacheFlushError> {
    let after = now - chrono::Duration::from_std(SWEEP_WINDOW).unwrap_or_default();
    let expired = store.expiring(after, now).await?;
    if expired == 0 {
        return Ok(json!({"expired": 0, "flushed": false}));
    }
    let flushed = flusher.flush().await?;
    tracing::info!(expired, "authorizer cache flushed for expiries");
    Ok(json!({"expired": expired, "flushed": flushed == Flushed::Done}))
}

/// The function's state from the environment: the store (the expiry log)
/// and the flush client with its pacing.
pub async fn init() -> Result<(apikeys::dynamo::DynamoStore, Flusher), lambda_support::Error> {
    Ok((
        lambda_support::dynamo_store().await?,
        Flusher::new(CacheFlush::from_env().await?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use apikeys::{ApiKey, CreateKey, KeyName, KeyRecord, MemoryStore};
    use authorizer_cache::testing::FakeApiGateway;

    /// A Streams record as Lambda delivers it (the shape DynamoDB Local's
    /// own stream gives is tested in tests/store/streams.rs).
    fn record(event: &str, pk: &str, old: Value, new: Value) -> EventRecord {
        let mut change = json!({
            "ApproximateCreationDateTime": chrono::Utc::now().timestamp() as f64,
            "Keys": {"pk": {"S": pk}, "sk": {"S": "HASH"}},
            "SequenceNumber": "100000000000000000001",
            "SizeBytes": 120,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        });
        if !old.is_null() {
            change["OldImage"] = old;
        }
        if !new.is_null() {
            change["NewImage"] = new;
        }
        serde_json::from_value(json!({
            "eventID": "1",
            "eventName": event,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/keys/stream/2026-11-26T00:00:00.000",
            "dynamodb": change,
        }))
        .unwrap()
    }

    /// A lookup item as the store writes it: scopes a list, times in
    /// epoch milliseconds.
    fn lookup(active: bool, last_used_ms: i64) -> Value {
        json!({"pk": {"S": "HASH#ab"}, "sk": {"S": "HASH"}, "keyId": {"S": "k1"},
               "accountId": {"S": "acct"}, "active": {"BOOL": active},
               "scopes": {"L": [{"S": "links.read"}]}, "v": {"N": "1"},
               "lastUsedAt": {"N": last_used_ms.to_string()}})
    }

    #[test]
    fn only_changes_a_cached_answer_may_not_survive_count() {
        let a = lookup(true, 1_795_600_000_000);
        let used = lookup(true, 1_795_600_300_000);
        let off = lookup(false, 1_795_600_000_000);
        assert!(
            !narrows(&record("MODIFY", "HASH#ab", a.clone(), used)),
            "a use"
        );
        assert!(narrows(&record("MODIFY", "HASH#ab", a.clone(), off)));
        let mut narrower = a.clone();
        narrower["scopes"] = json!({"L": [{"S": "folders.read"}]});
        assert!(narrows(&record("MODIFY", "HASH#ab", a.clone(), narrower)));
        let mut grace = a.clone();
        grace["graceUntil"] = json!({"S": "2026-11-26T11:00:00.000Z"});
        assert!(narrows(&record("MODIFY", "HASH#ab", a.clone(), grace)));
        assert!(narrows(&record(
            "REMOVE",
            "HASH#ab",
            a.clone(),
            Value::Null
        )));
        assert!(!narrows(&record(
            "INSERT",
            "HASH#ab",
            Value::Null,
            a.clone()
        )));
        assert!(
            !narrows(&record("MODIFY", "ACCT#x", a.clone(), lookup(false, 0))),
            "records follow their lookup items"
        );
        assert!(
            narrows(&record("MODIFY", "HASH#ab", Value::Null, Value::Null)),
            "no images: flush"
        );
    }

    #[test]
    fn a_record_the_types_cannot_read_is_judged_on_its_key() {
        let unreadable = |pk: &str| {
            json!({"eventID": "1", "eventName": "MODIFY", "awsRegion": "us-east-1",
                   "dynamodb": {"Keys": {"pk": {"S": pk}}, "SizeBytes": 1,
                                "NewImage": {"changes": {}}}})
        };
        let parsed = records(&[unreadable("HASH#ab"), unreadable("ACCT#x")]);
        assert!(narrows(&parsed[0]), "a lookup item's change: flush");
        assert!(!narrows(&parsed[1]));
        let typed = records(&[serde_json::to_value(record(
            "MODIFY",
            "HASH#ab",
            lookup(true, 1),
            lookup(true, 2),
        ))
        .unwrap()]);
        assert!(!narrows(&typed[0]), "a readable record keeps its images");
    }

    #[tokio::test]
    async fn a_batch_flushes_once_after_the_change_settled() {
        let fake = FakeApiGateway::start().await;
        let flusher = Flusher::new(fake.flush_client("api", "prod").await)
            .with_settle(Duration::from_millis(300));
        let a = lookup(true, 1);
        let batch = vec![
            record("MODIFY", "HASH#ab", a.clone(), lookup(false, 1)),
            record("REMOVE", "HASH#cd", a.clone(), Value::Null),
            record("MODIFY", "HASH#ab", a.clone(), lookup(true, 2)),
        ];
        let started = Instant::now();
        let out = stream_batch(&flusher, &batch).await.unwrap();
        assert_eq!(out, json!({"records": 3, "narrowing": 2, "flushed": true}));
        assert_eq!(fake.flushes(), 1);
        // Creation times are whole seconds, so the wait is at most the settle time.
        assert!(started.elapsed() <= Duration::from_millis(1300));
        let only_uses = vec![record("MODIFY", "HASH#ab", a.clone(), lookup(true, 3))];
        stream_batch(&flusher, &only_uses).await.unwrap();
        assert_eq!(fake.flushes(), 1, "a recorded use flushes nothing");
    }

    #[tokio::test]
    async fn a_failed_flush_fails_the_batch_so_lambda_retries_it() {
        let fake = FakeApiGateway::failing(3, 500).await;
        let flusher =
            Flusher::new(fake.flush_client("api", "prod").await).with_settle(Duration::ZERO);
        let batch = vec![record("REMOVE", "HASH#ab", lookup(true, 1), Value::Null)];
        assert!(matches!(
            stream_batch(&flusher, &batch).await,
            Err(CacheFlushError::Flush(_))
        ));
        // Lambda's retry of the same batch.
        assert!(stream_batch(&flusher, &batch).await.is_ok());
        assert_eq!(fake.flushes(), 1);
    }

    /// Without reserved concurrency, two instances (two stream shards, or
    /// a batch and the sweep) may flush at once; API Gateway throttles the
    /// control plane. A flush still throttled after the SDK's retries fails
    /// its batch, and Lambda's retry of it flushes.
    #[tokio::test]
    async fn a_flush_throttled_by_api_gateway_fails_the_batch_for_a_retry() {
        let fake = FakeApiGateway::failing(100, 429).await;
        let one = Flusher::new(fake.flush_client("api", "prod").await).with_settle(Duration::ZERO);
        let two = Flusher::new(fake.flush_client("api", "prod").await).with_settle(Duration::ZERO);
        let batch = vec![record("REMOVE", "HASH#ab", lookup(true, 1), Value::Null)];
        let (a, b) = tokio::join!(stream_batch(&one, &batch), stream_batch(&two, &batch));
        assert!(matches!(a, Err(CacheFlushError::Flush(_))), "{a:?}");
        assert!(matches!(b, Err(CacheFlushError::Flush(_))), "{b:?}");
        assert_eq!(fake.flushes(), 0);
        fake.fail_next(0, 429);
        assert!(stream_batch(&one, &batch).await.is_ok(), "Lambda's retry");
        assert_eq!(fake.flushes(), 1);
    }

    #[tokio::test]
    async fn flushes_are_at_most_one_a_second() {
        let fake = FakeApiGateway::start().await;
        let flusher = Flusher::new(fake.flush_client("api", "prod").await);
        let started = Instant::now();
        for _ in 0..3 {
            flusher.flush().await.unwrap();
        }
        assert!(started.elapsed() >= Duration::from_secs(2));
        assert_eq!(fake.flushes(), 3);
    }

    #[tokio::test]
    async fn the_sweep_flushes_only_when_a_secret_stopped_in_the_last_minute() {
        let fake = FakeApiGateway::start().await;
        let flusher = Flusher::new(fake.flush_client("api", "prod").await);
        let store = MemoryStore::new();
        let now = chrono::Utc::now();
        let key = ApiKey::generate();
        let record = KeyRecord::new(
            &key,
            apikeys::AccountId::parse("acct").unwrap(),
            KeyName::parse("k").unwrap(),
            scopes::ScopeSet::from(scopes::Scope::LinksRead),
            Some(now + chrono::Duration::seconds(30)),
            "u".into(),
            now,
        );
        store
            .create(&record, &apikeys::Audit::system("t", now), 10)
            .await
            .unwrap();
        let out = sweep(&store, &flusher, now).await.unwrap();
        assert_eq!(out["flushed"], false);
        let out = sweep(&store, &flusher, now + chrono::Duration::seconds(60))
            .await
            .unwrap();
        assert_eq!(out, json!({"expired": 1, "flushed": true}));
        let out = sweep(&store, &flusher, now + chrono::Duration::seconds(120))
            .await
            .unwrap();
        assert_eq!(out["flushed"], false, "a minute later it is old news");
        assert_eq!(fake.flushes(), 1);
    }
}
