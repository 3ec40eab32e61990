//! A fake API Gateway control plane (feature `test-util`): it answers
//! `DELETE /restapis/{id}/stages/{stage}/cache/authorizers` with 202, or
//! with a scripted failure status for the first N requests, and records
//! every request, so tests drive [`CacheFlush`] through the real SDK.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::CacheFlush;

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Whether it carried a SigV4 `Authorization` header.
    pub signed: bool,
    /// The status the fake answered.
    pub status: u16,
}

#[derive(Default)]
struct State {
    seen: Mutex<Vec<Seen>>,
    failures_left: AtomicU32,
    failure_status: AtomicU32,
}

/// The fake's address and what it saw. Dropping it leaves the server
/// running until the test's runtime ends.
#[derive(Clone)]
pub struct FakeApiGateway {
    pub url: String,
    state: Arc<State>,
}

impl FakeApiGateway {
    /// A fake that accepts every flush.
    pub async fn start() -> FakeApiGateway {
        FakeApiGateway::failing(0, 500).await
    }

    /// A fake that answers `status` to the first `failures` requests, then 202.
    pub async fn failing(failures: u32, status: u16) -> FakeApiGateway {
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("cannot bind the fake API Gateway: {e}"),
        };
        let url = match listener.local_addr() {
            Ok(a) => format!("http://{a}"),
            Err(e) => panic!("no local address: {e}"),
        };
        let state = Arc::new(State {
            seen: Mutex::default(),
            failures_left: AtomicU32::new(failures),
            failure_status: AtomicU32::new(u32::from(status)),
        });
        let served = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = served.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(state.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeApiGateway { url, state }
    }

    /// A [`CacheFlush`] of `rest_api_id`'s `stage` through this fake.
    pub async fn flush_client(&self, rest_api_id: &str, stage: &str) -> CacheFlush {
        CacheFlush::for_endpoint(&self.url, rest_api_id, stage).await
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The flushes the fake accepted (202).
    pub fn flushes(&self) -> usize {
        self.seen().iter().filter(|s| s.status == 202).count()
    }

    /// Makes the next `n` requests fail with `status`.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.state
            .failure_status
            .store(u32::from(status), Ordering::SeqCst);
        self.state.failures_left.store(n, Ordering::SeqCst);
    }
}

async fn answer(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let is_flush = req.method() == hyper::Method::DELETE
        && path.starts_with("/restapis/")
        && path.ends_with("/cache/authorizers")
        && path.split('/').count() == 7;
    let failing = state
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if !is_flush {
        404
    } else if failing {
        u16::try_from(state.failure_status.load(Ordering::SeqCst)).unwrap_or(500)
    } else {
        202
    };
    state
        .seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Seen {
            method: req.method().to_string(),
            path,
            signed: req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256")),
            status,
        });
    let body = if status == 202 {
        Bytes::new()
    } else {
        Bytes::from_static(br#"{"message":"scripted failure"}"#)
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    resp.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    // The error type API Gateway names in its answers.
    let error_type = match status {
        429 => Some("TooManyRequestsException"),
        403 => Some("AccessDeniedException"),
        404 => Some("NotFoundException"),
        503 => Some("ServiceUnavailableException"),
        _ => None,
    };
    if let Some(t) = error_type {
        resp.headers_mut().insert(
            "x-amzn-errortype",
            hyper::header::HeaderValue::from_static(t),
        );
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{FlushError, Flushed};

    #[tokio::test]
    async fn a_flush_is_one_signed_delete_of_the_stages_authorizer_cache() {
        let fake = FakeApiGateway::start().await;
        let flush = fake.flush_client("a1b2c3", "prod").await;
        assert!(flush.is_on());
        assert_eq!(
            flush.flush(Duration::from_secs(5)).await.unwrap(),
            Flushed::Done
        );
        assert_eq!(
            fake.seen(),
            [Seen {
                method: "DELETE".into(),
                path: "/restapis/a1b2c3/stages/prod/cache/authorizers".into(),
                signed: true,
                status: 202,
            }]
        );
    }

    #[tokio::test]
    async fn throttling_and_5xx_are_retried_by_the_sdk() {
        let fake = FakeApiGateway::failing(2, 429).await;
        let flush = fake.flush_client("api", "s").await;
        assert_eq!(
            flush.flush(Duration::from_secs(5)).await.unwrap(),
            Flushed::Done
        );
        assert_eq!(fake.seen().len(), 3, "two throttled, then accepted");
        fake.fail_next(1, 503);
        assert!(flush.flush(Duration::from_secs(5)).await.is_ok());
    }

    #[tokio::test]
    async fn a_flush_that_keeps_failing_is_an_error_not_a_success() {
        let fake = FakeApiGateway::failing(100, 500).await;
        let flush = fake.flush_client("api", "s").await;
        let err = flush.flush(Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, FlushError::Failed { .. }), "{err}");
        assert_eq!(fake.flushes(), 0);
        let fake = FakeApiGateway::failing(100, 403).await;
        let flush = fake.flush_client("api", "s").await;
        assert!(flush.flush(Duration::from_secs(5)).await.is_err());
        assert_eq!(fake.seen().len(), 1, "a 403 is not retried");
    }

    #[tokio::test]
    async fn caching_off_sends_nothing() {
        assert_eq!(
            CacheFlush::Off.flush(Duration::from_secs(1)).await.unwrap(),
            Flushed::Off
        );
    }
}
