//! Digests of opaque tokens: only these are ever stored or looked up, never the token.
//!
//! Schemes, recorded per record together with the pepper id:
//! - `blake3`: keyed BLAKE3 of the token text, keyed by `derive_key(CONTEXT, pepper)` (the default);
//! - `hmac-sha256`: HMAC-SHA256 of the token text with the pepper as key (imported stores);
//! - `sha256`: plain SHA-256 of the token text (imported stores; no pepper);
//! - `sha256-b64url`: plain SHA-256 of the base64url-decoded token (the shape of Phoenix's
//!   `phx.gen.auth`, which hashes the 32 raw bytes it sends as unpadded base64url).
//!
//! Lookups always start with the current scheme (`blake3` under the current pepper); the others are
//! tried only on a miss, and a record found through them is re-keyed to the current scheme by the shell.

use aws_lc_rs::{digest, hmac};
use base64::Engine;

use crate::error::{Error, ErrorKind, Result};

/// Domain separation for the BLAKE3 key derived from a pepper.
const CONTEXT: &str = "bastion 2026-11-27 opaque token digest v1";
/// The shortest pepper accepted: 256 bits.
pub const PEPPER_MIN_BYTES: usize = 32;
/// The longest pepper id accepted.
pub const PEPPER_ID_MAX: usize = 64;
/// Bytes in every digest.
pub const DIGEST_BYTES: usize = 32;

/// A stored digest.
pub type Digest = [u8; DIGEST_BYTES];

/// How a digest was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Keyed BLAKE3 (the default).
    Blake3,
    /// HMAC-SHA256 keyed by the pepper.
    HmacSha256,
    /// Plain SHA-256 of the token text.
    Sha256,
    /// Plain SHA-256 of the base64url-decoded token (phx.gen.auth).
    Sha256B64Url,
}

impl Scheme {
    /// Every scheme.
    pub const ALL: [Scheme; 4] = [Scheme::Blake3, Scheme::HmacSha256, Scheme::Sha256, Scheme::Sha256B64Url];

    /// The name stored in the `scheme` column.
    pub const fn name(self) -> &'static str {
        match self {
            Scheme::Blake3 => "blake3",
            Scheme::HmacSha256 => "hmac-sha256",
            Scheme::Sha256 => "sha256",
            Scheme::Sha256B64Url => "sha256-b64url",
        }
    }

    /// Whether the scheme uses a pepper.
    pub const fn keyed(self) -> bool {
        matches!(self, Scheme::Blake3 | Scheme::HmacSha256)
    }

    /// Parse a stored scheme name.
    pub fn from_name(name: &str) -> Option<Scheme> {
        Scheme::ALL.into_iter().find(|s| s.name() == name)
    }
}

struct Pepper {
    id: String,
    blake3_key: [u8; 32],
    hmac_key: hmac::Key,
}

/// One digest to look up: scheme, pepper id (keyed schemes) and the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The scheme.
    pub scheme: Scheme,
    /// The pepper id, for keyed schemes.
    pub pepper_id: Option<String>,
    /// The digest.
    pub digest: Digest,
}

/// The configured peppers, the current one first. Holds key material: no `Debug`, no `Display`.
pub struct Digester {
    peppers: Vec<Pepper>,
}

impl Digester {
    /// Build from `(id, pepper)` pairs and the current id. Peppers shorter than 32 bytes are weak keys.
    pub fn new(peppers: &[(String, Vec<u8>)], current: &str) -> Result<Self> {
        if peppers.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidConfiguration,
                "at least one pepper is required",
            ));
        }
        let mut out: Vec<Pepper> = Vec::with_capacity(peppers.len());
        for (id, secret) in peppers {
            if id.is_empty() || id.len() > PEPPER_ID_MAX || !id.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::new(
                    ErrorKind::InvalidConfiguration,
                    "a pepper id must be 1-64 printable ASCII characters",
                ));
            }
            if secret.len() < PEPPER_MIN_BYTES {
                return Err(Error::new(ErrorKind::WeakKey, "a pepper must be at least 32 bytes"));
            }
            let pepper = Pepper {
                id: id.clone(),
                blake3_key: blake3::derive_key(CONTEXT, secret),
                hmac_key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            };
            if id == current {
                out.insert(0, pepper);
            } else {
                out.push(pepper);
            }
        }
        if out[0].id != current {
            return Err(Error::new(
                ErrorKind::InvalidConfiguration,
                "the current pepper id is not among the configured peppers",
            ));
        }
        Ok(Digester { peppers: out })
    }

    /// The current pepper id.
    pub fn current_id(&self) -> &str {
        &self.peppers[0].id
    }

    /// The configured pepper ids, the current one first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.peppers.iter().map(|p| p.id.as_str())
    }

    /// The digest under the current scheme and pepper: the index key.
    #[inline]
    pub fn current(&self, token: &[u8]) -> Digest {
        *blake3::keyed_hash(&self.peppers[0].blake3_key, token).as_bytes()
    }

    /// Every other digest a record of this token may be stored under, for a backend lookup after a
    /// miss: older peppers, HMAC-SHA256, plain SHA-256, and (for tokens outside bastion's format)
    /// SHA-256 of the base64url-decoded bytes.
    pub fn candidates(&self, token: &[u8], foreign: bool) -> Vec<Candidate> {
        let mut out = Vec::with_capacity(2 * self.peppers.len() + 2);
        for p in &self.peppers {
            out.push(Candidate {
                scheme: Scheme::Blake3,
                pepper_id: Some(p.id.clone()),
                digest: *blake3::keyed_hash(&p.blake3_key, token).as_bytes(),
            });
        }
        for p in &self.peppers {
            out.push(Candidate {
                scheme: Scheme::HmacSha256,
                pepper_id: Some(p.id.clone()),
                digest: to_digest(hmac::sign(&p.hmac_key, token).as_ref()),
            });
        }
        out.push(Candidate {
            scheme: Scheme::Sha256,
            pepper_id: None,
            digest: sha256(token),
        });
        if foreign {
            if let Ok(raw) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token) {
                out.push(Candidate {
                    scheme: Scheme::Sha256B64Url,
                    pepper_id: None,
                    digest: sha256(&raw),
                });
            }
        }
        out
    }
}

