//! The authorizer against the floor: the least any authorizer must do (hash
//! the presented key with SHA-256, one consistent `GetItem` with the same AWS
//! SDK and features, answer Allow on the method ARN), side by side through
//! the Lambda runtime API, against one DynamoDB Local. Prints figures and
//! ratios; asserts nothing about time.
//!
//! ```text
//! infra/scripts/with-dynamodb-local.sh cargo bench -p authorizer --bench floor [-- ROUNDS WARM]
//! ```
//!
//! Both are real processes, built in the same profile: the project's
//! `authorizer` binary, and this very benchmark binary run as the floor
//! (`FLOOR_AUTHORIZER=1`: the floor is written here, not a second product).
//! Each round starts each of them fresh, one after the other (their order
//! alternating), under a fake Lambda runtime API of its own, then calls them
//! in turn, call by call, so machine noise hits both alike:
//!
//! - init: from the process's start to its first poll for an invocation;
//! - init + first call: to its first answer;
//! - warm: `WARM` Allow decisions each, from the event's hand-over to the
//!   answer.
//!
//! A first round, not counted, warms DynamoDB Local up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_http::{Answer, FakeHttp};
use tokio::sync::{Mutex, mpsc};

fn main() {
    if std::env::var_os("FLOOR_AUTHORIZER").is_some() {
        floor::main();
        return;
    }
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rounds = args.first().copied().unwrap_or(11);
    let warm = args.get(1).copied().unwrap_or(600);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench(rounds, warm));
}

/// The floor authorizer: hash, one consistent `GetItem`, Allow.
mod floor {
    use aws_sdk_dynamodb::types::AttributeValue;
    use lambda_runtime::{Error, LambdaEvent, service_fn};
    use serde_json::{Value, json};
    use sha2::{Digest, Sha256};

    pub fn main() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                // The SDK as the project has it: its HTTPS client is the one
                // every SDK client here is given (apikeys::dynamo).
                let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .http_client(apikeys::dynamo::https_client())
                    .load()
                    .await;
                let client = aws_sdk_dynamodb::Client::new(&config);
                let table = std::env::var("TABLE_NAME").unwrap();
                let (client, table) = (&client, table.as_str());
                // FLOOR_WARM_UP=1: the project's warm-up read (a lookup of a
                // hash no key has) in init, to weigh it both ways.
                if std::env::var_os("FLOOR_WARM_UP").is_some() {
                    let _ = client
                        .get_item()
                        .table_name(table)
                        .key("pk", AttributeValue::S(format!("HASH#{}", "0".repeat(64))))
                        .key("sk", AttributeValue::S("HASH".into()))
                        .consistent_read(true)
                        .send()
                        .await;
                }
                lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
                    let key = event.payload["headers"]["x-api-key"].as_str().unwrap_or("");
                    let hash = hex::encode(Sha256::digest(key.as_bytes()));
                    let item = client
                        .get_item()
                        .table_name(table)
                        .key("pk", AttributeValue::S(format!("HASH#{hash}")))
                        .key("sk", AttributeValue::S("HASH".into()))
                        .consistent_read(true)
                        .send()
                        .await?;
                    if item.item.is_none() {
                        return Err(Error::from("Unauthorized"));
                    }
                    Ok::<_, Error>(json!({
                        "principalId": "floor",
                        "policyDocument": {"Version": "2012-10-17", "Statement": [{
                            "Action": "execute-api:Invoke",
                            "Effect": "Allow",
                            "Resource": [event.payload["methodArn"]],
                        }]},
                    }))
                }))
                .await
                .unwrap();
            });
    }
}

/// A fake Lambda runtime API: hands out the events it is given, one per
/// poll, and reports each poll and each answer with the time it came.
struct Runtime {
    server: FakeHttp,
    events: mpsc::UnboundedSender<String>,
    polls: mpsc::UnboundedReceiver<Instant>,
    answers: mpsc::UnboundedReceiver<(Instant, String, String)>,
}

