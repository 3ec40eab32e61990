//! The secret-scanning Lambda: wiring only (state built once per cold start).

fn main() -> Result<(), lambda_support::Error> {
    lambda_support::serve_http(secret_scanning::init, |(store, keys, cache), req| {
        secret_scanning::handle(store, keys, cache, req)
    })
}
