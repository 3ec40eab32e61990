//! The cache-flush Lambda: wiring only (state built once per cold start).

fn main() -> Result<(), lambda_support::Error> {
    lambda_support::serve(cache_flush::init, |(store, flusher), event| {
        cache_flush::handle(store, flusher, event)
    })
}
