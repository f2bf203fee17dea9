//! Several issuers behind one request path: which verifier a token is for, chosen by its `iss`.
//!
//! The `iss` read here is unverified: it only picks the verifier, which then checks the token in full
//! (signature with that issuer's keys, its algorithms, its audience, and `iss` again, exactly). A token
//! that lies about its issuer is therefore checked against keys that did not sign it, and refused.

use std::collections::HashMap;

use crate::error::{Error, ErrorKind, Result};
use crate::json;
use crate::jwt::verify;

/// The issuers of several verifiers, each mapped to its verifier's position.
#[derive(Debug)]
pub struct Issuers {
    by_name: HashMap<String, usize>,
}

impl Issuers {
    /// One entry per verifier: the issuers it accepts. Each must name at least one, and no issuer may
    /// belong to two verifiers (which of them would decide?).
    pub fn new<'a>(issuers: impl IntoIterator<Item = Option<&'a [String]>>) -> Result<Issuers> {
        let mut by_name = HashMap::new();
        for (i, names) in issuers.into_iter().enumerate() {
            let names = names.filter(|n| !n.is_empty()).ok_or_else(|| {
                Error::config("with several verifiers, each needs issuer=: the token's iss chooses the verifier")
            })?;
            for name in names {
                if by_name.insert(name.clone(), i).is_some() {
                    return Err(Error::config("two verifiers accept the same issuer"));
                }
            }
        }
        Ok(Issuers { by_name })
    }

    /// The position of the verifier for this token's `iss`. A token that is not a compact JWS, or whose
    /// payload is not a JSON object, is refused as the verifier would refuse it; a missing, non-string or
    /// unknown `iss` is `invalid_issuer`.
    pub fn choose(&self, token: &[u8], max_token_bytes: usize) -> Result<usize> {
        let segments = verify::split(token, max_token_bytes)?;
        let payload = json::parse_document(&segments.payload)?;
        if !matches!(payload, json::Value::Object(_)) {
            return Err(Error::new(
                ErrorKind::TokenMalformed,
                "the token's payload is not a JSON object",
            ));
        }
        payload
            .get("iss")
            .and_then(json::Value::as_str)
            .and_then(|iss| self.by_name.get(iss).copied())
            .ok_or_else(|| Error::new(ErrorKind::InvalidIssuer, "the token's issuer is not accepted"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::jwt::{Alg, Key, Signer};

    fn token(claims: &str) -> String {
        let key = Arc::new(Key::hmac(&[7; 32], None, None).unwrap());
        Signer::new(&key, Alg::HS256)
            .unwrap()
            .sign_json(&[], claims.as_bytes())
            .unwrap()
    }

    #[test]
    fn chooses_by_iss() {
        let a = vec!["https://a.example".to_owned()];
        let b = vec!["https://b.example".to_owned(), "https://b2.example".to_owned()];
        let issuers = Issuers::new([Some(a.as_slice()), Some(b.as_slice())]).unwrap();
        let pick = |claims: &str| issuers.choose(token(claims).as_bytes(), 8192).map_err(|e| e.code());
        assert_eq!(pick(r#"{"iss":"https://a.example"}"#), Ok(0));
        assert_eq!(pick(r#"{"iss":"https://b2.example"}"#), Ok(1));
        assert_eq!(pick(r#"{"iss":"https://c.example"}"#), Err("invalid_issuer"));
        assert_eq!(pick(r#"{"iss":["https://a.example"]}"#), Err("invalid_issuer"));
        assert_eq!(pick(r#"{"sub":"x"}"#), Err("invalid_issuer"));
        assert_eq!(pick("[1]"), Err("token_malformed"));
        assert_eq!(
            issuers.choose(b"not-a-jwt", 8192).map_err(|e| e.code()),
            Err("token_malformed")
        );
    }

    #[test]
    fn every_verifier_names_distinct_issuers() {
        let a = vec!["https://a.example".to_owned()];
        assert_eq!(
            Issuers::new([Some(a.as_slice()), None]).unwrap_err().code(),
            "invalid_configuration"
        );
        assert_eq!(
            Issuers::new([Some(a.as_slice()), Some(a.as_slice())])
                .unwrap_err()
                .code(),
            "invalid_configuration"
        );
    }
}
