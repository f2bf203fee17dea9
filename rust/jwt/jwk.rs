//! JWK and JWK Set (RFC 7517): loading keys from them, with the same hygiene as every other key, and
//! exporting public members. A JWK's `alg` binds the key; `use` other than `sig`, or `key_ops` without
//! `verify`, keep it from verifying.
//!
//! Over 400 lines only with its unit tests, which stay beside the code (the crate's convention).

use std::sync::Arc;

use aws_lc_rs::rsa::{KeyPairComponents, PublicKeyComponents};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, ParsedPublicKey, RsaKeyPair};

use crate::error::{Error, Result};
use crate::json::{self, Value};
use crate::jwt::alg::{Alg, Curve};
use crate::jwt::b64;
use crate::jwt::crypto::{ec_sign_alg, ec_verify_alg};
use crate::jwt::keys::{
    check_ed25519, check_rsa, ec_private, ed_private, ed_public, rsa_private, strip_zeros, Key, Material,
};

impl Key {
    /// A JWK (RFC 7517) given as JSON text.
    pub fn from_jwk_json(text: &[u8]) -> Result<Key> {
        let value = json::parse_value(text).map_err(|_| Error::invalid_key("the JWK is not valid JSON"))?;
        Key::from_jwk(&value)
    }

    /// A JWK (RFC 7517) given as a parsed object.
    pub fn from_jwk(jwk: &Value) -> Result<Key> {
        if !matches!(jwk, Value::Object(_)) {
            return Err(Error::invalid_key("a JWK must be a JSON object"));
        }
        let f = Jwk(jwk);
        let kty = f.s("kty")?.ok_or_else(|| Error::invalid_key("the JWK has no 'kty'"))?;
        let kid = f.s("kid")?.map(str::to_owned);
        let alg = match f.s("alg")? {
            None => None,
            Some(name) => Some(
                Alg::from_name(name)
                    .ok_or_else(|| Error::invalid_key("the JWK's alg is not a JWS algorithm bastion supports"))?,
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
            _ => return Err(Error::invalid_key("unsupported JWK key type")),
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
        self.verifies = self.jwk_use.as_deref().is_none_or(|u| u == "sig")
            && self.ops.as_ref().is_none_or(|ops| ops.iter().any(|o| o == "verify"));
        self
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
            Some(_) => Err(Error::invalid_key(format!("the JWK member '{name}' must be a string"))),
        }
    }

    fn bytes(&self, name: &str) -> Result<Vec<u8>> {
        b64::decode_key(
            self.s(name)?
                .ok_or_else(|| Error::invalid_key(format!("the JWK has no '{name}'")))?,
        )
    }

    fn has(&self, name: &str) -> bool {
        self.0.get(name).is_some()
    }

    fn rsa(&self) -> Result<Material> {
        if self.has("oth") {
            return Err(Error::invalid_key("multi-prime RSA keys are not supported"));
        }
        let n = self.bytes("n")?;
        let e = self.bytes("e")?;
        check_rsa(&n, &e)?;
        let n = strip_zeros(&n).to_vec();
        let e = strip_zeros(&e).to_vec();
        if !self.has("d") {
            PublicKeyComponents { n: &n[..], e: &e[..] }
                .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
                .map_err(|_| Error::invalid_key("the JWK's RSA public key is not valid"))?;
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
            .map_err(|_| Error::invalid_key("the JWK's RSA private components are inconsistent"))?;
        rsa_private(pair)
    }

    fn ec(&self) -> Result<Material> {
        let curve = Curve::from_name(
            self.s("crv")?
                .ok_or_else(|| Error::invalid_key("the JWK has no 'crv'"))?,
        )
        .ok_or_else(|| Error::invalid_key("the JWK's curve is not P-256, P-384 or P-521"))?;
        let (x, y) = (self.bytes("x")?, self.bytes("y")?);
        let len = curve.coordinate_len();
        if x.len() != len || y.len() != len {
            return Err(Error::invalid_key("the JWK's EC coordinates have the wrong length"));
        }
        let mut point = Vec::with_capacity(1 + 2 * len);
        point.push(4);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        if !self.has("d") {
            ParsedPublicKey::new(ec_verify_alg(curve), &point)
                .map_err(|_| Error::invalid_key("the JWK's EC point is not on its curve"))?;
            return Ok(Material::Ec {
                curve,
                point,
                private: None,
            });
        }
        let d = self.bytes("d")?;
        if d.len() != len {
            return Err(Error::invalid_key("the JWK's EC private key has the wrong length"));
        }
        let pair = EcdsaKeyPair::from_private_key_and_public_key(ec_sign_alg(curve), &d, &point)
            .map_err(|_| Error::invalid_key("the JWK's EC private key does not match its public key"))?;
        Ok(ec_private(curve, pair))
    }

    fn okp(&self) -> Result<Material> {
        if self.s("crv")? != Some("Ed25519") {
            return Err(Error::invalid_key("the only OKP curve supported is Ed25519"));
        }
        let x = self.bytes("x")?;
        if x.len() != 32 {
            return Err(Error::invalid_key("the JWK's Ed25519 public key has the wrong length"));
        }
        if !self.has("d") {
            return ed_public(&x);
        }
        check_ed25519(&x)?;
        let pair = Ed25519KeyPair::from_seed_and_public_key(&self.bytes("d")?, &x)
            .map_err(|_| Error::invalid_key("the JWK's Ed25519 private key does not match its public key"))?;
        ed_private(pair)
    }
}

/// Keys indexed by `kid`. Duplicate kids are refused.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    pub keys: Vec<Arc<Key>>,
    /// The members of the JWKS it was loaded from that were skipped as unsupported, one line each
    /// (position, escaped kid, reason): the binding warns with them.
    pub skipped: Vec<String>,
}

fn is_jws_alg(name: &str) -> bool {
    Alg::from_name(name).is_some()
}

/// The longest part of a kid quoted in messages about a JWKS member, in characters.
const KID_SHOWN: usize = 64;

/// A JWKS member named in a message: its position and kid. The kid is not secret (it is published
/// next to the key) but it is whatever the set's author wrote: it is quoted with Rust's escaping (no
/// control character reaches a log line) and cut to [`KID_SHOWN`] characters.
fn member_name(index: usize, kid: Option<&str>) -> String {
    match kid {
        Some(kid) if kid.chars().count() > KID_SHOWN => {
            let cut: String = kid.chars().take(KID_SHOWN).collect();
            format!("keys[{index}] (kid {cut:?}…)")
        }
        Some(kid) => format!("keys[{index}] (kid {kid:?})"),
        None => format!("keys[{index}] (no kid)"),
    }
}

/// The error for an `oct` member of a JWKS loaded without `allow_symmetric`.
fn symmetric_refused(index: usize, kid: Option<&str>) -> crate::error::Error {
    let which = member_name(index, kid);
    Error::invalid_key(format!(
        "the JWKS member {which} is a symmetric key (kty \"oct\"): a published key set should hold public keys \
         only, and an HMAC secret in it lets anyone who can read or alter the set mint tokens; pass \
         allow_symmetric=True only for a JWKS that is itself kept secret, or load the secret with Key.hmac() \
         or Key.from_jwk()"
    ))
}

/// Why a JWKS member is of a kind bastion does not implement (RFC 7517 §5: such members SHOULD be
/// ignored), or `None` for a kind it knows, which must then load. Unknown `kty`s, OKP curves other
/// than Ed25519 (Ed448, X25519, X448) and EC curves other than P-256/384/521 are unsupported; a
/// member with no `kty`, or one that is not a string, is malformed and is not skipped.
fn unsupported_kind(jwk: &Value) -> Option<String> {
    let kty = jwk.get("kty")?.as_str()?;
    let crv = jwk.get("crv").and_then(Value::as_str);
    match (kty, crv) {
        // a missing crv is malformed: loading names it
        ("RSA" | "oct", _) | ("OKP", Some("Ed25519") | None) | ("EC", Some("P-256" | "P-384" | "P-521") | None) => None,
        ("OKP" | "EC", Some(crv)) => Some(format!("the {kty} curve {crv:?} is not supported")),
        _ => Some(format!("the key type {kty:?} is not supported")),
    }
}

impl KeySet {
    /// A set from loaded keys; two keys with the same `kid` are refused.
    pub fn new(keys: Vec<Arc<Key>>) -> Result<KeySet> {
        for (i, k) in keys.iter().enumerate() {
            if let Some(kid) = &k.kid {
                if keys[..i].iter().any(|o| o.kid.as_ref() == Some(kid)) {
                    return Err(Error::invalid_key("two keys in the set have the same kid"));
                }
            }
        }
        Ok(KeySet {
            keys,
            skipped: Vec::new(),
        })
    }

