//! Keys: loading (raw HMAC secrets, PEM, JWK, JWKS), hygiene at load time, and the per-algorithm
//! verification and signing material built from them.
//!
//! Hygiene (RFC 8725 §3.5, DESIGN §7), all at load time as `weak_key` / `invalid_key`: RSA moduli of
//! 2048–8192 bits with an odd public exponent ≥ 3; HMAC secrets at least as long as the hash (32 bytes
//! at load, the exact size of every allowed alg when a verifier or signer is built); EC points on the
//! named curve (aws-lc checks); Ed25519 only among the OKP curves. A JWK whose `use` is not `sig`, or
//! whose `key_ops` lacks `verify`, loads but is never used to verify.
//!
//! Key material never appears in `Debug` output or messages.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPairComponents, PublicKeyComponents};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, Ed25519KeyPair, KeyPair as _,
    ParsedPublicKey, RsaKeyPair, RsaParameters,
};
use spki::der::Decode as _;

use crate::error::{Error, ErrorKind, Result};
use crate::jwt::alg::{Alg, Curve, Family};
use crate::jwt::b64;
use crate::jwt::json::{self, Value};

fn invalid(msg: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::InvalidKey, msg)
}

fn weak(msg: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::WeakKey, msg)
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";

/// Smallest and largest RSA modulus accepted, in bits.
pub const RSA_MIN_BITS: usize = 2048;
pub const RSA_MAX_BITS: usize = 8192;

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
    jwk_use: Option<String>,
    ops: Option<Vec<String>>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

fn ec_verify_alg(curve: Curve) -> &'static EcdsaVerificationAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
    }
}

fn ec_sign_alg(curve: Curve) -> &'static EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
    }
}

fn rsa_params(alg: Alg) -> &'static RsaParameters {
    match alg {
        Alg::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Alg::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Alg::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Alg::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => &signature::RSA_PKCS1_2048_8192_SHA256,
    }
}

fn rsa_encoding(alg: Alg) -> &'static dyn signature::RsaEncoding {
    match alg {
        Alg::RS384 => &signature::RSA_PKCS1_SHA384,
        Alg::RS512 => &signature::RSA_PKCS1_SHA512,
        Alg::PS256 => &signature::RSA_PSS_SHA256,
        Alg::PS384 => &signature::RSA_PSS_SHA384,
        Alg::PS512 => &signature::RSA_PSS_SHA512,
        _ => &signature::RSA_PKCS1_SHA256,
    }
}

