//! For tests only: a fake HTTP/1.1 server on a loopback port (hyper's), the
//! one every test double of a remote service is built on: DynamoDB with
//! scripted failures, API Gateway's control plane, GitHub's public keys, the
//! Lambda runtime API. It records every request, in order, and answers each
//! with what the test's function returns for it; a function that never
//! returns (`std::future::pending`) leaves that request waiting, as a long
//! poll does.
//!
//! Test helpers panic with a message on set-up failure (a port that cannot
//! be bound): that is the test failing, not a request path.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The path and query, as sent.
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// A header's value as text, if it is there and is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (lossily).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An answer: a status, headers and a body.
#[derive(Debug, Clone)]
pub struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Answer {
    /// `status` with an empty body.
    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// `status` with a JSON body (`content-type: application/json`).
    pub fn json(status: u16, body: impl Into<String>) -> Answer {
        Answer::status(status)
            .header("content-type", "application/json")
            .body(body.into())
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Answer {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Answer {
        self.body = body.into();
        self
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut resp = Response::new(Full::new(self.body));
        *resp.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        for (name, value) in self.headers {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                (Ok(n), Ok(v)) => {
                    resp.headers_mut().append(n, v);
                }
                _ => panic!("fake-http: a bad header in a test's answer: {name}: {value}"),
            }
        }
        resp
    }
}

/// Each request and, once answered, its status.
type Log = Arc<Mutex<Vec<(Seen, Option<u16>)>>>;

/// The server: its address and what it has seen. Dropping it leaves the
/// server running until the test's runtime ends.
#[derive(Clone)]
pub struct FakeHttp {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    log: Log,
}

impl FakeHttp {
    /// Starts a server that answers every request with `answer(request)`.
    /// The request is recorded before `answer` runs, so [`FakeHttp::seen`]
    /// counts a request still waiting for its answer.
    pub async fn start<F, Fut>(answer: F) -> FakeHttp
    where
        F: Fn(Seen) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Answer> + Send + 'static,
    {
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("fake-http: cannot bind a loopback port: {e}"),
        };
        let url = match listener.local_addr() {
            Ok(a) => format!("http://{a}"),
            Err(e) => panic!("fake-http: no local address: {e}"),
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let (answer, recorded) = (Arc::new(answer), log.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (answer, recorded) = (answer.clone(), recorded.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (answer, recorded) = (answer.clone(), recorded.clone());
                        async move {
                            let seen = read(req).await;
                            let n = {
                                let mut log = lock(&recorded);
                                log.push((seen.clone(), None));
                                log.len() - 1
                            };
                            let answer = answer(seen).await;
                            if let Some(entry) = lock(&recorded).get_mut(n) {
                                entry.1 = Some(answer.status);
                            }
                            Ok::<_, Infallible>(answer.into_response())
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeHttp { url, log }
    }

    /// Every request so far, in the order they arrived.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.log)
            .iter()
            .map(|(seen, _)| seen.clone())
            .collect()
    }

    /// The status each request was answered with, in the same order: `None`
    /// for one still waiting.
    pub fn statuses(&self) -> Vec<Option<u16>> {
        lock(&self.log).iter().map(|(_, status)| *status).collect()
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        lock(&self.log).len()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn read(req: Request<Incoming>) -> Seen {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    Seen {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        headers: parts.headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn raw(url: &str, request: &str) -> String {
        let addr = url.trim_start_matches("http://");
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn it_records_each_request_and_answers_with_the_function() {
        let fake = FakeHttp::start(|seen: Seen| async move {
            Answer::json(201, format!(r#"{{"got":"{}"}}"#, seen.text()))
                .header("x-path", seen.path())
        })
        .await;
        let out = raw(
            &fake.url,
            "POST /a/b?c=1 HTTP/1.1\r\nHost: x\r\nX-One: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
        )
        .await;
        assert!(out.starts_with("HTTP/1.1 201"), "{out}");
        assert!(out.contains("x-path: /a/b\r\n"), "{out}");
        assert!(out.ends_with(r#"{"got":"hi"}"#), "{out}");
        let seen = fake.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            (seen[0].method.as_str(), seen[0].target.as_str()),
            ("POST", "/a/b?c=1")
        );
        assert_eq!(seen[0].header("x-one"), Some("1"));
        assert_eq!(&seen[0].body[..], b"hi");
        assert_eq!(fake.statuses(), [Some(201)]);
    }

    #[tokio::test]
    async fn a_request_left_waiting_is_counted() {
        let fake = FakeHttp::start(|_| std::future::pending::<Answer>()).await;
        let url = fake.url.clone();
        let waiting =
            tokio::spawn(async move { raw(&url, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n").await });
        for _ in 0..200 {
            if fake.count() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(fake.count(), 1);
        assert!(!waiting.is_finished(), "no answer was sent");
        assert_eq!(fake.statuses(), [None]);
        waiting.abort();
    }
}
