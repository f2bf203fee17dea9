//! Keys: loading (raw HMAC secrets, PEM, generation), hygiene at load time, and the per-algorithm
//! verification and signing material built from them. JWK and JWKS live in `jwk.rs`.
//!
//! Hygiene (RFC 8725 §3.5, DESIGN §7), all at load time as `weak_key` / `invalid_key`: RSA moduli of
//! 2048–8192 bits with an odd public exponent of 3 to 33 bits; HMAC secrets at least as long as the hash (32 bytes
//! at load, the exact size of every allowed alg when a verifier or signer is built); EC points on the
//! named curve (aws-lc checks; the NIST curves have no other small subgroup, and the point at
//! infinity has no uncompressed encoding); Ed25519 only among the OKP curves, with a canonical point
//! not of small order; a `kid` the verifier can look up (at most `header::MAX_KID_LEN` bytes). A JWK whose `use` is not `sig`, or
//! whose `key_ops` lacks `verify`, loads but is never used to verify.
//!
//! Key material never appears in `Debug` output or messages.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use aws_lc_rs::hmac;
use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ParsedPublicKey, RsaKeyPair};
use spki::der::Decode as _;

use crate::error::{Error, Result};
use crate::jwt::alg::{Alg, Curve, Family};
use crate::jwt::crypto::{ec_sign_alg, ec_verify_alg, hmac_alg, rsa_params, MacKey, Signing, Verifying};
use crate::jwt::header::check_kid;

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";

/// Smallest and largest RSA modulus accepted, in bits.
pub const RSA_MIN_BITS: usize = 2048;
pub const RSA_MAX_BITS: usize = 8192;
/// Largest RSA public exponent accepted, in bits: aws-lc (as BoringSSL, `kMaxExponentBits`) refuses
/// to verify with a larger one, so such a key would load and then fail every token. This also keeps
/// `e` far below `n`.
pub const RSA_MAX_EXPONENT_BITS: usize = 33;

/// The eight points of small order on edwards25519 (the torsion subgroup), in their canonical
/// encodings (little-endian y, the sign of x in the top bit): the identity (0, 1); (0, -1) of order 2;
/// (±√-1, 0) of order 4 (the first, all zero, is what a publisher that forgot to fill `x` emits); and
/// the four points of order 8. With any of them as the public key, R = B and S = 1 verifies for many
/// messages (for the identity, every message): no private key is needed to forge.
const ED25519_SMALL_ORDER: [[u8; 32]; 8] = [
    hex32("0100000000000000000000000000000000000000000000000000000000000000"),
    hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex32("0000000000000000000000000000000000000000000000000000000000000000"),
    hex32("0000000000000000000000000000000000000000000000000000000000000080"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
];

/// p = 2^255 - 19, little-endian: a canonical encoding has y < p.
const ED25519_P: [u8; 32] = hex32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");

/// 64 hex digits as 32 bytes, at compile time.
const fn hex32(hex: &str) -> [u8; 32] {
    const fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            _ => c - b'a' + 10,
        }
    }
    let h = hex.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = digit(h[2 * i]) << 4 | digit(h[2 * i + 1]);
        i += 1;
    }
    out
}

/// Ed25519 public-key hygiene: 32 bytes, a canonical encoding (y < p, and no sign bit on a point
/// whose x is 0), not one of the small-order points, and a point aws-lc accepts.
pub(crate) fn check_ed25519(public: &[u8]) -> Result<()> {
    let Ok(point) = <&[u8; 32]>::try_from(public) else {
        return Err(Error::invalid_key("an Ed25519 public key is 32 bytes"));
    };
    let mut y = *point;
    y[31] &= 0x7f;
    // little-endian comparison: from the most significant byte down
    if y.iter().rev().cmp(ED25519_P.iter().rev()) != std::cmp::Ordering::Less {
        return Err(Error::invalid_key("the Ed25519 public key is not canonically encoded"));
    }
    // matched whatever the sign bit: x = 0 with the sign bit set is a non-canonical small-order point
    if ED25519_SMALL_ORDER
        .iter()
        .any(|p| p[..31] == y[..31] && p[31] & 0x7f == y[31])
    {
        return Err(Error::weak_key(
            "the Ed25519 public key is a point of small order: signatures could be forged without a private key",
        ));
    }
    ParsedPublicKey::new(&signature::ED25519, public)
        .map_err(|_| Error::invalid_key("not a valid Ed25519 public key"))?;
    Ok(())
}

