//! Every cross-crate test, in one binary (one link of the whole graph):
//! the store on both stores, the dashboard API against its contract, the
//! template against the code, end-to-end HTTP flows on the local API, and
//! the replay of the fuzz corpora.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "dashboard/main.rs"]
mod dashboard;
#[path = "e2e/main.rs"]
mod e2e;
#[path = "fuzz_replay/main.rs"]
mod fuzz_replay;
#[path = "store/main.rs"]
mod store;
#[path = "template/main.rs"]
mod template;
