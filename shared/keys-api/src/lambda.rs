//! The wiring every CRUD function's `main.rs` shares: tracing, configuration
//! read once, the DynamoDB client built once per cold start, then the runtime.

use std::convert::Infallible;
use std::future::Future;

use apikeys::dynamo::{ClientSettings, DynamoStore};
use lambda_http::{Body, Error, Request, Response, run, service_fn};

use crate::ApiConfig;

/// Runs `handler` as the Lambda function, with a DynamoDB store on
/// `TABLE_NAME` and the [`ApiConfig`] from the environment.
pub async fn serve<F, Fut>(handler: F) -> Result<(), Error>
where
    F: Fn(&'static DynamoStore, &'static ApiConfig, Request) -> Fut,
    Fut: Future<Output = Response<Body>> + Send,
{
    apikeys::logging::init();
    let config: &'static ApiConfig = Box::leak(Box::new(ApiConfig::from_env()?));
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let client = ClientSettings::default().client().await;
    // Built once, alive for the whole execution environment.
    let store: &'static DynamoStore = Box::leak(Box::new(DynamoStore::new(client, table)));
    run(service_fn(|req| {
        let response = handler(store, config, req);
        async move { Ok::<_, Infallible>(response.await) }
    }))
    .await
}
