//! The secret-scanning endpoint on DynamoDB Local with reports as large as
//! the body limit allows (1 MiB, about 7,000 tokens): none of ours (batched
//! reads only), 1,000 live keys of ours among them (each revoked by a guarded
//! change, 16 at a time), and the same report again (already revoked).
//!
//! ```text
//! infra/scripts/with-dynamodb-local.sh cargo bench -p tests --bench leak_report
//! ```
//!
//! Prints figures; asserts nothing about time. The function's timeout is
//! 25 s (template.yaml); the per-revocation time gives the all-ours case.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use apikeys::testing::fresh_dynamo_store;
use apikeys::{AccountId, ApiKey, Audit, CreateKey, KeyName, KeyRecord};
use futures_util::{StreamExt, stream};
use lambda_http::{Body, Request};
use scopes::{Scope, ScopeSet};
use secret_scanning::testing::{KeyServer, Signer};
use serde_json::{Value, json};

fn request(body: &str, signer: &Signer) -> Request {
    lambda_http::http::Request::builder()
        .method("POST")
        .uri("/secret-scanning/github")
        .header("content-type", "application/json")
        .header("Github-Public-Key-Identifier", &signer.id)
        .header("Github-Public-Key-Signature", signer.sign(body.as_bytes()))
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// How many of the report's tokens are live keys of ours.
const OURS: usize = 1000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let store = fresh_dynamo_store("bench-leaks").await;
    let item = |token: &str| {
        json!({"token": token, "type": secret_scanning::TOKEN_TYPE,
               "url": "https://github.com/o/r/blob/0/f", "source": "content"})
    };
    let sample = item(ApiKey::generate().expose_secret()).to_string().len() + 1;
    let n = (secret_scanning::MAX_BODY - 2) / sample;
    let keys: Vec<ApiKey> = (0..n).map(|_| ApiKey::generate()).collect();
    let started = Instant::now();
    stream::iter(keys.iter().take(OURS).enumerate())
        .for_each_concurrent(16, |(i, key)| {
            let store = &store;
            async move {
                let record = KeyRecord::new(
                    key,
                    AccountId::parse(&format!("acct-{}", i % 50)).unwrap(),
                    KeyName::parse("leaked").unwrap(),
                    ScopeSet::from(Scope::LinksRead),
                    None,
                    "bench".to_owned(),
                    chrono::Utc::now(),
                );
                store
                    .create(
                        &record,
                        &Audit::system("bench", chrono::Utc::now()),
                        u32::MAX,
                    )
                    .await
                    .unwrap();
            }
        })
        .await;
    println!(
        "seeded {OURS} keys in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let github = Signer::generate("github-bench");
    let server = KeyServer::start(&[&github]).await;
    let public = secret_scanning::GithubKeys::new(&server.url).unwrap();
    let none_ours = Value::Array(
        (0..n)
            .map(|_| item(ApiKey::generate().expose_secret()))
            .collect(),
    )
    .to_string();
    let with_ours =
        Value::Array(keys.iter().map(|k| item(k.expose_secret())).collect()).to_string();
    for (label, body) in [
        ("none ours (batched reads only)", &none_ours),
        ("1,000 ours, revoked now", &with_ours),
        ("the same again (already revoked)", &with_ours),
    ] {
        assert!(body.len() <= secret_scanning::MAX_BODY);
        let t = Instant::now();
        let (feedback, revoked) =
            secret_scanning::report(&store, &public, &request(body, &github), "bench")
                .await
                .unwrap();
        let elapsed = t.elapsed().as_secs_f64();
        println!(
            "{} tokens in {} KiB, {label}: {:.2} s ({revoked} revoked)",
            feedback.len(),
            body.len() / 1024,
            elapsed
        );
    }
}
