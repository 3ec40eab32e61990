//! The local stack: API Gateway's part, played in-process, so the whole
//! system runs from one command without Docker.
//!
//! - `/apikeys…` and `/secret-scanning…` are the dashboard API, routed by
//!   the function table (`function_table`): the caller's identity comes from
//!   an `Authorization: Bearer <JWT>` whose payload is decoded and **not
//!   verified** (local only), and the request reaches the CRUD handlers as a
//!   real REST proxy event with the claims in `requestContext.authorizer.claims`;
//!   the secret-scanning route, without a login, reaches its function.
//! - Every other path is the protected API: routed to its template with
//!   [`scopes::route_for_path`] (no match: 403 Missing Authentication Token,
//!   without calling the authorizer), then the real authorizer decides on a
//!   REQUEST event built as API Gateway builds one, and its answer is enforced
//!   as API Gateway enforces it (the shared policy evaluator judges Allows).
//!   An allowed request reaches an echo backend that shows what the real
//!   backend would receive.
//! - With an authorizer result TTL above 0 ([`LocalApi::with_authorizer_settings`]),
//!   API Gateway's result cache is emulated ([`cache`]), and
//!   `DELETE /restapis/localapi/stages/local/cache/authorizers` is its
//!   `FlushStageAuthorizersCache`, which the dashboard handlers call through
//!   the AWS SDK as the deployed ones do.
//!
//! The handlers are the Lambda functions' own library functions; events go
//! through the same JSON (de)serialisation the runtimes use.

pub mod cache;
/// The local dashboard identity: the unverified JWT's claims, one set of
/// rules with the `sam local` harness's authorizer.
pub use sam_local_identity as jwt;
pub mod endpoint;
pub mod http;
pub mod mapping;
pub mod repair;
pub mod store;
#[cfg(feature = "test-util")]
pub mod testing;

use std::sync::atomic::{AtomicU64, Ordering};

use apikeys::KeyStore;
use keys_api::ApiConfig;
use scopes::policy::{Decision, evaluate_json};
use serde_json::{Map, Value, json};

/// The stage name the local API pretends to be.
pub const STAGE: &str = "local";
/// The REST API id the local API pretends to be (in method ARNs and the
/// cache-flush path).
pub const API_ID: &str = "localapi";
const AWS_ACCOUNT: &str = "000000000000";
const REGION: &str = "us-east-1";
/// What the protected API's integrations write over both key headers.
pub const KEY_HEADER_PLACEHOLDER: &str = "redacted";
/// The local origin secret: what the local authorizer returns in its
/// context (`originVerify`) and the echo backend requires, as the deployed
/// authorizer returns the Secrets Manager secret the backend checks.
pub const LOCAL_ORIGIN_SECRET: &str = "local-origin-secret-not-for-production";

/// A request as the local API receives it.
#[derive(Debug, Clone, Default)]
pub struct LocalRequest {
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// Header names and values in arrival order (repeats kept).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub source_ip: String,
}

