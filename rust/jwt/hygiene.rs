//! Public-key hygiene rules, applied at load to every key whatever its format (PEM, JWK, JWKS,
//! generation): the RSA modulus and exponent bounds, and the Ed25519 point rules (canonical encoding,
//! no small-order point). `keys.rs` and `jwk.rs` call these; a key that fails one never loads.

use aws_lc_rs::signature::{self, ParsedPublicKey};

use crate::error::{Error, Result};
use crate::jwt::keys::strip_zeros;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Value;
    use crate::jwt::alg::Alg;
    use crate::jwt::keys::Key;
    use std::fmt;

    fn code<T: fmt::Debug>(r: Result<T>) -> &'static str {
        r.unwrap_err().code()
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
}
