//! The authorizer Lambda: wiring only. The decisions live in the library;
//! the store (and, when configured, the origin secret) is read once per cold
//! start and lent to every invocation.

fn main() -> Result<(), lambda_support::Error> {
    lambda_support::serve(authorizer::init, |(store, settings), event| {
        authorizer::handle(store, settings, event)
    })
}
