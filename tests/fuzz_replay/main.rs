//! The fuzz targets' corpora (tests/fuzz/corpus/<target>/), replayed by the
//! stable `cargo test` through the same checks the fuzzer runs: every input
//! a fuzzing run kept (and every finding, once fixed) stays a test.
//! Fuzzing itself: tests/fuzz/README.md.

#[path = "../fuzz/checks.rs"]
mod checks;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = format!("{}/fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{}: the check fails", path.display());
        inputs += 1;
    }
    assert!(inputs > 0, "{dir} holds no inputs");
    println!("{target}: {inputs} inputs");
}

#[test]
fn the_key_parsers_corpus() {
    replay("key", checks::key);
}

#[test]
fn the_routers_corpus() {
    replay("route", checks::route);
}

#[test]
fn the_page_token_decoders_corpus() {
    replay("page_token", checks::page_token);
}