/// Plain SHA-256.
pub fn sha256(data: &[u8]) -> Digest {
    to_digest(digest::digest(&digest::SHA256, data).as_ref())
}

fn to_digest(bytes: &[u8]) -> Digest {
    let mut out = [0u8; DIGEST_BYTES];
    out.copy_from_slice(bytes);
    out
}

/// Constant-time equality of two digests (the index's final comparison): four 64-bit words through
/// `subtle`, which is as constant-time as 32 bytes one by one and an eighth of the optimisation barriers.
#[inline]
pub fn digests_equal(a: &Digest, b: &Digest) -> bool {
    use subtle::ConstantTimeEq;
    let word = |d: &Digest, i: usize| u64::from_le_bytes(d[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let mut eq = subtle::Choice::from(1u8);
    for i in 0..4 {
        eq &= word(a, i).ct_eq(&word(b, i));
    }
    bool::from(eq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peppers() -> Vec<(String, Vec<u8>)> {
        vec![("old".into(), vec![1u8; 32]), ("new".into(), vec![2u8; 40])]
    }

    #[test]
    fn constant_time_compare_is_equality() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(digests_equal(&a, &b));
        for i in 0..32 {
            b[i] ^= 1;
            assert!(!digests_equal(&a, &b), "byte {i}");
            b[i] ^= 1;
        }
    }

    #[test]
    fn current_pepper_comes_first_and_keys_differ() {
        let d = Digester::new(&peppers(), "new").unwrap();
        assert_eq!(d.current_id(), "new");
        assert_eq!(d.ids().collect::<Vec<_>>(), ["new", "old"]);
        let c = d.candidates(b"tok", false);
        assert_eq!(c[0].digest, d.current(b"tok"));
        assert_eq!(c.len(), 5);
        let digests: std::collections::HashSet<_> = c.iter().map(|c| c.digest).collect();
        assert_eq!(digests.len(), 5, "every scheme/pepper gives a distinct digest");
        let old = Digester::new(&peppers(), "old").unwrap();
        assert_eq!(old.current(b"tok"), c[1].digest);
    }

    #[test]
    fn known_vectors() {
        // SHA-256("abc") from FIPS 180-2
        assert_eq!(
            sha256(b"abc")[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "sha256 is the standard function"
        );
        let d = Digester::new(&peppers(), "new").unwrap();
        // phx.gen.auth: sha256 over the 32 raw bytes the client holds as unpadded base64url
        let raw = [9u8; 32];
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let c = d.candidates(b64.as_bytes(), true);
        assert_eq!(c.last().unwrap().scheme, Scheme::Sha256B64Url);
        assert_eq!(c.last().unwrap().digest, sha256(&raw));
    }

    #[test]
    fn bad_configuration() {
        assert_eq!(
            Digester::new(&[], "x").err().unwrap().kind,
            ErrorKind::InvalidConfiguration
        );
        let short = vec![("p".to_string(), vec![0u8; 31])];
        assert_eq!(Digester::new(&short, "p").err().unwrap().kind, ErrorKind::WeakKey);
        assert_eq!(
            Digester::new(&peppers(), "missing").err().unwrap().kind,
            ErrorKind::InvalidConfiguration
        );
        let bad_id = vec![(String::new(), vec![0u8; 32])];
        assert!(Digester::new(&bad_id, "").is_err());
        for s in Scheme::ALL {
            assert_eq!(Scheme::from_name(s.name()), Some(s));
        }
    }
}
