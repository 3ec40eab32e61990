//! The list-key-events Lambda: wiring only (state built once per cold start).

fn main() -> Result<(), lambda_support::Error> {
    lambda_support::serve_http(keys_api::dashboard, |(store, config), req| {
        list_key_events::handle(store, config, req)
    })
}
