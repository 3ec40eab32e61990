//! The dashboard key API's shared plumbing, used by the five CRUD functions:
//!
//! - [`ApiConfig`]: the claim naming the account and the dashboard origin, read once;
//! - [`caller`]: the calling account from the Cognito claims in the REST request context;
//! - [`input`]: body limits, content type, JSON objects and the field validators;
//! - [`ApiError`] and [`finish`]: the one place errors become responses (JSON
//!   `{"error":{"code","message"}}`, CORS on every response);
//! - [`idempotency`]: `Idempotency-Key` on create and roll (sealed answers);
//! - [`view`]: the records as the API returns them (never the hash);
//! - [`deadline`]: when a handler's store work must be over;
//! - [`finish_change`]: [`finish`] for changes, which first flushes the
//!   authorizer result cache when the change may have made a cached answer wrong.

pub mod idempotency;
pub mod input;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod view;

use std::time::Duration;

use apikeys::{AccountId, Deadline, KeyId, StoreError};
use authorizer_cache::CacheFlush;
use lambda_http::http::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, CONTENT_TYPE, HeaderName, RETRY_AFTER,
};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};

/// Settings every CRUD function reads once at cold start.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The claim that names the account (`ACCOUNT_ID_CLAIM`, default `sub`).
    pub account_claim: String,
    /// The dashboard's origin, sent as `Access-Control-Allow-Origin`.
    pub dashboard_origin: HeaderValue,
    /// How many keys an account may have (`MAX_KEYS_PER_ACCOUNT`, default 100).
    pub max_keys: u32,
    /// The protected stage's authorizer cache, flushed after a narrowing
    /// change when caching is on (default: off).
    pub cache: CacheFlush,
}

/// The key limit when `MAX_KEYS_PER_ACCOUNT` is not set.
pub const DEFAULT_MAX_KEYS: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("DASHBOARD_ORIGIN is not set")]
    MissingOrigin,
    #[error("DASHBOARD_ORIGIN is not a valid header value")]
    BadOrigin,
    #[error("ACCOUNT_ID_CLAIM is empty")]
    EmptyClaim,
    #[error("MAX_KEYS_PER_ACCOUNT must be a whole number from 1 up")]
    BadMaxKeys,
}

impl ApiConfig {
    pub fn new(account_claim: &str, dashboard_origin: &str) -> Result<ApiConfig, ConfigError> {
        if account_claim.is_empty() {
            return Err(ConfigError::EmptyClaim);
        }
        Ok(ApiConfig {
            account_claim: account_claim.to_owned(),
            dashboard_origin: HeaderValue::from_str(dashboard_origin)
                .map_err(|_| ConfigError::BadOrigin)?,
            max_keys: DEFAULT_MAX_KEYS,
            cache: CacheFlush::Off,
        })
    }

    /// The same settings, flushing `cache` after narrowing changes.
    #[must_use]
    pub fn with_cache_flush(mut self, cache: CacheFlush) -> ApiConfig {
        self.cache = cache;
        self
    }

    /// The same settings with another key limit.
    pub fn with_max_keys(mut self, max_keys: u32) -> Result<ApiConfig, ConfigError> {
        if max_keys == 0 {
            return Err(ConfigError::BadMaxKeys);
        }
        self.max_keys = max_keys;
        Ok(self)
    }

    /// From `ACCOUNT_ID_CLAIM` (default `sub`), `DASHBOARD_ORIGIN` (required)
    /// and `MAX_KEYS_PER_ACCOUNT` (default 100).
    pub fn from_env() -> Result<ApiConfig, ConfigError> {
        let claim = std::env::var("ACCOUNT_ID_CLAIM").unwrap_or_else(|_| "sub".to_owned());
        let origin = std::env::var("DASHBOARD_ORIGIN").map_err(|_| ConfigError::MissingOrigin)?;
        let config = ApiConfig::new(&claim, &origin)?;
        match std::env::var("MAX_KEYS_PER_ACCOUNT")
            .ok()
            .filter(|v| !v.is_empty())
        {
            Some(n) => config.with_max_keys(n.parse().map_err(|_| ConfigError::BadMaxKeys)?),
            None => Ok(config),
        }
    }
}

/// The dashboard user behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account whose keys the request may see and change.
    pub account: AccountId,
    /// The user's `sub`, stored as a new key's `createdBy`.
    pub user: String,
}

