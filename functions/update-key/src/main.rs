//! The update-key Lambda: wiring only. Configuration and the store are built
//! once per cold start and lent to every invocation.

use std::convert::Infallible;

use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_support::logging::init();
    // Narrowing changes flush the authorizer cache when caching is on.
    let config = keys_api::ApiConfig::from_env()?
        .with_cache_flush(authorizer_cache::CacheFlush::from_env().await?);
    let store = lambda_support::dynamo_store().await?;
    run(service_fn(|req| async {
        Ok::<_, Infallible>(update_key::handle(&store, &config, req).await)
    }))
    .await
}
