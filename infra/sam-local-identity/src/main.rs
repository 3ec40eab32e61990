//! The local dashboard identity Lambda of the `sam local` harness: wiring only.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|event: LambdaEvent<Value>| async move {
        sam_local_identity::decide(&event.payload)
    }))
    .await
}
