//! Test helpers (feature `test-util`): DynamoDB Local clients and a fresh
//! table per test, so tests run in parallel without sharing state.
//!
//! DynamoDB Local is found through `AWS_ENDPOINT_URL_DYNAMODB`, which
//! `infra/scripts/with-dynamodb-local.sh` (and so `make test`) sets. A test that needs
//! it fails, with a message saying so, when it is not set or not reachable:
//! it never skips and never falls through to real AWS.

use aws_sdk_dynamodb::Client;

use crate::dynamo::{ClientSettings, DynamoStore};
use crate::material;
use crate::table;

/// The DynamoDB Local endpoint, or a panic that says how to start it.
pub fn dynamodb_local_endpoint() -> String {
    match std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
        Ok(url) if url.starts_with("http://127.0.0.1:") || url.starts_with("http://localhost:") => {
            url
        }
        Ok(url) => panic!(
            "AWS_ENDPOINT_URL_DYNAMODB is {url:?}: tests only run against a local DynamoDB Local"
        ),
        Err(_) => panic!(
            "DynamoDB Local is required and AWS_ENDPOINT_URL_DYNAMODB is not set: \
             run the tests with `make test` (or infra/scripts/with-dynamodb-local.sh cargo test)"
        ),
    }
}

/// A client for DynamoDB Local with the test settings.
pub async fn dynamodb_local_client() -> Client {
    dynamodb_local_endpoint();
    ClientSettings::LOCAL.local_client().await
}

/// A unique table name for one test.
pub fn unique_table_name(label: &str) -> String {
    format!("keys-{label}-{}", material::random_base62(12))
}

/// A store on a new, empty table of its own on DynamoDB Local.
pub async fn fresh_dynamo_store(label: &str) -> DynamoStore {
    let client = dynamodb_local_client().await;
    fresh_dynamo_store_with(client, label).await
}

/// A store on a new, empty table, through the given client.
pub async fn fresh_dynamo_store_with(client: Client, label: &str) -> DynamoStore {
    let name = unique_table_name(label);
    if let Err(err) = table::create_table(&client, &name).await {
        panic!(
            "could not create table {name} on DynamoDB Local at {}: {}",
            dynamodb_local_endpoint(),
            crate::error_chain(&err)
        );
    }
    DynamoStore::new(client, name)
}

/// A TCP endpoint on loopback that accepts connections and never answers.
pub async fn silent_endpoint() -> String {
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("cannot bind a loopback port: {e}"),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => panic!("no local address: {e}"),
    };
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

/// A DynamoDB store with the production [`ClientSettings`] whose endpoint never answers.
pub async fn store_that_never_answers() -> DynamoStore {
    store_on(&silent_endpoint().await).await
}

/// A fake DynamoDB endpoint on loopback (see [`scripted_endpoint`]).
pub struct Scripted {
    pub url: String,
    server: fake_http::FakeHttp,
}

impl Scripted {
    /// How many requests it answered.
    pub fn count(&self) -> usize {
        self.server.count()
    }

    /// The JSON body of every request, in order.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.server
            .seen()
            .iter()
            .map(|req| serde_json::from_slice(&req.body).unwrap_or_default())
            .collect()
    }
}

/// A fake DynamoDB endpoint on loopback that answers each request with the
/// next scripted `(status, JSON body)` (the last one repeats), and records
/// the requests: for failure paths DynamoDB Local never takes (it runs
/// transactions one at a time, so it never reports a transaction conflict,
/// nor throttles).
pub async fn scripted_endpoint(script: Vec<(u16, String)>) -> Scripted {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (script, next) = (Arc::new(script), Arc::new(AtomicUsize::new(0)));
    let server = fake_http::FakeHttp::start(move |_| {
        let n = next.fetch_add(1, Ordering::SeqCst);
        let (status, reply) = script
            .get(n)
            .or(script.last())
            .cloned()
            .unwrap_or((500, String::new()));
        async move {
            fake_http::Answer::status(status)
                .header("content-type", "application/x-amz-json-1.0")
                .body(reply)
        }
    })
    .await;
    Scripted {
        url: server.url.clone(),
        server,
    }
}

/// A DynamoDB error body with `__type` `code`, as DynamoDB sends it (status 400).
pub fn dynamodb_error(code: &str) -> (u16, String) {
    let body = serde_json::json!({
        "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"),
        "message": code,
    });
    (400, body.to_string())
}

/// A DynamoDB store with the production [`ClientSettings`] on `endpoint`.
pub async fn store_on(endpoint: &str) -> DynamoStore {
    DynamoStore::new(
        ClientSettings::default()
            .client_for_endpoint(endpoint)
            .await,
        "keys",
    )
}

/// Every item of the store's table (one Scan: tests' tables are small).
pub async fn all_items(
    store: &DynamoStore,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    match store.client().scan().table_name(store.table()).send().await {
        Ok(out) => out.items.unwrap_or_default(),
        Err(e) => panic!("cannot scan {}: {}", store.table(), crate::error_chain(&e)),
    }
}

/// The items that make up keys — records (`KEY#`) and lookup items
/// (`HASH#`) — leaving out events, tombstones and the accounts' counts.
pub async fn key_items(
    store: &DynamoStore,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    all_items(store)
        .await
        .into_iter()
        .filter(|item| {
            let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str);
            text("pk").is_some_and(|pk| pk.starts_with("HASH#"))
                || text("sk").is_some_and(|sk| sk.starts_with("KEY#"))
        })
        .collect()
}

/// Stores a new key (links.read, no expiry) for `account`; returns it and its record.
pub async fn seed_key<S: crate::CreateKey>(
    store: &S,
    account: &str,
) -> (crate::ApiKey, crate::KeyRecord) {
    let key = crate::ApiKey::generate();
    let (Some(acct), Ok(name)) = (
        crate::AccountId::parse(account),
        crate::KeyName::parse("CI bot"),
    ) else {
        panic!("bad test account {account:?}");
    };
    let record = crate::KeyRecord::new(
        &key,
        acct,
        name,
        scopes::ScopeSet::from(scopes::Scope::LinksRead),
        None,
        account.to_owned(),
        chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 3),
    );
    if let Err(e) = store
        .create(
            &record,
            &crate::Audit::system("test", chrono::Utc::now()),
            u32::MAX,
        )
        .await
    {
        panic!("seeding a key failed: {e}");
    }
    (key, record)
}