/// The key material. Private halves are held by aws-lc objects; the public half is kept in the
/// form JWKs use (RSA n/e, EC uncompressed point, Ed25519 raw bytes).
#[derive(Clone)]
pub(crate) enum Material {
    Hmac(Arc<[u8]>),
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        private: Option<Arc<RsaKeyPair>>,
    },
    Ec {
        curve: Curve,
        point: Vec<u8>,
        private: Option<Arc<EcdsaKeyPair>>,
    },
    Ed25519 {
        public: Vec<u8>,
        private: Option<Arc<Ed25519KeyPair>>,
    },
}

/// A loaded key: material, optional `kid`, optional binding to one algorithm.
#[derive(Clone)]
pub struct Key {
    pub(crate) material: Material,
    /// The key id, the map key a token's `kid` looks up.
    pub kid: Option<String>,
    /// When set, the only algorithm this key serves (a JWK's `alg`, or `alg=` at load).
    pub alg: Option<Alg>,
    /// False for a JWK whose `use` or `key_ops` rule out verification.
    pub verifies: bool,
    pub(crate) jwk_use: Option<String>,
    pub(crate) ops: Option<Vec<String>>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

pub(crate) fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

/// RSA hygiene: modulus size and public exponent.
pub(crate) fn check_rsa(n: &[u8], e: &[u8]) -> Result<()> {
    let n = strip_zeros(n);
    let bits = if n.is_empty() {
        0
    } else {
        n.len() * 8 - n[0].leading_zeros() as usize
    };
    if bits < RSA_MIN_BITS {
        return Err(Error::weak_key(format!(
            "RSA keys must have at least {RSA_MIN_BITS} bits, this one has {bits}"
        )));
    }
    if bits > RSA_MAX_BITS {
        return Err(Error::invalid_key(format!(
            "RSA keys may have at most {RSA_MAX_BITS} bits, this one has {bits}"
        )));
    }
    let e = strip_zeros(e);
    let small = e.len() == 1 && e[0] < 3;
    if e.is_empty() || small {
        return Err(Error::weak_key("the RSA public exponent must be at least 3"));
    }
    if e[e.len() - 1] & 1 == 0 {
        return Err(Error::invalid_key("the RSA public exponent must be odd"));
    }
    if e.len() * 8 - e[0].leading_zeros() as usize > RSA_MAX_EXPONENT_BITS {
        return Err(Error::invalid_key(format!(
            "the RSA public exponent may have at most {RSA_MAX_EXPONENT_BITS} bits (65537 is usual)"
        )));
    }
    Ok(())
}

impl Key {
    pub(crate) fn new(material: Material, kid: Option<String>, alg: Option<Alg>) -> Result<Key> {
        if let Some(kid) = &kid {
            check_kid(kid)?;
        }
        let key = Key {
            material,
            kid,
            alg: None,
            verifies: true,
            jwk_use: None,
            ops: None,
        };
        key.bind(alg)
    }

    /// Bind to `alg` after checking it fits the key's family (and curve).
    fn bind(mut self, alg: Option<Alg>) -> Result<Key> {
        if let Some(alg) = alg {
            if alg.family() != self.family() {
                return Err(Error::invalid_key(format!(
                    "a {} key cannot be used with {}",
                    self.kty(),
                    alg.name()
                )));
            }
            if let Material::Hmac(secret) = &self.material {
                check_hmac_secret(secret, alg)?;
            }
        }
        self.alg = alg;
        Ok(self)
    }

    /// A raw HMAC secret (HS256/384/512), at least 32 bytes (more for an explicit HS384/HS512).
    pub fn hmac(secret: &[u8], kid: Option<String>, alg: Option<Alg>) -> Result<Key> {
        if secret.len() < 32 {
            return Err(Error::weak_key(
                "HMAC secrets must be at least 32 bytes (the SHA-256 output size)",
            ));
        }
        if looks_like_key_material(secret) {
            // RFC 8725 §2.1: a public key's text must never become an HMAC secret (what PyJWT refuses too)
            return Err(Error::invalid_key(
                "an HMAC secret must not be a PEM or SSH key or certificate; load it with Key.from_pem",
            ));
        }
        Key::new(Material::Hmac(Arc::from(secret)), kid, alg)
    }