/// The answer the local API gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl LocalResponse {
    fn json(status: u16, body: &Value) -> LocalResponse {
        LocalResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    fn with_header(mut self, name: &str, value: &str) -> LocalResponse {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// The local API over one store.
pub struct LocalApi<S> {
    store: S,
    config: ApiConfig,
    requests: AtomicU64,
    /// What the backend receives, per route, from the template.
    mapping: Result<mapping::BackendMapping, String>,
    authorizer: authorizer::Settings,
    /// The authorizer result cache, when its TTL is above 0.
    cache: Option<cache::AuthorizerCache>,
    /// GitHub's secret-scanning keys (`None`: the URL was refused).
    github: Option<secret_scanning::GithubKeys>,
}

impl<S: KeyStore> LocalApi<S> {
    pub fn new(store: S, config: ApiConfig) -> LocalApi<S> {
        LocalApi {
            store,
            config,
            mapping: mapping::BackendMapping::from_template().map_err(|e| e.to_string()),
            authorizer: authorizer::Settings::default().with_origin_verify(LOCAL_ORIGIN_SECRET),
            cache: None,
            github: secret_scanning::GithubKeys::new(secret_scanning::keys::GITHUB_KEYS_URL).ok(),
            requests: AtomicU64::new(0),
        }
    }

    /// The same API with GitHub's keys from another source.
    #[must_use]
    pub fn with_github_keys(mut self, keys: secret_scanning::GithubKeys) -> LocalApi<S> {
        self.github = Some(keys);
        self
    }

    /// The same API with other authorizer settings.
    #[must_use]
    /// A result TTL above 0 turns on the emulated authorizer cache; pair it
    /// with a dashboard config whose [`authorizer_cache::CacheFlush`] points at this
    /// API ([`LocalApi::cache_flush_for`]).
    pub fn with_authorizer_settings(mut self, settings: authorizer::Settings) -> LocalApi<S> {
        self.cache = (settings.cache_ttl > 0).then(|| {
            cache::AuthorizerCache::new(std::time::Duration::from_secs(u64::from(
                settings.cache_ttl,
            )))
        });
        self.authorizer = settings.with_origin_verify(LOCAL_ORIGIN_SECRET);
        self
    }

    /// The same API whose dashboard handlers flush through `cache` (the
    /// SDK client [`LocalApi::cache_flush_for`] builds).
    #[must_use]
    pub fn with_cache_flush(mut self, cache: authorizer_cache::CacheFlush) -> LocalApi<S> {
        self.config = self.config.with_cache_flush(cache);
        self
    }

    /// The flush client for a local API listening at `base` (`http://host:port`).
    pub async fn cache_flush_for(base: &str) -> authorizer_cache::CacheFlush {
        authorizer_cache::CacheFlush::for_endpoint(base, API_ID, STAGE).await
    }

    /// With caching on, the deployed stack's minute sweep, here every second:
    /// when a key expired or a grace period ended since the last sweep (the
    /// store's expiry log), the stage's cache is flushed through the same
    /// SDK client the dashboard uses. Runs until the runtime ends.
    pub fn spawn_expiry_sweep(self: &std::sync::Arc<Self>)
    where
        S: 'static,
    {
        if self.cache.is_none() {
            return;
        }
        let api = self.clone();
        tokio::spawn(async move {
            let mut last = chrono::Utc::now();
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                let now = chrono::Utc::now();
                match api.store.expiring(last, now).await {
                    Ok(0) => last = now,
                    Ok(expired) => match api
                        .config
                        .cache
                        .flush(std::time::Duration::from_secs(2))
                        .await
                    {
                        Ok(_) => {
                            tracing::info!(expired, "authorizer cache flushed for expiries");
                            last = now;
                        }
                        Err(err) => {
                            tracing::warn!(error = %apikeys::error_chain(&err), "expiry flush failed; trying again")
                        }
                    },
                    Err(err) => {
                        tracing::warn!(error = %apikeys::error_chain(&err), "reading the expiry log failed; trying again")
                    }
                }
            }
        });
    }

    /// The emulated authorizer cache, when on.
    pub fn authorizer_cache(&self) -> Option<&cache::AuthorizerCache> {
        self.cache.as_ref()
    }

    /// Answers one request, with one log line: the function's own (the
    /// dashboard handler's, or the authorizer's decision) when one ran, else
    /// the gateway's.
    pub async fn handle(&self, req: LocalRequest) -> LocalResponse {
        let request_id = format!(
            "local-{:08}",
            self.requests.fetch_add(1, Ordering::Relaxed) + 1
        );
        let (method, path) = (req.method.clone(), req.path.clone());
        let answer = if function_table::is_dashboard_path(&req.path) {
            self.dashboard(req, &request_id).await
        } else if req.path.starts_with("/restapis/") {
            self.control_plane(&req)
        } else {
            self.protected(req, &request_id).await
        };
        match answer {
            Answer::Function(resp) => resp,
            Answer::Gateway(resp) => {
                tracing::info!(
                    request_id,
                    method,
                    path,
                    status = resp.status,
                    "answered by the gateway"
                );
                resp
            }
        }
    }

    // ------------------------------------------------------------ dashboard

    async fn dashboard(&self, req: LocalRequest, request_id: &str) -> Answer {
        let origin = self
            .config
            .dashboard_origin
            .to_str()
            .unwrap_or("*")
            .to_owned();
        let with_cors = |r: LocalResponse| {
            Answer::Gateway(r.with_header("access-control-allow-origin", &origin))
        };
        // API Gateway's router for the dashboard's resources, from the
        // function table: an unknown resource or method is its 403.
        let Some((matched, routes)) = function_table::dashboard_resource(&req.path) else {
            return with_cors(missing_authentication_token());
        };
        if req.method == "OPTIONS" {
            // The CORS preflight SAM's Cors setting answers, unauthenticated.
            return with_cors(
                LocalResponse {
                    status: 200,
                    headers: Vec::new(),
                    body: Vec::new(),
                }
                .with_header(
                    "access-control-allow-methods",
                    "GET,POST,PATCH,DELETE,OPTIONS",
                )
                .with_header(
                    "access-control-allow-headers",
                    "Authorization,Content-Type,If-Match,Idempotency-Key",
                )
                .with_header("access-control-max-age", "600"),
            );
        }
        let Some(route) = routes.into_iter().find(|r| r.method == req.method) else {
            return with_cors(missing_authentication_token());
        };
        if route.login == function_table::Login::None {
            return self.secret_scanning(req, request_id).await;
        }
        // The Cognito authorizer's part: no usable token, API Gateway answers 401 itself.
        let Some(claims) = header(&req.headers, "authorization").and_then(jwt::claims_from_bearer)
        else {
            return with_cors(LocalResponse::json(
                401,
                &json!({"message": "Unauthorized"}),
            ));
        };
        let path_parameters = if matched.params.is_empty() {
            Value::Null
        } else {
            Value::Object(
                matched
                    .params
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), json!(v)))
                    .collect(),
            )
        };
        let event = proxy_event(&req, route.path, path_parameters, claims, request_id);
        let request = match lambda_http::request::from_str(&event.to_string()) {
            Ok(r) => r,
            Err(err) => {
                tracing::error!(error = %err, "could not build a proxy event");
                return with_cors(LocalResponse::json(
                    500,
                    &json!({"message": "Internal server error"}),
                ));
            }
        };
        let Some(response) =
            dashboard_handler(route.operation, &self.store, &self.config, request).await
        else {
            tracing::error!(
                operation = route.operation,
                "the function table names an operation no handler serves"
            );
            return with_cors(LocalResponse::json(
                500,
                &json!({"message": "Internal server error"}),
            ));
        };
        let (parts, body) = response.into_parts();
        Answer::Function(LocalResponse {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect(),
            body: body.as_ref().to_vec(),
        })
    }

    // --------------------------------------------------------- control plane

    /// API Gateway's `FlushStageAuthorizersCache` for this API and stage
    /// (202), the only control-plane call the local API answers.
    fn control_plane(&self, req: &LocalRequest) -> Answer {
        let flush_path = format!("/restapis/{API_ID}/stages/{STAGE}/cache/authorizers");
        if req.method != "DELETE" || req.path != flush_path {
            return Answer::Gateway(LocalResponse::json(
                404,
                &json!({"message": "Invalid API or stage identifier specified"}),
            ));
        }
        match &self.cache {
            Some(cache) => {
                cache.flush();
                tracing::info!(stage = STAGE, "authorizer cache flushed");
            }
            None => tracing::info!(stage = STAGE, "authorizer cache flush: caching is off"),
        }
        Answer::Function(LocalResponse {
            status: 202,
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    // ------------------------------------------------------- secret scanning

    async fn secret_scanning(&self, req: LocalRequest, request_id: &str) -> Answer {
        let Some(github) = &self.github else {
            return Answer::Gateway(LocalResponse::json(500, &json!({"message": null})));
        };
        let mut builder = lambda_http::http::Request::builder()
            .method(req.method.as_str())
            .uri(req.path.as_str());
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = match builder.body(lambda_http::Body::from(req.body)) {
            Ok(r) => r,
            Err(err) => {
                tracing::error!(error = %err, "could not build the request");
                return Answer::Gateway(LocalResponse::json(500, &json!({"message": null})));
            }
        };
        let mut ctx = lambda_http::Context::default();
        ctx.request_id = request_id.to_owned();
        ctx.deadline =
            u64::try_from((chrono::Utc::now() + chrono::Duration::seconds(30)).timestamp_millis())
                .unwrap_or_default();
        use lambda_http::RequestExt;
        let response = secret_scanning::handle(
            &self.store,
            github,
            &self.config.cache,
            request.with_lambda_context(ctx),
        )
        .await;
        let (parts, body) = response.into_parts();
        Answer::Function(LocalResponse {
            status: parts.status.as_u16(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_ref().to_vec(),
        })
    }

    // ------------------------------------------------------------ protected

    async fn protected(&self, req: LocalRequest, request_id: &str) -> Answer {
        // API Gateway's router: an undeclared route never reaches the authorizer.
        let Some(matched) = scopes::route_for_path(&req.method, &req.path) else {
            return Answer::Gateway(missing_authentication_token());
        };
        let route = matched.route;
        let method_arn = format!(
            "arn:aws:execute-api:{REGION}:{AWS_ACCOUNT}:{API_ID}/{STAGE}/{}{}",
            req.method, req.path
        );
        let path_parameters: Map<String, Value> = matched
            .params()
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        let event = authorizer_event(
            &req,
            route.resource,
            &method_arn,
            Value::Object(path_parameters.clone()),
            request_id,
        );
        let event: authorizer::Request = match serde_json::from_str(&event.to_string()) {
            Ok(e) => e,
            Err(err) => {
                tracing::error!(error = %err, "could not build an authorizer event");
                return Answer::Gateway(LocalResponse::json(500, &json!({"message": null})));
            }
        };
        // The authorizer's deadline, as the Lambda runtime would give it.
        let deadline = apikeys::Deadline::after(authorizer::DEFAULT_BUDGET);
        let invoke = || {
            authorizer::authorize(
                &self.store,
                &self.authorizer,
                &event,
                chrono::Utc::now(),
                request_id,
                deadline,
            )
        };
        let (decision, cache_use) = match &self.cache {
            None => (invoke().await, None),
            Some(cache) => {
                // The identity source is required: missing or empty, API
                // Gateway answers 401 without calling the authorizer.
                let Some(identity) =
                    header(&req.headers, "x-api-key").filter(|v| !v.trim().is_empty())
                else {
                    return Answer::Gateway(LocalResponse::json(
                        401,
                        &json!({"message": "Unauthorized"}),
                    ));
                };
                match cache.get(identity) {
                    Some(cached) => (Ok(cached), Some(cache::CacheUse::Hit)),
                    None => {
                        let generation = cache.generation();
                        let decision = invoke().await;
                        if let Ok(answer) = &decision {
                            cache.put(identity, answer.clone(), generation);
                        }
                        (decision, Some(cache::CacheUse::Miss))
                    }
                }
            }
        };
        let mapping = match &self.mapping {
            Ok(m) => m.route(route.method, route.resource).unwrap_or_default(),
            Err(err) => {
                tracing::error!(error = %err, "no backend mapping");
                return Answer::Gateway(LocalResponse::json(500, &json!({"message": null})));
            }
        };
        let answer = enforce(
            decision,
            &req,
            route,
            &method_arn,
            mapping,
            path_parameters,
            cache_use,
        );
        match cache_use {
            // The authorizer ran and logged its decision.
            None | Some(cache::CacheUse::Miss) => Answer::Function(answer),
            // Decided from the cache: the gateway's own answer.
            Some(cache::CacheUse::Hit) => Answer::Gateway(answer),
        }
    }
}

/// API Gateway's enforcement of the authorizer's answer, then the
/// integration's request mapping and the echo backend.
fn enforce(
    decision: Result<authorizer::Response, authorizer::AuthError>,
    req: &LocalRequest,
    route: &scopes::Route,
    method_arn: &str,
    mapping: &[(String, mapping::Source)],
    path_parameters: Map<String, Value>,
    cache_use: Option<cache::CacheUse>,
) -> LocalResponse {
    let response = match decision {
        Err(authorizer::AuthError::Unauthorized) => {
            return LocalResponse::json(401, &json!({"message": "Unauthorized"}));
        }
        Err(_) => return LocalResponse::json(500, &json!({"message": null})),
        Ok(response) => response,
    };
    let policy = serde_json::to_value(&response.policy_document).unwrap_or(Value::Null);
    match evaluate_json(&policy, method_arn) {
        Ok(Decision::Allow) => {}
        Ok(Decision::ExplicitDeny) => {
            return LocalResponse::json(
                403,
                &json!({"Message": "User is not authorized to access this resource with an explicit deny"}),
            );
        }
        Ok(Decision::ImplicitDeny) | Err(_) => {
            return LocalResponse::json(
                403,
                &json!({"Message": "User is not authorized to access this resource"}),
            );
        }
    }
    // The integration's request parameters (from template.yaml), then the echo backend.
    let forwarded = integration_headers(&req.headers, mapping, &response.context);
    let mut answer = echo_backend(&forwarded, route, &req.path, path_parameters);
    if let Some(used) = cache_use
        && answer.status == 200
        && let Ok(mut body) = serde_json::from_slice::<Value>(&answer.body)
    {
        // Not the backend's doing: the local API notes how the call was decided.
        body["authorizerCache"] = json!(used.as_str());
        answer.body = body.to_string().into_bytes();
    }
    answer
}

/// The headers an `http_proxy` integration sends the backend: the client's,
/// with every mapped header set from its source in place of any the client
/// sent under that name (in any letter case).
pub fn integration_headers(
    client: &[(String, String)],
    mapping: &[(String, mapping::Source)],
    context: &Value,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = client
        .iter()
        .filter(|(k, _)| !mapping.iter().any(|(h, _)| h.eq_ignore_ascii_case(k)))
        .cloned()
        .collect();
    for (header, source) in mapping {
        let value = match source {
            mapping::Source::Authorizer(key) => match &context[key.as_str()] {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            },
            mapping::Source::StageVariable(_) => continue,
            mapping::Source::Literal(text) => text.clone(),
        };
        out.push((header.clone(), value));
    }
    out
}

/// The echo backend, holding to the contract docs/design.md states for the real
/// one: it answers only a request that carries the origin secret
/// (`X-Origin-Verify`), takes the tenant from exactly one `X-Account-Id`
/// (any letter case counts), refuses a second `X-Key-Id` or `X-Key-Scopes`,
/// and refuses any key header that is not the gateway's placeholder. It answers with the route and what it received.
pub fn echo_backend(
    headers: &[(String, String)],
    route: &scopes::Route,
    path: &str,
    path_parameters: Map<String, Value>,
) -> LocalResponse {
    let values = |name: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let refuse = |status: u16, why: &str| {
        tracing::warn!(why, "echo backend refused a request");
        LocalResponse::json(status, &json!({"backend": "echo", "refused": why}))
    };
    if values("X-Origin-Verify") != [LOCAL_ORIGIN_SECRET] {
        return refuse(403, "the request did not come through the gateway");
    }
    let account = values("X-Account-Id");
    if account.len() != 1 {
        return refuse(400, "not exactly one X-Account-Id");
    }
    // The key's id and scopes: the gateway's one value each, never a second
    // one a client smuggled in beside it.
    for name in ["X-Key-Id", "X-Key-Scopes"] {
        if values(name).len() > 1 {
            return refuse(400, "a duplicated X-Key-* header");
        }
    }
    for key_header in ["x-api-key", "authorization"] {
        if values(key_header)
            .iter()
            .any(|v| *v != KEY_HEADER_PLACEHOLDER)
        {
            return refuse(400, "a key header reached the backend");
        }
    }
    let last = |name: &str| values(name).last().map(|v| json!(v)).unwrap_or(Value::Null);
    LocalResponse::json(
        200,
        &json!({
            "backend": "echo",
            "route": {"method": route.method, "resource": route.resource, "scope": route.scope.as_str()},
            "path": path,
            "pathParameters": path_parameters,
            "account": account[0],
            "headers": {
                "X-Account-Id": last("X-Account-Id"),
                "X-Key-Id": last("X-Key-Id"),
                "X-Key-Scopes": last("X-Key-Scopes"),
                "x-api-key": last("x-api-key"),
                "Authorization": last("Authorization"),
            },
        }),
    )
}

/// Who answered: a function, which logged its own line, or the gateway.
enum Answer {
    Function(LocalResponse),
    Gateway(LocalResponse),
}

/// The dashboard handler serving `operation` (an `operationId` of the
/// function table) under a user login; `None` for any other operation.
pub async fn dashboard_handler<S: KeyStore>(
    operation: &str,
    store: &S,
    config: &ApiConfig,
    request: lambda_http::Request,
) -> Option<lambda_http::Response<lambda_http::Body>> {
    Some(match operation {
        "createKey" => create_key::handle(store, config, request).await,
        "listKeys" => list_keys::handle(store, config, request).await,
        "getKey" => get_key::handle(store, config, request).await,
        "updateKey" => update_key::handle(store, config, request).await,
        "deleteKey" => delete_key::handle(store, config, request).await,
        "rollKey" => roll_key::handle(store, config, request).await,
        "listKeyEvents" => list_key_events::handle(store, config, request).await,
        "listScopes" => list_scopes::handle(config, request).await,
        _ => return None,
    })
}

/// API Gateway's answer for a route it does not have.
fn missing_authentication_token() -> LocalResponse {
    LocalResponse::json(403, &json!({"message": "Missing Authentication Token"}))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The single- and multi-value maps API Gateway's REST events carry for
/// headers and query parameters: the last value of each name, and all of them.
fn single_and_multi<'a>(pairs: impl IntoIterator<Item = (String, &'a str)>) -> (Value, Value) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (k, v) in pairs {
        single.insert(k.clone(), json!(v));
        if let Some(Value::Array(list)) = multi.get_mut(&k) {
            list.push(json!(v));
        } else {
            multi.insert(k, json!([v]));
        }
    }
    (Value::Object(single), Value::Object(multi))
}

/// `headers` and `multiValueHeaders`.
fn header_maps(headers: &[(String, String)]) -> (Value, Value) {
    single_and_multi(headers.iter().map(|(k, v)| (k.clone(), v.as_str())))
}

/// `queryStringParameters` and `multiValueQueryStringParameters`
/// (percent-decoded; `null` when there is no query).
fn query_maps(query: Option<&str>) -> (Value, Value) {
    let Some(q) = query.filter(|q| !q.is_empty()) else {
        return (Value::Null, Value::Null);
    };
    let decoded: Vec<(String, String)> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (http::percent_decode(k), http::percent_decode(v))
        })
        .collect();
    single_and_multi(decoded.iter().map(|(k, v)| (k.clone(), v.as_str())))
}

