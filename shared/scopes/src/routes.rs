//! The protected API's route table and its two lookups.

use crate::{Scope, ScopeSet};

/// One row of the route table: the declared method and resource template
/// (API Gateway's `resource`, with `{param}` placeholders) and the scope it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub resource: &'static str,
    pub scope: Scope,
}

const fn route(method: &'static str, resource: &'static str, scope: Scope) -> Route {
    Route {
        method,
        resource,
        scope,
    }
}

/// The route table of the architecture document: exactly these 31 rows.
/// The SAM template declares the same routes; a test proves the two equal.
pub const ROUTES: [Route; 31] = {
    use Scope::*;
    [
        route("GET", "/links", LinksRead),
        route("GET", "/links/{id}", LinksRead),
        route("POST", "/links", LinksCreate),
        route("POST", "/links/{id}/duplicate", LinksCreate),
        route("PATCH", "/links/{id}", LinksUpdate),
        route("PATCH", "/links/{id}/qr", LinksUpdate),
        route("DELETE", "/links/{id}", LinksDelete),
        route("POST", "/links/{id}/archive", LinksDelete),
        route("POST", "/links/{id}/pause", LinksPause),
        route("POST", "/links/{id}/resume", LinksResume),
        route("GET", "/folders", FoldersRead),
        route("GET", "/folders/{id}", FoldersRead),
        route("POST", "/folders", FoldersCreate),
        route("PATCH", "/folders/{id}", FoldersUpdate),
        route("DELETE", "/folders/{id}", FoldersDelete),
        route("GET", "/templates", TemplatesRead),
        route("GET", "/templates/{id}", TemplatesRead),
        route("POST", "/templates", TemplatesCreate),
        route("PATCH", "/templates/{id}", TemplatesUpdate),
        route("DELETE", "/templates/{id}", TemplatesDelete),
        route("POST", "/bulk/links", BulkCreate),
        route("GET", "/cafe/menus", CafeRead),
        route("GET", "/cafe/menus/{id}", CafeRead),
        route("GET", "/cafe/menus/{id}/items", CafeRead),
        route("GET", "/cafe/menus/{id}/items/{itemId}", CafeRead),
        route("POST", "/cafe/menus", CafeCreate),
        route("POST", "/cafe/menus/{id}/items", CafeCreate),
        route("PATCH", "/cafe/menus/{id}", CafeUpdate),
        route("PATCH", "/cafe/menus/{id}/items/{itemId}", CafeUpdate),
        route("DELETE", "/cafe/menus/{id}", CafeDelete),
        route("DELETE", "/cafe/menus/{id}/items/{itemId}", CafeDelete),
    ]
};

impl Route {
    /// The tail of the method ARNs this route's calls carry, every `{param}`
    /// a `*`: `GET/links/*` for `GET /links/{id}`. IAM's `*` also spans `/`,
    /// so a pattern can cover deeper paths; [`granted_routes`]' users rely on
    /// the table keeping such overlaps within one scope (tested below).
    pub fn arn_pattern(&self) -> String {
        let mut out = String::with_capacity(self.method.len() + self.resource.len());
        out.push_str(self.method);
        for seg in self.resource.split('/').skip(1) {
            out.push('/');
            if seg.starts_with('{') {
                out.push('*');
            } else {
                out.push_str(seg);
            }
        }
        out
    }
}

/// The rows a key with `scopes` may call, in table order.
pub fn granted_routes(scopes: ScopeSet) -> impl Iterator<Item = &'static Route> {
    ROUTES.iter().filter(move |r| scopes.allows(r.scope))
}

/// The authorizer's lookup: the row for the `(httpMethod, resource)` pair
/// API Gateway matched, by exact, case-sensitive comparison. `None` for any
/// other pair, which the authorizer must deny whatever the key's scopes.
pub fn route_for_template(method: &str, resource: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.resource == resource && r.method == method)
}

/// A concrete path routed to its row, with the values of its `{param}`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathMatch<'p> {
    pub route: &'static Route,
    params: [(&'static str, &'p str); MAX_PARAMS],
    len: usize,
}

