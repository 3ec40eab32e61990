//! What every function shares about running in Lambda, and nothing else:
//!
//! - [`logging`]: the tracing set-up (JSON in Lambda, every dependency
//!   capped at DEBUG so no raw event reaches a log);
//! - [`dynamo_store`]: the DynamoDB store on `TABLE_NAME`, built once per
//!   cold start and lent to the handler for every invocation;
//! - [`deadline`] and [`now`]: an invocation's deadline and the clock;
//! - [`authorizer_cache_ttl`]: `AUTHORIZER_CACHE_TTL`, parsed in one place
//!   for the authorizer and the functions that flush its cache;
//! - [`serve`] and `serve_http` (feature `http`): every `main.rs`, one
//!   line each.
//!
//! A `main.rs` reads its configuration, builds its store, and runs
//! `service_fn(|event| handler(&store, …, event))`, borrowing both for the
//! life of the execution environment (as the runtime's own examples do).

pub mod logging;

use std::fmt::Debug;
use std::time::Duration;

use apikeys::dynamo::{ClientSettings, DynamoStore};
use apikeys::{Deadline, Timestamp};

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

/// When an invocation's work must end: the deadline the Lambda runtime
/// gives (`context`) less `margin`, so the function answers by itself and
/// never by its timeout; without one (a direct call in a test),
/// `otherwise` from now.
pub fn deadline(
    context: Option<&lambda_runtime::Context>,
    margin: Duration,
    otherwise: Duration,
) -> Deadline {
    match context {
        Some(ctx) if ctx.deadline > 0 => Deadline::from_lambda(ctx.deadline(), margin),
        _ => Deadline::after(otherwise),
    }
}

/// The current time, to the millisecond (what stored timestamps carry).
pub fn now() -> Timestamp {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(3)
}

/// API Gateway's longest authorizer result TTL, in seconds.
pub const MAX_CACHE_TTL: u32 = 3600;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("AUTHORIZER_CACHE_TTL must be a whole number of seconds from 0 to 3600")]
pub struct CacheTtlError;

/// An authorizer result TTL in seconds: a whole number from 0 (caching
/// off) to [`MAX_CACHE_TTL`].
pub fn parse_cache_ttl(value: &str) -> Result<u32, CacheTtlError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| *n <= MAX_CACHE_TTL)
        .ok_or(CacheTtlError)
}

/// The authorizer's result TTL the environment sets
/// (`AUTHORIZER_CACHE_TTL`; unset or empty: 0, caching off).
pub fn authorizer_cache_ttl() -> Result<u32, CacheTtlError> {
    match std::env::var("AUTHORIZER_CACHE_TTL") {
        Ok(v) if !v.is_empty() => parse_cache_ttl(&v),
        _ => Ok(0),
    }
}

/// What a function's `main` returns.
pub use lambda_runtime::Error;

/// The runtime a function runs on: one thread. Lambda hands an execution
/// environment one invocation at a time, so worker threads only add the
/// hand-overs between them (the runtime API's poll on one, the store's
/// connection on another) to every call; tasks a handler spawns still run,
/// whenever the invocation awaits.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Runs a function on the Lambda runtime: the tracing set-up (the runtime's
/// per-invocation span as `span` says), then `init` once per cold start
/// (configuration and clients: the state every invocation borrows for the
/// life of the execution environment), then `handler` for every event. A
/// `main.rs` is one call of this.
pub fn serve<T, A, R, E, Fut>(
    span: logging::InvocationSpan,
    init: impl AsyncFnOnce() -> Result<T, Error>,
    handler: impl Fn(&'static T, lambda_runtime::LambdaEvent<A>) -> Fut,
) -> Result<(), Error>
where
    T: Sync + 'static,
    A: serde::de::DeserializeOwned,
    R: serde::Serialize,
    E: Into<lambda_runtime::Diagnostic> + Debug,
    Fut: Future<Output = Result<R, E>>,
{
    runtime()?.block_on(async {
        logging::init_with(span);
        // Built once, kept for the life of the execution environment.
        let state: &'static T = Box::leak(Box::new(init().await?));
        let service = lambda_runtime::service_fn(move |event| handler(state, event));
        lambda_runtime::run::<A, _, R, R, lambda_runtime::streaming::Body, bytes::Bytes, _>(service)
            .await
    })
}

#[cfg(feature = "http")]
/// [`serve`] for a function behind API Gateway's REST proxy integration:
/// `handler` answers every request with a response (errors included).
pub fn serve_http<T, Fut>(
    init: impl AsyncFnOnce() -> Result<T, Error>,
    handler: impl Fn(&'static T, lambda_http::Request) -> Fut,
) -> Result<(), Error>
where
    T: Sync + 'static,
    Fut: Future<Output = lambda_http::Response<lambda_http::Body>> + Send + 'static,
{
    runtime()?.block_on(async {
        logging::init();
        let state: &'static T = Box::leak(Box::new(init().await?));
        let service = lambda_http::service_fn(move |req| {
            let answer = handler(state, req);
            async move { Ok::<_, std::convert::Infallible>(answer.await) }
        });
        lambda_http::run(service).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_ttls_are_whole_seconds_up_to_an_hour() {
        assert_eq!(parse_cache_ttl("0"), Ok(0));
        assert_eq!(parse_cache_ttl("300"), Ok(300));
        assert_eq!(parse_cache_ttl("3600"), Ok(3600));
        for bad in ["3601", "-1", "1.5", " 1", "x", ""] {
            assert_eq!(parse_cache_ttl(bad), Err(CacheTtlError), "{bad:?}");
        }
    }

    #[test]
    fn without_a_runtime_deadline_the_budget_runs_from_now() {
        let d = deadline(None, Duration::from_millis(500), Duration::from_secs(60));
        assert!(d.remaining() > Duration::from_secs(59));
        let mut ctx = lambda_runtime::Context::default();
        ctx.deadline =
            u64::try_from((chrono::Utc::now() + chrono::Duration::seconds(10)).timestamp_millis())
                .unwrap_or_default();
        let d = deadline(Some(&ctx), Duration::from_secs(2), Duration::from_secs(60));
        assert!(d.remaining() <= Duration::from_secs(8));
        assert!(d.remaining() > Duration::from_secs(7));
        assert!(now().timestamp_subsec_nanos().is_multiple_of(1_000_000));
    }
}
