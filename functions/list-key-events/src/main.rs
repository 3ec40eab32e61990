//! The list-key-events Lambda: wiring only. Configuration and the store are built
//! once per cold start and lent to every invocation.

use std::convert::Infallible;

use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_support::logging::init();
    let config = keys_api::ApiConfig::from_env()?;
    let store = lambda_support::dynamo_store().await?;
    run(service_fn(|req| async {
        Ok::<_, Infallible>(list_key_events::handle(&store, &config, req).await)
    }))
    .await
}
