//! The API Gateway REQUEST authorizer for ProLinksQR API keys.
//!
//! Decisions (architecture document, "Authorizer semantics"):
//!
//! | situation | result |
//! |---|---|
//! | no key, malformed, over-long, bad checksum, conflicting keys | `Unauthorized` (401), no store read |
//! | hash not found, key inactive or expired | `Unauthorized` (401) |
//! | `(httpMethod, resource)` not in the route table, or a bad method ARN | Deny (403) |
//! | the key lacks the route's scope | Deny (403) |
//! | the key has it | Allow on exactly the event's `methodArn` |
//! | the store fails or times out | another error (500): fail closed |
//!
//! With result caching on (`AUTHORIZER_CACHE_TTL` above 0), API Gateway
//! reuses one answer for every route the same `x-api-key` calls within the
//! TTL, so an authenticated key gets the same policy whatever route it
//! called: Allow on exactly the method ARNs of this API and stage its scopes
//! grant (path parameters as `*`), or a Deny on the whole stage when they
//! grant none. Only `x-api-key` is read: it is the identity source the
//! cache is keyed on, and the decision may depend on nothing else.

pub mod request;
#[cfg(feature = "test-util")]
pub mod testing;

use std::time::Duration;

use apikeys::{
    ApiKey, Deadline, KeyFormatError, KeyHash, KeyLookup, LookupKey, RecordUse, StoreError,
    Timestamp,
};
use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use lambda_runtime::{Diagnostic, LambdaEvent};
use scopes::Route;
use serde_json::json;

use crate::request::{KeyProblem, MethodArn, presented_api_key, presented_key};

pub use crate::request::Request;
pub type Response = ApiGatewayCustomAuthorizerResponse;

/// The authorizer's failures. API Gateway answers 401 only for an error whose
/// message is exactly `Unauthorized`; every other error is a 500.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Unauthorized")]
    Unauthorized,
    #[error("the key store failed")]
    Store(#[source] StoreError),
}

impl From<AuthError> for Diagnostic {
    fn from(err: AuthError) -> Diagnostic {
        let error_type = match err {
            AuthError::Unauthorized => "Unauthorized",
            AuthError::Store(_) => "StoreError",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: err.to_string(),
        }
    }
}

/// Why a decision was taken: logged with every decision, never returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    NoKey,
    ConflictingKeys,
    MalformedKey(KeyFormatError),
    HeaderNotText,
    UnknownKey,
    Inactive,
    Expired,
    UnknownRoute,
    BadMethodArn,
    MissingScope,
    ScopeGranted,
    /// Caching on: the policy names every route the key's scopes grant.
    CacheablePolicy,
    StoreFailure,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::NoKey => "no key",
            Reason::ConflictingKeys => "conflicting keys",
            Reason::MalformedKey(KeyFormatError::Prefix) => "malformed key: prefix",
            Reason::MalformedKey(KeyFormatError::Length) => "malformed key: length",
            Reason::MalformedKey(KeyFormatError::Alphabet) => "malformed key: alphabet",
            Reason::MalformedKey(KeyFormatError::Checksum) => "malformed key: checksum",
            Reason::HeaderNotText => "header not text",
            Reason::UnknownKey => "unknown key",
            Reason::Inactive => "key inactive",
            Reason::Expired => "key expired",
            Reason::UnknownRoute => "route not in table",
            Reason::BadMethodArn => "malformed methodArn",
            Reason::MissingScope => "scope missing",
            Reason::ScopeGranted => "scope granted",
            Reason::CacheablePolicy => "policy for every granted route (caching on)",
            Reason::StoreFailure => "store failure",
        }
    }
}

/// The decision log's `decision` on a store failure (fail closed): the one
/// the template's metric filter counts for `AuthorizerErrorsAlarm` (a 401 is
/// `unauthorized`, a Deny `deny`; neither pages anyone).
pub const STORE_FAILURE_DECISION: &str = "error";

/// How long before the invocation's deadline the store read must be given
/// up, to fail closed (500) by ourselves rather than by the function's timeout.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(300);

/// The budget without a Lambda deadline: the function's timeout (3 s,
/// template.yaml) less the margin.
pub const DEFAULT_BUDGET: Duration = Duration::from_millis(2700);

