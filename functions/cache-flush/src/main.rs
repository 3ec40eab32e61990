//! The cache-flush Lambda: wiring only. The store, the flush client and the
//! flusher's pacing are built once per cold start.

use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_support::logging::init();
    let store = lambda_support::dynamo_store().await?;
    let flusher = cache_flush::Flusher::new(authorizer_cache::CacheFlush::from_env().await?);
    run(service_fn(|event| {
        cache_flush::handle(&store, &flusher, event)
    }))
    .await
}
