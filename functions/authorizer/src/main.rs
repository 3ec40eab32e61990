//! The authorizer Lambda: wiring only. The decisions live in the library;
//! the store (and, when configured, the origin secret) is read once per cold
//! start and lent to every invocation. Its lines carry their request id
//! themselves, so the runtime's per-invocation span is not made.

use lambda_support::logging::InvocationSpan;

fn main() -> Result<(), lambda_support::Error> {
    lambda_support::serve(
        InvocationSpan::Off,
        authorizer::init,
        |(store, settings), event| authorizer::handle(store, settings, event),
    )
}
