//! The update-key Lambda: wiring only (state built once per cold start).

fn main() -> Result<(), lambda_support::Error> {
    lambda_support::serve_http(update_key::init, |(store, config), req| {
        update_key::handle(store, config, req)
    })
}
