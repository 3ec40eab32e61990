//! The protected stage's authorizer result cache, seen from the code that
//! changes keys.
//!
//! With result caching on (`AUTHORIZER_CACHE_TTL` above 0), API Gateway keeps
//! each key's policy for the TTL. A change that narrows a key (deactivate,
//! delete, scope change, roll, leak revocation) must therefore flush the
//! stage's cache before it answers success, or the key would keep working
//! until its entry expires. [`CacheFlush`] is that one call,
//! `FlushStageAuthorizersCache` (`DELETE /restapis/{id}/stages/{stage}/cache/authorizers`),
//! made through the AWS SDK; with caching off it does nothing.
//!
//! The call shares the account's control-plane budget (10 requests/s,
//! burst 40): the SDK retries throttling and 5xx with backoff, within the
//! caller's time. A flush that still fails is the caller's to report; the
//! Streams consumer (`functions/cache-flush`) flushes again for every
//! narrowing change, so none is ever left unflushed.
//!
//! The SDK client is behind the `api-gateway` feature, which only the
//! functions that flush enable: elsewhere (the dashboard's read-only
//! functions) [`CacheFlush`] is [`CacheFlush::Off`] alone and links nothing
//! of API Gateway's.

#[cfg(feature = "test-util")]
pub mod testing;

use std::time::Duration;

#[cfg(feature = "api-gateway")]
use aws_config::retry::RetryConfig;
#[cfg(feature = "api-gateway")]
use aws_config::timeout::TimeoutConfig;
#[cfg(feature = "api-gateway")]
use aws_sdk_apigateway::Client;

/// Whether and where a change flushes the authorizer cache. Built once per
/// cold start; cloning shares the client.
#[derive(Debug, Clone, Default)]
pub enum CacheFlush {
    /// Caching off: nothing to flush.
    #[default]
    Off,
    /// Caching on: flush this REST API's stage.
    #[cfg(feature = "api-gateway")]
    ApiGateway {
        client: Client,
        rest_api_id: String,
        stage: String,
    },
}

/// What a flush did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Caching is off: nothing was sent.
    Off,
    /// API Gateway accepted the flush (202).
    Done,
}

#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    #[error("flushing the authorizer cache of stage {stage} failed: {message}")]
    Failed { stage: String, message: String },
    #[error("flushing the authorizer cache did not finish in time")]
    Timeout,
}

#[derive(Debug, thiserror::Error)]
pub enum FlushConfigError {
    #[error(transparent)]
    Ttl(#[from] lambda_support::CacheTtlError),
    #[error("AUTHORIZER_CACHE_TTL is above 0, so {0} must name the protected API's stage")]
    Missing(&'static str),
}

#[cfg(feature = "api-gateway")]
/// The control-plane client's limits: a flush is small, so an attempt that
/// takes a second is lost; three attempts with backoff ride out throttling.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(500))
        .operation_attempt_timeout(Duration::from_secs(1))
        .operation_timeout(Duration::from_millis(2500))
        .build()
}

#[cfg(feature = "api-gateway")]
fn retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(100))
}

impl CacheFlush {
    /// From the environment: `AUTHORIZER_CACHE_TTL` (0 or unset: [`CacheFlush::Off`]),
    /// then `PROTECTED_API_ID` and `PROTECTED_STAGE`. Region, credentials and
    /// the standard endpoint override `AWS_ENDPOINT_URL_API_GATEWAY` come
    /// from the environment, as for every SDK client.
    #[cfg(feature = "api-gateway")]
    pub async fn from_env() -> Result<CacheFlush, FlushConfigError> {
        if lambda_support::authorizer_cache_ttl()? == 0 {
            return Ok(CacheFlush::Off);
        }
        let var = |name: &'static str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or(FlushConfigError::Missing(name))
        };
        let (rest_api_id, stage) = (var("PROTECTED_API_ID")?, var("PROTECTED_STAGE")?);
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(apikeys::dynamo::https_client())
            .timeout_config(timeouts())
            .retry_config(retries())
            .load()
            .await;
        Ok(CacheFlush::ApiGateway {
            client: Client::new(&config),
            rest_api_id,
            stage,
        })
    }

    /// A flush of `rest_api_id`'s `stage` through an explicit endpoint (the
    /// local API, a test double), configured as this machine's tools are
    /// ([`apikeys::dynamo::local_config_loader`]: region and credentials from
    /// the environment or local defaults), so nothing is sent anywhere but
    /// `endpoint`.
    #[cfg(feature = "api-gateway")]
    pub async fn for_endpoint(endpoint: &str, rest_api_id: &str, stage: &str) -> CacheFlush {
        let sdk = apikeys::dynamo::local_config_loader()
            .timeout_config(timeouts())
            .retry_config(retries())
            .load()
            .await;
        let config = aws_sdk_apigateway::config::Builder::from(&sdk)
            .endpoint_url(endpoint)
            .build();
        CacheFlush::ApiGateway {
            client: Client::from_conf(config),
            rest_api_id: rest_api_id.to_owned(),
            stage: stage.to_owned(),
        }
    }

    pub fn is_on(&self) -> bool {
        !matches!(self, CacheFlush::Off)
    }

    /// Without the `api-gateway` feature there is nothing to flush.
    #[cfg(not(feature = "api-gateway"))]
    pub async fn flush(&self, _budget: Duration) -> Result<Flushed, FlushError> {
        Ok(Flushed::Off)
    }

    /// Flushes every cached authorizer result of the stage, giving up after
    /// `budget` ([`FlushError::Timeout`]).
    #[cfg(feature = "api-gateway")]
    pub async fn flush(&self, budget: Duration) -> Result<Flushed, FlushError> {
        let CacheFlush::ApiGateway {
            client,
            rest_api_id,
            stage,
        } = self
        else {
            return Ok(Flushed::Off);
        };
        let call = client
            .flush_stage_authorizers_cache()
            .rest_api_id(rest_api_id)
            .stage_name(stage)
            .send();
        match tokio::time::timeout(budget, call).await {
            Err(_) => Err(FlushError::Timeout),
            Ok(Ok(_)) => {
                tracing::info!(stage = stage.as_str(), "authorizer cache flushed");
                Ok(Flushed::Done)
            }
            Ok(Err(err)) => Err(FlushError::Failed {
                stage: stage.clone(),
                message: aws_sdk_apigateway::error::DisplayErrorContext(&err).to_string(),
            }),
        }
    }
}
