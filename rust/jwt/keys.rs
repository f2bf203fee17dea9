//! Keys: loading (raw HMAC secrets, PEM, generation), hygiene at load time, and the per-algorithm
//! verification and signing material built from them. JWK and JWKS live in `jwk.rs`.
//!
//! Hygiene (RFC 8725 §3.5, DESIGN §7), all at load time as `weak_key` / `invalid_key` (the rules
//! are in `hygiene.rs`): RSA moduli of 2048–8192 bits with an odd public exponent of 3 to 33 bits;
//! HMAC secrets at least as long as the hash (32 bytes at load, the exact size of every allowed alg
//! when a verifier or signer is built); EC points on the named curve (aws-lc checks; the NIST curves
//! have no other small subgroup, and the point at infinity has no uncompressed encoding); Ed25519
//! only among the OKP curves, with a canonical point not of small order; a `kid` the verifier can
//! look up (at most `header::MAX_KID_LEN` bytes, else a configuration error). A JWK whose `use` is
//! not `sig`, or whose `key_ops` lacks `verify`, loads but is never used to verify.
//!
//! Key material never appears in `Debug` output or messages. The file is over 400 lines because
//! the five PEM forms and the generated keys all end in the one `Material` built here.

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
pub(crate) use crate::jwt::hygiene::{check_ed25519, check_rsa};
pub use crate::jwt::hygiene::{RSA_MAX_BITS, RSA_MAX_EXPONENT_BITS, RSA_MIN_BITS};

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";

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
