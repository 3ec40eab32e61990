//! Key material: generation, offline validation, hashing, prefix and mask.
//!
//! Format: `key-` + 34-character base62 body + 6-character base62 CRC32 of the
//! body (fixed width, most significant digit first), 44 characters in all.
//! The body carries 34 · log2(62) ≈ 202 bits from the OS-seeded CSPRNG; the
//! displayed prefix shows 6 of them, so the hidden part keeps ≈ 166 bits.

use std::fmt;

use rand::Rng;
use sha2::{Digest, Sha256};

/// What every key starts with.
pub const KEY_PREFIX: &str = "key-";
/// Length of the random body.
pub const BODY_LEN: usize = 34;
/// Length of the base62 CRC32 checksum (62^6 > 2^32).
pub const CHECKSUM_LEN: usize = 6;
/// Total length of a key.
pub const KEY_LEN: usize = KEY_PREFIX.len() + BODY_LEN + CHECKSUM_LEN;
/// How many body characters the displayed prefix shows.
pub const PREFIX_BODY_CHARS: usize = 6;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The plaintext API key. `Debug` and `Display` redact it, so it cannot reach
/// a log by accident; [`ApiKey::expose_secret`] is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

/// Why a presented string is not a well-formed key. Decided without I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("the key does not start with `key-`")]
    Prefix,
    #[error("the key is not {KEY_LEN} characters long")]
    Length,
    #[error("the key has a character outside [0-9A-Za-z]")]
    Alphabet,
    #[error("the key's checksum does not match")]
    Checksum,
}

impl ApiKey {
    /// A new key: body from the OS-seeded CSPRNG (`rand`'s `ThreadRng`,
    /// ChaCha12 seeded and periodically reseeded from the OS), then checksum.
    pub fn generate() -> ApiKey {
        let mut rng = rand::rng();
        let mut key = String::with_capacity(KEY_LEN);
        key.push_str(KEY_PREFIX);
        for _ in 0..BODY_LEN {
            key.push(BASE62[rng.random_range(0..BASE62.len())] as char);
        }
        let checksum = checksum(&key.as_bytes()[KEY_PREFIX.len()..]);
        key.extend(checksum.iter().map(|&b| char::from(b)));
        ApiKey(key)
    }

    /// Validates a presented key offline: prefix, length, alphabet, checksum.
    pub fn parse(presented: &str) -> Result<ApiKey, KeyFormatError> {
        // Length first: an over-long value is rejected before anything reads it.
        if presented.len() != KEY_LEN {
            return Err(if presented.starts_with(KEY_PREFIX) {
                KeyFormatError::Length
            } else {
                KeyFormatError::Prefix
            });
        }
        let rest = presented
            .strip_prefix(KEY_PREFIX)
            .ok_or(KeyFormatError::Prefix)?;
        if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(KeyFormatError::Alphabet);
        }
        let (body, sum) = rest.as_bytes().split_at(BODY_LEN);
        if checksum(body) != sum {
            return Err(KeyFormatError::Checksum);
        }
        Ok(ApiKey(presented.to_owned()))
    }

    /// The plaintext key. Only the create response may carry it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the full key: the only thing ever stored.
    pub fn hash(&self) -> KeyHash {
        KeyHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// `key-` plus the first [`PREFIX_BODY_CHARS`] characters of the body.
    pub fn display_prefix(&self) -> String {
        self.0[..KEY_PREFIX.len() + PREFIX_BODY_CHARS].to_owned()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([REDACTED])")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// The masked form shown for a key: its prefix, then `*` for every hidden
/// character, so it is as long as the key and reveals no more than the prefix.
pub fn masked(prefix: &str) -> String {
    let hidden = KEY_LEN.saturating_sub(prefix.len());
    let mut out = String::with_capacity(KEY_LEN);
    out.push_str(prefix);
    out.extend(std::iter::repeat_n('*', hidden));
    out
}

/// SHA-256 of a key. `Debug` shows only a short, unsearchable stub; the full
/// hex form is for storage keys only ([`KeyHash::to_hex`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<KeyHash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(KeyHash(out))
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({:02x}…)", self.0[0])
    }
}

