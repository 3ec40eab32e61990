//! Checks the keys table for breaks of the invariant between a key's items
//! (the design document's "The invariant between a key's items") and, with
//! `--apply`, repairs them through the store's guarded writes.
//!
//! ```text
//! cargo run -p local-stack --bin repair-keys -- [TABLE_NAME] [--apply]
//! ```
//!
//! Dry run by default: it lists what it finds and changes nothing. The table
//! is the argument, else `TABLE_NAME`, else `prolinksqr-keys`; the region
//! must come from `AWS_REGION` (or `AWS_DEFAULT_REGION`), never from
//! instance metadata; credentials from the standard chain, or dummy ones for
//! DynamoDB Local (`AWS_ENDPOINT_URL_DYNAMODB`). Exit status: 0 when the
//! table is (or, with `--apply`, was made) clean, 1 when violations remain,
//! 2 when the store failed or no region was given.

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
    // The region from the environment, never from instance metadata.
    let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|r| !r.is_empty()));
    if !region {
        eprintln!(
            "repair-keys: set AWS_REGION (and the table's credentials, or AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local)"
        );
        return ExitCode::from(2);
    }
    let client = match std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
        Ok(endpoint) if !endpoint.is_empty() => {
            ClientSettings::LOCAL.client_for_endpoint(&endpoint).await
        }
        _ => ClientSettings::LOCAL.client().await,
    };
    let store = DynamoStore::new(client, &table);
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
