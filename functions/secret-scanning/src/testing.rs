//! Test helpers (feature `test-util`): P-256 signing keys made on the spot,
//! and a fake GitHub key server on loopback that serves their public keys
//! and counts its fetches.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::json;

use crate::keys::P256_SPKI_HEADER;

/// A signing key, as GitHub holds one.
pub struct Signer {
    pub id: String,
    pair: EcdsaKeyPair,
}

impl Signer {
    pub fn generate(id: &str) -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = match EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng) {
            Ok(d) => d,
            Err(e) => panic!("cannot make a P-256 key: {e}"),
        };
        match EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()) {
            Ok(pair) => Signer {
                id: id.to_owned(),
                pair,
            },
            Err(e) => panic!("cannot read the P-256 key: {e}"),
        }
    }

    /// The public key as GitHub publishes it: a PEM `PUBLIC KEY`.
    pub fn pem(&self) -> String {
        let mut der = P256_SPKI_HEADER.to_vec();
        der.extend_from_slice(self.pair.public_key().as_ref());
        let b64 = STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    /// The `Github-Public-Key-Signature` of `body`: base64 DER.
    pub fn sign(&self, body: &[u8]) -> String {
        match self.pair.sign(&SystemRandom::new(), body) {
            Ok(sig) => STANDARD.encode(sig.as_ref()),
            Err(e) => panic!("cannot sign: {e}"),
        }
    }
}

/// A fake `https://api.github.com/meta/public_keys/secret_scanning`.
pub struct KeyServer {
    pub url: String,
    document: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
    not_modified: Arc<AtomicUsize>,
}

/// The document's entity tag, as GitHub sends one.
fn etag(doc: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(doc, &mut h);
    format!("\"{:016x}\"", std::hash::Hasher::finish(&h))
}

fn document(signers: &[&Signer]) -> String {
    let keys: Vec<_> = signers
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"key_identifier": s.id, "key": s.pem(), "is_current": i == 0}))
        .collect();
    json!({"public_keys": keys}).to_string()
}

impl KeyServer {
    /// Serves the public keys of `signers` (the first is current).
    pub async fn start(signers: &[&Signer]) -> KeyServer {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("cannot bind a loopback port: {e}"),
        };
        let url = match listener.local_addr() {
            Ok(a) => format!("http://{a}/meta/public_keys/secret_scanning"),
            Err(e) => panic!("no local address: {e}"),
        };
        let doc = Arc::new(Mutex::new(document(signers)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let not_modified = Arc::new(AtomicUsize::new(0));
        let (served, counted, unchanged) = (doc.clone(), fetches.clone(), not_modified.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (served, counted, unchanged) =
                    (served.clone(), counted.clone(), unchanged.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        let body = served.lock().map(|d| d.clone()).unwrap_or_default();
                        let tag = etag(&body);
                        let matched = req
                            .headers()
                            .get("if-none-match")
                            .is_some_and(|v| v.as_bytes() == tag.as_bytes());
                        if matched {
                            unchanged.fetch_add(1, Ordering::SeqCst);
                        }
                        async move {
                            let mut resp = if matched {
                                let mut r = hyper::Response::new(Full::new(Bytes::new()));
                                *r.status_mut() = hyper::StatusCode::NOT_MODIFIED;
                                r
                            } else {
                                hyper::Response::new(Full::new(Bytes::from(body)))
                            };
                            resp.headers_mut().insert(
                                "content-type",
                                hyper::header::HeaderValue::from_static("application/json"),
                            );
                            if let Ok(v) = hyper::header::HeaderValue::from_str(&tag) {
                                resp.headers_mut().insert("etag", v);
                            }
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        KeyServer {
            url,
            document: doc,
            fetches,
            not_modified,
        }
    }

    /// Serves another set of keys from now on (GitHub rotated its keys).
    pub fn rotate(&self, signers: &[&Signer]) {
        if let Ok(mut d) = self.document.lock() {
            *d = document(signers);
        }
    }

    /// How many times the keys were fetched (304s included).
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// How many fetches were answered 304 Not Modified.
    pub fn not_modified(&self) -> usize {
        self.not_modified.load(Ordering::SeqCst)
    }
}
