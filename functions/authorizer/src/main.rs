//! The authorizer Lambda: wiring only. The decisions live in the library;
//! the store (and, when configured, the origin secret) is read once per cold
//! start and lent to every invocation.

use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_support::logging::init();
    let settings = authorizer::Settings::from_env()?;
    // One SDK configuration (region, credentials) for both clients.
    let sdk = lambda_support::sdk_config().await;
    let store = lambda_support::dynamo_store_from(&sdk)?;
    let arn = std::env::var("ORIGIN_SECRET_ARN")
        .ok()
        .filter(|a| !a.is_empty());
    // The secret and the store's first connection at once: init is the cold start.
    let origin = async {
        let Some(arn) = arn else { return Ok(None) };
        let client = aws_sdk_secretsmanager::Client::new(&sdk);
        authorizer::origin_secret(&client, &arn).await.map(Some)
    };
    let (origin, ()) = tokio::join!(origin, authorizer::warm_up(&store));
    let settings = match origin? {
        Some(secret) => settings.with_origin_verify(secret),
        None => settings,
    };
    run(service_fn(|event| {
        authorizer::handle(&store, &settings, event)
    }))
    .await
}
