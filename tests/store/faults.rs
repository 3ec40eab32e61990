//! Writes whose commit succeeds but whose answer is lost: DynamoDB Local
//! behind a fault-injecting proxy that forwards the transaction (so it
//! commits) and then withholds or delays the answer past the client's
//! attempt timeout. The transaction is sent again with the same
//! `ClientRequestToken`, and DynamoDB answers it as done without applying it
//! twice: the caller sees exactly what a lossless network would have shown.
//! The proxy can also answer the resend with `TransactionInProgressException`
//! itself, as DynamoDB does while the first send is still running.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apikeys::dynamo::{ClientSettings, DynamoStore};
use apikeys::testing::{dynamodb_local_endpoint, fresh_dynamo_store};
use apikeys::{GetKey, LookupKey};
use fake_http::{Answer, FakeHttp, Seen};
use http_body_util::Full;
use keys_api::testing::*;
use serde_json::Value;

use crate::store::conformance::new_record;

/// What the proxy does with one transaction.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Forward it, never answer (the client's attempt times out).
    Withhold,
    /// Forward it, answer only after this long (the client has given up).
    Delay(Duration),
    /// Do not forward it: answer `TransactionInProgressException`, as
    /// DynamoDB does to a resend while the first send is still running.
    InProgress,
    /// Do not forward it: answer `IdempotentParameterMismatchException`, as
    /// DynamoDB Local has been seen to answer an identical resend.
    Mismatch,
}

struct Proxy {
    url: String,
    state: Arc<ProxyState>,
    /// How many faults the scenario has.
    planned: usize,
}

struct ProxyState {
    /// What to do with the next transactions, in order; then pass them on.
    faults: Mutex<VecDeque<Fault>>,
    /// Transactions forwarded to DynamoDB Local.
    forwarded: AtomicUsize,
}

impl Proxy {
    /// Starts a proxy to DynamoDB Local that applies `faults` to the next
    /// `TransactWriteItems` requests, one each, and passes everything else.
    async fn start(faults: &[Fault]) -> Proxy {
        let upstream = dynamodb_local_endpoint()
            .trim_start_matches("http://")
            .to_owned();
        let state = Arc::new(ProxyState {
            faults: Mutex::new(faults.iter().copied().collect()),
            forwarded: AtomicUsize::new(0),
        });
        let shared = state.clone();
        let server = FakeHttp::start(move |req| {
            let (state, upstream) = (shared.clone(), upstream.clone());
            async move { state.forward(&upstream, req).await }
        })
        .await;
        Proxy {
            url: server.url,
            state,
            planned: faults.len(),
        }
    }

    fn faults_left(&self) -> bool {
        !self.state.faults.lock().unwrap().is_empty()
    }
}

impl ProxyState {
    async fn forward(&self, upstream: &str, req: Seen) -> Answer {
        let transaction = req
            .header("x-amz-target")
            .is_some_and(|t| t.ends_with(".TransactWriteItems"));
        let fault = if transaction {
            self.faults.lock().unwrap().pop_front()
        } else {
            None
        };
        if let Some(Fault::Mismatch) = fault {
            let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException","message":"The request uses the same client token as a previous, but non-identical request."}"#;
            return Answer::status(400)
                .header("content-type", "application/x-amz-json-1.0")
                .body(body);
        }
        if let Some(Fault::InProgress) = fault {
            let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionInProgressException","message":"Transaction is ongoing for the idempotency token"}"#;
            return Answer::status(400)
                .header("content-type", "application/x-amz-json-1.0")
                .body(body);
        }
        let mut forwarded = hyper::Request::builder()
            .method(req.method.as_str())
            .uri(req.target.as_str());
        for (name, value) in &req.headers {
            forwarded = forwarded.header(name, value);
        }
        let resp = match forwarded.body(Full::new(req.body.clone())) {
            Ok(r) => local_stack::testing::send(upstream, r).await,
            Err(e) => Err(e.to_string()),
        };
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return Answer::status(502).body(e),
        };
        if transaction {
            self.forwarded.fetch_add(1, Ordering::SeqCst);
        }
        match fault {
            Some(Fault::Withhold) => tokio::time::sleep(Duration::from_secs(120)).await,
            Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
            _ => {}
        }
        let mut answer = Answer::status(resp.status().as_u16());
        for (name, value) in resp.headers() {
            answer = answer.header(name.as_str(), String::from_utf8_lossy(value.as_bytes()));
        }
        answer.body(resp.into_body())
    }
}

impl Proxy {
    /// Every planned fault happened, and the one committed transaction was
    /// sent to DynamoDB once more (to be answered as already done).
    fn assert_scenario_ran(&self, faults: &[Fault]) {
        assert!(!self.faults_left(), "every fault was applied");
        let forwarded_faults = faults
            .iter()
            .filter(|f| !matches!(f, Fault::InProgress | Fault::Mismatch))
            .count();
        assert_eq!(self.planned, faults.len());
        assert_eq!(
            self.state.forwarded.load(Ordering::SeqCst),
            forwarded_faults + 1,
            "the committed transaction, then the same one sent again"
        );
    }
}