const MAX_PARAMS: usize = 2;

impl<'p> PathMatch<'p> {
    /// The `{param}` values in template order, e.g. `[("id", "abc")]`.
    pub fn params(&self) -> &[(&'static str, &'p str)] {
        &self.params[..self.len]
    }
}

/// The local API's router (API Gateway's part): routes a concrete request
/// path (without query string) to its row. Rules, each tested:
///
/// - methods and literal segments compare case-sensitively (`get`, `/Links` match nothing);
/// - `{param}` matches exactly one non-empty segment, so `//` never matches a parameter;
/// - one trailing slash is ignored (`/links/` is `/links`);
/// - no decoding: `%2F` is an ordinary character of a segment, not a separator;
/// - a path with a `.` or `..` segment matches nothing (no dot-segment normalisation);
/// - a path must start with `/`.
///
/// Allocation-free: segments are walked in place.
pub fn route_for_path<'p>(method: &str, path: &'p str) -> Option<PathMatch<'p>> {
    let trimmed = match path.strip_suffix('/') {
        Some(rest) if !rest.is_empty() => rest,
        _ => path,
    };
    let rest = trimmed.strip_prefix('/')?;
    if rest.split('/').any(|seg| seg == "." || seg == "..") {
        return None;
    }
    ROUTES
        .iter()
        .filter(|r| r.method == method)
        .find_map(|r| match_template(r, rest))
}

