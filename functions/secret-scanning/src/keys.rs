//! GitHub's secret-scanning public keys: fetched from a URL as
//! `{"public_keys":[{"key_identifier","key" (PEM),"is_current"}]}`, cached,
//! and fetched again when an unknown identifier arrives (at most once per
//! [`REFRESH_AT_MOST_EVERY`], so a flood of made-up identifiers cannot make
//! us hammer the key server).

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

/// How often the keys may be fetched again for an unknown identifier.
pub const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(10);
/// How long one fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest key document read.
const MAX_DOCUMENT: usize = 256 * 1024;

/// Looks up a signing key by its identifier.
pub trait PublicKeys: Send + Sync {
    /// The key's uncompressed P-256 point (65 bytes), or `None` when no
    /// current document names it.
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
    min_refresh: Duration,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, Vec<u8>>,
    fetched: Option<Instant>,
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
            min_refresh: REFRESH_AT_MOST_EVERY,
        })
    }

    /// The same source, fetching again for an unknown identifier at most
    /// once per `every` (tests: zero).
    #[must_use]
    pub fn refreshing_at_most_every(mut self, every: Duration) -> GithubKeys {
        self.min_refresh = every;
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

    async fn fetch(&self) -> Result<HashMap<String, Vec<u8>>, KeysError> {
        let req = hyper::Request::get(self.url.clone())
            .header("user-agent", "prolinksqr-secret-scanning")
            .header("accept", "application/json")
            .body(Empty::new())
            .map_err(|e| KeysError::Fetch(Box::new(e)))?;
        let work = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| KeysError::Fetch(Box::new(e)))?;
            if !resp.status().is_success() {
                return Err(KeysError::Status(resp.status().as_u16()));
            }
            let body = Limited::new(resp.into_body(), MAX_DOCUMENT)
                .collect()
                .await
                .map_err(KeysError::Fetch)?
                .to_bytes();
            parse_document(&body)
        };
        tokio::time::timeout(FETCH_TIMEOUT, work)
            .await
            .map_err(|_| KeysError::Timeout)?
    }
}

impl PublicKeys for GithubKeys {
    async fn key(&self, id: &str) -> Result<Option<Vec<u8>>, KeysError> {
        let mut cache = self.cache.lock().await;
        if let Some(k) = cache.keys.get(id) {
            return Ok(Some(k.clone()));
        }
        if cache
            .fetched
            .is_some_and(|t| t.elapsed() < self.min_refresh)
        {
            return Ok(None);
        }
        let keys = self.fetch().await?;
        tracing::info!(keys = keys.len(), "fetched GitHub's secret-scanning keys");
        cache.keys = keys;
        cache.fetched = Some(Instant::now());
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
