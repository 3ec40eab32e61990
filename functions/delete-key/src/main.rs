//! The delete-key Lambda: wiring only (state built once per cold start).

fn main() -> Result<(), lambda_support::Error> {
    lambda_support::serve_http(delete_key::init, |(store, config), req| {
        delete_key::handle(store, config, req)
    })
}
