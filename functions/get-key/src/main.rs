//! The get-key Lambda: wiring only (state built once per cold start).

fn main() -> Result<(), lambda_support::Error> {
    lambda_support::serve_http(keys_api::dashboard, |(store, config), req| {
        get_key::handle(store, config, req)
    })
}
