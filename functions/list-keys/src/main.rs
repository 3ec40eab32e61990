//! The list-keys Lambda: wiring only (see [`keys_api::lambda::serve`]).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    keys_api::lambda::serve(list_keys::handle).await
}
