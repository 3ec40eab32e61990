//! The secret-scanning Lambda: wiring only. The store and GitHub's key
//! cache are built once per cold start and lent to every invocation.

use std::convert::Infallible;

use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_support::logging::init();
    let store = lambda_support::dynamo_store().await?;
    let keys = secret_scanning::GithubKeys::from_env()?;
    // Revocations flush the authorizer cache when caching is on.
    let cache = authorizer_cache::CacheFlush::from_env().await?;
    run(service_fn(|req| async {
        Ok::<_, Infallible>(secret_scanning::handle(&store, &keys, &cache, req).await)
    }))
    .await
}
