//! This project's functions and the dashboard API's routes: one table.
//!
//! `cargo xtask generate` writes each function's API event in `template.yaml`
//! from it (CI fails when the template is stale); the local API routes by
//! it; the sam-local harness and the sample-event generator read those
//! generated events; the tests take their operation lists from it and check
//! `openapi.yaml` against it both ways; the logging set-up takes the
//! functions' tracing targets from it. Adding a dashboard route or a
//! function is one row here (and its handler).

/// Who may call a dashboard route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// A dashboard user: the API's Cognito authorizer (the template's default).
    User,
    /// No login (`Auth: { Authorizer: NONE }`): the function authenticates
    /// the call itself (GitHub's signature over the body).
    None,
}

/// A route of the dashboard API and the operation it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// API Gateway's resource template, `{param}` placeholders included.
    pub path: &'static str,
    /// The `operationId` in `openapi.yaml`.
    pub operation: &'static str,
    /// The event's name under the function's `Events` in `template.yaml`.
    pub event: &'static str,
    pub login: Login,
}

/// One Lambda function of this project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    /// The crate (and folder under `functions/`).
    pub package: &'static str,
    /// The resource in `template.yaml`.
    pub logical_id: &'static str,
    /// Its dashboard route, when it serves one.
    pub route: Option<Route>,
}

const fn function(package: &'static str, logical_id: &'static str) -> Function {
    Function {
        package,
        logical_id,
        route: None,
    }
}

const fn dashboard(
    package: &'static str,
    logical_id: &'static str,
    method: &'static str,
    path: &'static str,
    operation: &'static str,
    event: &'static str,
) -> Function {
    Function {
        package,
        logical_id,
        route: Some(Route {
            method,
            path,
            operation,
            event,
            login: Login::User,
        }),
    }
}

/// Every function, the dashboard's in the order `openapi.yaml` gives them.
pub const FUNCTIONS: &[Function] = &[
    function("authorizer", "AuthorizerFunction"),
    dashboard(
        "create-key",
        "CreateKeyFunction",
        "POST",
        "/apikeys",
        "createKey",
        "Create",
    ),
    dashboard(
        "list-keys",
        "ListKeysFunction",
        "GET",
        "/apikeys",
        "listKeys",
        "List",
    ),
    dashboard(
        "get-key",
        "GetKeyFunction",
        "GET",
        "/apikeys/{id}",
        "getKey",
        "Get",
    ),
    dashboard(
        "update-key",
        "UpdateKeyFunction",
        "PATCH",
        "/apikeys/{id}",
        "updateKey",
        "Update",
    ),
    dashboard(
        "delete-key",
        "DeleteKeyFunction",
        "DELETE",
        "/apikeys/{id}",
        "deleteKey",
        "Delete",
    ),
    dashboard(
        "roll-key",
        "RollKeyFunction",
        "POST",
        "/apikeys/{id}/roll",
        "rollKey",
        "Roll",
    ),
    dashboard(
        "list-key-events",
        "ListKeyEventsFunction",
        "GET",
        "/apikeys/{id}/events",
        "listKeyEvents",
        "Events",
    ),
    dashboard(
        "list-scopes",
        "ListScopesFunction",
        "GET",
        "/scopes",
        "listScopes",
        "Scopes",
    ),
    Function {
        package: "secret-scanning",
        logical_id: "SecretScanningFunction",
        route: Some(Route {
            method: "POST",
            path: "/secret-scanning/github",
            operation: "reportLeakedTokens",
            event: "Report",
            login: Login::None,
        }),
    },
    function("cache-flush", "CacheFlushFunction"),
];

impl Function {
    /// Its tracing target: the crate's name as Rust spells it.
    pub fn target(&self) -> String {
        self.package.replace('-', "_")
    }
}

/// The dashboard API's routes with their functions, in table order.
pub fn dashboard_routes() -> impl Iterator<Item = (&'static Function, &'static Route)> {
    FUNCTIONS
        .iter()
        .filter_map(|f| f.route.as_ref().map(|r| (f, r)))
}