fn hmac_alg(alg: Alg) -> hmac::Algorithm {
    match alg {
        Alg::HS384 => hmac::HMAC_SHA384,
        Alg::HS512 => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

/// RSA hygiene: modulus size and public exponent.
fn check_rsa(n: &[u8], e: &[u8]) -> Result<()> {
    let n = strip_zeros(n);
    let bits = if n.is_empty() {
        0
    } else {
        n.len() * 8 - n[0].leading_zeros() as usize
    };
    if bits < RSA_MIN_BITS {
        return Err(weak(format!(
            "RSA keys must have at least {RSA_MIN_BITS} bits, this one has {bits}"
        )));
    }
    if bits > RSA_MAX_BITS {
        return Err(invalid(format!(
            "RSA keys may have at most {RSA_MAX_BITS} bits, this one has {bits}"
        )));
    }
    let e = strip_zeros(e);
    let small = e.len() == 1 && e[0] < 3;
    if e.is_empty() || small {
        return Err(weak("the RSA public exponent must be at least 3"));
    }
    if e[e.len() - 1] & 1 == 0 {
        return Err(invalid("the RSA public exponent must be odd"));
    }
    Ok(())
}

impl Key {
    fn new(material: Material, kid: Option<String>, alg: Option<Alg>) -> Result<Key> {
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
                return Err(invalid(format!(
                    "a {} key cannot be used with {}",
                    self.kty(),
                    alg.name()
                )));
            }
            if let Material::Hmac(secret) = &self.material {
                if secret.len() < alg.hmac_min_secret() {
                    return Err(weak(format!(
                        "{} needs a secret of at least {} bytes",
                        alg.name(),
                        alg.hmac_min_secret()
                    )));
                }
            }
        }
        self.alg = alg;
        Ok(self)
    }

    /// A raw HMAC secret (HS256/384/512), at least 32 bytes (more for an explicit HS384/HS512).
    pub fn hmac(secret: &[u8], kid: Option<String>, alg: Option<Alg>) -> Result<Key> {
        if secret.len() < 32 {
            return Err(weak("HMAC secrets must be at least 32 bytes (the SHA-256 output size)"));
        }
        Key::new(Material::Hmac(Arc::from(secret)), kid, alg)
    }

    /// A new random private key for `alg` (bound to it): a 256/384/512-bit HMAC secret, RSA 2048,
    /// or an EC / Ed25519 key pair, from the operating system's CSPRNG via aws-lc.
    pub fn generate(alg: Alg, kid: Option<String>) -> Result<Key> {
        let failed = || invalid("key generation failed");
        let material = match alg.family() {
            Family::Hmac => {
                let mut secret = vec![0u8; alg.hmac_min_secret()];
                aws_lc_rs::rand::fill(&mut secret).map_err(|_| failed())?;
                Material::Hmac(Arc::from(secret))
            }
            Family::Rsa => rsa_private(RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|_| failed())?)?,
            Family::Ec(curve) => ec_private(curve, EcdsaKeyPair::generate(ec_sign_alg(curve)).map_err(|_| failed())?),
            Family::Ed25519 => ed_private(Ed25519KeyPair::generate().map_err(|_| failed())?),
        };
        Key::new(material, kid, Some(alg))
    }

    /// A PEM public or private key: SPKI (`PUBLIC KEY`), PKCS#1 (`RSA PUBLIC KEY`, `RSA PRIVATE KEY`),
    /// PKCS#8 (`PRIVATE KEY`) or SEC 1 (`EC PRIVATE KEY`); RSA, EC P-256/384/521 or Ed25519.
    pub fn from_pem(pem_text: &[u8], kid: Option<String>, alg: Option<Alg>) -> Result<Key> {
        let block = pem::parse(pem_text).map_err(|_| invalid("the key is not valid PEM"))?;
        let der = block.contents();
        let material = match block.tag() {
            "PUBLIC KEY" => from_spki(der)?,
            "RSA PUBLIC KEY" => rsa_public_der(der)?,
            "PRIVATE KEY" => from_pkcs8(der)?,
            "RSA PRIVATE KEY" => {
                check_rsa_private_der(der)?;
                let pair = RsaKeyPair::from_der(der).map_err(|_| invalid("not a valid PKCS#1 RSA private key"))?;
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
                .ok_or_else(|| invalid("not a valid SEC 1 EC private key on P-256, P-384 or P-521"))?,
            "ENCRYPTED PRIVATE KEY" => {
                return Err(invalid("encrypted private keys are not supported: decrypt it first"))
            }
            "CERTIFICATE" => return Err(invalid("certificates are not keys: pass the certificate's public key")),
            _ => return Err(invalid("unsupported PEM block type")),
        };
        Key::new(material, kid, alg)
    }

    /// A JWK (RFC 7517) given as JSON text.
    pub fn from_jwk_json(text: &[u8]) -> Result<Key> {
        let value = json::parse_value(text).map_err(|_| invalid("the JWK is not valid JSON"))?;
        Key::from_jwk(&value)
    }

    /// A JWK (RFC 7517) given as a parsed object.
    pub fn from_jwk(jwk: &Value) -> Result<Key> {
        if !matches!(jwk, Value::Object(_)) {
            return Err(invalid("a JWK must be a JSON object"));
        }
        let f = Jwk(jwk);
        let kty = f.s("kty")?.ok_or_else(|| invalid("the JWK has no 'kty'"))?;
        let kid = f.s("kid")?.map(str::to_owned);
        let alg = match f.s("alg")? {
            None => None,
            Some(name) => Some(
                Alg::from_name(name).ok_or_else(|| invalid("the JWK's alg is not a JWS algorithm bastion supports"))?,
            ),
        };
        let jwk_use = f.s("use")?;
        if kty == "oct" {
            let secret = f.bytes("k")?;
            return Ok(Key::hmac(&secret, kid, alg)?.with_usage(jwk_use, jwk.get("key_ops")));
        }
        let material = match kty {
            "RSA" => f.rsa()?,
            "EC" => f.ec()?,
            "OKP" => f.okp()?,
            _ => return Err(invalid("unsupported JWK key type")),
        };
        Ok(Key::new(material, kid, alg)?.with_usage(jwk_use, jwk.get("key_ops")))
    }

    fn with_usage(mut self, jwk_use: Option<&str>, key_ops: Option<&Value>) -> Key {
        self.jwk_use = jwk_use.map(str::to_owned);
        self.ops = match key_ops {
            Some(Value::Array(ops)) => Some(ops.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
            Some(_) => Some(Vec::new()),
            None => None,
        };
        self.verifies = self.jwk_use.as_deref().map_or(true, |u| u == "sig")
            && self.ops.as_ref().map_or(true, |ops| ops.iter().any(|o| o == "verify"));
        self
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
        alg.family() == self.family() && self.alg.map_or(true, |a| a == alg)
    }

    /// The verification material for `alg`. Checks the HMAC secret length for that alg.
    pub fn verifying(&self, alg: Alg) -> Result<Verifying> {
        if !self.serves(alg) {
            return Err(invalid(format!("this {} key cannot verify {}", self.kty(), alg.name())));
        }
        Ok(match &self.material {
            Material::Hmac(secret) => {
                if secret.len() < alg.hmac_min_secret() {
                    return Err(weak(format!(
                        "{} needs a secret of at least {} bytes",
                        alg.name(),
                        alg.hmac_min_secret()
                    )));
                }
                Verifying::Hmac(Box::new(hmac::Key::new(hmac_alg(alg), secret)))
            }
            Material::Rsa { n, e, .. } => Verifying::Rsa {
                key: PublicKeyComponents { n: &n[..], e: &e[..] }
                    .to_parsed_public_key(rsa_params(alg))
                    .map_err(|_| invalid("the RSA public key is not valid"))?,
                modulus_len: n.len(),
            },
            Material::Ec { curve, point, .. } => Verifying::Ec {
                key: ParsedPublicKey::new(ec_verify_alg(*curve), point)
                    .map_err(|_| invalid("the EC public key is not valid"))?,
                curve: *curve,
            },
            Material::Ed25519 { public, .. } => Verifying::Ed25519(
                ParsedPublicKey::new(&signature::ED25519, public)
                    .map_err(|_| invalid("the Ed25519 public key is not valid"))?,
            ),
        })
    }

    /// The signing material for `alg`; the key must hold private material.
    pub fn signing(&self, alg: Alg) -> Result<Signing> {
        if !self.serves(alg) {
            return Err(invalid(format!("this {} key cannot sign {}", self.kty(), alg.name())));
        }
        if self.jwk_use.as_deref().is_some_and(|u| u != "sig")
            || self.ops.as_ref().is_some_and(|ops| !ops.iter().any(|o| o == "sign"))
        {
            return Err(invalid("the JWK's use or key_ops do not allow signing"));
        }
        let no_private = || invalid("signing needs a private key");
        Ok(match &self.material {
            Material::Hmac(secret) => {
                if secret.len() < alg.hmac_min_secret() {
                    return Err(weak(format!(
                        "{} needs a secret of at least {} bytes",
                        alg.name(),
                        alg.hmac_min_secret()
                    )));
                }
                Signing::Hmac(Box::new(hmac::Key::new(hmac_alg(alg), secret)))
            }
            Material::Rsa { private, .. } => Signing::Rsa(private.clone().ok_or_else(no_private)?, alg),
            Material::Ec { private, .. } => Signing::Ec(private.clone().ok_or_else(no_private)?),
            Material::Ed25519 { private, .. } => Signing::Ed25519(private.clone().ok_or_else(no_private)?),
        })
    }

    /// The public JWK members (RFC 7517), or `None` for HMAC secrets, which have no public half.
    pub fn public_jwk(&self) -> Option<Value> {
        let mut m: Vec<(String, Value)> = vec![("kty".into(), Value::String(self.kty().into()))];
        let mut put = |k: &str, v: String| m.push((k.to_owned(), Value::String(v)));
        if let Some(kid) = &self.kid {
            put("kid", kid.clone());
        }
        if let Some(alg) = self.alg {
            put("alg", alg.name().to_owned());
        }
        if let Some(u) = &self.jwk_use {
            put("use", u.clone());
        }
        match &self.material {
            Material::Hmac(_) => return None,
            Material::Rsa { n, e, .. } => {
                put("n", b64::encode(n));
                put("e", b64::encode(e));
            }
            Material::Ec { curve, point, .. } => {
                let len = curve.coordinate_len();
                put("crv", curve.name().to_owned());
                put("x", b64::encode(&point[1..=len]));
                put("y", b64::encode(&point[1 + len..]));
            }
            Material::Ed25519 { public, .. } => {
                put("crv", "Ed25519".to_owned());
                put("x", b64::encode(public));
            }
        }
        if let Some(ops) = &self.ops {
            let public_ops: Vec<Value> = ops
                .iter()
                .filter(|o| *o == "verify")
                .map(|o| Value::String(o.clone()))
                .collect();
            m.push(("key_ops".to_owned(), Value::Array(public_ops)));
        }
        Some(Value::Object(m))
    }
}

/// Typed access to a JWK's members; every problem is `invalid_key`.
struct Jwk<'a>(&'a Value);

