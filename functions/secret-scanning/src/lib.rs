//! `POST /secret-scanning/github`: GitHub's secret-scanning partner endpoint.
//!
//! GitHub posts a JSON array of `{"token", "type", "url", "source"}` found in
//! public code, signed with ECDSA P-256 / SHA-256 over the raw body; the
//! headers name the key (`Github-Public-Key-Identifier`) and carry the
//! signature (`Github-Public-Key-Signature`, base64 DER). GitHub's public
//! keys come from a URL (`GITHUB_KEYS_URL`), cached, and fetched again when
//! an unknown identifier arrives. A missing or invalid signature is 401 and
//! changes nothing.
//!
//! Every reported token is public from then on: one of our format, with a
//! valid checksum, whose SHA-256 names a live secret of ours, has its key
//! deactivated with the reason `leaked` (an audit event, in the same
//! transaction) and is labelled `true_positive`; anything else is
//! `false_positive`. The same report twice changes nothing more. The answer
//! is GitHub's feedback array: `{"token_hash", "token_type", "label"}`.

pub mod keys;
#[cfg(feature = "test-util")]
pub mod testing;

use std::collections::HashMap;

use apikeys::{ApiKey, Audit, KeyHash, LeakOutcome, LookupKeys, RevokeLeaked};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::{StreamExt, TryStreamExt, stream};
use lambda_http::http::StatusCode;
use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub use keys::{GithubKeys, KeysError, PublicKeys};

/// The largest report accepted: 1 MiB, about 6,000 tokens, processed
/// whole (GitHub documents no maximum batch size).
pub const MAX_BODY: usize = 1024 * 1024;

/// How long before the invocation's deadline the work must end, to answer
/// by ourselves (never by the function's timeout).
pub const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_millis(500);

/// The budget without a Lambda context (direct calls in tests).
pub const DEFAULT_BUDGET: std::time::Duration = std::time::Duration::from_millis(4500);
/// How many revocations of one report run at once.
pub const CONCURRENT_REVOCATIONS: usize = 16;
/// What a 503 for a key not yet known asks GitHub to wait, in seconds.
pub const KEY_RETRY_AFTER: u32 = 60;
/// The token type GitHub is registered to send (the feedback echoes it).
pub const TOKEN_TYPE: &str = "prolinksqr_api_key";
/// Who the audit trail names for a revocation.
pub const ACTOR: &str = "github-secret-scanning";

