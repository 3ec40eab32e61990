//! `Idempotency-Key` on create and roll (the IETF httpapi draft "The
//! Idempotency-Key HTTP Header Field"; Stripe's practice).
//!
//! A repeat of a request — same account, same header value, same method,
//! path and body, within 24 hours — gets the first request's answer, byte
//! for byte in its body, with `Idempotent-Replayed: true`; the secret it
//! showed included. The store never holds that answer readably: it is
//! sealed with AES-256-GCM under a key derived (HKDF-SHA-256) from the
//! client's header value, which only the client has; the store keeps a
//! SHA-256 of the value and the account (to find the entry), the request's
//! fingerprint, the time, and the ciphertext. So the header value must be
//! unguessable (a UUIDv4, say): whoever knows it and the account can replay
//! the answer, exactly as the client can.
//!
//! Another body or path with the same value → 422; the same value while the
//! first request runs → 409 (its claim lapses after 30 s if it crashed).

use apikeys::AccountId;
use apikeys::KeyRecord;
use apikeys::idempotency::{Claim, Completion, EntryId, Fingerprint, IdempotencyStore, Sealed};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use lambda_http::http::header::HeaderName;
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{ApiError, Reply};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The header a replayed answer carries.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Lengths a value may have, in characters.
pub const MIN_LEN: usize = 16;
pub const MAX_LEN: usize = 255;

/// A request's `Idempotency-Key`, bound to its caller's account and to the
/// request it came with.
pub struct IdempotencyKey {
    value: String,
    account: AccountId,
    pub entry: EntryId,
    pub fingerprint: Fingerprint,
}

impl std::fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The value is the client's secret: never printed.
        f.debug_struct("IdempotencyKey")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// The header's value, when the request has one: 16–255 printable ASCII
/// characters, bare or as a quoted string (`"…"`, the draft's form).
/// Present but malformed, or repeated: 400.
pub fn header_value(req: &Request) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all(HEADER).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::InvalidIdempotencyKey);
    }
    let text = first
        .to_str()
        .map_err(|_| ApiError::InvalidIdempotencyKey)?
        .trim();
    let text = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner,
        None => text,
    };
    let printable = text.bytes().all(|b| (0x20..0x7f).contains(&b));
    if !printable || !(MIN_LEN..=MAX_LEN).contains(&text.len()) || text.contains('"') {
        return Err(ApiError::InvalidIdempotencyKey);
    }
    Ok(Some(text.to_owned()))
}

impl IdempotencyKey {
    /// The request's key, if it has one: found under `account` for the
    /// request `method` `path` with this `body`.
    pub fn from_request(
        req: &Request,
        account: &AccountId,
        path: &str,
    ) -> Result<Option<IdempotencyKey>, ApiError> {
        let Some(value) = header_value(req)? else {
            return Ok(None);
        };
        let body: &[u8] = match req.body() {
            Body::Text(t) => t.as_bytes(),
            Body::Binary(b) => b,
            _ => &[],
        };
        Ok(Some(IdempotencyKey::new(
            value,
            account,
            req.method().as_str(),
            path,
            body,
        )))
    }

    pub fn new(
        value: String,
        account: &AccountId,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> IdempotencyKey {
        let entry = Sha256::new()
            .chain_update(b"prolinksqr idempotency entry v1\0")
            .chain_update(account.as_str())
            .chain_update(b"\0")
            .chain_update(value.as_bytes())
            .finalize();
        let fingerprint = Sha256::new()
            .chain_update(b"prolinksqr request v1\0")
            .chain_update(method)
            .chain_update(b"\0")
            .chain_update(path)
            .chain_update(b"\0")
            .chain_update(body)
            .finalize();
        IdempotencyKey {
            value,
            account: account.clone(),
            entry: EntryId(entry.into()),
            fingerprint: Fingerprint(fingerprint.into()),
        }
    }

    /// The AEAD key: HKDF-SHA-256 of the client's value, salted with the
    /// account; the additional data binds a sealed answer to its entry and
    /// request.
    fn cipher(&self) -> Result<LessSafeKey, ApiError> {
        let salt = Salt::new(
            HKDF_SHA256,
            format!("prolinksqr idempotency v1\0{}", self.account).as_bytes(),
        );
        let prk = salt.extract(self.value.as_bytes());
        let okm = prk
            .expand(&[b"answer"], &AES_256_GCM)
            .map_err(|_| ApiError::Sealing)?;
        let key = UnboundKey::from(okm);
        Ok(LessSafeKey::new(key))
    }

    fn aad(&self) -> Vec<u8> {
        [self.entry.0.as_slice(), self.fingerprint.0.as_slice()].concat()
    }

    /// Seals `reply` (status, headers, body text) for the store.
    pub fn seal(&self, reply: &Reply) -> Result<Sealed, ApiError> {
        let headers: Vec<Value> = reply
            .headers
            .iter()
            .filter_map(|(n, v)| Some(json!([n.as_str(), v.to_str().ok()?])))
            .collect();
        let plain = json!({
            "status": reply.status.as_u16(),
            "headers": headers,
            "body": reply.body_text(),
        })
        .to_string();
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ApiError::Sealing)?;
        let mut in_out = plain.into_bytes();
        self.cipher()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.aad()),
                &mut in_out,
            )
            .map_err(|_| ApiError::Sealing)?;
        Ok(Sealed {
            nonce: nonce.to_vec(),
            ciphertext: in_out,
        })
    }

    /// The first answer, from what the store kept, marked as a replay.
    pub fn open(&self, sealed: &Sealed) -> Result<Reply, ApiError> {
        let nonce =
            Nonce::try_assume_unique_for_key(&sealed.nonce).map_err(|_| ApiError::Sealing)?;
        let mut in_out = sealed.ciphertext.clone();
        let plain = self
            .cipher()?
            .open_in_place(nonce, Aad::from(self.aad()), &mut in_out)
            .map_err(|_| ApiError::Sealing)?;
        let answer: Value = serde_json::from_slice(plain).map_err(|_| ApiError::Sealing)?;
        let status = answer["status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or(ApiError::Sealing)?;
        let mut reply = Reply {
            status,
            body: None,
            text: answer["body"].as_str().map(str::to_owned),
            headers: Vec::new(),
            flush_cache: false,
        };
        for h in answer["headers"].as_array().into_iter().flatten() {
            let (Some(n), Some(v)) = (h[0].as_str(), h[1].as_str()) else {
                continue;
            };
            if let (Ok(n), Ok(v)) = (HeaderName::try_from(n), HeaderValue::from_str(v)) {
                reply.headers.push((n, v));
            }
        }
        Ok(reply.header(REPLAYED, HeaderValue::from_static("true")))
    }
}

