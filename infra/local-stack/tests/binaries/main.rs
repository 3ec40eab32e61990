//! This crate's binaries, run as a user runs them (`CARGO_BIN_EXE_*` exists
//! only for a package's own integration tests, hence a binary of its own):
//! the local API starts, answers and stops; the table tools refuse what
//! they must and never reach past this machine.

mod local_api;
mod tools;

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// The rest of a started local API's standard output, line by line.
type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;

/// Waits up to `within` for the started local API (its stdout piped) to say
/// where it listens; returns its remaining output and its base URL.
async fn listening(child: &mut tokio::process::Child, within: Duration) -> (Lines, String) {
    let Some(stdout) = child.stdout.take() else {
        panic!("the local API's stdout is not piped");
    };
    let mut lines = BufReader::new(stdout).lines();
    let base = tokio::time::timeout(within, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("ProLinksQR local API listening on ") {
                return url.to_owned();
            }
        }
        panic!("the local API never said where it listens");
    })
    .await;
    match base {
        Ok(base) => (lines, base),
        Err(_) => panic!("the local API did not say where it listens within {within:?}"),
    }
}
