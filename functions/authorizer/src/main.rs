//! The authorizer Lambda: wiring only. The decisions live in the library;
//! the store (and, when configured, the origin secret) is read once per cold
//! start and lent to every invocation.

use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_support::logging::init();
    let settings = authorizer::Settings::from_env()?;
    let arn = std::env::var("ORIGIN_SECRET_ARN")
        .ok()
        .filter(|a| !a.is_empty());
    // The secret and the store's client at once: init is the cold start.
    let origin = async {
        let Some(arn) = arn else { return Ok(None) };
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let client = aws_sdk_secretsmanager::Client::new(&sdk);
        authorizer::origin_secret(&client, &arn).await.map(Some)
    };
    let (origin, store) = tokio::join!(origin, lambda_support::dynamo_store());
    let (origin, store) = (origin?, store?);
    let settings = match origin {
        Some(secret) => settings.with_origin_verify(secret),
        None => settings,
    };
    authorizer::warm_up(&store).await;
    run(service_fn(|event| {
        authorizer::handle(&store, &settings, event)
    }))
    .await
}
