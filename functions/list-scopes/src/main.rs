//! The list-scopes Lambda: wiring only (its configuration read once per cold start).

fn main() -> Result<(), lambda_support::Error> {
    lambda_support::serve_http(list_scopes::init, |config, req| {
        list_scopes::handle(config, req)
    })
}
