//! GitHub's secret-scanning public keys: fetched from a URL as
//! `{"public_keys":[{"key_identifier","key" (PEM),"is_current"}]}` and kept
//! per execution environment, refreshed on a schedule.
//!
//! - **Every [`REFRESH_EVERY`]** the document is fetched again, with
//!   `If-None-Match` (GitHub answers 304 when nothing changed, which does not
//!   count against its rate limit). So a key GitHub publishes is known within
//!   that interval, before GitHub signs with it (GitHub publishes a key before
//!   it signs with it), and a key GitHub no longer lists stops being accepted
//!   at the next refresh.
//! - **An unknown identifier** may bring the next refresh forward, at most
//!   once per [`EARLY_REFRESH_AT_MOST_EVERY`], so a flood of made-up
//!   identifiers cannot hammer the key server. Whatever anyone sends, the
//!   scheduled refresh still runs: nobody can delay a published key's
//!   acceptance beyond [`REFRESH_EVERY`]. A report under a key not (yet)
//!   known is answered with a retryable 503, never 401.
//! - A failed refresh keeps the keys it has (logged) and tries again on the
//!   next request after [`EARLY_REFRESH_AT_MOST_EVERY`].

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::sync::Mutex;

/// How old the keys may get before they are fetched again (conditionally).
pub const REFRESH_EVERY: Duration = Duration::from_secs(300);
/// How often an unknown identifier may bring that refresh forward.
pub const EARLY_REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(60);
/// How long one fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest key document read.
const MAX_DOCUMENT: usize = 256 * 1024;

/// Looks up a signing key by its identifier.
pub trait PublicKeys: Send + Sync {
    /// The key's uncompressed P-256 point (65 bytes), or `None` when the
    /// document as last fetched does not name it.
    fn key(&self, id: &str) -> impl Future<Output = Result<Option<Vec<u8>>, KeysError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("the key URL is not an http(s) URL: {0}")]
    Url(String),
    #[error("fetching the keys failed")]
    Fetch(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the key server answered {0}")]
    Status(u16),
    #[error("the key document is not {{\"public_keys\": [...]}}")]
    Document,
    #[error("fetching the keys took longer than {FETCH_TIMEOUT:?}")]
    Timeout,
}

/// The keys at a URL (GitHub's: `GITHUB_KEYS_URL`), cached per execution
/// environment.
pub struct GithubKeys {
    url: hyper::Uri,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
    cache: Mutex<Cache>,
    refresh_every: Duration,
    early_every: Duration,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, Vec<u8>>,
    /// The document's entity tag, for a conditional fetch.
    etag: Option<String>,
    /// When the keys were last confirmed current (a 200 or a 304).
    fetched: Option<Instant>,
    /// When a fetch was last tried, whatever its outcome.
    tried: Option<Instant>,
}

/// What a fetch found.
enum Fetched {
    Document(HashMap<String, Vec<u8>>, Option<String>),
    NotModified,
}

/// GitHub's document of its secret-scanning keys.
pub const GITHUB_KEYS_URL: &str = "https://api.github.com/meta/public_keys/secret_scanning";