impl Jwk<'_> {
    fn s(&self, name: &str) -> Result<Option<&str>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::String(v)) => Ok(Some(v)),
            Some(_) => Err(invalid(format!("the JWK member '{name}' must be a string"))),
        }
    }

    fn bytes(&self, name: &str) -> Result<Vec<u8>> {
        b64::decode_key(
            self.s(name)?
                .ok_or_else(|| invalid(format!("the JWK has no '{name}'")))?,
        )
    }

    fn has(&self, name: &str) -> bool {
        self.0.get(name).is_some()
    }

    fn rsa(&self) -> Result<Material> {
        if self.has("oth") {
            return Err(invalid("multi-prime RSA keys are not supported"));
        }
        let n = self.bytes("n")?;
        let e = self.bytes("e")?;
        check_rsa(&n, &e)?;
        let n = strip_zeros(&n).to_vec();
        let e = strip_zeros(&e).to_vec();
        if !self.has("d") {
            PublicKeyComponents { n: &n[..], e: &e[..] }
                .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
                .map_err(|_| invalid("the JWK's RSA public key is not valid"))?;
            return Ok(Material::Rsa { n, e, private: None });
        }
        let components = KeyPairComponents {
            public_key: PublicKeyComponents { n: &n[..], e: &e[..] },
            d: self.bytes("d")?,
            p: self.bytes("p")?,
            q: self.bytes("q")?,
            dP: self.bytes("dp")?,
            dQ: self.bytes("dq")?,
            qInv: self.bytes("qi")?,
        };
        let pair = RsaKeyPair::from_components(&components)
            .map_err(|_| invalid("the JWK's RSA private components are inconsistent"))?;
        rsa_private(pair)
    }

    fn ec(&self) -> Result<Material> {
        let curve = Curve::from_name(self.s("crv")?.ok_or_else(|| invalid("the JWK has no 'crv'"))?)
            .ok_or_else(|| invalid("the JWK's curve is not P-256, P-384 or P-521"))?;
        let (x, y) = (self.bytes("x")?, self.bytes("y")?);
        let len = curve.coordinate_len();
        if x.len() != len || y.len() != len {
            return Err(invalid("the JWK's EC coordinates have the wrong length"));
        }
        let mut point = Vec::with_capacity(1 + 2 * len);
        point.push(4);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        if !self.has("d") {
            ParsedPublicKey::new(ec_verify_alg(curve), &point)
                .map_err(|_| invalid("the JWK's EC point is not on its curve"))?;
            return Ok(Material::Ec {
                curve,
                point,
                private: None,
            });
        }
        let d = self.bytes("d")?;
        if d.len() != len {
            return Err(invalid("the JWK's EC private key has the wrong length"));
        }
        let pair = EcdsaKeyPair::from_private_key_and_public_key(ec_sign_alg(curve), &d, &point)
            .map_err(|_| invalid("the JWK's EC private key does not match its public key"))?;
        Ok(ec_private(curve, pair))
    }

    fn okp(&self) -> Result<Material> {
        if self.s("crv")? != Some("Ed25519") {
            return Err(invalid("the only OKP curve supported is Ed25519"));
        }
        let x = self.bytes("x")?;
        if x.len() != 32 {
            return Err(invalid("the JWK's Ed25519 public key has the wrong length"));
        }
        if !self.has("d") {
            ParsedPublicKey::new(&signature::ED25519, &x)
                .map_err(|_| invalid("the JWK's Ed25519 public key is not valid"))?;
            return Ok(Material::Ed25519 {
                public: x,
                private: None,
            });
        }
        let pair = Ed25519KeyPair::from_seed_and_public_key(&self.bytes("d")?, &x)
            .map_err(|_| invalid("the JWK's Ed25519 private key does not match its public key"))?;
        Ok(ed_private(pair))
    }
}