/// The attempt timeout of the stores under test: a lost answer is given up
/// on after this long and the transaction sent again.
const ATTEMPT: Duration = Duration::from_millis(1000);

/// A table of its own on DynamoDB Local, reached directly (for seeding and
/// inspection) and through a fault proxy (for the operation under test).
async fn stores(faults: &[Fault]) -> (DynamoStore, DynamoStore, Proxy) {
    let direct = fresh_dynamo_store("faults").await;
    let proxy = Proxy::start(faults).await;
    // Two attempts per send, as in production: an in-progress answer to the
    // SDK's second attempt reaches the store's own retry loop.
    let writes = ClientSettings {
        attempt_timeout: ATTEMPT,
        operation_timeout: Duration::from_secs(10),
        max_attempts: 2,
        ..ClientSettings::LOCAL
    };
    let faulty = DynamoStore::new(
        ClientSettings::LOCAL.client_for_endpoint(&proxy.url).await,
        direct.table(),
    )
    .with_write_settings(writes);
    (direct, faulty, proxy)
}

/// The same table through the proxy, each transaction sent once: a lost
/// answer reaches the caller as a 503.
async fn sending_once(direct: &DynamoStore, proxy: &Proxy) -> DynamoStore {
    DynamoStore::new(
        ClientSettings::LOCAL.client_for_endpoint(&proxy.url).await,
        direct.table(),
    )
    .with_write_settings(ClientSettings {
        attempt_timeout: ATTEMPT,
        max_attempts: 1,
        ..ClientSettings::LOCAL
    })
}

/// How many key items (records and lookup items) the table holds.
async fn item_count(store: &DynamoStore) -> usize {
    apikeys::testing::key_items(store).await.len()
}

