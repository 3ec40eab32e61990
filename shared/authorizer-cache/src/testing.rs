//! A fake API Gateway control plane (feature `test-util`): it answers
//! `DELETE /restapis/{id}/stages/{stage}/cache/authorizers` with 202, or
//! with a scripted failure status for the first N requests, and records
//! every request, so tests drive [`CacheFlush`] through the real SDK.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use fake_http::{Answer, FakeHttp};

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
struct Failures {
    left: AtomicU32,
    status: AtomicU32,
}

/// The fake's address and what it saw. Dropping it leaves the server
/// running until the test's runtime ends.
#[derive(Clone)]
pub struct FakeApiGateway {
    pub url: String,
    server: FakeHttp,
    failures: Arc<Failures>,
}

impl FakeApiGateway {
    /// A fake that accepts every flush.
    pub async fn start() -> FakeApiGateway {
        FakeApiGateway::failing(0, 500).await
    }

    /// A fake that answers `status` to the first `failures` requests, then 202.
    pub async fn failing(failures: u32, status: u16) -> FakeApiGateway {
        let failures = Arc::new(Failures {
            left: AtomicU32::new(failures),
            status: AtomicU32::new(u32::from(status)),
        });
        let scripted = failures.clone();
        let server = FakeHttp::start(move |req| {
            let status = answer_status(&scripted, req.method == "DELETE" && is_flush(req.path()));
            async move { answer(status) }
        })
        .await;
        FakeApiGateway {
            url: server.url.clone(),
            server,
            failures,
        }
    }

    /// A [`CacheFlush`] of `rest_api_id`'s `stage` through this fake.
    pub async fn flush_client(&self, rest_api_id: &str, stage: &str) -> CacheFlush {
        CacheFlush::for_endpoint(&self.url, rest_api_id, stage).await
    }

    /// Every request so far, with the status it got.
    pub fn seen(&self) -> Vec<Seen> {
        self.server
            .seen()
            .iter()
            .zip(self.server.statuses())
            .map(|(req, status)| Seen {
                method: req.method.clone(),
                path: req.path().to_owned(),
                signed: req
                    .header("authorization")
                    .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256")),
                status: status.unwrap_or_default(),
            })
            .collect()
    }

    /// The flushes the fake accepted (202).
    pub fn flushes(&self) -> usize {
        self.seen().iter().filter(|s| s.status == 202).count()
    }

    /// Makes the next `n` requests fail with `status`.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.failures
            .status
            .store(u32::from(status), Ordering::SeqCst);
        self.failures.left.store(n, Ordering::SeqCst);
    }
}

/// `DELETE /restapis/{id}/stages/{stage}/cache/authorizers`.
fn is_flush(path: &str) -> bool {
    path.starts_with("/restapis/")
        && path.ends_with("/cache/authorizers")
        && path.split('/').count() == 7
}

fn answer_status(failures: &Failures, is_flush: bool) -> u16 {
    let failing = failures
        .left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if !is_flush {
        404
    } else if failing {
        u16::try_from(failures.status.load(Ordering::SeqCst)).unwrap_or(500)
    } else {
        202
    }
}

fn answer(status: u16) -> Answer {
    if status == 202 {
        return Answer::status(202).header("content-type", "application/json");
    }
    let answer = Answer::json(status, r#"{"message":"scripted failure"}"#);
    // The error type API Gateway names in its answers.
    match status {
        429 => answer.header("x-amzn-errortype", "TooManyRequestsException"),
        403 => answer.header("x-amzn-errortype", "AccessDeniedException"),
        404 => answer.header("x-amzn-errortype", "NotFoundException"),
        503 => answer.header("x-amzn-errortype", "ServiceUnavailableException"),
        _ => answer,
    }
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