/// Why a report was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("not signed by a current GitHub secret-scanning key")]
    BadSignature,
    #[error("the report is larger than {MAX_BODY} bytes")]
    TooLarge,
    /// Signed under an identifier the keys as last fetched do not name: a
    /// key GitHub published after our last refresh, or a made-up one.
    #[error("the signing key is not known yet; try again later")]
    KeyNotYetKnown,
    #[error("the report is not a JSON array of {{\"token\", \"type\", …}} objects")]
    Malformed,
    #[error("only POST is accepted")]
    Method,
    #[error("GitHub's public keys could not be fetched; try again")]
    Keys(#[source] KeysError),
    #[error("the key store is unavailable; try again")]
    Store(#[from] apikeys::StoreError),
}

impl ReportError {
    fn status(&self) -> StatusCode {
        match self {
            ReportError::BadSignature => StatusCode::UNAUTHORIZED,
            ReportError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ReportError::Malformed => StatusCode::BAD_REQUEST,
            ReportError::Method => StatusCode::METHOD_NOT_ALLOWED,
            ReportError::KeyNotYetKnown | ReportError::Keys(_) | ReportError::Store(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ReportError::BadSignature => "unauthorized",
            ReportError::TooLarge => "payload_too_large",
            ReportError::KeyNotYetKnown => "key_not_yet_known",
            ReportError::Malformed => "malformed_report",
            ReportError::Method => "method_not_allowed",
            ReportError::Keys(_) | ReportError::Store(_) => "service_unavailable",
        }
    }
}

/// The Lambda handler: the report checked and acted on within the
/// invocation's deadline.
/// A report that revoked a key flushes the authorizer cache (`cache`, when
/// caching is on) before answering; a failed flush is logged and left to the
/// Streams consumer, never an error for GitHub to retry.
pub async fn handle<S: RevokeLeaked + LookupKeys, K: PublicKeys>(
    store: &S,
    keys: &K,
    cache: &authorizer_cache::CacheFlush,
    req: Request,
) -> Response<Body> {
    let request_id = req
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .unwrap_or_default();
    let deadline =
        lambda_support::deadline(req.lambda_context_ref(), DEADLINE_MARGIN, DEFAULT_BUDGET);
    let outcome = deadline.run(report(store, keys, &req, &request_id)).await;
    if matches!(&outcome, Ok((_, revoked)) if *revoked > 0)
        && let Err(err) = cache.flush(deadline.remaining()).await
    {
        tracing::error!(
            request_id,
            cache_flush = "failed",
            error = %apikeys::error_chain(&err),
            "leaked keys are revoked; flushing the authorizer cache failed and is left to the Streams consumer"
        );
    }
    let retry_after = match &outcome {
        Err(ReportError::KeyNotYetKnown) => Some(KEY_RETRY_AFTER),
        Err(e) if e.status().is_server_error() => Some(1),
        _ => None,
    };
    let (status, body) = match outcome {
        Ok((feedback, _)) => (StatusCode::OK, Value::Array(feedback)),
        Err(err) => {
            if err.status().is_server_error() {
                tracing::error!(request_id, error = %apikeys::error_chain(&err), "secret-scanning report failed");
            } else {
                tracing::warn!(
                    request_id,
                    code = err.code(),
                    "secret-scanning report refused"
                );
            }
            (
                err.status(),
                json!({"error": {"code": err.code(), "message": err.to_string()}}),
            )
        }
    };
    let mut resp = Response::new(Body::Text(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    if let Some(seconds) = retry_after {
        resp.headers_mut().insert(
            lambda_http::http::header::RETRY_AFTER,
            lambda_http::http::HeaderValue::from(seconds),
        );
    }
    resp
}

/// Checks the report and revokes what it names; returns GitHub's feedback
/// and how many keys it revoked now.
pub async fn report<S: RevokeLeaked + LookupKeys, K: PublicKeys>(
    store: &S,
    keys: &K,
    req: &Request,
    request_id: &str,
) -> Result<(Vec<Value>, usize), ReportError> {
    if req.method() != lambda_http::http::Method::POST {
        return Err(ReportError::Method);
    }
    let body: &[u8] = req.body().as_ref();
    if body.len() > MAX_BODY {
        return Err(ReportError::TooLarge);
    }
    verify(keys, req, body).await?;

    let tokens = parse(body)?;
    let audit = Audit {
        actor: ACTOR.to_owned(),
        request_id: request_id.to_owned(),
        at: lambda_support::now(),
    };
    // Our format with a valid checksum: their lookup items, read in batches.
    let hashes: Vec<Option<KeyHash>> = tokens
        .iter()
        .map(|(token, _)| ApiKey::parse(token).ok().map(|k| k.hash()))
        .collect();
    let wanted: Vec<KeyHash> = hashes.iter().flatten().copied().collect();
    let found = store.lookup_many(&wanted).await?;
    // Revoke what is ours, a few at a time; each is its own guarded change.
    let mut ours_hashes: Vec<KeyHash> = found.keys().copied().collect();
    ours_hashes.sort_unstable_by_key(|h| h.0);
    let outcomes: HashMap<KeyHash, LeakOutcome> = stream::iter(ours_hashes)
        .map(|hash| {
            let audit = &audit;
            async move { store.revoke_leaked(&hash, audit).await.map(|o| (hash, o)) }
        })
        .buffer_unordered(CONCURRENT_REVOCATIONS)
        .try_collect()
        .await?;
    let mut feedback = Vec::with_capacity(tokens.len());
    let (mut revoked, mut ours) = (0usize, 0usize);
    let mut counted = std::collections::HashSet::new();
    for ((token, token_type), hash) in tokens.iter().zip(&hashes) {
        let label = match hash.and_then(|h| outcomes.get(&h).map(|o| (h, o))) {
            Some((h, LeakOutcome::Revoked(id))) => {
                if counted.insert(h) {
                    tracing::warn!(request_id, key_id = id.as_str(), "leaked key revoked");
                    revoked += 1;
                    ours += 1;
                }
                "true_positive"
            }
            Some((h, LeakOutcome::AlreadyRevoked(_))) => {
                if counted.insert(h) {
                    ours += 1;
                }
                "true_positive"
            }
            // Not our format, a checksum typo, no item, or expired.
            Some((_, LeakOutcome::NotOurs)) | None => "false_positive",
        };
        feedback.push(json!({
            "token_hash": hex::encode(Sha256::digest(token.as_bytes())),
            "token_type": token_type,
            "label": label,
        }));
    }
    tracing::info!(
        request_id,
        reported = feedback.len(),
        ours,
        revoked,
        "secret-scanning report"
    );
    Ok((feedback, revoked))
}

/// The signature over the raw body, by the key the headers name.
async fn verify<K: PublicKeys>(keys: &K, req: &Request, body: &[u8]) -> Result<(), ReportError> {
    let header = |name: &str| {
        let mut values = req.headers().get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(v), None) => v.to_str().ok().map(str::trim),
            _ => None,
        }
    };
    let (Some(id), Some(signature)) = (
        header("github-public-key-identifier"),
        header("github-public-key-signature"),
    ) else {
        return Err(ReportError::BadSignature);
    };
    let signature = STANDARD
        .decode(signature)
        .map_err(|_| ReportError::BadSignature)?;
    let Some(point) = keys.key(id).await.map_err(ReportError::Keys)? else {
        // Never a 401 for a key GitHub may have published since our last
        // refresh: GitHub does not retry a refused delivery, a 5xx it may.
        return Err(ReportError::KeyNotYetKnown);
    };
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
        point,
    )
    .verify(body, &signature)
    .map_err(|_| ReportError::BadSignature)
}

/// `(token, type)` of every entry; the whole report is refused unless every
/// entry is an object with a string `token` (extra fields are GitHub's).
fn parse(body: &[u8]) -> Result<Vec<(String, String)>, ReportError> {
    let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(body) else {
        return Err(ReportError::Malformed);
    };
    items
        .into_iter()
        .map(|item| {
            let token = item.get("token").and_then(Value::as_str);
            let kind = item
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or(TOKEN_TYPE);
            token
                .map(|t| (t.to_owned(), kind.to_owned()))
                .ok_or(ReportError::Malformed)
        })
        .collect()
}

/// The function's state from the environment: the store, GitHub's keys
/// (`GITHUB_KEYS_URL`) and the authorizer-cache flush (revocations flush
/// when caching is on).
pub async fn init() -> Result<
    (
        apikeys::dynamo::DynamoStore,
        GithubKeys,
        authorizer_cache::CacheFlush,
    ),
    lambda_support::Error,
> {
    Ok((
        lambda_support::dynamo_store().await?,
        GithubKeys::from_env()?,
        authorizer_cache::CacheFlush::from_env().await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{KeyServer, Signer};
    use apikeys::testing::seed_key;
    use apikeys::{GetKey, ListEvents, LookupKey, MemoryStore};
    use std::time::Duration;

    fn report_request(body: &str, id: Option<&str>, signature: Option<&str>) -> Request {
        let mut b = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/secret-scanning/github")
            .header("content-type", "application/json");
        if let Some(id) = id {
            b = b.header("Github-Public-Key-Identifier", id);
        }
        if let Some(sig) = signature {
            b = b.header("Github-Public-Key-Signature", sig);
        }
        b.body(Body::from(body.to_owned())).unwrap()
    }

    fn signed(signer: &Signer, body: &str) -> Request {
        report_request(body, Some(&signer.id), Some(&signer.sign(body.as_bytes())))
    }

    fn labels(resp: &Response<Body>) -> Vec<String> {
        let v: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
        v.as_array()
            .unwrap_or_else(|| panic!("not an array: {v}"))
            .iter()
            .map(|f| f["label"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn keys(server: &KeyServer) -> GithubKeys {
        GithubKeys::new(&server.url)
            .unwrap()
            .with_intervals(Duration::from_secs(300), Duration::ZERO)
    }

    #[tokio::test]
    async fn a_signed_report_revokes_our_live_keys_and_labels_every_token() {
        let store = MemoryStore::new();
        let (leaked, record) = seed_key(&store, "acct-a").await;
        let (other_account, theirs) = seed_key(&store, "acct-b").await;
        let (untouched, _) = seed_key(&store, "acct-a").await;
        let github = Signer::generate("github-1");
        let server = KeyServer::start(&[&github]).await;
        let keys = keys(&server).await;
        let mut typo = leaked.expose_secret().to_owned();
        typo.pop();
        typo.push(if leaked.expose_secret().ends_with('0') {
            '1'
        } else {
            '0'
        });
        let body = json!([
            {"token": leaked.expose_secret(), "type": TOKEN_TYPE, "url": "https://github.com/o/r/blob/x", "source": "content"},
            {"token": "ghp_notoursatall", "type": TOKEN_TYPE, "url": "u", "source": "content"},
            {"token": typo, "type": TOKEN_TYPE, "url": "u", "source": "content"},
            {"token": other_account.expose_secret(), "type": TOKEN_TYPE, "url": "u", "source": "content"},
            {"token": apikeys::ApiKey::generate().expose_secret(), "type": TOKEN_TYPE, "url": "u", "source": "content"},
        ])
        .to_string();
        // Caching on: a report that revokes flushes the authorizer cache.
        let gateway = authorizer_cache::testing::FakeApiGateway::start().await;
        let cache = gateway.flush_client("api", "prod").await;
        let resp = handle(&store, &keys, &cache, signed(&github, &body)).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(gateway.flushes(), 1);
        assert_eq!(
            labels(&resp),
            [
                "true_positive",
                "false_positive",
                "false_positive",
                "true_positive",
                "false_positive"
            ]
        );
        let v: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
        assert_eq!(v[0]["token_hash"], leaked.hash().to_hex());
        assert_eq!(v[0]["token_type"], TOKEN_TYPE);

        // Revoked at once, with the reason and an event; the others untouched.
        let lookup = store.lookup(&leaked.hash()).await.unwrap().unwrap();
        assert!(!lookup.active, "the next protected call is 401");
        let r = store.get(&record.account_id, &record.id).await.unwrap();
        assert_eq!(
            r.deactivated_reason,
            Some(apikeys::DeactivatedReason::Leaked)
        );
        let events = store
            .events(
                &record.account_id,
                &record.id,
                10,
                None,
                lambda_support::now(),
            )
            .await
            .unwrap();
        assert_eq!(events.items[0].action, apikeys::EventAction::Revoked);
        assert_eq!(events.items[0].actor, ACTOR);
        assert!(!store.lookup(&theirs.hash).await.unwrap().unwrap().active);
        assert!(
            store
                .lookup(&untouched.hash())
                .await
                .unwrap()
                .unwrap()
                .active
        );

        // The same report again: the same labels, nothing more changed.
        let again = handle(&store, &keys, &cache, signed(&github, &body)).await;
        assert_eq!(labels(&again), labels(&resp));
        assert_eq!(gateway.flushes(), 1, "nothing newly revoked, no flush");
        let after = store.get(&record.account_id, &record.id).await.unwrap();
        assert_eq!(after.version, r.version);
        let events_after = store
            .events(
                &record.account_id,
                &record.id,
                10,
                None,
                lambda_support::now(),
            )
            .await
            .unwrap();
        assert_eq!(events_after.items.len(), events.items.len());
    }

    #[tokio::test]
    async fn an_unsigned_forged_or_edited_report_is_401_and_changes_nothing() {
        let store = MemoryStore::new();
        let (key, _) = seed_key(&store, "acct-a").await;
        let github = Signer::generate("github-1");
        let impostor = Signer::generate("github-1");
        let stranger = Signer::generate("not-github");
        let server = KeyServer::start(&[&github]).await;
        let keys = keys(&server).await;
        let body = json!([{"token": key.expose_secret(), "type": TOKEN_TYPE}]).to_string();
        let edited = body.replace(TOKEN_TYPE, "other_type");
        let cases = [
            ("no headers", report_request(&body, None, None)),
            (
                "no signature",
                report_request(&body, Some("github-1"), None),
            ),
            (
                "not base64",
                report_request(&body, Some("github-1"), Some("%%%")),
            ),
            ("another key's signature", signed(&impostor, &body)),
            (
                "a body edited after signing",
                report_request(
                    &edited,
                    Some("github-1"),
                    Some(&github.sign(body.as_bytes())),
                ),
            ),
        ];
        for (what, req) in cases {
            let resp = handle(&store, &keys, &authorizer_cache::CacheFlush::Off, req).await;
            assert_eq!(resp.status(), 401, "{what}");
        }
        // A key GitHub does not list (yet): a retryable 503, never a 401.
        let resp = handle(
            &store,
            &keys,
            &authorizer_cache::CacheFlush::Off,
            signed(&stranger, &body),
        )
        .await;
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["retry-after"], "60");
        assert!(
            store.lookup(&key.hash()).await.unwrap().unwrap().active,
            "nothing changed"
        );
    }

    async fn status(keys: &GithubKeys, store: &MemoryStore, signer: &Signer, body: &str) -> u16 {
        handle(
            store,
            keys,
            &authorizer_cache::CacheFlush::Off,
            signed(signer, body),
        )
        .await
        .status()
        .as_u16()
    }

    #[tokio::test]
    async fn keys_are_refreshed_on_a_schedule_conditionally_and_an_unknown_one_brings_it_forward() {
        let store = MemoryStore::new();
        let (key, _) = seed_key(&store, "acct-a").await;
        let old = Signer::generate("github-old");
        let new = Signer::generate("github-new");
        let server = KeyServer::start(&[&old]).await;
        let keys = GithubKeys::new(&server.url)
            .unwrap()
            .with_intervals(Duration::from_millis(300), Duration::from_secs(3600));
        let body = json!([{"token": "nothing-of-ours", "type": TOKEN_TYPE}]).to_string();
        assert_eq!(status(&keys, &store, &old, &body).await, 200);
        assert_eq!(status(&keys, &store, &old, &body).await, 200);
        assert_eq!(server.fetches(), 1, "cached within the interval");
        // Past the interval: fetched again, conditionally (304: unchanged).
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(status(&keys, &store, &old, &body).await, 200);
        assert_eq!((server.fetches(), server.not_modified()), (2, 1));

        // GitHub publishes a new key and drops the old one. Until the next
        // refresh the new one is not known: 503 (GitHub may retry), never 401;
        // made-up identifiers cannot make us fetch (the early refresh was
        // used up) nor delay the schedule.
        server.rotate(&[&new]);
        let ours = json!([{"token": key.expose_secret(), "type": TOKEN_TYPE}]).to_string();
        let stranger = Signer::generate("made-up");
        for _ in 0..3 {
            assert_eq!(status(&keys, &store, &stranger, &ours).await, 503);
        }
        assert_eq!(status(&keys, &store, &new, &ours).await, 503);
        assert!(store.lookup(&key.hash()).await.unwrap().unwrap().active);
        tokio::time::sleep(Duration::from_millis(350)).await;
        let resp = handle(
            &store,
            &keys,
            &authorizer_cache::CacheFlush::Off,
            signed(&new, &ours),
        )
        .await;
        assert_eq!(resp.status(), 200, "known at the next scheduled refresh");
        assert_eq!(labels(&resp), ["true_positive"]);
        // The dropped key stopped with that refresh.
        assert_eq!(status(&keys, &store, &old, &body).await, 503);
    }

    #[tokio::test]
    async fn an_unknown_identifier_brings_the_refresh_forward_at_most_once_per_interval() {
        let store = MemoryStore::new();
        let (key, _) = seed_key(&store, "acct-a").await;
        let old = Signer::generate("github-old");
        let new = Signer::generate("github-new");
        let server = KeyServer::start(&[&old]).await;
        let keys = GithubKeys::new(&server.url)
            .unwrap()
            .with_intervals(Duration::from_secs(3600), Duration::from_millis(200));
        let body = json!([{"token": key.expose_secret(), "type": TOKEN_TYPE}]).to_string();
        let stranger = Signer::generate("made-up");
        assert_eq!(status(&keys, &store, &stranger, &body).await, 503);
        let after_first = server.fetches();
        for _ in 0..5 {
            assert_eq!(status(&keys, &store, &stranger, &body).await, 503);
        }
        assert_eq!(
            server.fetches(),
            after_first,
            "no fetch per made-up identifier"
        );
        server.rotate(&[&old, &new]);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            status(&keys, &store, &new, &body).await,
            200,
            "a rotated key, fetched early"
        );
    }

    #[tokio::test]
    async fn oversized_or_malformed_reports_are_refused() {
        let store = MemoryStore::new();
        let github = Signer::generate("github-1");
        let server = KeyServer::start(&[&github]).await;
        let keys = keys(&server).await;
        let huge = format!(r#"[{{"token":"{}"}}]"#, "x".repeat(MAX_BODY));
        for (body, status) in [
            (huge.as_str(), 413),
            ("{}", 400),
            (r#"[{"type":"x"}]"#, 400),
            ("not json", 400),
        ] {
            let resp = handle(
                &store,
                &keys,
                &authorizer_cache::CacheFlush::Off,
                signed(&github, body),
            )
            .await;
            assert_eq!(resp.status(), status, "{}", &body[..body.len().min(40)]);
        }
        let get = lambda_http::http::Request::builder()
            .method("GET")
            .uri("/secret-scanning/github")
            .body(Body::Empty)
            .unwrap();
        assert_eq!(
            handle(&store, &keys, &authorizer_cache::CacheFlush::Off, get)
                .await
                .status(),
            405
        );
    }

    /// A report as large as the body limit allows is processed whole: every
    /// token labelled, every key of ours in it revoked.
    #[tokio::test]
    async fn a_report_up_to_the_body_limit_is_processed_whole() {
        let store = MemoryStore::new();
        let mut ours = Vec::new();
        for i in 0..40 {
            ours.push(seed_key(&store, &format!("acct-{}", i % 4)).await.0);
        }
        let github = Signer::generate("github-1");
        let server = KeyServer::start(&[&github]).await;
        let keys = keys(&server).await;
        let mut items: Vec<Value> = Vec::new();
        let mut len = 2; // the brackets
        for i in 0.. {
            let token = if i % 150 == 0 && i / 150 < ours.len() {
                ours[i / 150].expose_secret().to_owned()
            } else {
                ApiKey::generate().expose_secret().to_owned()
            };
            let item = json!({"token": token, "type": TOKEN_TYPE, "url": "https://github.com/o/r/blob/x/f", "source": "content"});
            len += item.to_string().len() + 1;
            if len > MAX_BODY {
                break;
            }
            items.push(item);
        }
        let body = Value::Array(items.clone()).to_string();
        assert!(items.len() > 5000, "{}", items.len());
        let resp = handle(
            &store,
            &keys,
            &authorizer_cache::CacheFlush::Off,
            signed(&github, &body),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let labels = labels(&resp);
        assert_eq!(labels.len(), items.len());
        let revoked = ours
            .iter()
            .filter(|k| items.iter().any(|it| it["token"] == k.expose_secret()));
        let mut n = 0;
        for k in revoked {
            n += 1;
            assert!(!store.lookup(&k.hash()).await.unwrap().unwrap().active);
        }
        assert_eq!(labels.iter().filter(|l| *l == "true_positive").count(), n);
        assert!(n >= 30, "{n}");
    }

    #[test]
    fn only_https_or_loopback_http_key_urls() {
        assert!(GithubKeys::new(keys::GITHUB_KEYS_URL).is_ok());
        assert!(GithubKeys::new("http://127.0.0.1:9/keys").is_ok());
        assert!(GithubKeys::new("http://keys.example.com/keys").is_err());
        assert!(GithubKeys::new("ftp://x").is_err());
    }
}