    /// A JWK Set (RFC 7517 §5) as JSON text; see [`KeySet::from_jwks`].
    pub fn from_jwks_json(text: &[u8], allow_symmetric: bool) -> Result<KeySet> {
        let value = json::parse_value(text).map_err(|_| Error::invalid_key("the JWKS is not valid JSON"))?;
        KeySet::from_jwks(&value, allow_symmetric)
    }

    /// A JWK Set. Members of a kind bastion does not implement (an unknown `kty`, an Ed448 or
    /// secp256k1 key) are skipped and listed in [`KeySet::skipped`], as RFC 7517 §5 asks; so are
    /// members meant for encryption (`use` other than `sig`) or naming a non-JWS `alg` when bastion
    /// cannot load them. Every other member must load: a weak or malformed key of a known kind
    /// refuses the whole set.
    ///
    /// A JWKS is normally published by an identity provider and fetched over the network: a symmetric
    /// (`kty: oct`) member in it is a leaked secret, or lets whoever influenced the set mint HS* tokens.
    /// Unless `allow_symmetric`, any `oct` member (whatever its `use`) is refused with `invalid_key`,
    /// before any member is loaded; the message names the member's position and kid, never its `k`.
    pub fn from_jwks(jwks: &Value, allow_symmetric: bool) -> Result<KeySet> {
        let Some(Value::Array(members)) = jwks.get("keys") else {
            return Err(Error::invalid_key("a JWKS is an object with a 'keys' list"));
        };
        if !allow_symmetric {
            if let Some((i, jwk)) = members
                .iter()
                .enumerate()
                .find(|(_, m)| m.get("kty").and_then(Value::as_str) == Some("oct"))
            {
                return Err(symmetric_refused(i, jwk.get("kid").and_then(Value::as_str)));
            }
        }
        let mut keys = Vec::with_capacity(members.len());
        let mut skipped = Vec::new();
        for (i, jwk) in members.iter().enumerate() {
            // an encryption key bastion cannot load is none of its business: skipped without a word
            let for_encryption = jwk.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig");
            let not_for_signatures =
                for_encryption || jwk.get("alg").and_then(Value::as_str).is_some_and(|a| !is_jws_alg(a));
            if let Some(reason) = unsupported_kind(jwk) {
                if !for_encryption {
                    let which = member_name(i, jwk.get("kid").and_then(Value::as_str));
                    skipped.push(format!("the JWKS member {which} was skipped: {reason}"));
                }
                continue;
            }
            match Key::from_jwk(jwk) {
                Ok(k) => keys.push(Arc::new(k)),
                Err(e) if not_for_signatures => drop(e),
                Err(e) => return Err(e),
            }
        }
        let mut set = KeySet::new(keys)?;
        set.skipped = skipped;
        Ok(set)
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
    use crate::jwt::alg::Family;
    use std::fmt;

    // A P-256 key generated for these tests.
    const EC_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"XY-FAGDYx6Sc_pJM6J97WekI5s-Qy3K84OOXm5XWU04","y":"_NxOWzyKYoqyFUs-QmrJFlhA4UnKGzuDTHEwVR3jODw","d":"bPkDgcasNudwcFpTj2EPAMRFbQEn6tNSXcbmSH5n7mA"}"#;