/// The function serving `operation` (an `operationId`).
pub fn by_operation(operation: &str) -> Option<&'static Function> {
    dashboard_routes()
        .find(|(_, r)| r.operation == operation)
        .map(|(f, _)| f)
}

/// A request path matched against a resource template.
#[derive(Debug, PartialEq, Eq)]
pub struct PathMatch<'a> {
    pub resource: &'static str,
    /// The `{param}` values, in the template's order.
    pub params: Vec<(&'static str, &'a str)>,
}

/// Matches `path` against `resource` as API Gateway does: segment by
/// segment, a `{param}` taking one non-empty segment; one trailing `/` is
/// ignored.
pub fn match_path<'a>(resource: &'static str, path: &'a str) -> Option<PathMatch<'a>> {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let mut want = resource.split('/');
    let mut got = path.split('/');
    let mut params = Vec::new();
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(PathMatch { resource, params }),
            (Some(w), Some(g)) => {
                if let Some(name) = w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                    if g.is_empty() {
                        return None;
                    }
                    params.push((name, g));
                } else if w != g {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// The dashboard resource `path` names, with its routes (every method
/// declared on it), or `None` when no dashboard route has that resource.
pub fn dashboard_resource(path: &str) -> Option<(PathMatch<'_>, Vec<&'static Route>)> {
    let mut found: Option<(PathMatch<'_>, Vec<&'static Route>)> = None;
    for (_, route) in dashboard_routes() {
        if let Some(m) = match_path(route.path, path) {
            match &mut found {
                Some((seen, routes)) if seen.resource == m.resource => routes.push(route),
                Some(_) => {}
                None => found = Some((m, vec![route])),
            }
        }
    }
    found
}

/// Whether `path` lies under one of the dashboard API's top-level resources
/// (`/apikeys…`, `/secret-scanning…`): such a path belongs to the dashboard
/// API even when no route matches it.
pub fn is_dashboard_path(path: &str) -> bool {
    fn top(p: &str) -> &str {
        p.trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default()
    }
    let wanted = top(path);
    !wanted.is_empty() && dashboard_routes().any(|(_, r)| top(r.path) == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_segment_by_segment() {
        let m = match_path("/apikeys/{id}/roll", "/apikeys/abc/roll").unwrap();
        assert_eq!(m.params, vec![("id", "abc")]);
        assert!(match_path("/apikeys/{id}/roll", "/apikeys/abc/roll/").is_some());
        assert!(match_path("/apikeys/{id}/roll", "/apikeys//roll").is_none());
        assert!(match_path("/apikeys/{id}", "/apikeys/abc/roll").is_none());
        assert!(match_path("/apikeys", "/apikeys/").is_some());
        assert!(match_path("/apikeys", "/apikeysx").is_none());
    }

    #[test]
    fn a_resource_has_every_method_declared_on_it() {
        let (m, routes) = dashboard_resource("/apikeys/k1").unwrap();
        assert_eq!(m.resource, "/apikeys/{id}");
        let methods: Vec<&str> = routes.iter().map(|r| r.method).collect();
        assert_eq!(methods, ["GET", "PATCH", "DELETE"]);
        assert!(dashboard_resource("/apikeys/k1/nope").is_none());
        assert!(is_dashboard_path("/apikeys/k1/nope"));
        assert!(is_dashboard_path("/secret-scanning/other"));
        assert!(!is_dashboard_path("/links/1"));
        assert!(!is_dashboard_path("/"));
    }

    #[test]
    fn packages_logical_ids_operations_and_routes_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for f in FUNCTIONS {
            assert!(seen.insert(f.package), "{}", f.package);
            assert!(seen.insert(f.logical_id), "{}", f.logical_id);
            if let Some(r) = f.route {
                assert!(seen.insert(r.operation), "{}", r.operation);
                assert!(
                    dashboard_routes()
                        .filter(|(_, o)| (o.method, o.path) == (r.method, r.path))
                        .count()
                        == 1
                );
            }
        }
        assert_eq!(by_operation("rollKey").map(|f| f.package), Some("roll-key"));
        assert_eq!(by_operation("nope"), None);
    }
}
