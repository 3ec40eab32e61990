//! Test helpers (feature `test-util`): the one HTTP/1.1 client the tests
//! share (hyper), one request per connection.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::Value;
use tokio::net::TcpStream;

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        match serde_json::from_slice(&self.body) {
            Ok(v) => v,
            Err(e) => panic!("not JSON ({e}): {}", self.text()),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `req` to the server at `authority` (`host:port`) on a connection
/// of its own and reads the whole response.
pub async fn send(
    authority: &str,
    req: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<Bytes>, String> {
    let stream = TcpStream::connect(authority)
        .await
        .map_err(|e| format!("nothing is listening at {authority}: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake with {authority} failed: {e}"))?;
    tokio::spawn(conn);
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request to {authority} failed: {e}"))?;
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("reading the response from {authority} failed: {e}"))?
        .to_bytes();
    Ok(hyper::Response::from_parts(parts, body))
}

/// One request to `base` (`http://host:port`); panics, saying why, when the
/// server cannot be reached. Header values are raw bytes, so tests can send
/// values that are not text.
pub async fn request_bytes(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: Option<&str>,
) -> Reply {
    let Some(authority) = base.strip_prefix("http://") else {
        panic!("not an http base URL: {base}");
    };
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", authority)
        .header("user-agent", "e2e-test");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let req = match builder.body(Full::new(Bytes::from(body.unwrap_or("").to_owned()))) {
        Ok(r) => r,
        Err(e) => panic!("cannot build the request {method} {path}: {e}"),
    };
    let resp = match send(authority, req).await {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    Reply {
        status: resp.status().as_u16(),
        headers: resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: resp.into_body().to_vec(),
    }
}

/// One request to `base` with text headers.
pub async fn request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let headers: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    request_bytes(base, method, path, &headers, body).await
}
