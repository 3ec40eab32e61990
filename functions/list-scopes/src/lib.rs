//! `GET /scopes` → 200: the scope catalogue as the dashboard's keys page
//! shows it (`all`, then each resource's group with its heading, each scope
//! with what it grants), from the `scopes` crate: the page keeps no list of
//! its own. Behind the dashboard login like every key route; no store.

use keys_api::{ApiConfig, ApiError, Reply, caller, view};
use lambda_http::http::header::CACHE_CONTROL;
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};

/// The Lambda handler: the work below, bounded by the invocation's deadline.
pub async fn handle(config: &ApiConfig, req: Request) -> Response<Body> {
    let outcome = keys_api::deadline(&req)
        .run(async { list(config, &req) })
        .await;
    keys_api::finish(config, &req, "list-scopes", outcome)
}

/// The catalogue, for a signed-in caller. It changes only with a deploy.
pub fn list(config: &ApiConfig, req: &Request) -> Result<Reply, ApiError> {
    caller(req, config)?;
    Ok(Reply::json(StatusCode::OK, view::catalogue()).header(
        CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    ))
}

/// The function's state from the environment: the API's configuration
/// (the dashboard origin, the account claim). It reads no store.
pub async fn init() -> Result<ApiConfig, lambda_support::Error> {
    Ok(ApiConfig::from_env()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keys_api::testing::*;
    use scopes::Scope;

    #[tokio::test]
    async fn the_catalogue_is_every_scope_once_in_its_group() {
        let resp = handle(&config(), request(&event(LIST_SCOPES))).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["access-control-allow-origin"], ORIGIN);
        assert_eq!(resp.headers()["cache-control"], "private, max-age=300");
        let body = json_body(&resp);
        assert_eq!(body["all"]["scope"], "all");
        assert_eq!(body["all"]["label"], Scope::All.label());
        let mut listed = vec![];
        for group in body["groups"].as_array().unwrap() {
            let name = group["name"].as_str().unwrap();
            assert!(!group["label"].as_str().unwrap().is_empty());
            for entry in group["scopes"].as_array().unwrap() {
                let scope: Scope = entry["scope"].as_str().unwrap().parse().unwrap();
                assert!(scope.as_str().starts_with(&format!("{name}.")));
                assert_eq!(entry["label"], scope.label());
                listed.push(scope);
            }
        }
        assert_eq!(
            listed,
            Scope::EVERY[1..],
            "every scope but all, once, in order"
        );
    }

    #[tokio::test]
    async fn no_claims_is_401() {
        let mut ev = event(LIST_SCOPES);
        remove_claims(&mut ev);
        let resp = handle(&config(), request(&ev)).await;
        assert_eq!(
            (resp.status().as_u16(), error_code(&resp)),
            (401, "unauthorized".into())
        );
    }
}