fn rsa_private(pair: RsaKeyPair) -> Result<Material> {
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

fn ec_private(curve: Curve, pair: EcdsaKeyPair) -> Material {
    Material::Ec {
        curve,
        point: pair.public_key().as_ref().to_vec(),
        private: Some(Arc::new(pair)),
    }
}

fn ed_private(pair: Ed25519KeyPair) -> Material {
    Material::Ed25519 {
        public: pair.public_key().as_ref().to_vec(),
        private: Some(Arc::new(pair)),
    }
}

fn from_spki(der: &[u8]) -> Result<Material> {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(der).map_err(|_| invalid("not a valid SubjectPublicKeyInfo"))?;
    let raw = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| invalid("the public key bit string is not byte-aligned"))?;
    match spki.algorithm.oid.to_string().as_str() {
        OID_RSA => rsa_public_der(raw),
        OID_EC => {
            let curve_oid = spki
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<spki::ObjectIdentifier>().ok())
                .ok_or_else(|| invalid("the EC key does not name its curve"))?;
            let curve = match curve_oid.to_string().as_str() {
                OID_P256 => Curve::P256,
                OID_P384 => Curve::P384,
                OID_P521 => Curve::P521,
                _ => return Err(invalid("the EC curve is not P-256, P-384 or P-521")),
            };
            if raw.first() != Some(&4) || raw.len() != 1 + 2 * curve.coordinate_len() {
                return Err(invalid("only uncompressed EC points are supported"));
            }
            ParsedPublicKey::new(ec_verify_alg(curve), raw).map_err(|_| invalid("the EC point is not on its curve"))?;
            Ok(Material::Ec {
                curve,
                point: raw.to_vec(),
                private: None,
            })
        }
        OID_ED25519 => {
            ParsedPublicKey::new(&signature::ED25519, raw).map_err(|_| invalid("not a valid Ed25519 public key"))?;
            Ok(Material::Ed25519 {
                public: raw.to_vec(),
                private: None,
            })
        }
        _ => Err(invalid(
            "unsupported public key algorithm (RSA, EC P-256/384/521 and Ed25519 are)",
        )),
    }
}

