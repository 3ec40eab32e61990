//! Result caching on: API Gateway reuses one answer for every route the same
//! `x-api-key` calls within the TTL, so the policy must be right for all 31.

use apikeys::MemoryStore;
use authorizer::{AuthError, Settings};
use scopes::policy::{Decision, evaluate_json};
use scopes::{ROUTES, Scope, ScopeSet};
use serde_json::Value;

use crate::*;

fn cached() -> Settings {
    Settings::default().with_cache_ttl(300).unwrap()
}

async fn decide_cached(store: &MemoryStore, req: &authorizer::Request) -> Result<Value, AuthError> {
    let resp = authorizer::authorize(
        store,
        &cached(),
        req,
        chrono::Utc::now(),
        "test-request",
        apikeys::Deadline::after(std::time::Duration::from_secs(2)),
    )
    .await?;
    Ok(serde_json::to_value(&resp).unwrap())
}

/// Concrete calls of a route, with parameter values that look like other
/// rows' literal segments.
fn calls(r: &scopes::Route) -> Vec<String> {
    ["abc123", "items", "qr", "links"]
        .iter()
        .map(|v| {
            format!(
                "{API_ARN_PREFIX}/{}{}",
                r.method,
                concrete_path(r.resource, v)
            )
        })
        .collect()
}

/// Every scope × the entry cached by a call of every route × every route's
/// calls: allowed exactly when the scope grants the route.
#[tokio::test]
async fn a_cached_entry_allows_every_route_exactly_when_the_scope_grants_it() {
    let store = MemoryStore::new();
    for &held in Scope::EVERY {
        let (key, record) = stored_key(&store, ScopeSet::from(held), None).await;
        let mut first: Option<Value> = None;
        for cached_by in &ROUTES {
            let ev = event_for(cached_by, &[("x-api-key", key.expose_secret())]);
            let wire = decide_cached(&store, &ev).await.unwrap();
            // The entry does not depend on the route that created it.
            match &first {
                None => first = Some(wire.clone()),
                Some(f) => assert_eq!(&wire, f, "{held}: policy differs for {cached_by:?}"),
            }
            for r in &ROUTES {
                let granted = held == Scope::All || held == r.scope;
                for arn in calls(r) {
                    let d = evaluate_json(&wire["policyDocument"], &arn).unwrap();
                    assert_eq!(d == Decision::Allow, granted, "{held}: {arn}");
                }
            }
        }
        let wire = first.unwrap();
        assert_eq!(wire["principalId"], record.id.as_str());
        assert_eq!(wire["context"]["scopes"], held.as_str());
    }
}

#[tokio::test]
async fn the_policy_names_only_this_api_and_stage() {
    let store = MemoryStore::new();
    let (key, _) = stored_key(&store, ScopeSet::from(Scope::All), None).await;
    let ev = event_for(&ROUTES[0], &[("x-api-key", key.expose_secret())]);
    let wire = decide_cached(&store, &ev).await.unwrap();
    let policy = &wire["policyDocument"];
    for r in &ROUTES {
        let path = concrete_path(r.resource, "x");
        for other in [
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod",
            "arn:aws:execute-api:us-east-1:123456789012:otherapi1/test",
            "arn:aws:execute-api:eu-west-1:123456789012:abcdef123/test",
            "arn:aws:execute-api:us-east-1:210987654321:abcdef123/test",
        ] {
            let arn = format!("{other}/{}{path}", r.method);
            assert_ne!(
                evaluate_json(policy, &arn).unwrap(),
                Decision::Allow,
                "{arn}"
            );
        }
    }
    let resources = policy["Statement"][0]["Resource"].as_array().unwrap();
    assert_eq!(resources.len(), 31, "one resource per row");
    // API Gateway's documented 8 KB limit on an authorizer's answer (WebSocket
    // APIs; REST accepts more): the largest policy, `all`, stays well inside.
    let size = wire.to_string().len();
    assert!(size < 8 * 1024, "{size} bytes");
}

#[tokio::test]
async fn a_key_whose_scopes_grant_nothing_gets_a_deny_on_the_whole_stage() {
    let store = MemoryStore::new();
    let (key, _) = stored_key(&store, ScopeSet::EMPTY, None).await;
    let ev = event_for(&ROUTES[0], &[("x-api-key", key.expose_secret())]);
    let wire = decide_cached(&store, &ev).await.unwrap();
    for r in &ROUTES {
        for arn in calls(r) {
            assert_eq!(
                evaluate_json(&wire["policyDocument"], &arn).unwrap(),
                Decision::ExplicitDeny
            );
        }
    }
}

/// `x-api-key` is the identity source: the decision depends on nothing else,
/// so a Bearer key is not read (API Gateway would answer 401 before calling
/// the authorizer anyway), and a different Bearer key beside it changes nothing.
#[tokio::test]
async fn only_x_api_key_is_read() {
    let store = MemoryStore::new();
    let (key, record) = stored_key(&store, ScopeSet::from(Scope::LinksRead), None).await;
    let (other, _) = stored_key(&store, ScopeSet::from(Scope::All), None).await;
    let r = &ROUTES[0];
    let bearer = format!("Bearer {}", key.expose_secret());
    let only_bearer = event_for(r, &[("Authorization", &bearer)]);
    assert!(matches!(
        decide_cached(&store, &only_bearer).await,
        Err(AuthError::Unauthorized)
    ));
    let other_bearer = format!("Bearer {}", other.expose_secret());
    let both = event_for(
        r,
        &[
            ("x-api-key", key.expose_secret()),
            ("Authorization", &other_bearer),
        ],
    );
    let wire = decide_cached(&store, &both).await.unwrap();
    assert_eq!(wire["principalId"], record.id.as_str());
    // Caching off, the same request is refused as conflicting keys.
    assert!(matches!(
        decide(&store, &both).await,
        Err(AuthError::Unauthorized)
    ));
}

#[tokio::test]
async fn a_bad_method_arn_is_a_deny_on_everything() {
    let store = MemoryStore::new();
    let (key, _) = stored_key(&store, ScopeSet::from(Scope::All), None).await;
    let mut ev = event_for(&ROUTES[0], &[("x-api-key", key.expose_secret())]);
    ev.method_arn = Some("arn:aws:execute-api:us-east-1:1:api/*/GET/links".to_owned());
    let wire = decide_cached(&store, &ev).await.unwrap();
    assert_eq!(wire["policyDocument"]["Statement"][0]["Effect"], "Deny");
    assert_eq!(wire["policyDocument"]["Statement"][0]["Resource"][0], "*");
}

#[test]
fn the_ttl_is_api_gateways_range() {
    assert!(Settings::default().with_cache_ttl(3600).is_ok());
    assert!(Settings::default().with_cache_ttl(3601).is_err());
    assert_eq!(Settings::default().cache_ttl, 0, "off by default");
}