/// The scenarios: the answer never comes; it comes too late; it never
/// comes and the resend meets the first send still running.
const SCENARIOS: [&[Fault]; 3] = [
    &[Fault::Withhold],
    &[Fault::Delay(Duration::from_millis(1500))],
    &[Fault::Withhold, Fault::InProgress],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_whose_answer_is_lost_is_201_with_the_key_and_exactly_one_record() {
    for fault in SCENARIOS {
        let (direct, faulty, proxy) = stores(fault).await;
        let resp = create_key::handle(&faulty, &config(), request(&event(CREATE_KEY))).await;
        assert_eq!(resp.status(), 201, "{fault:?}: {}", json_body(&resp));
        proxy.assert_scenario_ran(fault);
        let body = json_body(&resp);
        let key = apikeys::ApiKey::parse(body["key"].as_str().unwrap()).unwrap();
        assert_eq!(
            item_count(&direct).await,
            2,
            "{fault:?}: one record and its lookup"
        );
        let lookup = direct.lookup(&key.hash()).await.unwrap().unwrap();
        assert_eq!(lookup.key_id.as_str(), body["id"].as_str().unwrap());
    }
}

async fn seeded(direct: &DynamoStore) -> apikeys::KeyRecord {
    let (_, record) = new_record(SAMPLE_SUB);
    let audit = apikeys::Audit::system("test", record.created_at);
    apikeys::CreateKey::create(direct, &record, &audit, u32::MAX)
        .await
        .unwrap();
    record
}

fn patch(record: &apikeys::KeyRecord, if_match: Option<&str>) -> Value {
    let mut ev = event(UPDATE_KEY);
    set_id(&mut ev, record.id.as_str());
    set_body(&mut ev, Some(r#"{"name":"renamed","active":false}"#));
    set_header(&mut ev, "If-Match", if_match);
    ev
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_whose_answer_is_lost_is_200_and_moves_the_version_once() {
    for fault in SCENARIOS {
        for if_match in [None, Some("\"1\"")] {
            let (direct, faulty, proxy) = stores(fault).await;
            let record = seeded(&direct).await;
            let resp =
                update_key::handle(&faulty, &config(), request(&patch(&record, if_match))).await;
            let label = format!("{fault:?}, If-Match {if_match:?}");
            assert_eq!(resp.status(), 200, "{label}: {}", json_body(&resp));
            proxy.assert_scenario_ran(fault);
            assert_eq!(resp.headers()["etag"], "\"2\"", "{label}");
            let stored = direct.get(&record.account_id, &record.id).await.unwrap();
            assert_eq!(stored.version, 2, "{label}: the version moved exactly once");
            assert_eq!((stored.name.as_str(), stored.active), ("renamed", false));
            assert!(!direct.lookup(&record.hash).await.unwrap().unwrap().active);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_whose_answer_is_lost_is_204() {
    for fault in SCENARIOS {
        let (direct, faulty, proxy) = stores(fault).await;
        let record = seeded(&direct).await;
        let mut ev = event(DELETE_KEY);
        set_id(&mut ev, record.id.as_str());
        let resp = delete_key::handle(&faulty, &config(), request(&ev)).await;
        assert_eq!(resp.status(), 204, "{fault:?}: {}", json_body(&resp));
        proxy.assert_scenario_ran(fault);
        assert_eq!(item_count(&direct).await, 0, "{fault:?}");
    }
}

/// The proxy really withholds: without a retry the write would have failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_second_attempt_the_lost_answer_is_a_503() {
    let (direct, _, proxy) = stores(&[Fault::Withhold]).await;
    let once = sending_once(&direct, &proxy).await;
    let resp = create_key::handle(&once, &config(), request(&event(CREATE_KEY))).await;
    assert_eq!(resp.status(), 503, "{}", json_body(&resp));
    // It did commit: the 503's message says a change may have been applied.
    assert_eq!(item_count(&direct).await, 2);
}

/// The lost answer reaches the client: the commit went through, the
/// dashboard answered 503, and the client sends the request again with the
/// same `Idempotency-Key`. It gets the first answer — the same secret — and
/// there is exactly one key, or one roll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_or_roll_whose_answer_is_lost_repeated_with_its_idempotency_key_returns_the_same_secret()
 {
    let (direct, _, proxy) = stores(&[Fault::Withhold, Fault::Withhold]).await;
    let once = sending_once(&direct, &proxy).await;
    let value = "lost-answer-0b9c8d7e-6f5a-4b3c-2d1e-0f9a8b7c6d5e";

    let mut ev = event(CREATE_KEY);
    set_header(&mut ev, "Idempotency-Key", Some(value));
    let lost = create_key::handle(&once, &config(), request(&ev)).await;
    assert_eq!(lost.status(), 503, "{}", json_body(&lost));
    assert_eq!(item_count(&direct).await, 2, "it did commit");
    let again = create_key::handle(&direct, &config(), request(&ev)).await;
    assert_eq!(again.status(), 201, "{}", json_body(&again));
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let key = apikeys::ApiKey::parse(json_body(&again)["key"].as_str().unwrap()).unwrap();
    let lookup = direct.lookup(&key.hash()).await.unwrap().unwrap();
    assert_eq!(item_count(&direct).await, 2, "exactly one key");
    assert_eq!(
        lookup.key_id.as_str(),
        json_body(&again)["id"].as_str().unwrap()
    );

    let mut roll = event(ROLL_KEY);
    set_id(&mut roll, lookup.key_id.as_str());
    set_header(&mut roll, "If-Match", None);
    set_body(&mut roll, None);
    set_header(&mut roll, "Idempotency-Key", Some(&format!("{value}-roll")));
    let lost = roll_key::handle(&once, &config(), request(&roll)).await;
    assert_eq!(lost.status(), 503, "{}", json_body(&lost));
    let again = roll_key::handle(&direct, &config(), request(&roll)).await;
    assert_eq!(again.status(), 201, "{}", json_body(&again));
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let rolled = apikeys::ApiKey::parse(json_body(&again)["key"].as_str().unwrap()).unwrap();
    let stored = direct
        .get(&lookup.account_id, &lookup.key_id)
        .await
        .unwrap();
    assert_eq!(stored.version, 2, "exactly one roll");
    assert_eq!(
        stored.hash,
        rolled.hash(),
        "the replayed secret is the current one"
    );
    assert!(direct.lookup(&key.hash()).await.unwrap().is_none());
}

/// The commit went through, its answer was lost, and the resend was
/// refused with `IdempotentParameterMismatch` (DynamoDB Local's quirk): the
/// change reads its record back, finds its own transaction's token there,
/// and answers what it committed, once, never a failure and never twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_refused_as_a_mismatch_after_a_commit_is_recognised_as_done() {
    let faults = [Fault::Withhold, Fault::Mismatch];
    // Update and roll: the record carries the token.
    for op in ["update", "roll"] {
        let (direct, faulty, proxy) = stores(&faults).await;
        let record = seeded(&direct).await;
        let resp = if op == "update" {
            update_key::handle(&faulty, &config(), request(&patch(&record, None))).await
        } else {
            let mut ev = event(ROLL_KEY);
            set_id(&mut ev, record.id.as_str());
            set_header(&mut ev, "If-Match", None);
            set_body(&mut ev, None);
            roll_key::handle(&faulty, &config(), request(&ev)).await
        };
        assert!(resp.status().is_success(), "{op}: {}", json_body(&resp));
        assert!(!proxy.faults_left(), "{op}: both faults applied");
        let stored = direct.get(&record.account_id, &record.id).await.unwrap();
        assert_eq!(stored.version, 2, "{op}: applied exactly once");
        assert_eq!(resp.headers()["etag"], "\"2\"", "{op}");
    }
    // Delete: its tombstone carries the token.
    let (direct, faulty, _proxy) = stores(&faults).await;
    let record = seeded(&direct).await;
    let mut ev = event(DELETE_KEY);
    set_id(&mut ev, record.id.as_str());
    let resp = delete_key::handle(&faulty, &config(), request(&ev)).await;
    assert_eq!(resp.status(), 204, "{}", json_body(&resp));
    assert_eq!(item_count(&direct).await, 0);
}