fn from_pkcs8(der: &[u8]) -> Result<Material> {
    let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(|_| invalid("not a valid PKCS#8 private key"))?;
    if info.algorithm.oid.to_string() == OID_RSA {
        // Checked here so that a small key is named `weak_key` before aws-lc refuses it.
        check_rsa_private_der(info.private_key)?;
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|_| invalid("not a valid PKCS#8 RSA private key"))?;
        return rsa_private(pair);
    }
    for curve in [Curve::P256, Curve::P384, Curve::P521] {
        if let Ok(pair) = EcdsaKeyPair::from_pkcs8(ec_sign_alg(curve), der) {
            return Ok(ec_private(curve, pair));
        }
    }
    if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
        return Ok(ed_private(pair));
    }
    Err(invalid("not a PKCS#8 RSA, EC P-256/384/521 or Ed25519 private key"))
}

/// A PKCS#1 `RSAPublicKey`, hygiene-checked, then validated by aws-lc.
fn rsa_public_der(der: &[u8]) -> Result<Material> {
    let key = pkcs1::RsaPublicKey::from_der(der).map_err(|_| invalid("not a valid PKCS#1 RSA public key"))?;
    let (n, e) = (key.modulus.as_bytes(), key.public_exponent.as_bytes());
    check_rsa(n, e)?;
    let (n, e) = (strip_zeros(n).to_vec(), strip_zeros(e).to_vec());
    PublicKeyComponents { n: &n[..], e: &e[..] }
        .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
        .map_err(|_| invalid("not a valid RSA public key"))?;
    Ok(Material::Rsa { n, e, private: None })
}