/// The audit context of a change this request makes: the caller's `sub`,
/// API Gateway's request id, and `at`.
pub fn audit(caller: &Caller, req: &Request, at: apikeys::Timestamp) -> apikeys::Audit {
    apikeys::Audit {
        actor: caller.user.clone(),
        request_id: request_id(req).to_owned(),
        at,
    }
}

/// What the authorizer API Gateway ran says about the caller, from the REST
/// request context: a Cognito user pool authorizer's `claims` (the deployed
/// dashboard API), or else a Lambda authorizer's context, whose string
/// values API Gateway puts beside its `principalId` (the `sam local`
/// harness's local identity). Both are set by API Gateway, never by the
/// client; the deployed dashboard API has the Cognito authorizer only.
fn claims(req: &Request) -> Option<std::borrow::Cow<'_, serde_json::Map<String, Value>>> {
    let Some(RequestContext::ApiGatewayV1(ctx)) = req.request_context_ref() else {
        return None;
    };
    let fields = &ctx.authorizer.fields;
    if let Some(claims) = fields.get("claims") {
        return claims.as_object().map(std::borrow::Cow::Borrowed);
    }
    if !fields.contains_key("principalId") {
        return None;
    }
    Some(std::borrow::Cow::Owned(
        fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    ))
}

/// The caller, from the claims only: never the body, the path or the query.
/// No claims, or no usable account claim or `sub`: 401.
pub fn caller(req: &Request, config: &ApiConfig) -> Result<Caller, ApiError> {
    let claims = claims(req).ok_or(ApiError::Unauthorized)?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let account = text(&config.account_claim)
        .and_then(AccountId::parse)
        .ok_or(ApiError::Unauthorized)?;
    let user = text("sub")
        .filter(|s| !s.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    Ok(Caller {
        account,
        user: user.to_owned(),
    })
}

/// The `{id}` path parameter (from `pathParameters`, never the URI, which
/// carries the stage). Anything that is not an id's shape is simply not found.
pub fn key_id(req: &Request) -> Result<KeyId, ApiError> {
    req.path_parameters_ref()
        .and_then(|p| p.first("id"))
        .and_then(KeyId::parse)
        .ok_or(ApiError::NotFound)
}

/// What a request can fail with. The first group is the caller's doing
/// (4xx); `Unavailable` and `Internal` are ours.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a signed-in dashboard user is required")]
    Unauthorized,
    #[error("no such key")]
    NotFound,
    #[error("the key was changed since the version in If-Match")]
    VersionConflict,
    #[error("the account has as many keys as it may have: delete one first")]
    KeyLimitReached,
    #[error("the key leaked and cannot be reactivated: roll it or create a new key")]
    KeyLeaked,
    #[error("the request body is larger than {} bytes", input::MAX_BODY)]
    PayloadTooLarge,
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the request body must be a JSON object")]
    NotAnObject,
    #[error("unknown field `{0}`")]
    UnknownField(String),
    #[error("`{0}` is required")]
    MissingField(&'static str),
    #[error("`{field}`: {message}")]
    InvalidField {
        field: &'static str,
        message: String,
    },
    #[error("the update names no field: give at least one of `name`, `scopes`, `active`")]
    EmptyUpdate,
    #[error("`limit` must be a whole number from 1 to 100")]
    InvalidLimit,
    #[error("`nextToken` is malformed or was not issued for this account")]
    InvalidToken,
    #[error("`If-Match` must be one entity tag such as \"3\", or *")]
    InvalidIfMatch,
    #[error(
        "`Idempotency-Key` must be one value of 16 to 255 printable ASCII characters (a UUIDv4, say), bare or in double quotes"
    )]
    InvalidIdempotencyKey,
    #[error(
        "this Idempotency-Key was used within the last 24 hours for a different request: use a new value for a new request"
    )]
    IdempotencyKeyReused,
    #[error(
        "a request with this Idempotency-Key is still being processed: try again after Retry-After seconds"
    )]
    IdempotencyInProgress,
    #[error("internal error")]
    Sealing,
    #[error(
        "the key store is unavailable or did not answer in time; a change this request asked for may or may not have been applied: read the key back before trying again"
    )]
    Unavailable(#[source] StoreError),
    #[error(
        "the key store is busy; try again after Retry-After seconds (a change this request asked for may or may not have been applied: read the key back first)"
    )]
    Throttled(#[source] StoreError),
    #[error("internal error")]
    Internal(#[source] StoreError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::VersionConflict | ApiError::KeyLimitReached | ApiError::KeyLeaked => {
                StatusCode::CONFLICT
            }
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MalformedJson(_)
            | ApiError::NotAnObject
            | ApiError::UnknownField(_)
            | ApiError::MissingField(_)
            | ApiError::InvalidField { .. }
            | ApiError::EmptyUpdate
            | ApiError::InvalidLimit
            | ApiError::InvalidToken
            | ApiError::InvalidIfMatch
            | ApiError::InvalidIdempotencyKey => StatusCode::BAD_REQUEST,
            ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::IdempotencyInProgress => StatusCode::CONFLICT,
            ApiError::Sealing => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) | ApiError::Throttled(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, machine-readable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound => "not_found",
            ApiError::VersionConflict => "version_conflict",
            ApiError::KeyLimitReached => "key_limit_reached",
            ApiError::KeyLeaked => "key_leaked",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::NotAnObject => "invalid_body",
            ApiError::UnknownField(_) => "unknown_field",
            ApiError::MissingField(_) => "missing_field",
            ApiError::InvalidField { .. } => "invalid_field",
            ApiError::EmptyUpdate => "empty_update",
            ApiError::InvalidLimit => "invalid_limit",
            ApiError::InvalidToken => "invalid_token",
            ApiError::InvalidIfMatch => "invalid_if_match",
            ApiError::InvalidIdempotencyKey => "invalid_idempotency_key",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::IdempotencyInProgress => "idempotency_in_progress",
            ApiError::Sealing => "internal_error",
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::Throttled(_) => "throttled",
            ApiError::Internal(_) => "internal_error",
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::InvalidField {
            field,
            message: message.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::VersionConflict => ApiError::VersionConflict,
            StoreError::KeyLimitReached => ApiError::KeyLimitReached,
            StoreError::KeyLeaked => ApiError::KeyLeaked,
            StoreError::InvalidToken => ApiError::InvalidToken,
            StoreError::Throttled(_) => ApiError::Throttled(err),
            StoreError::Unavailable(_)
            | StoreError::MissingTable(_)
            | StoreError::DeadlineExceeded => ApiError::Unavailable(err),
            StoreError::IdempotencyLost => ApiError::IdempotencyInProgress,
            StoreError::AlreadyExists | StoreError::Corrupt(_) => ApiError::Internal(err),
        }
    }
}

