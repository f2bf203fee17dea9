//! Minting compact JWS tokens. The binding layer adds `iat`, `exp`, `jti` and the configured
//! `iss`/`aud`/`typ`; this module assembles the header, encodes and signs.

use crate::error::{Error, Result};
use crate::json::{self, Value};
use crate::jwt::alg::Alg;
use crate::jwt::b64;
use crate::jwt::crypto::Signing;
use crate::jwt::header::{check_kid, names_nested_jwt};
use crate::jwt::keys::Key;

/// Header members a caller may not set: `alg` is the signer's own, and a token with `crit`, `b64`,
/// `enc` or `zip` is one bastion's verifier refuses.
pub const REFUSED_HEADERS: [&str; 5] = ["alg", "crit", "b64", "enc", "zip"];

/// A header member a caller adds must leave a token the verifier accepts: not one of
/// [`REFUSED_HEADERS`]; `kid`, `typ` and `cty` strings, the kid one the verifier can look up
/// ([`check_kid`]), and no `cty` naming a nested JWT. Every refusal is a configuration error.
pub fn check_header(name: &str, value: &Value) -> Result<()> {
    if REFUSED_HEADERS.contains(&name) {
        return Err(Error::config(format!("the header member '{name}' cannot be set")));
    }
    if matches!(name, "kid" | "typ" | "cty") {
        let Value::String(text) = value else {
            return Err(Error::config(format!("the header member '{name}' must be a string")));
        };
        if name == "kid" {
            check_kid(text)?;
        }
        if name == "cty" && names_nested_jwt(text) {
            return Err(Error::config("nested tokens (cty JWT) are not supported"));
        }
    }
    Ok(())
}

/// A key and an algorithm, ready to sign.
#[derive(Debug)]
pub struct Signer {
    /// The `alg` of every token.
    pub alg: Alg,
    signing: Signing,
    /// Put in the header as `kid` unless the caller's headers name another.
    pub kid: Option<String>,
}

impl Signer {
    /// Needs private material that serves `alg` (HMAC secret length is checked for `alg`).
    pub fn new(key: &Key, alg: Alg) -> Result<Signer> {
        Ok(Signer {
            alg,
            signing: key.signing(alg)?,
            kid: key.kid.clone(),
        })
    }

    /// True for HMAC.
    pub fn is_symmetric(&self) -> bool {
        self.signing.is_symmetric()
    }

    /// The encoded header and payload joined by `.`: the signing input. `headers` are added after
    /// `alg` and `kid`, replacing a member of the same name.
    pub fn signing_input(&self, headers: &[(&str, Value)], payload_json: &[u8]) -> String {
        let mut members: Vec<(String, Value)> = vec![("alg".to_owned(), Value::String(self.alg.name().to_owned()))];
        if let Some(kid) = &self.kid {
            members.push(("kid".to_owned(), Value::String(kid.clone())));
        }
        for (name, value) in headers {
            if let Some(slot) = members.iter_mut().find(|(k, _)| k == name) {
                slot.1 = value.clone();
            } else {
                members.push(((*name).to_owned(), value.clone()));
            }
        }
        let mut header = String::with_capacity(64);
        json::write_value(&Value::Object(members), &mut header);
        let mut out = String::with_capacity(header.len() * 4 / 3 + payload_json.len() * 4 / 3 + 100);
        b64::encode_into(header.as_bytes(), &mut out);
        out.push('.');
        b64::encode_into(payload_json, &mut out);
        out
    }

    /// The signature segment appended to a signing input.
    pub fn finish(&self, mut signing_input: String) -> Result<String> {
        let sig = self.signing.sign(signing_input.as_bytes())?;
        signing_input.push('.');
        b64::encode_into(&sig, &mut signing_input);
        Ok(signing_input)
    }

    /// Header + payload (already JSON) → compact token.
    pub fn sign_json(&self, headers: &[(&str, Value)], payload_json: &[u8]) -> Result<String> {
        self.finish(self.signing_input(headers, payload_json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::verify::split;

    #[test]
    fn header_members_and_signature_shape() {
        let key = Key::hmac(&[9; 64], Some("k".into()), None).unwrap();
        let s = Signer::new(&key, Alg::HS512).unwrap();
        let t = s
            .sign_json(&[("typ", Value::String("at+jwt".into()))], br#"{"a":1}"#)
            .unwrap();
        let seg = split(t.as_bytes(), 8192).unwrap();
        assert_eq!(seg.header, br#"{"alg":"HS512","kid":"k","typ":"at+jwt"}"#);
        assert_eq!(seg.payload, br#"{"a":1}"#);
        assert_eq!(seg.signature.len(), 64);
        assert_eq!(Signer::new(&key, Alg::ES256).unwrap_err().code(), "invalid_key");
        let public =
            Key::from_jwk_json(br#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#)
                .unwrap();
        assert_eq!(Signer::new(&public, Alg::EdDSA).unwrap_err().code(), "invalid_key");
    }

    #[test]
    fn headers_the_verifier_would_refuse_are_refused() {
        let config = |name: &str, v: Value| check_header(name, &v).unwrap_err().code();
        assert_eq!(config("crit", Value::Array(vec![])), "invalid_configuration");
        assert_eq!(config("kid", Value::Int(5)), "invalid_configuration");
        assert_eq!(config("kid", Value::String("k".repeat(257))), "invalid_configuration");
        assert_eq!(config("cty", Value::String("JWT".into())), "invalid_configuration");
        assert_eq!(config("typ", Value::Null), "invalid_configuration");
        assert!(check_header("kid", &Value::String("k".repeat(256))).is_ok());
        assert!(check_header("x5t", &Value::Int(5)).is_ok());
    }
}