/// Hygiene of a PKCS#1 `RSAPrivateKey`'s public half.
fn check_rsa_private_der(der: &[u8]) -> Result<()> {
    let key = pkcs1::RsaPrivateKey::from_der(der).map_err(|_| invalid("not a valid PKCS#1 RSA private key"))?;
    if key.other_prime_infos.is_some() {
        return Err(invalid("multi-prime RSA keys are not supported"));
    }
    check_rsa(key.modulus.as_bytes(), key.public_exponent.as_bytes())
}

/// Material to verify signatures for one algorithm, with the JOSE shape rules applied first.
pub enum Verifying {
    Hmac(Box<hmac::Key>),
    Rsa { key: ParsedPublicKey, modulus_len: usize },
    Ec { key: ParsedPublicKey, curve: Curve },
    Ed25519(ParsedPublicKey),
}

impl fmt::Debug for Verifying {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verifying::Hmac(_) => "Verifying::Hmac",
            Verifying::Rsa { .. } => "Verifying::Rsa",
            Verifying::Ec { .. } => "Verifying::Ec",
            Verifying::Ed25519(_) => "Verifying::Ed25519",
        })
    }
}

fn bad_signature() -> Error {
    Error::new(ErrorKind::InvalidSignature, "the token signature does not verify")
}

/// True when the big-endian `v` is in [1, n-1]; `v` and `n` have the same length.
fn in_scalar_range(v: &[u8], n: &[u8]) -> bool {
    v.iter().any(|&b| b != 0) && v < n
}

impl Verifying {
    /// True for HMAC (cheap: verified without releasing the GIL).
    pub fn is_symmetric(&self) -> bool {
        matches!(self, Verifying::Hmac(_))
    }

    /// Verify `signature` over `message`; every failure is `invalid_signature`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        match self {
            // Constant-time tag comparison inside aws-lc.
            Verifying::Hmac(key) => hmac::verify(key, message, signature).map_err(|_| bad_signature()),
            Verifying::Rsa { key, modulus_len } => {
                if signature.len() != *modulus_len {
                    return Err(bad_signature());
                }
                key.verify_sig(message, signature).map_err(|_| bad_signature())
            }
            Verifying::Ec { key, curve } => {
                let len = curve.coordinate_len();
                if signature.len() != 2 * len {
                    return Err(bad_signature());
                }
                let (r, s) = signature.split_at(len);
                if !in_scalar_range(r, curve.order()) || !in_scalar_range(s, curve.order()) {
                    return Err(bad_signature());
                }
                key.verify_sig(message, signature).map_err(|_| bad_signature())
            }
            Verifying::Ed25519(key) => {
                if signature.len() != 64 {
                    return Err(bad_signature());
                }
                key.verify_sig(message, signature).map_err(|_| bad_signature())
            }
        }
    }
}

