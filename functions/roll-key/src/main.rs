//! The roll-key Lambda: wiring only (state built once per cold start).

fn main() -> Result<(), lambda_support::Error> {
    lambda_support::serve_http(roll_key::init, |(store, config), req| {
        roll_key::handle(store, config, req)
    })
}