    /// A new random private key for `alg` (bound to it): a 256/384/512-bit HMAC secret, RSA 2048,
    /// or an EC / Ed25519 key pair, from the operating system's CSPRNG via aws-lc.
    pub fn generate(alg: Alg, kid: Option<String>) -> Result<Key> {
        let failed = || Error::invalid_key("key generation failed");
        let material = match alg.family() {
            Family::Hmac => {
                let mut secret = vec![0u8; alg.hmac_min_secret()];
                aws_lc_rs::rand::fill(&mut secret).map_err(|_| failed())?;
                Material::Hmac(Arc::from(secret))
            }
            Family::Rsa => rsa_private(RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|_| failed())?)?,
            Family::Ec(curve) => ec_private(curve, EcdsaKeyPair::generate(ec_sign_alg(curve)).map_err(|_| failed())?),
            Family::Ed25519 => ed_private(Ed25519KeyPair::generate().map_err(|_| failed())?)?,
        };
        Key::new(material, kid, Some(alg))
    }

    /// A PEM public or private key: SPKI (`PUBLIC KEY`), PKCS#1 (`RSA PUBLIC KEY`, `RSA PRIVATE KEY`),
    /// PKCS#8 (`PRIVATE KEY`) or SEC 1 (`EC PRIVATE KEY`); RSA, EC P-256/384/521 or Ed25519.
    pub fn from_pem(pem_text: &[u8], kid: Option<String>, alg: Option<Alg>) -> Result<Key> {
        let block = pem::parse(pem_text).map_err(|_| Error::invalid_key("the key is not valid PEM"))?;
        let der = block.contents();
        let material = match block.tag() {
            "PUBLIC KEY" => from_spki(der)?,
            "RSA PUBLIC KEY" => rsa_public_der(der)?,
            "PRIVATE KEY" => from_pkcs8(der)?,
            "RSA PRIVATE KEY" => {
                check_rsa_private_der(der)?;
                let pair =
                    RsaKeyPair::from_der(der).map_err(|_| Error::invalid_key("not a valid PKCS#1 RSA private key"))?;
                rsa_private(pair)?
            }
            "EC PRIVATE KEY" => [Curve::P256, Curve::P384, Curve::P521]
                .into_iter()
                .find_map(|c| {
                    EcdsaKeyPair::from_private_key_der(ec_sign_alg(c), der)
                        .ok()
                        .map(|p| (c, p))
                })
                .map(|(c, p)| ec_private(c, p))
                .ok_or_else(|| Error::invalid_key("not a valid SEC 1 EC private key on P-256, P-384 or P-521"))?,
            "ENCRYPTED PRIVATE KEY" => {
                return Err(Error::invalid_key(
                    "encrypted private keys are not supported: decrypt it first",
                ))
            }
            "CERTIFICATE" => {
                return Err(Error::invalid_key(
                    "certificates are not keys: pass the certificate's public key",
                ))
            }
            _ => return Err(Error::invalid_key("unsupported PEM block type")),
        };
        Key::new(material, kid, alg)
    }

    /// The algorithm family this key serves.
    pub fn family(&self) -> Family {
        match &self.material {
            Material::Hmac(_) => Family::Hmac,
            Material::Rsa { .. } => Family::Rsa,
            Material::Ec { curve, .. } => Family::Ec(*curve),
            Material::Ed25519 { .. } => Family::Ed25519,
        }
    }

