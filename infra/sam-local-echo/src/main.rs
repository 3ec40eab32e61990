//! The echo backend Lambda of the `sam local` harness: wiring only.

use std::convert::Infallible;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Infallible>(sam_local_echo::answer(&event.payload))
    }))
    .await
}
