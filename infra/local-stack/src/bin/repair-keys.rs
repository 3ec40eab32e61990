//! Checks the keys table for breaks of the invariant between a key's items
//! (the design document's "The invariant between a key's items") and, with
//! `--apply`, repairs them through the store's guarded writes.
//!
//! ```text
//! cargo run -p local-stack --bin repair-keys -- [TABLE_NAME] [--apply]
//! ```
//!
//! Dry run by default: it lists what it finds and changes nothing. The table
//! is the argument, else `TABLE_NAME`, else `prolinksqr-keys`; endpoint,
//! region and credentials come from the environment (standard AWS chain,
//! `AWS_ENDPOINT_URL_DYNAMODB` for DynamoDB Local). Exit status: 0 when the
//! table is (or, with `--apply`, was made) clean, 1 when violations remain,
//! 2 when the store failed.

use std::process::ExitCode;

use apikeys::dynamo::{ClientSettings, DynamoStore};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("usage: repair-keys [TABLE_NAME] [--apply]\n(dry run without --apply)");
        return ExitCode::SUCCESS;
    }
    let apply = args.iter().any(|a| a == "--apply");
    let table = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .or_else(|| std::env::var("TABLE_NAME").ok())
        .unwrap_or_else(|| "prolinksqr-keys".to_owned());
    let store = DynamoStore::new(ClientSettings::LOCAL.client().await, &table);
    let report = match local_stack::repair::run(&store, apply).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("repair-keys: {}", apikeys::error_chain(&e));
            return ExitCode::from(2);
        }
    };
    for v in &report.found {
        println!("{v}");
    }
    println!(
        "repair-keys: {} violation(s) in table {table}",
        report.found.len()
    );
    if !apply {
        if !report.found.is_empty() {
            println!("dry run: nothing changed; run again with --apply to repair");
            return ExitCode::FAILURE;
        }
        return ExitCode::SUCCESS;
    }
    println!(
        "repaired: {} key(s) rewritten from their records, {} orphan lookup item(s) deleted",
        report.keys_rewritten, report.orphans_removed
    );
    for v in &report.remaining {
        println!("still broken: {v}");
    }
    if report.remaining.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