    /// The JWK `kty`.
    pub fn kty(&self) -> &'static str {
        match self.material {
            Material::Hmac(_) => "oct",
            Material::Rsa { .. } => "RSA",
            Material::Ec { .. } => "EC",
            Material::Ed25519 { .. } => "OKP",
        }
    }

    /// True when the key holds private material (always true for HMAC secrets).
    pub fn is_private(&self) -> bool {
        match &self.material {
            Material::Hmac(_) => true,
            Material::Rsa { private, .. } => private.is_some(),
            Material::Ec { private, .. } => private.is_some(),
            Material::Ed25519 { private, .. } => private.is_some(),
        }
    }

    /// RSA modulus bits, EC curve name, or HMAC secret bits: a public description of the size.
    pub fn size(&self) -> String {
        match &self.material {
            Material::Hmac(s) => format!("{} bits", s.len() * 8),
            Material::Rsa { n, .. } => format!("{} bits", n.len() * 8 - n[0].leading_zeros() as usize),
            Material::Ec { curve, .. } => curve.name().to_owned(),
            Material::Ed25519 { .. } => "Ed25519".to_owned(),
        }
    }

    /// A one-line description without key material (the Python `repr`).
    pub fn describe(&self) -> String {
        let mut out = format!("Key(kty={:?}", self.kty());
        if let Some(alg) = self.alg {
            let _ = write!(out, ", alg={:?}", alg.name());
        }
        if let Some(kid) = &self.kid {
            let _ = write!(out, ", kid={kid:?}");
        }
        let private = if self.is_private() { "True" } else { "False" };
        let _ = write!(out, ", size={:?}, private={private})", self.size());
        out
    }

    /// Whether this key can serve `alg` (family, curve and binding).
    pub fn serves(&self, alg: Alg) -> bool {
        alg.family() == self.family() && self.alg.is_none_or(|a| a == alg)
    }

    /// The verification material for `alg`. Checks the HMAC secret length for that alg.
    pub fn verifying(&self, alg: Alg) -> Result<Verifying> {
        if !self.serves(alg) {
            return Err(Error::invalid_key(format!(
                "this {} key cannot verify {}",
                self.kty(),
                alg.name()
            )));
        }
        Ok(match &self.material {
            Material::Hmac(secret) => {
                check_hmac_secret(secret, alg)?;
                Verifying::Hmac(Box::new(MacKey::new(alg, secret)?))
            }
            Material::Rsa { n, e, .. } => Verifying::Rsa {
                key: PublicKeyComponents { n: &n[..], e: &e[..] }
                    .to_parsed_public_key(rsa_params(alg))
                    .map_err(|_| Error::invalid_key("the RSA public key is not valid"))?,
                modulus_len: n.len(),
            },
            Material::Ec { curve, point, .. } => Verifying::Ec {
                key: ParsedPublicKey::new(ec_verify_alg(*curve), point)
                    .map_err(|_| Error::invalid_key("the EC public key is not valid"))?,
                curve: *curve,
            },
            Material::Ed25519 { public, .. } => Verifying::Ed25519(
                ParsedPublicKey::new(&signature::ED25519, public)
                    .map_err(|_| Error::invalid_key("the Ed25519 public key is not valid"))?,
            ),
        })
    }

    /// The signing material for `alg`; the key must hold private material.
    pub fn signing(&self, alg: Alg) -> Result<Signing> {
        if !self.serves(alg) {
            return Err(Error::invalid_key(format!(
                "this {} key cannot sign {}",
                self.kty(),
                alg.name()
            )));
        }
        if self.jwk_use.as_deref().is_some_and(|u| u != "sig")
            || self.ops.as_ref().is_some_and(|ops| !ops.iter().any(|o| o == "sign"))
        {
            return Err(Error::invalid_key("the JWK's use or key_ops do not allow signing"));
        }
        let no_private = || Error::invalid_key("signing needs a private key");
        Ok(match &self.material {
            Material::Hmac(secret) => {
                check_hmac_secret(secret, alg)?;
                Signing::Hmac(Box::new(hmac::Key::new(hmac_alg(alg), secret)))
            }
            Material::Rsa { private, .. } => Signing::Rsa(private.clone().ok_or_else(no_private)?, alg),
            Material::Ec { private, .. } => Signing::Ec(private.clone().ok_or_else(no_private)?),
            Material::Ed25519 { private, .. } => Signing::Ed25519(private.clone().ok_or_else(no_private)?),
        })
    }
}

pub(crate) fn rsa_private(pair: RsaKeyPair) -> Result<Material> {
    let public = pair.public_key();
    let n = public.modulus().big_endian_without_leading_zero().to_vec();
    let e = public.exponent().big_endian_without_leading_zero().to_vec();
    check_rsa(&n, &e)?;
    Ok(Material::Rsa {
        n,
        e,
        private: Some(Arc::new(pair)),
    })
}

pub(crate) fn ec_private(curve: Curve, pair: EcdsaKeyPair) -> Material {
    Material::Ec {
        curve,
        point: pair.public_key().as_ref().to_vec(),
        private: Some(Arc::new(pair)),
    }
}

pub(crate) fn ed_private(pair: Ed25519KeyPair) -> Result<Material> {
    let public = pair.public_key().as_ref().to_vec();
    check_ed25519(&public)?;
    Ok(Material::Ed25519 {
        public,
        private: Some(Arc::new(pair)),
    })
}