    fn code<T: fmt::Debug>(r: Result<T>) -> &'static str {
        r.unwrap_err().code()
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
    fn keyset_refuses_duplicate_kids_and_skips_encryption_keys() {
        let a = Arc::new(Key::hmac(&[1; 32], Some("a".into()), None).unwrap());
        assert_eq!(code(KeySet::new(vec![a.clone(), a.clone()])), "invalid_key");
        let jwks =
            format!(r#"{{"keys":[{EC_JWK},{{"kty":"RSA","use":"enc","alg":"RSA-OAEP","n":"AQAB","e":"AQAB"}}]}}"#);
        let set = KeySet::from_jwks_json(jwks.as_bytes(), false).unwrap();
        assert_eq!(set.keys.len(), 1);
        let out = set.to_jwks();
        let Some(Value::Array(keys)) = out.get("keys") else {
            panic!()
        };
        assert_eq!(keys.len(), 1);
        assert!(keys[0].get("d").is_none());
        let bad = r#"{"keys":[{"kty":"RSA","alg":"RS256","n":"AQAB","e":"AQAB"}]}"#;
        assert_eq!(code(KeySet::from_jwks_json(bad.as_bytes(), false)), "weak_key");
    }

    #[test]
    fn jwks_symmetric_members_are_opt_in() {
        let k = b64::encode(&[7; 32]);
        let oct = format!(r#"{{"kty":"oct","k":"{k}","kid":"h\n1"}}"#);
        let mixed = format!(r#"{{"keys":[{EC_JWK},{oct}]}}"#);
        let err = KeySet::from_jwks_json(mixed.as_bytes(), false).unwrap_err();
        assert_eq!(err.code(), "invalid_key");
        let msg = err.to_string();
        assert!(msg.contains(r#"keys[1] (kid "h\n1")"#), "{msg}");
        assert!(msg.contains("allow_symmetric=True"), "{msg}");
        assert!(!msg.contains(&k), "{msg}");
        // refused whatever its use, even when it would not load
        let enc = r#"{"keys":[{"kty":"oct","use":"enc","alg":"A128KW"}]}"#;
        let msg = KeySet::from_jwks_json(enc.as_bytes(), false).unwrap_err().to_string();
        assert!(msg.contains("keys[0] (no kid)"), "{msg}");
        let long = format!(r#"{{"keys":[{{"kty":"oct","k":"{k}","kid":"{}"}}]}}"#, "x".repeat(500));
        let msg = KeySet::from_jwks_json(long.as_bytes(), false).unwrap_err().to_string();
        assert!(msg.contains(&format!("\"{}\"…", "x".repeat(KID_SHOWN))), "{msg}");
        assert!(!msg.contains(&"x".repeat(KID_SHOWN + 1)), "{msg}");

        let set = KeySet::from_jwks_json(mixed.as_bytes(), true).unwrap();
        assert_eq!(set.keys.len(), 2);
        assert_eq!(set.keys[1].kty(), "oct");
        let Some(Value::Array(public)) = set.to_jwks().get("keys").cloned() else {
            panic!()
        };
        assert_eq!(public.len(), 1);
        assert!(public.iter().all(|m| m.get("k").is_none()));
        assert_eq!(KeySet::from_jwks(&set.to_jwks(), false).unwrap().keys.len(), 1);
        assert_eq!(KeySet::from_jwks_json(enc.as_bytes(), true).unwrap().keys.len(), 0);
    }

    #[test]
    fn jwks_skips_unsupported_members_and_names_them() {
        let ed448 = r#"{"kty":"OKP","crv":"Ed448","kid":"ed\u001b448","x":"AAAA"}"#;
        let x25519 = r#"{"kty":"OKP","crv":"X25519","x":"AAAA"}"#;
        let future = r#"{"kty":"AKP","kid":"pq","pub":"AAAA"}"#;
        let k256 = r#"{"kty":"EC","crv":"secp256k1","kid":"k","x":"AAAA","y":"AAAA"}"#;
        let jwks = format!(r#"{{"keys":[{ed448},{EC_JWK},{x25519},{future},{k256}]}}"#);
        let set = KeySet::from_jwks_json(jwks.as_bytes(), false).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.skipped.len(), 4, "{:?}", set.skipped);
        assert!(
            set.skipped[0].contains(r#"keys[0] (kid "ed\u{1b}448")"#),
            "{:?}",
            set.skipped
        );
        assert!(set.skipped[0].contains("Ed448"), "{:?}", set.skipped);
        assert!(
            set.skipped[2].contains(r#"(kid "pq")"#) && set.skipped[2].contains("AKP"),
            "{:?}",
            set.skipped
        );
        // dangerous or malformed members of known kinds still refuse the whole set
        let weak = format!(r#"{{"keys":[{EC_JWK},{{"kty":"RSA","n":"AQAB","e":"AQAB"}}]}}"#);
        assert_eq!(code(KeySet::from_jwks_json(weak.as_bytes(), false)), "weak_key");
        let bad_ed = format!(r#"{{"keys":[{EC_JWK},{{"kty":"OKP","crv":"Ed25519","x":"AAAA"}}]}}"#);
        assert_eq!(code(KeySet::from_jwks_json(bad_ed.as_bytes(), false)), "invalid_key");
        let no_kty = format!(r#"{{"keys":[{EC_JWK},{{"kid":"x"}}]}}"#);
        assert_eq!(code(KeySet::from_jwks_json(no_kty.as_bytes(), false)), "invalid_key");
        let oct = format!(r#"{{"keys":[{{"kty":"oct","k":"{}"}}]}}"#, b64::encode(&[7; 32]));
        assert_eq!(code(KeySet::from_jwks_json(oct.as_bytes(), false)), "invalid_key");
    }
}
