//! What every function's `main.rs` shares, and nothing else:
//!
//! - [`logging`]: the tracing set-up (JSON in Lambda, every dependency
//!   capped at DEBUG so no raw event reaches a log);
//! - [`dynamo_store`]: the DynamoDB store on `TABLE_NAME`, built once per
//!   cold start and lent to the handler for every invocation.
//!
//! A `main.rs` reads its configuration, builds its store, and runs
//! `service_fn(|event| handler(&store, …, event))`, borrowing both for the
//! life of the execution environment (as the runtime's own examples do).

pub mod logging;

use apikeys::dynamo::{ClientSettings, DynamoStore};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("TABLE_NAME is not set")]
    MissingTable,
}

/// The DynamoDB store on `TABLE_NAME`, with the production client settings
/// (endpoint, region and credentials from the environment; the standard
/// `AWS_ENDPOINT_URL_DYNAMODB` override is honoured).
pub async fn dynamo_store() -> Result<DynamoStore, StartError> {
    dynamo_store_from(&sdk_config().await)
}

/// The SDK configuration the functions run with (region, credentials and
/// the production timeouts, loaded once), for a cold start that builds more
/// than one client from it.
pub async fn sdk_config() -> aws_config::SdkConfig {
    ClientSettings::default().sdk_config().await
}

/// [`dynamo_store`] from an SDK configuration already loaded.
pub fn dynamo_store_from(sdk: &aws_config::SdkConfig) -> Result<DynamoStore, StartError> {
    let table = std::env::var("TABLE_NAME")
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or(StartError::MissingTable)?;
    Ok(DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table))
}