/// An Ed25519 public key, hygiene-checked ([`check_ed25519`]).
pub(crate) fn ed_public(public: &[u8]) -> Result<Material> {
    check_ed25519(public)?;
    Ok(Material::Ed25519 {
        public: public.to_vec(),
        private: None,
    })
}

fn from_spki(der: &[u8]) -> Result<Material> {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(der)
        .map_err(|_| Error::invalid_key("not a valid SubjectPublicKeyInfo"))?;
    let raw = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| Error::invalid_key("the public key bit string is not byte-aligned"))?;
    match spki.algorithm.oid.to_string().as_str() {
        OID_RSA => rsa_public_der(raw),
        OID_EC => {
            let curve_oid = spki
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<spki::ObjectIdentifier>().ok())
                .ok_or_else(|| Error::invalid_key("the EC key does not name its curve"))?;
            let curve = match curve_oid.to_string().as_str() {
                OID_P256 => Curve::P256,
                OID_P384 => Curve::P384,
                OID_P521 => Curve::P521,
                _ => return Err(Error::invalid_key("the EC curve is not P-256, P-384 or P-521")),
            };
            if raw.first() != Some(&4) || raw.len() != 1 + 2 * curve.coordinate_len() {
                return Err(Error::invalid_key("only uncompressed EC points are supported"));
            }
            ParsedPublicKey::new(ec_verify_alg(curve), raw)
                .map_err(|_| Error::invalid_key("the EC point is not on its curve"))?;
            Ok(Material::Ec {
                curve,
                point: raw.to_vec(),
                private: None,
            })
        }
        OID_ED25519 => ed_public(raw),
        _ => Err(Error::invalid_key(
            "unsupported public key algorithm (RSA, EC P-256/384/521 and Ed25519 are)",
        )),
    }
}

fn from_pkcs8(der: &[u8]) -> Result<Material> {
    let info =
        pkcs8::PrivateKeyInfo::from_der(der).map_err(|_| Error::invalid_key("not a valid PKCS#8 private key"))?;
    if info.algorithm.oid.to_string() == OID_RSA {
        // Checked here so that a small key is named `weak_key` before aws-lc refuses it.
        check_rsa_private_der(info.private_key)?;
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|_| Error::invalid_key("not a valid PKCS#8 RSA private key"))?;
        return rsa_private(pair);
    }
    for curve in [Curve::P256, Curve::P384, Curve::P521] {
        if let Ok(pair) = EcdsaKeyPair::from_pkcs8(ec_sign_alg(curve), der) {
            return Ok(ec_private(curve, pair));
        }
    }
    if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
        return ed_private(pair);
    }
    Err(Error::invalid_key(
        "not a PKCS#8 RSA, EC P-256/384/521 or Ed25519 private key",
    ))
}

/// A PKCS#1 `RSAPublicKey`, hygiene-checked, then validated by aws-lc.
fn rsa_public_der(der: &[u8]) -> Result<Material> {
    let key =
        pkcs1::RsaPublicKey::from_der(der).map_err(|_| Error::invalid_key("not a valid PKCS#1 RSA public key"))?;
    let (n, e) = (key.modulus.as_bytes(), key.public_exponent.as_bytes());
    check_rsa(n, e)?;
    let (n, e) = (strip_zeros(n).to_vec(), strip_zeros(e).to_vec());
    PublicKeyComponents { n: &n[..], e: &e[..] }
        .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
        .map_err(|_| Error::invalid_key("not a valid RSA public key"))?;
    Ok(Material::Rsa { n, e, private: None })
}

/// Hygiene of a PKCS#1 `RSAPrivateKey`'s public half.
fn check_rsa_private_der(der: &[u8]) -> Result<()> {
    let key =
        pkcs1::RsaPrivateKey::from_der(der).map_err(|_| Error::invalid_key("not a valid PKCS#1 RSA private key"))?;
    if key.other_prime_infos.is_some() {
        return Err(Error::invalid_key("multi-prime RSA keys are not supported"));
    }
    check_rsa(key.modulus.as_bytes(), key.public_exponent.as_bytes())
}