fn match_template<'p>(route: &'static Route, path_rest: &'p str) -> Option<PathMatch<'p>> {
    let mut m = PathMatch {
        route,
        params: [("", ""); MAX_PARAMS],
        len: 0,
    };
    let mut template = route.resource[1..].split('/');
    let mut path = path_rest.split('/');
    loop {
        match (template.next(), path.next()) {
            (None, None) => return Some(m),
            (Some(t), Some(p)) => {
                if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    if p.is_empty() || m.len == MAX_PARAMS {
                        return None;
                    }
                    m.params[m.len] = (name, p);
                    m.len += 1;
                } else if t != p {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn arn_patterns_wildcard_exactly_the_parameters() {
        let pattern = |m: &str, r: &str| {
            ROUTES
                .iter()
                .find(|x| x.method == m && x.resource == r)
                .map(Route::arn_pattern)
        };
        assert_eq!(pattern("GET", "/links").as_deref(), Some("GET/links"));
        assert_eq!(
            pattern("GET", "/links/{id}").as_deref(),
            Some("GET/links/*")
        );
        assert_eq!(
            pattern("PATCH", "/cafe/menus/{id}/items/{itemId}").as_deref(),
            Some("PATCH/cafe/menus/*/items/*")
        );
    }

    /// A pattern's `*` spans `/`, so `GET/links/*` also covers any deeper
    /// GET under `/links/`. That is only safe while every row such a pattern
    /// covers needs the same scope: checked for every pair of rows, with
    /// parameter values that look like other rows' literal segments.
    #[test]
    fn no_routes_pattern_covers_a_call_of_a_route_with_another_scope() {
        use crate::policy::{Decision, evaluate_json};
        for a in &ROUTES {
            let policy = serde_json::json!({"Statement": [{
                "Effect": "Allow", "Action": "execute-api:Invoke",
                "Resource": format!("arn:aws:execute-api:r:1:api/s/{}", a.arn_pattern()),
            }]});
            for b in ROUTES.iter().filter(|b| b.scope != a.scope) {
                for value in ["x", "items", "links", "duplicate", "a.b"] {
                    let arn = format!(
                        "arn:aws:execute-api:r:1:api/s/{}{}",
                        b.method,
                        concrete(b.resource, value)
                    );
                    assert_ne!(
                        evaluate_json(&policy, &arn).unwrap(),
                        Decision::Allow,
                        "{} {} covers {arn}",
                        a.method,
                        a.resource
                    );
                }
            }
        }
    }

    #[test]
    fn granted_routes_follow_the_scopes() {
        assert_eq!(granted_routes(ScopeSet::EMPTY).count(), 0);
        assert_eq!(granted_routes(ScopeSet::EMPTY.with(Scope::All)).count(), 31);
        let read: Vec<_> = granted_routes(ScopeSet::EMPTY.with(Scope::LinksRead))
            .map(|r| (r.method, r.resource))
            .collect();
        assert_eq!(read, [("GET", "/links"), ("GET", "/links/{id}")]);
    }

    /// A concrete path for a template: each `{param}` filled with `value`.
    fn concrete(template: &str, value: &str) -> String {
        template
            .split('/')
            .map(|seg| if seg.starts_with('{') { value } else { seg })
            .collect::<Vec<_>>()
            .join("/")
    }

    #[test]
    fn table_has_distinct_rows() {
        // (Its 31 rows are the array's type.)
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    (a.method, a.resource) != (b.method, b.resource),
                    "duplicate row {a:?}"
                );
            }
        }
    }

    #[test]
    fn every_scope_except_all_guards_at_least_one_row() {
        for &scope in &Scope::EVERY[1..] {
            assert!(
                ROUTES.iter().any(|r| r.scope == scope),
                "{scope} guards no route"
            );
        }
        assert!(ROUTES.iter().all(|r| r.scope != Scope::All));
    }

    #[test]
    fn every_row_is_reachable_by_template() {
        for r in &ROUTES {
            assert_eq!(route_for_template(r.method, r.resource), Some(r));
        }
    }

    #[test]
    fn every_row_is_reachable_by_concrete_path() {
        for r in &ROUTES {
            let path = concrete(r.resource, "abc123");
            let m = route_for_path(r.method, &path).unwrap_or_else(|| panic!("{path}"));
            assert_eq!(m.route, r);
            assert!(m.params().iter().all(|(_, v)| *v == "abc123"));
        }
    }

    #[test]
    fn path_lookup_names_the_parameters() {
        let m = route_for_path("GET", "/cafe/menus/m1/items/i2").unwrap();
        assert_eq!(m.route.resource, "/cafe/menus/{id}/items/{itemId}");
        assert_eq!(m.params(), &[("id", "m1"), ("itemId", "i2")]);
    }

    #[test]
    fn template_lookup_is_exact() {
        assert_eq!(route_for_template("GET", "/links/{linkId}"), None);
        assert_eq!(route_for_template("GET", "/links/abc"), None);
        assert_eq!(route_for_template("get", "/links"), None);
        assert_eq!(route_for_template("GET", "/links/"), None);
        assert_eq!(route_for_template("GET", "/v1/links"), None);
        assert_eq!(route_for_template("PUT", "/links/{id}"), None);
        assert_eq!(route_for_template("ANY", "/links"), None);
        assert_eq!(route_for_template("GET", "/{proxy+}"), None);
        assert_eq!(route_for_template("GET", ""), None);
    }

    /// The written-down outcomes for tricky concrete paths.
    #[test]
    fn tricky_paths_have_fixed_outcomes() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            // trailing slash: ignored, once
            ("GET", "/links/", Some("/links")),
            ("GET", "/links/abc/", Some("/links/{id}")),
            ("GET", "/links//", None),
            // empty segment never fills a parameter
            ("POST", "/links//duplicate", None),
            ("GET", "//links", None),
            // dot-segments are not normalised: such a path matches nothing
            ("GET", "/links/..", None),
            ("GET", "/links/.", None),
            ("GET", "/links/../folders", None),
            ("GET", "/folders/../links/abc", None),
            // %2F is no separator: it stays inside the segment
            ("GET", "/links/a%2Fb", Some("/links/{id}")),
            ("GET", "/links%2Fabc", None),
            ("POST", "/links/a%2Fduplicate", None),
            // case-sensitive paths and methods
            ("GET", "/Links", None),
            ("GET", "/LINKS/abc", None),
            ("get", "/links", None),
            ("Get", "/links", None),
            ("HEAD", "/links", None),
            ("OPTIONS", "/links", None),
            ("PUT", "/links/abc", None),
            // shape
            ("GET", "", None),
            ("GET", "/", None),
            ("GET", "links", None),
            ("GET", "/links/abc/def", None),
            (
                "GET",
                "/cafe/menus/m/items/",
                Some("/cafe/menus/{id}/items"),
            ),
            ("GET", "/cafe/menus//items/i", None),
            ("GET", "/links?x=1", None),
        ];
        for &(method, path, want) in cases {
            let got = route_for_path(method, path).map(|m| m.route.resource);
            assert_eq!(got, want, "{method} {path}");
        }
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("links".to_owned()),
            Just("folders".to_owned()),
            Just("templates".to_owned()),
            Just("cafe".to_owned()),
            Just("menus".to_owned()),
            Just("items".to_owned()),
            Just("bulk".to_owned()),
            Just("qr".to_owned()),
            Just("pause".to_owned()),
            Just("".to_owned()),
            Just("..".to_owned()),
            "[a-zA-Z0-9%._~-]{1,8}",
        ]
    }

    fn method() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("GET".to_owned()),
            Just("POST".to_owned()),
            Just("PATCH".to_owned()),
            Just("DELETE".to_owned()),
            Just("PUT".to_owned()),
            Just("HEAD".to_owned()),
            Just("OPTIONS".to_owned()),
            Just("get".to_owned()),
            "[A-Za-z]{1,7}",
        ]
    }

    /// An independent, obviously-correct matcher to check the fast one against.
    fn reference_match(method: &str, path: &str) -> Option<&'static Route> {
        let path = if path.len() > 1 {
            path.strip_suffix('/').unwrap_or(path)
        } else {
            path
        };
        if !path.starts_with('/') {
            return None;
        }
        let segs: Vec<&str> = path[1..].split('/').collect();
        if segs.iter().any(|s| *s == "." || *s == "..") {
            return None;
        }
        ROUTES.iter().find(|r| {
            let t: Vec<&str> = r.resource[1..].split('/').collect();
            r.method == method
                && t.len() == segs.len()
                && t.iter().zip(&segs).all(|(t, s)| {
                    if t.starts_with('{') {
                        !s.is_empty()
                    } else {
                        t == s
                    }
                })
        })
    }

    proptest! {
        #[test]
        fn random_paths_route_exactly_as_the_reference_matcher(
            method in method(),
            segs in proptest::collection::vec(segment(), 0..6),
            trailing in any::<bool>(),
        ) {
            let mut path = format!("/{}", segs.join("/"));
            if trailing { path.push('/'); }
            let got = route_for_path(&method, &path).map(|m| m.route);
            prop_assert_eq!(got, reference_match(&method, &path));
        }

        #[test]
        fn method_path_pairs_outside_the_table_route_nowhere(
            method in method(),
            segs in proptest::collection::vec(segment(), 0..6),
        ) {
            let path = format!("/{}", segs.join("/"));
            // A pair is in the table when some row's template, with its
            // parameters filled by this path's segments, gives this path
            // (one trailing slash aside).
            let mut segs = segs;
            if segs.len() >= 2 && segs.last().is_some_and(String::is_empty) {
                segs.pop();
            }
            let in_table = ROUTES.iter().any(|r| {
                let t: Vec<&str> = r.resource[1..].split('/').collect();
                r.method == method && t.len() == segs.len()
                    && t.iter().zip(&segs).all(|(t, s)| {
                        (t.starts_with('{') && !s.is_empty() && s != "." && s != "..") || t == s
                    })
            });
            prop_assert_eq!(route_for_path(&method, &path).is_some(), in_table);
            let declared = ROUTES.iter().any(|r| r.method == method && r.resource == path);
            prop_assert_eq!(route_for_template(&method, &path).is_some(), declared);
        }

        #[test]
        fn a_keys_scopes_allow_exactly_the_rows_carrying_them(
            picks in proptest::collection::vec(0usize..Scope::EVERY.len(), 0..6),
        ) {
            let set: ScopeSet = picks.iter().map(|&i| Scope::EVERY[i]).collect();
            for r in &ROUTES {
                let expected = set.contains(Scope::All) || picks.iter().any(|&i| Scope::EVERY[i] == r.scope);
                prop_assert_eq!(set.allows(r.scope), expected, "{:?} {:?}", set, r);
            }
        }
    }
}