/// Material to sign for one algorithm.
pub enum Signing {
    Hmac(Box<hmac::Key>),
    Rsa(Arc<RsaKeyPair>, Alg),
    Ec(Arc<EcdsaKeyPair>),
    Ed25519(Arc<Ed25519KeyPair>),
}

impl fmt::Debug for Signing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signing")
    }
}

impl Signing {
    /// True for HMAC.
    pub fn is_symmetric(&self) -> bool {
        matches!(self, Signing::Hmac(_))
    }

    /// The JWS signature of `message` (ECDSA in JOSE's fixed r‖s form).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let failed = || Error::new(ErrorKind::InvalidKey, "signing failed");
        match self {
            Signing::Hmac(key) => Ok(hmac::sign(key, message).as_ref().to_vec()),
            Signing::Rsa(pair, alg) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(rsa_encoding(*alg), &SystemRandom::new(), message, &mut sig)
                    .map_err(|_| failed())?;
                Ok(sig)
            }
            Signing::Ec(pair) => Ok(pair
                .sign(&SystemRandom::new(), message)
                .map_err(|_| failed())?
                .as_ref()
                .to_vec()),
            Signing::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// Keys indexed by `kid`. Duplicate kids are refused.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    pub keys: Vec<Arc<Key>>,
}

fn is_jws_alg(name: &str) -> bool {
    Alg::from_name(name).is_some()
}

impl KeySet {
    /// A set from loaded keys; two keys with the same `kid` are refused.
    pub fn new(keys: Vec<Arc<Key>>) -> Result<KeySet> {
        for (i, k) in keys.iter().enumerate() {
            if let Some(kid) = &k.kid {
                if keys[..i].iter().any(|o| o.kid.as_ref() == Some(kid)) {
                    return Err(invalid("two keys in the set have the same kid"));
                }
            }
        }
        Ok(KeySet { keys })
    }

    /// A JWK Set (RFC 7517 §5) as JSON text.
    pub fn from_jwks_json(text: &[u8]) -> Result<KeySet> {
        let value = json::parse_value(text).map_err(|_| invalid("the JWKS is not valid JSON"))?;
        KeySet::from_jwks(&value)
    }

    /// A JWK Set. Members meant for encryption (`use` other than `sig`) or naming a non-JWS `alg`
    /// are skipped when bastion cannot load them; every other member must load.
    pub fn from_jwks(jwks: &Value) -> Result<KeySet> {
        let Some(Value::Array(members)) = jwks.get("keys") else {
            return Err(invalid("a JWKS is an object with a 'keys' list"));
        };
        let mut keys = Vec::with_capacity(members.len());
        for jwk in members {
            match Key::from_jwk(jwk) {
                Ok(k) => keys.push(Arc::new(k)),
                Err(e) => {
                    let not_for_signatures = jwk.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig")
                        || jwk.get("alg").and_then(Value::as_str).is_some_and(|a| !is_jws_alg(a));
                    if !not_for_signatures {
                        return Err(e);
                    }
                }
            }
        }
        KeySet::new(keys)
    }