/// True for PEM armour or an OpenSSH public key: text that is a key, never a shared secret.
fn looks_like_key_material(secret: &[u8]) -> bool {
    const SSH: [&[u8]; 4] = [b"ssh-rsa ", b"ssh-ed25519 ", b"ssh-dss ", b"ecdsa-sha2-"];
    let trimmed = secret.trim_ascii_start();
    secret.windows(11).any(|w| w == b"-----BEGIN ") || SSH.iter().any(|p| trimmed.starts_with(p))
}

/// An HMAC secret must be at least as long as `alg`'s hash output (RFC 7518 §3.2).
fn check_hmac_secret(secret: &[u8], alg: Alg) -> Result<()> {
    if secret.len() < alg.hmac_min_secret() {
        return Err(Error::weak_key(format!(
            "{} needs a secret of at least {} bytes",
            alg.name(),
            alg.hmac_min_secret()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::json::Value;
    use crate::jwt::KeySet;

    #[test]
    fn key_text_is_never_an_hmac_secret() {
        let pem = b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n";
        assert_eq!(Key::hmac(pem, None, None).unwrap_err().kind, ErrorKind::InvalidKey);
        let ssh = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host";
        assert_eq!(Key::hmac(ssh, None, None).unwrap_err().kind, ErrorKind::InvalidKey);
        assert!(
            Key::hmac(&[0x2d; 64], None, None).is_ok(),
            "dashes alone are a (silly) secret, not PEM"
        );
    }

    fn code<T: fmt::Debug>(r: Result<T>) -> &'static str {
        r.unwrap_err().code()
    }

    #[test]
    fn hmac_length_rules() {
        assert_eq!(code(Key::hmac(&[7; 31], None, None)), "weak_key");
        let k = Key::hmac(&[7; 32], Some("h".into()), None).unwrap();
        assert!(k.verifying(Alg::HS256).is_ok());
        assert_eq!(code(k.verifying(Alg::HS384)), "weak_key");
        assert_eq!(code(k.verifying(Alg::RS256)), "invalid_key");
        assert_eq!(code(Key::hmac(&[7; 40], None, Some(Alg::HS512))), "weak_key");
        assert_eq!(code(Key::hmac(&[7; 64], None, Some(Alg::ES256))), "invalid_key");
        assert!(!format!("{k:?}").contains("0707"));
        assert_eq!(
            k.describe(),
            r#"Key(kty="oct", kid="h", size="256 bits", private=True)"#
        );
    }

    #[test]
    fn generated_keys_sign_and_verify() {
        for alg in Alg::ALL {
            let k = Key::generate(alg, Some("g".into())).unwrap();
            assert_eq!(k.alg, Some(alg));
            let sig = k.signing(alg).unwrap().sign(b"m").unwrap();
            k.verifying(alg).unwrap().verify(b"m", &sig).unwrap();
        }
    }

    #[test]
    fn rsa_hygiene() {
        let mut n = vec![0xffu8; 256];
        assert!(check_rsa(&n, &[1, 0, 1]).is_ok());
        n[0] = 0x7f;
        assert_eq!(check_rsa(&n, &[1, 0, 1]).unwrap_err().code(), "weak_key");
        assert_eq!(check_rsa(&[0xff; 128], &[1, 0, 1]).unwrap_err().code(), "weak_key");
        assert_eq!(check_rsa(&[0xff; 1025], &[3]).unwrap_err().code(), "invalid_key");
        assert_eq!(check_rsa(&[0xff; 256], &[1]).unwrap_err().code(), "weak_key");
        assert_eq!(check_rsa(&[0xff; 256], &[4]).unwrap_err().code(), "invalid_key");
        assert!(check_rsa(&[0xff; 256], &[3]).is_ok());
    }

    /// Raw Ed25519 public keys: small-order points (and non-canonical encodings) that must never load.
    fn hostile_ed25519_points() -> Vec<(&'static str, [u8; 32])> {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut minus_one = [0xffu8; 32]; // y = p - 1: the point of order 2
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        let mut y_is_p = [0xffu8; 32]; // y = p: a non-canonical encoding of y = 0
        y_is_p[0] = 0xed;
        y_is_p[31] = 0x7f;
        let mut y_past_p = y_is_p; // y = p + 3: non-canonical
        y_past_p[0] = 0xf0;
        let mut identity_negative = identity; // x = 0 with the sign bit set: non-canonical
        identity_negative[31] = 0x80;
        vec![
            ("identity", identity),
            ("all-zero x (order 4)", [0; 32]),
            ("order 2", minus_one),
            ("y = p", y_is_p),
            ("y = p + 3", y_past_p),
            ("identity with the sign bit", identity_negative),
        ]
    }

    #[test]
    fn ed25519_small_order_and_non_canonical_public_keys_are_refused() {
        use base64::Engine as _;
        for (what, x) in hostile_ed25519_points() {
            let jwk = format!(
                r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#,
                crate::jwt::b64::encode(&x)
            );
            let loaded = Key::from_jwk_json(jwk.as_bytes());
            assert!(
                matches!(loaded.as_ref().map_err(Error::code), Err("weak_key" | "invalid_key")),
                "JWK {what}: {loaded:?}"
            );
            let mut der = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
            der.extend_from_slice(&x);
            let body = base64::engine::general_purpose::STANDARD.encode(&der);
            let pem = format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n");
            let loaded = Key::from_pem(pem.as_bytes(), None, None);
            assert!(
                matches!(loaded.as_ref().map_err(Error::code), Err("weak_key" | "invalid_key")),
                "PEM {what}: {loaded:?}"
            );
        }
        // why: aws-lc itself verifies R = B, S = 1 under the identity for any message
        let mut forged = hex32("5866666666666666666666666666666666666666666666666666666666666666").to_vec();
        forged.extend_from_slice(&ED25519_SMALL_ORDER[0]);
        let identity = ParsedPublicKey::new(&signature::ED25519, ED25519_SMALL_ORDER[0]).unwrap();
        assert!(identity.verify_sig(b"any message", &forged).is_ok());
        // an ordinary public key still loads
        let ok = Key::generate(Alg::EdDSA, None).unwrap().public_jwk().unwrap();
        assert!(Key::from_jwk(&ok).is_ok());
    }

    #[test]
    fn rsa_exponents_above_what_aws_lc_verifies_are_refused() {
        let n = [0xffu8; 256];
        assert_eq!(
            check_rsa(&n, &[1, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap_err().code(),
            "invalid_key"
        ); // 2^64 + 1
        assert_eq!(check_rsa(&n, &[2, 0, 0, 0, 1]).unwrap_err().code(), "invalid_key"); // 2^33 + 1
        assert!(check_rsa(&n, &[1, 0xff, 0xff, 0xff, 0xff]).is_ok()); // 2^33 - 1
        let mut e_is_n = n;
        e_is_n[255] = 0xfd;
        assert_eq!(check_rsa(&n, &e_is_n).unwrap_err().code(), "invalid_key"); // e ≥ n
                                                                               // through a JWK: a real modulus with e = 2^64 + 1
        let public = Key::generate(Alg::RS256, None).unwrap().public_jwk().unwrap();
        let n = public.get("n").and_then(Value::as_str).unwrap();
        let e = crate::jwt::b64::encode(&[1, 0, 0, 0, 0, 0, 0, 0, 1]);
        let jwk = format!(r#"{{"kty":"RSA","n":"{n}","e":"{e}"}}"#);
        assert_eq!(code(Key::from_jwk_json(jwk.as_bytes())), "invalid_key");
    }

    #[test]
    fn kids_longer_than_the_verifier_looks_up_are_refused_at_load() {
        use crate::jwt::header::MAX_KID_LEN;
        let long = Some("k".repeat(MAX_KID_LEN + 1));
        let fits = Some("k".repeat(MAX_KID_LEN));
        assert_eq!(code(Key::hmac(&[7; 32], long.clone(), None)), "invalid_configuration");
        assert!(Key::hmac(&[7; 32], fits, None).is_ok());
        assert_eq!(code(Key::generate(Alg::ES256, long.clone())), "invalid_configuration");
        let public = Key::generate(Alg::ES256, None).unwrap().public_jwk().unwrap();
        let Value::Object(mut members) = public else { panic!() };
        members.push(("kid".into(), Value::String(long.clone().unwrap())));
        let jwk = Value::Object(members);
        assert_eq!(code(Key::from_jwk(&jwk)), "invalid_configuration");
        let set = Value::Object(vec![("keys".into(), Value::Array(vec![jwk]))]);
        assert_eq!(code(KeySet::from_jwks(&set, false)), "invalid_configuration");
    }

    #[test]
    fn pem_errors() {
        assert_eq!(code(Key::from_pem(b"not pem", None, None)), "invalid_key");
        let enc = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert_eq!(code(Key::from_pem(enc, None, None)), "invalid_key");
    }
}