/// What a request with a key starts with.
pub enum Begun {
    /// The first request's answer: send it, do nothing else.
    Replay(Reply),
    /// This request holds the key now; its change completes the entry.
    Claimed(String),
}

/// Claims `key` at `now`, or answers from what the first request left:
/// its answer (replayed), 422 for another request, 409 while it runs.
pub async fn begin<S: IdempotencyStore>(
    store: &S,
    key: &IdempotencyKey,
    now: apikeys::Timestamp,
) -> Result<Begun, ApiError> {
    match store.claim(&key.entry, &key.fingerprint, now).await? {
        Claim::Claimed(token) => Ok(Begun::Claimed(token)),
        Claim::Replay(sealed) => key.open(&sealed).map(Begun::Replay),
        Claim::Mismatch => Err(ApiError::IdempotencyKeyReused),
        Claim::InFlight => Err(ApiError::IdempotencyInProgress),
    }
}

/// After a change that failed: gives the claim up so the client can try
/// again at once (a committed change's entry is complete and stays).
/// Best effort: a failure is logged, and the claim lapses by itself.
pub async fn abandon<S: IdempotencyStore>(store: &S, key: &IdempotencyKey, token: &str) {
    if let Err(err) = store.release(&key.entry, token).await {
        tracing::warn!(error = %apikeys::error_chain(&err), "could not release an Idempotency-Key claim; it lapses by itself");
    }
}

/// Runs a create or roll under an optional `Idempotency-Key`: without one,
/// `work(None)`; with one, claim (or replay), then `work` with the
/// completion that seals `answer(record)` into the entry in the change's
/// own transaction, and `answer` of the committed record.
pub async fn run<S, W>(
    store: &S,
    key: Option<&IdempotencyKey>,
    now: apikeys::Timestamp,
    answer: &(dyn Fn(&KeyRecord) -> Reply + Send + Sync),
    work: W,
) -> Result<Reply, ApiError>
where
    S: IdempotencyStore,
    W: AsyncFnOnce(Option<&Completion<'_>>) -> Result<KeyRecord, apikeys::StoreError>,
{
    let Some(key) = key else {
        return Ok(answer(&work(None).await?));
    };
    let token = match begin(store, key, now).await? {
        Begun::Replay(reply) => return Ok(reply),
        Begun::Claimed(token) => token,
    };
    let seal = |record: &KeyRecord| {
        key.seal(&answer(record))
            .map_err(|_| apikeys::StoreError::Corrupt("sealing the answer failed".to_owned()))
    };
    let completion = Completion {
        entry: key.entry,
        token: token.clone(),
        seal: &seal,
    };
    match work(Some(&completion)).await {
        Ok(record) => Ok(answer(&record)),
        Err(err) => {
            abandon(store, key, &token).await;
            Err(err.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(value: &str, account: &str, body: &[u8]) -> IdempotencyKey {
        IdempotencyKey::new(
            value.to_owned(),
            &AccountId::parse(account).unwrap(),
            "POST",
            "/apikeys",
            body,
        )
    }

    fn reply() -> Reply {
        Reply::json(StatusCode::CREATED, json!({"key": "key-secret", "id": "x"})).header(
            lambda_http::http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        )
    }

    #[test]
    fn an_answer_opens_only_with_the_same_value_account_and_request() {
        let k = key("0123456789abcdef-value", "acct-a", b"{}");
        let sealed = k.seal(&reply()).unwrap();
        let text = String::from_utf8_lossy(&sealed.ciphertext);
        assert!(!text.contains("key-secret"), "sealed, not readable");
        let opened = k.open(&sealed).unwrap();
        assert_eq!(opened.status, StatusCode::CREATED);
        assert_eq!(opened.body_text(), reply().body_text());
        assert!(
            opened
                .headers
                .iter()
                .any(|(n, v)| n == REPLAYED && v == "true")
        );
        assert!(
            opened
                .headers
                .iter()
                .any(|(n, v)| n == "cache-control" && v == "no-store")
        );
        for other in [
            key("0123456789abcdef-other", "acct-a", b"{}"),
            key("0123456789abcdef-value", "acct-b", b"{}"),
            key("0123456789abcdef-value", "acct-a", b"{ }"),
        ] {
            assert!(other.open(&sealed).is_err());
        }
    }

    #[test]
    fn entries_are_per_account_and_fingerprints_per_request() {
        let a = key("0123456789abcdef-value", "acct-a", b"{}");
        let b = key("0123456789abcdef-value", "acct-b", b"{}");
        let c = key("0123456789abcdef-value", "acct-a", b"{\"name\":1}");
        assert_ne!(a.entry, b.entry);
        assert_eq!(a.entry, c.entry);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert!(!format!("{a:?}").contains("0123456789abcdef"));
    }
}