    /// The public JWK Set: public members of the asymmetric keys (HMAC secrets are left out).
    pub fn to_jwks(&self) -> Value {
        let keys = self.keys.iter().filter_map(|k| k.public_jwk()).collect();
        Value::Object(vec![("keys".to_owned(), Value::Array(keys))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A P-256 key generated for these tests.
    const EC_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"XY-FAGDYx6Sc_pJM6J97WekI5s-Qy3K84OOXm5XWU04","y":"_NxOWzyKYoqyFUs-QmrJFlhA4UnKGzuDTHEwVR3jODw","d":"bPkDgcasNudwcFpTj2EPAMRFbQEn6tNSXcbmSH5n7mA"}"#;

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
    fn ec_jwk_round_trip_sign_verify() {
        let k = Key::from_jwk_json(EC_JWK.as_bytes()).unwrap();
        assert_eq!(k.family(), Family::Ec(Curve::P256));
        assert!(k.is_private());
        let sig = k.signing(Alg::ES256).unwrap().sign(b"msg").unwrap();
        assert_eq!(sig.len(), 64);
        let v = k.verifying(Alg::ES256).unwrap();
        v.verify(b"msg", &sig).unwrap();
        assert_eq!(code(v.verify(b"msh", &sig)), "invalid_signature");
        assert_eq!(code(v.verify(b"msg", &[0; 64])), "invalid_signature");
        let mut high = sig.clone();
        high[..32].copy_from_slice(Curve::P256.order());
        assert_eq!(code(v.verify(b"msg", &high)), "invalid_signature");
        assert_eq!(code(k.verifying(Alg::ES384)), "invalid_key");
        let public = k.public_jwk().unwrap();
        assert!(public.get("d").is_none());
        assert_eq!(public.get("crv").and_then(Value::as_str), Some("P-256"));
        let reloaded = Key::from_jwk(&public).unwrap();
        assert!(!reloaded.is_private());
        reloaded.verifying(Alg::ES256).unwrap().verify(b"msg", &sig).unwrap();
    }

    #[test]
    fn jwk_point_must_be_on_curve() {
        let off = EC_JWK.replace(
            "_NxOWzyKYoqyFUs-QmrJFlhA4UnKGzuDTHEwVR3jODw\",\"d\":\"bPkDgcasNudwcFpTj2EPAMRFbQEn6tNSXcbmSH5n7mA",
            "_NxOWzyKYoqyFUs-QmrJFlhA4UnKGzuDTHEwVR3jODA",
        );
        assert_eq!(code(Key::from_jwk_json(off.as_bytes())), "invalid_key");
    }

    #[test]
    fn jwk_use_and_key_ops() {
        let enc = EC_JWK.replace("\"kty\"", "\"use\":\"enc\",\"kty\"");
        assert!(!Key::from_jwk_json(enc.as_bytes()).unwrap().verifies);
        let ops = EC_JWK.replace("\"kty\"", "\"key_ops\":[\"sign\"],\"kty\"");
        let k = Key::from_jwk_json(ops.as_bytes()).unwrap();
        assert!(!k.verifies);
        assert!(k.signing(Alg::ES256).is_ok());
        let bad_alg = EC_JWK.replace("\"kty\"", "\"alg\":\"RS256\",\"kty\"");
        assert_eq!(code(Key::from_jwk_json(bad_alg.as_bytes())), "invalid_key");
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

    #[test]
    fn keyset_refuses_duplicate_kids_and_skips_encryption_keys() {
        let a = Arc::new(Key::hmac(&[1; 32], Some("a".into()), None).unwrap());
        assert_eq!(code(KeySet::new(vec![a.clone(), a.clone()])), "invalid_key");
        let jwks =
            format!(r#"{{"keys":[{EC_JWK},{{"kty":"RSA","use":"enc","alg":"RSA-OAEP","n":"AQAB","e":"AQAB"}}]}}"#);
        let set = KeySet::from_jwks_json(jwks.as_bytes()).unwrap();
        assert_eq!(set.keys.len(), 1);
        let out = set.to_jwks();
        let Some(Value::Array(keys)) = out.get("keys") else {
            panic!()
        };
        assert_eq!(keys.len(), 1);
        assert!(keys[0].get("d").is_none());
        let bad = r#"{"keys":[{"kty":"RSA","alg":"RS256","n":"AQAB","e":"AQAB"}]}"#;
        assert_eq!(code(KeySet::from_jwks_json(bad.as_bytes())), "weak_key");
    }

    #[test]
    fn pem_errors() {
        assert_eq!(code(Key::from_pem(b"not pem", None, None)), "invalid_key");
        let enc = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert_eq!(code(Key::from_pem(enc, None, None)), "invalid_key");
    }
}
