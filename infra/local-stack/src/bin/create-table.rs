//! Creates the keys table on any DynamoDB endpoint (DynamoDB Local, or AWS).
//!
//! ```text
//! cargo run -p local-stack --bin create-table -- [TABLE_NAME]
//! ```
//!
//! The table name is the argument, else `TABLE_NAME`, else `prolinksqr-keys`.
//! The endpoint, region and credentials come from the environment as for the
//! functions (`AWS_ENDPOINT_URL_DYNAMODB` for DynamoDB Local).

use std::process::ExitCode;

use apikeys::dynamo::ClientSettings;
use apikeys::table::{Created, create_table};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let name = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("TABLE_NAME").ok())
        .unwrap_or_else(|| "prolinksqr-keys".to_owned());
    // Table administration is not on a request path: allow it more time.
    let client = ClientSettings::LOCAL.client().await;
    match create_table(&client, &name).await {
        Ok(Created::Created) => {
            println!("created table {name}");
            ExitCode::SUCCESS
        }
        Ok(Created::AlreadyExisted) => {
            println!("table {name} already exists");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("create-table: {}", apikeys::error_chain(&err));
            ExitCode::FAILURE
        }
    }
}
