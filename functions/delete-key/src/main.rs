//! The delete-key Lambda: wiring only (see [`keys_api::lambda::serve`]).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    keys_api::lambda::serve(delete_key::handle).await
}