fn request_context(req: &LocalRequest, resource: &str, request_id: &str) -> Value {
    json!({
        "accountId": AWS_ACCOUNT,
        "apiId": API_ID,
        "resourceId": "local",
        "resourcePath": resource,
        "httpMethod": req.method,
        "path": format!("/{STAGE}{}", req.path),
        "stage": STAGE,
        "requestId": request_id,
        "requestTimeEpoch": chrono::Utc::now().timestamp_millis(),
        "protocol": "HTTP/1.1",
        "identity": {
            "sourceIp": req.source_ip,
            "userAgent": header(&req.headers, "user-agent"),
        },
    })
}

/// The REST proxy event API Gateway sends the dashboard's functions.
fn proxy_event(
    req: &LocalRequest,
    resource: &str,
    path_parameters: Value,
    claims: Map<String, Value>,
    request_id: &str,
) -> Value {
    let (headers, multi_headers) = header_maps(&req.headers);
    let (query, multi_query) = query_maps(req.query.as_deref());
    let mut context = request_context(req, resource, request_id);
    context["authorizer"] = json!({"claims": claims});
    let (body, base64) = match std::str::from_utf8(&req.body) {
        _ if req.body.is_empty() => (Value::Null, false),
        Ok(text) => (json!(text), false),
        Err(_) => {
            use base64::Engine;
            (
                json!(base64::engine::general_purpose::STANDARD.encode(&req.body)),
                true,
            )
        }
    };
    json!({
        "resource": resource,
        "path": req.path,
        "httpMethod": req.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": path_parameters,
        "stageVariables": null,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": base64,
    })
}

/// The REQUEST-authorizer event API Gateway sends the authorizer.
fn authorizer_event(
    req: &LocalRequest,
    resource: &str,
    method_arn: &str,
    path_parameters: Value,
    request_id: &str,
) -> Value {
    let (headers, multi_headers) = header_maps(&req.headers);
    let (query, multi_query) = query_maps(req.query.as_deref());
    json!({
        "type": "REQUEST",
        "methodArn": method_arn,
        "resource": resource,
        "path": req.path,
        "httpMethod": req.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": if query.is_null() { json!({}) } else { query },
        "multiValueQueryStringParameters": if multi_query.is_null() { json!({}) } else { multi_query },
        "pathParameters": path_parameters,
        "stageVariables": {},
        "requestContext": request_context(req, resource, request_id),
    })
}