/// The authorizer's settings, read once per cold start.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// A key's use is recorded at most once per this interval
    /// (`LAST_USED_INTERVAL_SECONDS`, default 300).
    pub last_used_interval: chrono::Duration,
    /// API Gateway's result TTL for this authorizer in seconds
    /// (`AUTHORIZER_CACHE_TTL`, 0 to 3600, default 0 = caching off). Above 0
    /// the policy is the cacheable one (module docs).
    pub cache_ttl: u32,
    /// The origin secret the backend checks (`X-Origin-Verify`), returned in
    /// every Allow's context for the integration to map: read from Secrets
    /// Manager once per cold start (`ORIGIN_SECRET_ARN`), never on the
    /// decision path, never logged.
    pub origin_verify: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("last_used_interval", &self.last_used_interval)
            .field("cache_ttl", &self.cache_ttl)
            .field(
                "origin_verify",
                &self.origin_verify.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            last_used_interval: chrono::Duration::seconds(300),
            cache_ttl: 0,
            origin_verify: None,
        }
    }
}

/// API Gateway's largest authorizer result TTL.
pub use lambda_support::MAX_CACHE_TTL;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("LAST_USED_INTERVAL_SECONDS must be a whole number of seconds from 1 up")]
    LastUsedInterval,
    #[error("AUTHORIZER_CACHE_TTL must be a whole number of seconds from 0 to 3600")]
    CacheTtl,
}

impl Settings {
    /// The same settings, returning `secret` as the origin secret.
    #[must_use]
    pub fn with_origin_verify(mut self, secret: impl Into<String>) -> Settings {
        self.origin_verify = Some(secret.into());
        self
    }

    /// The same settings with result caching at `ttl` seconds (0 = off).
    pub fn with_cache_ttl(mut self, ttl: u32) -> Result<Settings, SettingsError> {
        if ttl > MAX_CACHE_TTL {
            return Err(SettingsError::CacheTtl);
        }
        self.cache_ttl = ttl;
        Ok(self)
    }

    pub fn from_env() -> Result<Settings, SettingsError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut settings = Settings::default();
        if let Some(v) = var("LAST_USED_INTERVAL_SECONDS") {
            let n = v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or(SettingsError::LastUsedInterval)?;
            settings.last_used_interval = chrono::Duration::seconds(n);
        }
        let ttl = lambda_support::authorizer_cache_ttl().map_err(|_| SettingsError::CacheTtl)?;
        settings.with_cache_ttl(ttl)
    }
}

/// The longest a use's recording may add to a call.
pub const RECORD_USE_BUDGET: Duration = Duration::from_millis(250);

/// When the decision must be taken for an invocation with this context.
pub fn deadline(context: &lambda_runtime::Context) -> Deadline {
    lambda_support::deadline(Some(context), DEADLINE_MARGIN, DEFAULT_BUDGET)
}

/// The Lambda entry point: [`authorize`] at the current time, within the
/// invocation's deadline.
pub async fn handle<S: LookupKey + RecordUse>(
    store: &S,
    settings: &Settings,
    event: LambdaEvent<Request>,
) -> Result<Response, AuthError> {
    let deadline = deadline(&event.context);
    let request_id = event.context.request_id;
    tracing::trace!(request_id, "authorizer invoked");
    let now = chrono::Utc::now();
    authorize(store, settings, &event.payload, now, &request_id, deadline).await
}