/// How long before the invocation's deadline a handler's work must end, to
/// leave time to answer (a 503 of our own, never the function's timeout).
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// The budget when the request carries no Lambda context (direct calls in
/// tests): the functions' timeout (5 s, template.yaml) less the margin.
pub const DEFAULT_BUDGET: Duration = Duration::from_millis(4500);

/// When this request's work must be over: the invocation's deadline (from
/// the Lambda context the runtime attaches) less [`DEADLINE_MARGIN`].
pub fn deadline(req: &Request) -> Deadline {
    lambda_support::deadline(req.lambda_context_ref(), DEADLINE_MARGIN, DEFAULT_BUDGET)
}

/// What a 503 asks the client to wait, in seconds.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// A successful answer: status, optional JSON body, extra headers.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Option<Value>,
    /// The body as text, sent as it is (a replayed answer); wins over `body`.
    pub text: Option<String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The change may have made a cached authorizer answer wrong: flush
    /// before answering ([`finish_change`]).
    pub flush_cache: bool,
}

impl Reply {
    pub fn json(status: StatusCode, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            text: None,
            headers: Vec::new(),
            flush_cache: false,
        }
    }

    pub fn no_content() -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            body: None,
            text: None,
            headers: Vec::new(),
            flush_cache: false,
        }
    }

    #[must_use]
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Reply {
        self.headers.push((name, value));
        self
    }

    /// The body exactly as it is sent (JSON), if there is one.
    pub fn body_text(&self) -> Option<String> {
        self.text
            .clone()
            .or_else(|| self.body.as_ref().map(Value::to_string))
    }

    /// Marks the change as one a cached authorizer answer may not survive.
    #[must_use]
    pub fn flushing_cache(mut self, flush: bool) -> Reply {
        self.flush_cache = flush;
        self
    }
}

