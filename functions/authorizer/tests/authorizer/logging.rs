//! Logging: the real `authorizer` binary, with every log-level variable at
//! TRACE, handles one event served by a fake Lambda Runtime API. Its output
//! must show that TRACE was on, and must hold neither the key nor its hash.

use std::process::Stdio;
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use apikeys::testing::fresh_dynamo_store;
use fake_http::{Answer, FakeHttp};
use scopes::{Scope, ScopeSet};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::*;

use authorizer::testing::INVOCATION_ID as REQUEST_ID;

/// Serves one invocation of `event`, then reports what the function posted
/// back; later polls for the next invocation wait for ever.
async fn fake_runtime_api(event: String) -> (String, mpsc::Receiver<(String, String)>) {
    let (tx, rx) = mpsc::channel(4);
    let served = Arc::new(AtomicBool::new(false));
    let server = FakeHttp::start(move |req| {
        let (event, tx, served) = (event.clone(), tx.clone(), served.clone());
        async move {
            if req.method == "GET" && req.path().ends_with("/invocation/next") {
                if served.swap(true, Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                authorizer::testing::invocation(event)
            } else {
                let _ = tx.send((req.path().to_owned(), req.text())).await;
                Answer::json(202, "{\"status\":\"OK\"}\n")
            }
        }
    })
    .await;
    // The runtime API's address is host:port.
    (server.url.trim_start_matches("http://").to_owned(), rx)
}

/// Runs the real binary on one event with these environment variables;
/// returns the path it posted its answer to, the answer and its logs.
async fn run_once(event: String, table: &str, env: &[(&str, &str)]) -> (String, String, String) {
    let (runtime_api, mut posted) = fake_runtime_api(event).await;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_authorizer"));
    command
        .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "authorizer")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("TABLE_NAME", table)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let drain = |pipe: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf).await;
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let (path, body) = tokio::time::timeout(Duration::from_secs(30), posted.recv())
        .await
        .expect("the function answered nothing within 30 s")
        .unwrap();
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let (stdout, stderr) = (stdout.await.unwrap(), stderr.await.unwrap());
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    (path, body, logs)
}

/// One decision line, naming its invocation itself (`request_id`).
fn assert_names_its_invocation(logs: &str) {
    let decisions: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["decision"].is_string())
        .collect();
    assert_eq!(decisions.len(), 1, "{logs}");
    assert_eq!(
        decisions[0]["fields"]["request_id"],
        json!(REQUEST_ID),
        "{logs}"
    );
}

/// A 401 is an answer, not a failure: the function's error (`Unauthorized`,
/// as API Gateway needs) leaves no ERROR line, only the decision at INFO.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_leaves_no_error_line() {
    let store = fresh_dynamo_store("auth-401-log").await;
    let unknown = apikeys::ApiKey::generate();
    for key in ["key-not-a-real-key", unknown.expose_secret()] {
        let mut ev: Value = serde_json::from_str(FIXTURE).unwrap();
        set_headers(&mut ev, &[("x-api-key", key)]);
        let (path, body, logs) = run_once(
            ev.to_string(),
            store.table(),
            &[
                ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
                ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ],
        )
        .await;
        assert_eq!(
            path,
            format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/error"),
            "{body}\n{logs}"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["errorType"],
            "Unauthorized"
        );
        assert!(logs.contains("\"decision\":\"unauthorized\""), "{logs}");
        assert!(
            !logs.contains("\"level\":\"ERROR\""),
            "an ERROR line for a 401:\n{logs}"
        );
        assert_names_its_invocation(&logs);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logging_of_a_handled_event_reveals_no_key_or_hash() {
    let store = fresh_dynamo_store("auth-logging").await;
    let (key, record) = stored_key(&store, ScopeSet::from(Scope::LinksRead), None).await;
    let mut ev: Value = serde_json::from_str(FIXTURE).unwrap();
    set_headers(
        &mut ev,
        &[
            ("x-api-key", key.expose_secret()),
            ("Authorization", &format!("Bearer {}", key.expose_secret())),
        ],
    );
    let (path, body, logs) = run_once(
        ev.to_string(),
        store.table(),
        &[
            ("RUST_LOG", "trace"),
            ("AWS_LAMBDA_LOG_LEVEL", "TRACE"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ],
    )
    .await;

    assert_eq!(
        path,
        format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/response"),
        "{body}\n{logs}"
    );
    let response: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        response["policyDocument"]["Statement"][0]["Effect"],
        json!("Allow"),
        "{body}"
    );
    assert_eq!(response["principalId"], json!(record.id.as_str()));

    // TRACE was on for our crates, and the decision was logged with its fields.
    assert!(
        logs.contains("authorizer invoked"),
        "no TRACE line: logging was not at TRACE\n{logs}"
    );
    assert!(logs.contains("\"decision\":\"allow\""), "{logs}");
    assert!(logs.contains(record.id.as_str()), "the key id is logged");
    assert_names_its_invocation(&logs);
    // Dependencies were capped: the raw event never reached the output.
    assert!(
        !logs.contains("raw JSON event received"),
        "lambda_runtime logged the raw event"
    );
    assert!(
        !logs.contains(key.expose_secret()),
        "the key reached the logs"
    );
    assert!(
        !logs.contains(&key.expose_secret()[4..16]),
        "part of the key reached the logs"
    );
    assert!(
        !logs.contains(&key.hash().to_hex()),
        "the key hash reached the logs"
    );
}