impl Runtime {
    async fn start() -> Runtime {
        let (events, queue) = mpsc::unbounded_channel::<String>();
        let (poll_tx, polls) = mpsc::unbounded_channel();
        let (answer_tx, answers) = mpsc::unbounded_channel();
        let queue = Arc::new(Mutex::new(queue));
        let server = FakeHttp::start(move |req| {
            let (queue, poll_tx, answer_tx) = (queue.clone(), poll_tx.clone(), answer_tx.clone());
            async move {
                if req.method == "GET" && req.path().ends_with("/invocation/next") {
                    let _ = poll_tx.send(Instant::now());
                    let Some(event) = queue.lock().await.recv().await else {
                        return std::future::pending().await;
                    };
                    authorizer::testing::invocation(event)
                } else {
                    let _ = answer_tx.send((Instant::now(), req.path().to_owned(), req.text()));
                    Answer::json(202, r#"{"status":"OK"}"#)
                }
            }
        })
        .await;
        Runtime {
            server,
            events,
            polls,
            answers,
        }
    }

    fn address(&self) -> String {
        self.server.url.trim_start_matches("http://").to_owned()
    }

    /// Hands out `event` now; the answer, and when it came.
    async fn invoke(&mut self, event: &str) -> (Instant, Instant, String) {
        let sent = Instant::now();
        self.events.send(event.to_owned()).unwrap();
        let (at, path, body) = tokio::time::timeout(Duration::from_secs(30), self.answers.recv())
            .await
            .expect("no answer within 30 s")
            .unwrap();
        assert!(path.ends_with("/response"), "{path}: {body}");
        (sent, at, body)
    }
}

/// A started process: how long its start took, and what it still serves.
struct Start {
    init: Duration,
    first: Duration,
    runtime: Runtime,
    child: tokio::process::Child,
}

/// A fresh process of `program`: its init and its first call.
async fn start(program: &Program, table: &str, event: &str) -> Start {
    let mut runtime = Runtime::start().await;
    let mut command = tokio::process::Command::new(&program.path);
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "authorizer")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
        .env("TABLE_NAME", table)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(
            "AWS_ENDPOINT_URL_DYNAMODB",
            apikeys::testing::dynamodb_local_endpoint(),
        )
        .envs(program.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    // The first event is there before the process starts: init + first
    // call is what the first caller waits.
    runtime.events.send(event.to_owned()).unwrap();
    let started = Instant::now();
    let child = command.spawn().expect("cannot start the function");
    let ready = runtime.polls.recv().await.unwrap();
    let (_, answered, body) = tokio::time::timeout(Duration::from_secs(30), runtime.answers.recv())
        .await
        .expect("no first answer within 30 s")
        .map(|(at, path, body)| {
            assert!(
                path.ends_with("/response"),
                "{} {path}: {body}",
                program.name
            );
            (at, at, body)
        })
        .unwrap();
    assert!(body.contains("\"Allow\""), "{}: {body}", program.name);
    Start {
        init: ready - started,
        first: answered - started,
        runtime,
        child,
    }
}

struct Program {
    name: &'static str,
    path: std::path::PathBuf,
    env: Vec<(String, String)>,
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn p99(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

async fn bench(rounds: usize, warm: usize) {
    let store = apikeys::testing::fresh_dynamo_store("floor").await;
    // A key with links.read, which the fixture's route needs.
    let (key, _) = apikeys::testing::seed_key(&store, "acct-bench").await;
    let mut event = authorizer::testing::fixture();
    event["headers"]["x-api-key"] = serde_json::json!(key.expose_secret());
    event["multiValueHeaders"]["x-api-key"] = serde_json::json!([key.expose_secret()]);
    let event = event.to_string();

    let path = std::env::var("PATH").unwrap_or_default();
    // PROJECT_ENV="NAME=value …" sets more variables for the project (to
    // measure a setting both ways, say `AWS_LAMBDA_LOG_LEVEL=ERROR`).
    let mut project_env = vec![("PATH".to_owned(), path.clone())];
    for pair in std::env::var("PROJECT_ENV")
        .unwrap_or_default()
        .split_whitespace()
    {
        if let Some((k, v)) = pair.split_once('=') {
            project_env.push((k.to_owned(), v.to_owned()));
        }
    }
    let project = Program {
        name: "project",
        path: env!("CARGO_BIN_EXE_authorizer").into(),
        env: project_env,
    };
    let floor = Program {
        name: "floor",
        path: std::env::current_exe().unwrap(),
        env: [("PATH", path.as_str()), ("FLOOR_AUTHORIZER", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .chain(
                std::env::var("FLOOR_WARM_UP")
                    .ok()
                    .map(|v| ("FLOOR_WARM_UP".to_owned(), v)),
            )
            .collect(),
    };

    println!(
        "authorizer vs floor: {rounds} rounds, {warm} warm Allow calls per start, DynamoDB Local"
    );
    println!(
        "{:<7} {:<8} {:>10} {:>12} {:>12} {:>10}",
        "round", "program", "init ms", "init+1st ms", "warm p50 ms", "warm p99"
    );
    let (mut inits, mut firsts, mut p50s, mut p99s) = (
        [vec![], vec![]],
        [vec![], vec![]],
        [vec![], vec![]],
        [vec![], vec![]],
    );
    let programs = [&project, &floor];
    // Round 0 warms DynamoDB Local up (its JIT compiles the read path during
    // the first thousands of calls) and is printed but not counted.
    for round in 0..=rounds {
        // Started one after the other (the order alternating by round), then
        // called in turn, call by call: whatever the machine or DynamoDB
        // Local does meanwhile, it does to both.
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut started: [Option<Start>; 2] = [None, None];
        for i in order {
            started[i] = Some(start(programs[i], store.table(), &event).await);
        }
        let mut started = started.map(|s| s.expect("both started"));
        let mut warm_times = [Vec::with_capacity(warm), Vec::with_capacity(warm)];
        for call in 0..warm {
            for i in if call % 2 == 0 {
                order
            } else {
                [order[1], order[0]]
            } {
                let (sent, at, _) = started[i].runtime.invoke(&event).await;
                warm_times[i].push(at - sent);
            }
        }
        for i in order {
            let s = &mut started[i];
            let _ = s.child.kill().await;
            let (m, p) = (median(&mut warm_times[i]), p99(&mut warm_times[i]));
            println!(
                "{:<7} {:<8} {:>10} {:>12} {:>12} {:>10}",
                if round == 0 {
                    "warm-up".to_owned()
                } else {
                    round.to_string()
                },
                programs[i].name,
                ms(s.init),
                ms(s.first),
                ms(m),
                ms(p)
            );
            if round == 0 {
                continue;
            }
            inits[i].push(s.init);
            firsts[i].push(s.first);
            p50s[i].push(m);
            p99s[i].push(p);
        }
    }
    println!();
    println!("medians over the rounds      project      floor    ratio");
    for (label, series) in [
        ("warm Allow, median", &mut p50s),
        ("warm Allow, p99", &mut p99s),
        ("init", &mut inits),
        ("init + first call", &mut firsts),
    ] {
        let (a, b) = (median(&mut series[0]), median(&mut series[1]));
        println!(
            "{:<26} {:>10} {:>10} {:>8.3}",
            label,
            ms(a),
            ms(b),
            a.as_secs_f64() / b.as_secs_f64()
        );
    }
}