/// CRC32 (IEEE) of `body`, as 6 base62 digits, most significant first.
fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32fast::hash(body);
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// A random base62 string of `len` characters (for ids), from the same CSPRNG.
pub(crate) fn random_base62(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn known_answer_sha256() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1, through the same hashing path.
        let key = ApiKey("abc".to_owned());
        assert_eq!(
            key.hash().to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // And a real-format key, pinned to values computed apart from this
        // code (Python's zlib.crc32 and hashlib.sha256), so neither the
        // checksum nor the stored form can drift.
        assert_eq!(fixed_key(), "key-0123456789abcdefghijABCDEFGHIJklmn0ODjlX");
        let key = ApiKey::parse(&fixed_key()).unwrap();
        assert_eq!(
            key.hash().to_hex(),
            "fadbba5c5f33d2443854b50ced60125d5ab5c47f1516575c91d749a83901f301"
        );
    }

    fn fixed_key() -> String {
        let body = "0123456789abcdefghijABCDEFGHIJklmn";
        let sum = checksum(body.as_bytes());
        format!("key-{body}{}", std::str::from_utf8(&sum).unwrap())
    }

    #[test]
    fn known_answer_checksum() {
        // CRC32("123456789") = 0xCBF43926, the standard check value; decode
        // the six base62 digits back to a number and compare.
        let sum = checksum(b"123456789");
        let mut n: u64 = 0;
        for &c in &sum {
            n = n * 62 + BASE62.iter().position(|&b| b == c).unwrap() as u64;
        }
        assert_eq!(n, 0xCBF4_3926);
    }

    #[test]
    fn generated_keys_have_the_format_and_validate() {
        for _ in 0..1000 {
            let key = ApiKey::generate();
            let s = key.expose_secret();
            assert_eq!(s.len(), KEY_LEN);
            assert!(s.starts_with("key-"));
            assert_eq!(ApiKey::parse(s), Ok(key.clone()));
        }
    }

    #[test]
    fn generated_keys_are_unique_over_a_large_sample() {
        let n = 100_000;
        let keys: HashSet<String> = (0..n)
            .map(|_| ApiKey::generate().expose_secret().to_owned())
            .collect();
        assert_eq!(keys.len(), n);
    }

    #[test]
    fn every_single_character_substitution_fails_validation() {
        let alphabet: Vec<char> = ('\u{20}'..='\u{7e}').collect();
        for _ in 0..20 {
            let key = ApiKey::generate();
            let s: Vec<char> = key.expose_secret().chars().collect();
            for i in 0..s.len() {
                for &c in &alphabet {
                    if c == s[i] {
                        continue;
                    }
                    let mut t = s.clone();
                    t[i] = c;
                    let t: String = t.into_iter().collect();
                    assert!(ApiKey::parse(&t).is_err(), "{i} {c:?} accepted");
                }
            }
        }
    }

    #[test]
    fn malformed_keys_get_typed_errors() {
        let good = ApiKey::generate().expose_secret().to_owned();
        assert_eq!(ApiKey::parse(""), Err(KeyFormatError::Prefix));
        assert_eq!(ApiKey::parse("Bearer"), Err(KeyFormatError::Prefix));
        assert_eq!(
            ApiKey::parse(&good.replacen("key-", "KEY-", 1)),
            Err(KeyFormatError::Prefix)
        );
        assert_eq!(
            ApiKey::parse(&good[..KEY_LEN - 1]),
            Err(KeyFormatError::Length)
        );
        assert_eq!(
            ApiKey::parse(&format!("{good}x")),
            Err(KeyFormatError::Length)
        );
        assert_eq!(
            ApiKey::parse(&"key-".repeat(10_000)),
            Err(KeyFormatError::Length)
        );
        let mut bad = good.clone();
        bad.replace_range(10..11, "_");
        assert_eq!(ApiKey::parse(&bad), Err(KeyFormatError::Alphabet));
        // A multi-byte character of the same byte length as a key character pair.
        let mut bad = good.clone();
        bad.replace_range(10..12, "é");
        assert_eq!(ApiKey::parse(&bad), Err(KeyFormatError::Alphabet));
        let mut bad = good.into_bytes();
        bad[5] = if bad[5] == b'a' { b'b' } else { b'a' };
        assert_eq!(
            ApiKey::parse(&String::from_utf8(bad).unwrap()),
            Err(KeyFormatError::Checksum)
        );
    }

    #[test]
    fn debug_and_display_redact_the_key() {
        let key = ApiKey::generate();
        let body = &key.expose_secret()[4..12];
        assert!(!format!("{key:?}").contains(body));
        assert!(!format!("{key}").contains(body));
        assert!(!format!("{:?}", key.hash()).contains(&key.hash().to_hex()[..8]));
    }

    #[test]
    fn prefix_and_mask_reveal_only_the_prefix() {
        let key = ApiKey::generate();
        let prefix = key.display_prefix();
        assert_eq!(prefix.len(), 4 + PREFIX_BODY_CHARS);
        assert!(key.expose_secret().starts_with(&prefix));
        let m = masked(&prefix);
        assert_eq!(m.len(), KEY_LEN);
        assert!(m.starts_with(&prefix));
        assert!(m[prefix.len()..].chars().all(|c| c == '*'));
    }

    #[test]
    fn hash_hex_round_trips() {
        let h = ApiKey::generate().hash();
        assert_eq!(KeyHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(KeyHash::from_hex("zz"), None);
    }
}
