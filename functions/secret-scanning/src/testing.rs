//! Test helpers (feature `test-util`): P-256 signing keys made on the spot,
//! and a fake GitHub key server on loopback that serves their public keys
//! and counts its fetches.

use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use fake_http::{Answer, FakeHttp};
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
    server: FakeHttp,
    document: Arc<Mutex<String>>,
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
        let document = Arc::new(Mutex::new(document(signers)));
        let served = document.clone();
        let server = FakeHttp::start(move |req| {
            let body = served.lock().map(|d| d.clone()).unwrap_or_default();
            let tag = etag(&body);
            let answer = if req.header("if-none-match") == Some(tag.as_str()) {
                Answer::status(304).header("content-type", "application/json")
            } else {
                Answer::json(200, body)
            };
            async move { answer.header("etag", tag) }
        })
        .await;
        KeyServer {
            url: format!("{}/meta/public_keys/secret_scanning", server.url),
            server,
            document,
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
        self.server.count()
    }

    /// How many fetches were answered 304 Not Modified.
    pub fn not_modified(&self) -> usize {
        self.server
            .statuses()
            .iter()
            .filter(|s| **s == Some(304))
            .count()
    }
}