/// Decides one request at `now`; the store read is given up at `deadline`
/// (failing closed). Logs one line per decision. A key that authenticated
/// (Allow or Deny) has its use recorded when the last record is older than
/// the interval: at most [`RECORD_USE_BUDGET`] more, and a failed record
/// never changes the decision.
pub async fn authorize<S: LookupKey + RecordUse>(
    store: &S,
    settings: &Settings,
    req: &Request,
    now: Timestamp,
    request_id: &str,
    deadline: Deadline,
) -> Result<Response, AuthError> {
    let method = req.http_method.as_deref().unwrap_or("");
    let resource = req.resource.as_deref().unwrap_or("");
    let log = DecisionLog {
        request_id,
        method,
        resource,
        origin: settings.origin_verify.as_deref(),
    };

    // 1. The key, checked offline: no store call for anything malformed.
    let presented = if settings.cache_ttl > 0 {
        presented_api_key(&req.headers, &req.multi_value_headers)
    } else {
        presented_key(&req.headers, &req.multi_value_headers)
    };
    let key = match presented {
        Ok(presented) => ApiKey::parse(presented).map_err(Reason::MalformedKey),
        Err(KeyProblem::Missing) => Err(Reason::NoKey),
        Err(KeyProblem::Conflicting) => Err(Reason::ConflictingKeys),
        Err(KeyProblem::NotText) => Err(Reason::HeaderNotText),
    };
    let key = match key {
        Ok(key) => key,
        Err(reason) => return Err(log.unauthorized(reason, None)),
    };

    // 2. The one store read: the lookup item by hash, consistently.
    let hash = key.hash();
    let found = match deadline.run(store.lookup(&hash)).await {
        Ok(found) => found,
        Err(err) => {
            log.store_failure(&err);
            return Err(AuthError::Store(err));
        }
    };
    let Some(found) = found else {
        return Err(log.unauthorized(Reason::UnknownKey, None));
    };
    if !found.active {
        return Err(log.unauthorized(Reason::Inactive, Some(&found)));
    }
    if !found.is_usable_at(now) {
        return Err(log.unauthorized(Reason::Expired, Some(&found)));
    }

    // The key authenticated: record its use when one is due.
    if found.use_due_at(now, settings.last_used_interval) {
        record_use(store, &hash, &found, now, settings, deadline, request_id).await;
    }

    // 3. The route API Gateway matched, and the ARN the policy must name
    //    (well-formed and for the event's method, else a Deny on everything).
    let parsed = req
        .method_arn
        .as_deref()
        .and_then(MethodArn::parse)
        .filter(|p| p.method == method);
    let arn = parsed.and(req.method_arn.as_deref());
    if settings.cache_ttl > 0 {
        return Ok(match parsed {
            Some(parsed) => log.cacheable(&found, &parsed),
            None => log.deny(Reason::BadMethodArn, &found, "*"),
        });
    }
    let Some(route) = scopes::route_for_template(method, resource) else {
        return Ok(log.deny(Reason::UnknownRoute, &found, arn.unwrap_or("*")));
    };
    let Some(arn) = arn else {
        return Ok(log.deny(Reason::BadMethodArn, &found, "*"));
    };

    // 4. The scope.
    if found.scopes.allows(route.scope) {
        Ok(log.allow(route, &found, arn))
    } else {
        Ok(log.deny(Reason::MissingScope, &found, arn))
    }
}

/// Records a use within [`RECORD_USE_BUDGET`] (and the deadline); any
/// failure is logged and otherwise ignored.
async fn record_use<S: RecordUse>(
    store: &S,
    hash: &KeyHash,
    found: &KeyLookup,
    now: Timestamp,
    settings: &Settings,
    deadline: Deadline,
    request_id: &str,
) {
    let budget = Deadline::after(RECORD_USE_BUDGET.min(deadline.remaining()));
    let recorded = budget
        .run(store.record_use(hash, found, now, settings.last_used_interval))
        .await;
    match recorded {
        Ok(true) => tracing::debug!(request_id, key_id = found.key_id.as_str(), "use recorded"),
        Ok(false) => {}
        Err(err) => tracing::warn!(
            request_id,
            key_id = found.key_id.as_str(),
            error = %apikeys::error_chain(&err),
            "could not record the key's use; the decision stands"
        ),
    }
}

/// One structured log line per decision: decision, route, key and account
/// ids when known, reason. Never the key, a hash or a header value.
struct DecisionLog<'a> {
    request_id: &'a str,
    method: &'a str,
    resource: &'a str,
    /// The origin secret for an Allow's context (never logged).
    origin: Option<&'a str>,
}

impl DecisionLog<'_> {
    fn unauthorized(&self, reason: Reason, found: Option<&KeyLookup>) -> AuthError {
        tracing::info!(
            decision = "unauthorized",
            request_id = self.request_id,
            method = self.method,
            resource = self.resource,
            key_id = found.map(|f| f.key_id.as_str()),
            account_id = found.map(|f| f.account_id.as_str()),
            reason = reason.as_str(),
            "authorizer decision"
        );
        AuthError::Unauthorized
    }

    fn store_failure(&self, err: &StoreError) {
        tracing::error!(
            decision = STORE_FAILURE_DECISION,
            request_id = self.request_id,
            method = self.method,
            resource = self.resource,
            reason = Reason::StoreFailure.as_str(),
            error = %apikeys::error_chain(err),
            "authorizer decision"
        );
    }

    fn deny(&self, reason: Reason, found: &KeyLookup, resource_arn: &str) -> Response {
        tracing::info!(
            decision = "deny",
            request_id = self.request_id,
            method = self.method,
            resource = self.resource,
            key_id = found.key_id.as_str(),
            account_id = found.account_id.as_str(),
            reason = reason.as_str(),
            "authorizer decision"
        );
        policy_response(
            found,
            IamPolicyEffect::Deny,
            vec![resource_arn.to_owned()],
            json!({}),
        )
    }

    /// Caching on: Allow on every method ARN of this API and stage the key's
    /// scopes grant, or a Deny on the whole stage when they grant none.
    fn cacheable(&self, found: &KeyLookup, arn: &MethodArn<'_>) -> Response {
        let prefix = arn.stage_prefix();
        let granted: Vec<String> = scopes::granted_routes(found.scopes)
            .map(|r| format!("{prefix}{}", r.arn_pattern()))
            .collect();
        let (decision, effect, resources) = if granted.is_empty() {
            ("deny", IamPolicyEffect::Deny, vec![format!("{prefix}*")])
        } else {
            ("allow", IamPolicyEffect::Allow, granted)
        };
        tracing::info!(
            decision,
            request_id = self.request_id,
            method = self.method,
            resource = self.resource,
            key_id = found.key_id.as_str(),
            account_id = found.account_id.as_str(),
            routes = resources.len(),
            reason = Reason::CacheablePolicy.as_str(),
            "authorizer decision"
        );
        policy_response(found, effect, resources, context(found, self.origin))
    }

    fn allow(&self, route: &Route, found: &KeyLookup, method_arn: &str) -> Response {
        tracing::info!(
            decision = "allow",
            request_id = self.request_id,
            method = self.method,
            resource = self.resource,
            scope = route.scope.as_str(),
            key_id = found.key_id.as_str(),
            account_id = found.account_id.as_str(),
            reason = Reason::ScopeGranted.as_str(),
            "authorizer decision"
        );
        policy_response(
            found,
            IamPolicyEffect::Allow,
            vec![method_arn.to_owned()],
            context(found, self.origin),
        )
    }
}

