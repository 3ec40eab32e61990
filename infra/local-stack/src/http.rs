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

/// Serves the keys page (`keys-page`: the demo page and the component) on
/// `listener` until `shutdown` completes, its component pointed at the API
/// on `api_base`, every answer under the page's Content-Security-Policy.
pub async fn serve_page<F>(listener: TcpListener, api_base: String, shutdown: F)
where
    F: Future<Output = ()>,
{
    let api_base: Arc<str> = api_base.into();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let api_base = api_base.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let answer = page_answer(req.method(), req.uri().path(), &api_base);
                async move { Ok::<_, Infallible>(answer) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The keys page's answer to `method path`: a file, 404 or 405.
pub fn page_answer(method: &hyper::Method, path: &str, api_base: &str) -> Response<Full<Bytes>> {
    let (status, content_type, body) =
        if method != hyper::Method::GET && method != hyper::Method::HEAD {
            (
                405,
                "text/plain; charset=utf-8",
                "method not allowed".to_owned(),
            )
        } else if path == "/" || path == "/index.html" {
            (200, "text/html; charset=utf-8", keys_page::index(api_base))
        } else if let Some(asset) = keys_page::asset(path) {
            (200, asset.content_type, asset.body.to_owned())
        } else {
            (404, "text/plain; charset=utf-8", "not found".to_owned())
        };
    let body = if method == hyper::Method::HEAD {
        String::new()
    } else {
        body
    };
    to_hyper(LocalResponse {
        status,
        headers: vec![
            ("content-type".into(), content_type.into()),
            (
                "content-security-policy".into(),
                keys_page::content_security_policy(api_base),
            ),
            ("x-content-type-options".into(), "nosniff".into()),
            ("referrer-policy".into(), "no-referrer".into()),
            ("cache-control".into(), "no-store".into()),
        ],
        body: body.into_bytes(),
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
    use super::{page_answer, percent_decode};

    #[test]
    fn the_keys_page_serves_its_files_under_its_policy() {
        let api = "http://127.0.0.1:3000";
        for (method, path, status) in [
            (hyper::Method::GET, "/", 200),
            (hyper::Method::GET, "/prolinksqr-api-keys.js", 200),
            (hyper::Method::HEAD, "/demo.css", 200),
            (hyper::Method::GET, "/nope", 404),
            (hyper::Method::POST, "/", 405),
        ] {
            let r = page_answer(&method, path, api);
            assert_eq!(r.status().as_u16(), status, "{method} {path}");
            let csp = r.headers()["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("connect-src http://127.0.0.1:3000;"), "{csp}");
        }
        let js = page_answer(&hyper::Method::GET, "/prolinksqr-api-keys.js", api);
        assert_eq!(
            js.headers()["content-type"],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(js.headers()["x-content-type-options"], "nosniff");
    }

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