impl GithubKeys {
    /// Keys from `url`: `https://`, or `http://` on loopback (local runs).
    pub fn new(url: &str) -> Result<GithubKeys, KeysError> {
        let uri: hyper::Uri = url.parse().map_err(|_| KeysError::Url(url.to_owned()))?;
        let loopback = matches!(uri.host(), Some("127.0.0.1" | "localhost" | "[::1]"));
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if loopback => {}
            _ => return Err(KeysError::Url(url.to_owned())),
        }
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| KeysError::Fetch(Box::new(e)))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(GithubKeys {
            url: uri,
            client: Client::builder(TokioExecutor::new()).build(https),
            cache: Mutex::new(Cache::default()),
            refresh_every: REFRESH_EVERY,
            early_every: EARLY_REFRESH_AT_MOST_EVERY,
        })
    }

    /// The same source with other intervals (tests).
    #[must_use]
    pub fn with_intervals(mut self, refresh_every: Duration, early_every: Duration) -> GithubKeys {
        self.refresh_every = refresh_every;
        self.early_every = early_every;
        self
    }

    /// From `GITHUB_KEYS_URL`, else GitHub's.
    pub fn from_env() -> Result<GithubKeys, KeysError> {
        let url = std::env::var("GITHUB_KEYS_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| GITHUB_KEYS_URL.to_owned());
        GithubKeys::new(&url)
    }

    async fn fetch(&self, etag: Option<&str>) -> Result<Fetched, KeysError> {
        let mut req = hyper::Request::get(self.url.clone())
            .header("user-agent", "prolinksqr-secret-scanning")
            .header("accept", "application/json");
        if let Some(etag) = etag {
            req = req.header("if-none-match", etag);
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| KeysError::Fetch(Box::new(e)))?;
        let work = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| KeysError::Fetch(Box::new(e)))?;
            if resp.status() == hyper::StatusCode::NOT_MODIFIED {
                return Ok(Fetched::NotModified);
            }
            if !resp.status().is_success() {
                return Err(KeysError::Status(resp.status().as_u16()));
            }
            let etag = resp
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = Limited::new(resp.into_body(), MAX_DOCUMENT)
                .collect()
                .await
                .map_err(KeysError::Fetch)?
                .to_bytes();
            Ok(Fetched::Document(parse_document(&body)?, etag))
        };
        tokio::time::timeout(FETCH_TIMEOUT, work)
            .await
            .map_err(|_| KeysError::Timeout)?
    }
}

impl GithubKeys {
    /// Fetches the document (conditionally) into `cache`. A failure keeps
    /// what the cache has; it is an error only when there is nothing.
    async fn refresh(&self, cache: &mut Cache) -> Result<(), KeysError> {
        cache.tried = Some(Instant::now());
        match self.fetch(cache.etag.as_deref()).await {
            Ok(Fetched::NotModified) => {
                cache.fetched = Some(Instant::now());
                Ok(())
            }
            Ok(Fetched::Document(keys, etag)) => {
                tracing::info!(keys = keys.len(), "fetched GitHub's secret-scanning keys");
                cache.keys = keys;
                cache.etag = etag;
                cache.fetched = Some(Instant::now());
                Ok(())
            }
            Err(err) if cache.fetched.is_some() => {
                tracing::warn!(error = %err, "refreshing GitHub's keys failed; keeping the ones we have");
                Ok(())
            }
            Err(err) => Err(err),
        }
    }
}

impl PublicKeys for GithubKeys {
    async fn key(&self, id: &str) -> Result<Option<Vec<u8>>, KeysError> {
        let mut cache = self.cache.lock().await;
        let due = |at: Option<Instant>, every: Duration| at.is_none_or(|t| t.elapsed() >= every);
        // The schedule: whatever else happens, keys older than the interval
        // are fetched again (a failed try is retried after the shorter one).
        if due(cache.fetched, self.refresh_every)
            && due(cache.tried, self.early_every.min(self.refresh_every))
        {
            self.refresh(&mut cache).await?;
        }
        if let Some(k) = cache.keys.get(id) {
            return Ok(Some(k.clone()));
        }
        // An unknown identifier: a refresh brought forward, rate-limited.
        if due(cache.tried, self.early_every) {
            self.refresh(&mut cache).await?;
        }
        Ok(cache.keys.get(id).cloned())
    }
}

/// The keys of a document, by identifier; a key that is not a P-256 public
/// key in PEM is passed over.
pub fn parse_document(body: &[u8]) -> Result<HashMap<String, Vec<u8>>, KeysError> {
    let doc: Value = serde_json::from_slice(body).map_err(|_| KeysError::Document)?;
    let list = doc["public_keys"].as_array().ok_or(KeysError::Document)?;
    Ok(list
        .iter()
        .filter_map(|k| {
            let id = k["key_identifier"].as_str()?;
            let point = p256_point_from_pem(k["key"].as_str()?)?;
            Some((id.to_owned(), point))
        })
        .collect())
}

/// The DER header of a P-256 SubjectPublicKeyInfo with an uncompressed point
/// (id-ecPublicKey, prime256v1, BIT STRING of 66 bytes).
pub const P256_SPKI_HEADER: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The uncompressed point of a PEM `PUBLIC KEY` for P-256.
pub fn p256_point_from_pem(pem: &str) -> Option<Vec<u8>> {
    let b64: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(b64).ok()?;
    let point = der.strip_prefix(&P256_SPKI_HEADER[..])?;
    (point.len() == 65 && point[0] == 0x04).then(|| point.to_vec())
}
