//! The authorizer Lambda: wiring only. The decisions live in the library;
//! the store is built once per cold start and lent to every invocation.

use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_support::logging::init();
    let settings = authorizer::Settings::from_env()?;
    let store = lambda_support::dynamo_store().await?;
    authorizer::warm_up(&store).await;
    run(service_fn(|event| {
        authorizer::handle(&store, &settings, event)
    }))
    .await
}