/// The header a change's success carries when its authorizer-cache flush
/// failed: the change is applied, the Streams consumer flushes for it.
pub const FLUSH_PENDING: HeaderName = HeaderName::from_static("x-authorizer-cache-flush");

/// Runs a change's `work` within the request's [`deadline`], then answers
/// with [`finish_change`]: the one shape of every changing handler.
pub async fn respond_change(
    config: &ApiConfig,
    req: &Request,
    operation: &'static str,
    work: impl std::future::Future<Output = Result<Reply, ApiError>>,
) -> Response<Body> {
    let deadline = deadline(req);
    let outcome = deadline.run(work).await;
    finish_change(config, req, operation, deadline, outcome).await
}

/// [`finish`] for a change: when it succeeded and may have made a cached
/// authorizer answer wrong (and caching is on), the protected stage's cache
/// is flushed first, in the time the request has left, so the key is
/// refused from its very next call. A failed flush never turns the applied
/// change into an error: it is logged (`cache_flush = "failed"`), the answer
/// carries `x-authorizer-cache-flush: pending`, and the Streams consumer's
/// flush for the same change follows.
pub async fn finish_change(
    config: &ApiConfig,
    req: &Request,
    operation: &'static str,
    deadline: Deadline,
    outcome: Result<Reply, ApiError>,
) -> Response<Body> {
    let outcome = match outcome {
        Ok(reply) if reply.flush_cache && config.cache.is_on() => {
            match config.cache.flush(deadline.remaining()).await {
                Ok(_) => Ok(reply),
                Err(err) => {
                    tracing::error!(
                        operation,
                        request_id = request_id(req),
                        cache_flush = "failed",
                        error = %apikeys::error_chain(&err),
                        "the change is applied; flushing the authorizer cache failed and is left to the Streams consumer"
                    );
                    Ok(reply.header(FLUSH_PENDING, HeaderValue::from_static("pending")))
                }
            }
        }
        other => other,
    };
    finish(config, req, operation, outcome)
}

/// The request id API Gateway gave this request, for logs.
fn request_id(req: &Request) -> &str {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.request_id.as_deref().unwrap_or(""),
        _ => "",
    }
}

/// Turns a handler's outcome into the response, the one place that does:
/// JSON bodies, error bodies `{"error":{"code","message"}}`, CORS on every
/// response, and one log line per request. Internal error text is logged,
/// never returned.
pub fn finish(
    config: &ApiConfig,
    req: &Request,
    operation: &'static str,
    outcome: Result<Reply, ApiError>,
) -> Response<Body> {
    let reply = match outcome {
        Ok(reply) => {
            tracing::info!(
                operation,
                request_id = request_id(req),
                status = reply.status.as_u16(),
                "dashboard request"
            );
            reply
        }
        Err(err) => {
            let status = err.status();
            if status.is_server_error() {
                tracing::error!(operation, request_id = request_id(req), status = status.as_u16(), code = err.code(), error = %apikeys::error_chain(&err), "dashboard request failed");
            } else {
                tracing::info!(
                    operation,
                    request_id = request_id(req),
                    status = status.as_u16(),
                    code = err.code(),
                    "dashboard request refused"
                );
            }
            let reply = Reply::json(
                status,
                json!({"error": {"code": err.code(), "message": err.to_string()}}),
            );
            if status == StatusCode::SERVICE_UNAVAILABLE
                || matches!(err, ApiError::IdempotencyInProgress)
            {
                reply.header(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS))
            } else {
                reply
            }
        }
    };
    let mut builder = Response::builder()
        .status(reply.status)
        .header(ACCESS_CONTROL_ALLOW_ORIGIN, config.dashboard_origin.clone())
        .header(
            "access-control-expose-headers",
            "ETag, Idempotent-Replayed, Retry-After",
        );
    let text = reply.body_text();
    for (name, value) in reply.headers {
        builder = builder.header(name, value);
    }
    let body = match text {
        Some(text) => {
            builder = builder.header(CONTENT_TYPE, "application/json");
            Body::Text(text)
        }
        None => Body::Empty,
    };
    builder.body(body).unwrap_or_else(|_| {
        // Only reachable with an invalid header, which no code path builds.
        let mut resp = Response::new(Body::Empty);
        *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        resp
    })
}

