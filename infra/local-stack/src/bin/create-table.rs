//! Creates the keys table on any DynamoDB endpoint (DynamoDB Local, or AWS).
//!
//! ```text
//! cargo run -p local-stack --bin create-table -- [TABLE_NAME] [--sample-key]
//! ```
//!
//! The table name is the argument, else `TABLE_NAME`, else `prolinksqr-keys`.
//! `--sample-key` also stores the key the sample events use (`events/`):
//! the authorizer events' `x-api-key`, as the key with the id and account
//! the dashboard events name, scope `links.read`; already there is fine.
//! That key is published, so `--sample-key` needs `AWS_ENDPOINT_URL_DYNAMODB`
//! set to loopback or an address of this machine (its Docker bridge for
//! `sam local`): anything else, AWS's endpoint included, is refused.
//! The endpoint, region and credentials come from the environment as for the
//! functions (`AWS_ENDPOINT_URL_DYNAMODB` for DynamoDB Local).

use std::process::ExitCode;

use apikeys::dynamo::{ClientSettings, DynamoStore};
use apikeys::table::{Created, create_table};
use apikeys::{AccountId, ApiKey, CreateKey, KeyId, KeyName, KeyRecord, StoreError};

/// The sample events' key, account and key id.
const SAMPLE_EVENT: &str = include_str!("../../../../events/authorizer/allow.json");
const SAMPLE_ACCOUNT: &str = "3f1c2a9e-5d2b-4c7e-9a1f-0b6d8e4c2a71";
const SAMPLE_KEY_ID: &str = "7QbZ2kVnR4xW9pLmT3sHcA";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sample = args.iter().any(|a| a == "--sample-key");
    let name = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .or_else(|| std::env::var("TABLE_NAME").ok())
        .unwrap_or_else(|| "prolinksqr-keys".to_owned());
    if sample {
        let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok();
        if let Err(refused) = local_stack::endpoint::sample_key_endpoint(endpoint.as_deref()) {
            eprintln!("create-table: {refused}");
            return ExitCode::from(2);
        }
    }
    // Table administration is not on a request path: allow it more time.
    // Region and credentials from the environment or local defaults, never
    // instance metadata.
    let client = ClientSettings::LOCAL.local_client().await;
    match create_table(&client, &name).await {
        Ok(Created::Created) => println!("created table {name}"),
        Ok(Created::AlreadyExisted) => println!("table {name} already exists"),
        Err(err) => {
            eprintln!("create-table: {}", apikeys::error_chain(&err));
            return ExitCode::FAILURE;
        }
    }
    if !sample {
        return ExitCode::SUCCESS;
    }
    match store_sample_key(DynamoStore::new(client, &name)).await {
        Ok(()) => {
            println!("stored the sample events' key ({SAMPLE_KEY_ID}, links.read)");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("create-table: {msg}");
            ExitCode::FAILURE
        }
    }
}

async fn store_sample_key(store: DynamoStore) -> Result<(), String> {
    let event: serde_json::Value =
        serde_json::from_str(SAMPLE_EVENT).map_err(|e| format!("sample event: {e}"))?;
    let key = event["headers"]["x-api-key"]
        .as_str()
        .and_then(|k| ApiKey::parse(k).ok())
        .ok_or("the sample event carries no valid key")?;
    let (Some(account), Some(id), Ok(name)) = (
        AccountId::parse(SAMPLE_ACCOUNT),
        KeyId::parse(SAMPLE_KEY_ID),
        KeyName::parse("Sample key (local only)"),
    ) else {
        return Err("sample constants are malformed".to_owned());
    };
    let now = chrono::Utc::now();
    let mut record = KeyRecord::new(
        &key,
        account,
        name,
        scopes::ScopeSet::from(scopes::Scope::LinksRead),
        None,
        "create-table".to_owned(),
        now,
    );
    record.id = id;
    let audit = apikeys::Audit::system("create-table", now);
    match store.create(&record, &audit, u32::MAX).await {
        Ok(()) | Err(StoreError::AlreadyExists) => Ok(()),
        Err(e) => Err(apikeys::error_chain(&e)),
    }
}
