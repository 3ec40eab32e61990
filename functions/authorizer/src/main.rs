//! The authorizer Lambda: wiring only. The decisions live in the library.

use apikeys::dynamo::{ClientSettings, DynamoStore};
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    apikeys::logging::init();
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let store = DynamoStore::new(ClientSettings::default().client().await, table);
    authorizer::warm_up(&store).await;
    run(service_fn(|event| authorizer::handle(&store, event))).await
}