/// A dashboard function's state, built once per cold start: the store on
/// `TABLE_NAME` and the API's settings.
pub type Dashboard = (apikeys::dynamo::DynamoStore, ApiConfig);

/// [`Dashboard`] from the environment, for a function that changes no key.
pub async fn dashboard() -> Result<Dashboard, lambda_support::Error> {
    Ok((
        lambda_support::dynamo_store().await?,
        ApiConfig::from_env()?,
    ))
}

/// [`Dashboard`] from the environment, flushing `cache` after narrowing
/// changes (update, delete, roll).
pub async fn dashboard_flushing(cache: CacheFlush) -> Result<Dashboard, lambda_support::Error> {
    let (store, config) = dashboard().await?;
    Ok((store, config.with_cache_flush(cache)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers: each error's status and code, as the API documents them.
    #[test]
    fn every_error_has_its_documented_status_and_code() {
        let cases = [
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::NotFound, 404, "not_found"),
            (ApiError::VersionConflict, 409, "version_conflict"),
            (ApiError::KeyLimitReached, 409, "key_limit_reached"),
            (ApiError::KeyLeaked, 409, "key_leaked"),
            (ApiError::PayloadTooLarge, 413, "payload_too_large"),
            (
                ApiError::UnsupportedMediaType,
                415,
                "unsupported_media_type",
            ),
            (ApiError::MalformedJson("x".into()), 400, "malformed_json"),
            (ApiError::NotAnObject, 400, "invalid_body"),
            (ApiError::UnknownField("x".into()), 400, "unknown_field"),
            (ApiError::MissingField("name"), 400, "missing_field"),
            (ApiError::invalid("name", "bad"), 400, "invalid_field"),
            (ApiError::EmptyUpdate, 400, "empty_update"),
            (ApiError::InvalidLimit, 400, "invalid_limit"),
            (ApiError::InvalidToken, 400, "invalid_token"),
            (ApiError::InvalidIfMatch, 400, "invalid_if_match"),
            (
                ApiError::InvalidIdempotencyKey,
                400,
                "invalid_idempotency_key",
            ),
            (
                ApiError::IdempotencyKeyReused,
                422,
                "idempotency_key_reused",
            ),
            (
                ApiError::IdempotencyInProgress,
                409,
                "idempotency_in_progress",
            ),
            (ApiError::Sealing, 500, "internal_error"),
            (
                ApiError::Unavailable(StoreError::Unavailable("x".into())),
                503,
                "service_unavailable",
            ),
            (
                ApiError::Throttled(StoreError::Throttled("x".into())),
                503,
                "throttled",
            ),
            (
                ApiError::Internal(StoreError::Corrupt("x".into())),
                500,
                "internal_error",
            ),
        ];
        for (e, status, code) in cases {
            assert_eq!((e.status().as_u16(), e.code()), (status, code), "{e}");
        }
    }

    #[test]
    fn internal_error_text_is_not_in_the_message() {
        let e = ApiError::from(StoreError::Corrupt("attribute keyHash".into()));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.to_string().contains("keyHash"));
        let e = ApiError::from(StoreError::Unavailable("connection refused".into()));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!e.to_string().contains("refused"));
        assert!(
            e.to_string().contains("may or may not have been applied"),
            "a timed-out write cannot promise nothing changed"
        );
    }

    #[test]
    fn throttling_and_the_deadline_are_503s() {
        for (err, code) in [
            (StoreError::Throttled("slow down".into()), "throttled"),
            (StoreError::DeadlineExceeded, "service_unavailable"),
            (
                StoreError::MissingTable("gone".into()),
                "service_unavailable",
            ),
        ] {
            let e = ApiError::from(err);
            assert_eq!(
                (e.status(), e.code()),
                (StatusCode::SERVICE_UNAVAILABLE, code)
            );
        }
    }

    #[test]
    fn config_needs_an_origin_and_a_claim() {
        assert!(ApiConfig::new("sub", "https://dashboard.example.com").is_ok());
        assert!(matches!(
            ApiConfig::new("", "https://x"),
            Err(ConfigError::EmptyClaim)
        ));
        assert!(matches!(
            ApiConfig::new("sub", "bad\norigin"),
            Err(ConfigError::BadOrigin)
        ));
    }
}
