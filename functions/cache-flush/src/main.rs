//! The cache-flush Lambda: wiring only (state built once per cold start).

use lambda_support::logging::InvocationSpan;

fn main() -> Result<(), lambda_support::Error> {
    lambda_support::serve(
        InvocationSpan::Made,
        cache_flush::init,
        |(store, flusher), event| cache_flush::handle(store, flusher, event),
    )
}
