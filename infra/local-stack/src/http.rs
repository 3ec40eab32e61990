//! HTTP/1.1 on loopback for the local API (hyper), and its small helpers.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use apikeys::KeyStore;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::{LocalApi, LocalRequest, LocalResponse};

/// The largest body read (API Gateway's own limit is 10 MB).
pub const MAX_REQUEST_BODY: usize = 10 * 1024 * 1024;

/// Serves `api` on `listener` until `shutdown` completes.
pub async fn serve<S, F>(listener: TcpListener, api: Arc<LocalApi<S>>, shutdown: F)
where
    S: KeyStore + 'static,
    F: Future<Output = ()>,
{
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(err) => {
                tracing::warn!(error = %err, "accept failed");
                continue;
            }
        };
        let api = api.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let api = api.clone();
                async move { Ok::<_, Infallible>(answer(&api, req, peer.ip().to_string()).await) }
            });
            if let Err(err) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %err, "connection closed with an error");
            }
        });
    }
}

async fn answer<S: KeyStore>(
    api: &LocalApi<S>,
    req: Request<Incoming>,
    source_ip: String,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => {
            return to_hyper(LocalResponse {
                status: 413,
                headers: vec![("content-type".into(), "application/json".into())],
                body: br#"{"message":"Request Too Long"}"#.to_vec(),
            });
        }
    };
    let local = LocalRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        // Every header goes on, as API Gateway passes it: a value that is
        // not text reaches the authorizer (which refuses it) rather than
        // vanishing and leaving the other key header to decide.
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (k.as_str().to_owned(), value)
            })
            .collect(),
        body,
        source_ip,
    };
    to_hyper(api.handle(local).await)
}

fn to_hyper(resp: LocalResponse) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(resp.status);
    for (k, v) in &resp.headers {
        builder = builder.header(k, v);
    }
    builder
        .body(Full::new(Bytes::from(resp.body)))
        .unwrap_or_else(|_| {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
}

/// Decodes `%XX` escapes (API Gateway decodes query parameters); an invalid
/// escape is kept as it is.
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("%2F"), "/");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("caf%C3%A9"), "café");
        assert_eq!(percent_decode("%FF"), "\u{fffd}");
    }
}
