//! What every fuzz target checks of one input, shared by the fuzz targets
//! (`cargo fuzz`, nightly, tests/fuzz/) and the stable replay of their
//! corpora (`cargo test -p tests --test integration fuzz_replay`). Each check panics
//! on a property broken; an input the code refuses is fine.

/// The key parser: never panics; a key it accepts is exactly the input,
/// and its prefix, mask and hash reveal nothing beyond the prefix.
pub fn key(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(key) = apikeys::ApiKey::parse(text) else {
        return;
    };
    assert_eq!(key.expose_secret(), text);
    let prefix = key.display_prefix();
    assert!(text.starts_with(&prefix));
    let masked = apikeys::material::masked(&prefix);
    assert_eq!(masked.len(), text.len());
    assert!(masked[prefix.len()..].bytes().all(|b| b == b'*'));
    assert_eq!(
        apikeys::ApiKey::parse(text).map(|k| k.hash()).ok(),
        Some(key.hash())
    );
}

/// The protected API's router (and the dashboard's): never panics; a match
/// is a route of the table with the request's method, whose template has
/// the path's segments, every parameter one non-empty segment of it.
pub fn route(data: &[u8]) {
    const METHODS: [&str; 6] = ["GET", "POST", "PATCH", "DELETE", "PUT", "OPTIONS"];
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let Ok(path) = std::str::from_utf8(rest) else {
        return;
    };
    let method = METHODS[usize::from(m) % METHODS.len()];
    if let Some(found) = scopes::route_for_path(method, path) {
        assert_eq!(found.route.method, method);
        assert!(scopes::route_for_template(method, found.route.resource).is_some());
        let trimmed = path
            .strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path);
        let segments: Vec<&str> = trimmed.split('/').collect();
        let template: Vec<&str> = found.route.resource.split('/').collect();
        assert_eq!(
            segments.len(),
            template.len(),
            "{path} as {}",
            found.route.resource
        );
        for (name, value) in found.params() {
            assert!(
                !value.is_empty() && !value.contains('/'),
                "{name}={value:?}"
            );
            assert!(segments.contains(value));
        }
    }
    if let Some((m, routes)) = function_table::dashboard_resource(path) {
        assert!(!routes.is_empty());
        assert!(function_table::is_dashboard_path(path));
        for (_, value) in &m.params {
            assert!(!value.is_empty() && !value.contains('/'));
        }
    }
}

/// The page-token decoder: never panics; a token it accepts is the one
/// the encoder writes for what it names (no second spelling of a page),
/// and it is bound to its account and key.
pub fn page_token(data: &[u8]) {
    use apikeys::store::token;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (Some(account), Some(other)) = (
        apikeys::AccountId::parse("acct-fuzz"),
        apikeys::AccountId::parse("acct-other"),
    ) else {
        panic!("the fuzz accounts are valid account ids");
    };
    if let Ok(last) = token::decode(&account, text) {
        assert_eq!(token::encode(&account, &last), text);
        assert!(token::decode(&other, text).is_err());
    }
    let Some(key) = apikeys::KeyId::parse("7QbZ2kVnR4xW9pLmT3sHcA") else {
        panic!("the fuzz key id is valid");
    };
    if let Ok(last) = token::decode_event(&account, &key, text) {
        assert_eq!(token::encode_event(&account, &key, &last), text);
    }
}