/// What the backend learns about the key (scalars only, as API Gateway
/// requires), and the origin secret it checks, when one is configured.
fn context(found: &KeyLookup, origin: Option<&str>) -> serde_json::Value {
    let mut context = json!({
        "accountId": found.account_id.as_str(),
        "keyId": found.key_id.as_str(),
        "scopes": found.scopes.to_string(),
    });
    if let (Some(origin), Some(map)) = (origin, context.as_object_mut()) {
        map.insert(ORIGIN_CONTEXT_KEY.to_owned(), json!(origin));
    }
    context
}

/// The context key of the origin secret (`context.authorizer.originVerify`).
pub const ORIGIN_CONTEXT_KEY: &str = "originVerify";

/// Reads the origin secret (`SecretString`) at cold start.
pub async fn origin_secret(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<String, OriginSecretError> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| OriginSecretError::Read(Box::new(e)))?;
    out.secret_string
        .filter(|s| !s.is_empty())
        .ok_or(OriginSecretError::Empty)
}

#[derive(Debug, thiserror::Error)]
pub enum OriginSecretError {
    #[error("reading the origin secret from Secrets Manager failed")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the origin secret has no SecretString")]
    Empty,
}

fn policy_response(
    found: &KeyLookup,
    effect: IamPolicyEffect,
    resources: Vec<String>,
    context: serde_json::Value,
) -> Response {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec![scopes::policy::INVOKE.to_owned()];
    statement.effect = effect;
    statement.resource = resources;
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".to_owned());
    policy.statement = vec![statement];
    let mut response = Response::default();
    response.principal_id = Some(found.key_id.as_str().to_owned());
    response.policy_document = policy;
    response.context = context;
    response
}

/// Opens the connection to DynamoDB during init with one cheap read (a hash
/// no key has), so the first request does not pay for the TLS handshake.
/// A failure is logged and otherwise ignored.
pub async fn warm_up<S: LookupKey>(store: &S) {
    match store.lookup(&apikeys::KeyHash([0; 32])).await {
        Ok(_) => tracing::debug!("store connection warmed up"),
        Err(err) => tracing::warn!(error = %apikeys::error_chain(&err), "store warm-up failed"),
    }
}

/// The function's state, built once per cold start: the settings, the store
/// (one SDK configuration for both clients) and, when `ORIGIN_SECRET_ARN`
/// names one, the origin secret, read while the store's first connection is
/// opened (init is the cold start).
pub async fn init() -> Result<(apikeys::dynamo::DynamoStore, Settings), lambda_support::Error> {
    let settings = Settings::from_env()?;
    let sdk = lambda_support::sdk_config().await;
    let store = lambda_support::dynamo_store_from(&sdk)?;
    let arn = std::env::var("ORIGIN_SECRET_ARN")
        .ok()
        .filter(|a| !a.is_empty());
    let origin = async {
        let Some(arn) = arn else { return Ok(None) };
        let client = aws_sdk_secretsmanager::Client::new(&sdk);
        origin_secret(&client, &arn).await.map(Some)
    };
    let (origin, ()) = tokio::join!(origin, warm_up(&store));
    let settings = match origin? {
        Some(secret) => settings.with_origin_verify(secret),
        None => settings,
    };
    Ok((store, settings))
}
