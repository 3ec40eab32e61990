//! This crate's binaries, run as a user runs them (`CARGO_BIN_EXE_*` exists
//! only for a package's own integration tests, hence a binary of its own):
//! the local API starts, answers and stops; the table tools refuse what
//! they must and never reach past this machine.

mod local_api;
mod tools;
