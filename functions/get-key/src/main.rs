//! The get-key Lambda: wiring only (see [`keys_api::lambda::serve`]).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    keys_api::lambda::serve(get_key::handle).await
}
