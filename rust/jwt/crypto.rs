//! The cryptographic operations of each JWS algorithm, on aws-lc: which aws-lc algorithm serves an
//! `alg`, and verification and signing with JOSE's signature shape rules applied first.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, Ed25519KeyPair, ParsedPublicKey, RsaKeyPair,
    RsaParameters,
};

use crate::error::{Error, ErrorKind, Result};
use crate::jwt::alg::{Alg, Curve};

/// The aws-lc ECDSA verification algorithm (fixed r‖s signatures) of a curve.
pub(crate) fn ec_verify_alg(curve: Curve) -> &'static EcdsaVerificationAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
    }
}

/// The aws-lc ECDSA signing algorithm (fixed r‖s signatures) of a curve.
pub(crate) fn ec_sign_alg(curve: Curve) -> &'static EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
    }
}

/// The aws-lc RSA verification parameters of an RS*/PS* alg (2048–8192-bit moduli).
pub(crate) fn rsa_params(alg: Alg) -> &'static RsaParameters {
    match alg {
        Alg::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Alg::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Alg::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Alg::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => &signature::RSA_PKCS1_2048_8192_SHA256,
    }
}

/// The aws-lc RSA signature encoding of an RS*/PS* alg.
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

/// The aws-lc HMAC algorithm of an HS* alg.
pub(crate) fn hmac_alg(alg: Alg) -> hmac::Algorithm {
    match alg {
        Alg::HS384 => hmac::HMAC_SHA384,
        Alg::HS512 => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    }
}

/// An HMAC verification key: the hash states after the key's inner and outer pads, computed once
/// (RustCrypto `hmac`), so a verification clones them and hashes the message only. The tag
/// comparison is constant-time (`Mac::verify_slice`, through `subtle`).
#[derive(Clone)]
pub enum MacKey {
    Sha256(::hmac::Hmac<sha2::Sha256>),
    Sha384(::hmac::Hmac<sha2::Sha384>),
    Sha512(::hmac::Hmac<sha2::Sha512>),
}

impl MacKey {
    /// The key of an HS* alg.
    pub fn new(alg: Alg, secret: &[u8]) -> Result<MacKey> {
        use ::hmac::Mac as _;
        let bad = |_| Error::new(ErrorKind::InvalidKey, "the HMAC secret cannot be used");
        Ok(match alg {
            Alg::HS384 => MacKey::Sha384(::hmac::Hmac::new_from_slice(secret).map_err(bad)?),
            Alg::HS512 => MacKey::Sha512(::hmac::Hmac::new_from_slice(secret).map_err(bad)?),
            _ => MacKey::Sha256(::hmac::Hmac::new_from_slice(secret).map_err(bad)?),
        })
    }

    /// True when `tag` is the MAC of `message` (constant-time comparison).
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        use ::hmac::Mac as _;
        match self {
            MacKey::Sha256(k) => ct_equal(&k.clone().chain_update(message).finalize().into_bytes(), tag),
            MacKey::Sha384(k) => ct_equal(&k.clone().chain_update(message).finalize().into_bytes(), tag),
            MacKey::Sha512(k) => ct_equal(&k.clone().chain_update(message).finalize().into_bytes(), tag),
        }
    }
}

/// Constant-time equality of a computed MAC and a presented tag (lengths are public): every byte
/// pair is XORed into one accumulator with no data-dependent branch (as `CRYPTO_memcmp` does), which
/// the optimizer cannot see through (`black_box`), then compared with `subtle`. This vectorizes,
/// unlike `subtle`'s per-byte `ct_eq` on slices (≈ 25 ns for 32 bytes here).
fn ct_equal(mac: &[u8], tag: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    if mac.len() != tag.len() {
        return false;
    }
    let diff = mac.iter().zip(tag).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    bool::from(std::hint::black_box(diff).ct_eq(&0))
}

/// Material to verify signatures for one algorithm, with the JOSE shape rules applied first.
pub enum Verifying {
    Hmac(Box<MacKey>),
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
            Verifying::Hmac(key) => {
                if key.verify(message, signature) {
                    Ok(())
                } else {
                    Err(bad_signature())
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_keys_agree_with_aws_lc_and_refuse_any_other_tag() {
        let secret = [0x5au8; 64];
        let message = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0";
        for alg in [Alg::HS256, Alg::HS384, Alg::HS512] {
            let key = MacKey::new(alg, &secret).unwrap();
            let tag = hmac::sign(&hmac::Key::new(hmac_alg(alg), &secret), message);
            let tag = tag.as_ref();
            assert!(key.verify(message, tag));
            assert!(!key.verify(b"other", tag));
            assert!(!key.verify(message, &tag[..tag.len() - 1]));
            assert!(!key.verify(message, &[tag, &[0]].concat()));
            assert!(!key.verify(message, &[]));
            for i in [0, tag.len() / 2, tag.len() - 1] {
                let mut bad = tag.to_vec();
                bad[i] ^= 0x01;
                assert!(!key.verify(message, &bad));
            }
        }
    }
}
