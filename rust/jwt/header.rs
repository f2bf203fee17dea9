//! The JOSE header: what bastion reads from it and what it refuses (RFC 7515 §4, RFC 8725 §3).
//!
//! Read: `alg`, `kid`, `typ`. Refused with `unsupported_header`: `crit` (bastion understands no
//! extension), `b64` (RFC 7797), JWE members (`enc`, `zip`) and nested JWTs (`cty: JWT`).
//! Ignored, never fetched nor trusted: `jku`, `x5u`, `jwk`, `x5c`, `x5t`, `x5t#S256`.

use crate::error::{Error, ErrorKind, Result};
use crate::json::{self, Value, ValueSink};
use crate::jwt::alg::Alg;

/// Longest `kid` looked up, in bytes; longer ones cannot name a key (`unknown_key`). The same limit
/// refuses such a kid on a key at load ([`check_kid`]), so no key signs tokens it cannot verify.
pub const MAX_KID_LEN: usize = 256;

/// A key's (or a signer's header) `kid` must be one the verifier can look up: at most
/// [`MAX_KID_LEN`] bytes, else a configuration error.
pub fn check_kid(kid: &str) -> Result<()> {
    if kid.len() > MAX_KID_LEN {
        return Err(Error::config(format!(
            "a kid may have at most {MAX_KID_LEN} bytes (this one has {}): a longer one could never be looked up",
            kid.len()
        )));
    }
    Ok(())
}

/// True when a `cty` says the payload is itself a JWT (RFC 7519 §5.2), a nesting bastion refuses.
pub fn names_nested_jwt(cty: &str) -> bool {
    let cty = cty.strip_prefix("application/").unwrap_or(cty);
    cty.eq_ignore_ascii_case("jwt")
}

/// The header members bastion acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub alg: Alg,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

fn malformed(msg: &'static str) -> Error {
    Error::new(ErrorKind::TokenMalformed, msg)
}

fn string_member<'v>(header: &'v Value, name: &str) -> Result<Option<&'v str>> {
    match header.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(malformed("a JOSE header member has the wrong type")),
    }
}

/// Parse decoded header bytes (strict JSON) and apply the header rules.
pub fn parse(bytes: &[u8]) -> Result<Header> {
    let value = json::parse_object(bytes, &mut ValueSink)?;
    from_value(&value)
}

/// Apply the header rules to a parsed header object.
pub fn from_value(value: &Value) -> Result<Header> {
    let alg_name = string_member(value, "alg")?.ok_or_else(|| malformed("the JOSE header has no alg"))?;
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(Error::new(
            ErrorKind::UnsupportedAlgorithm,
            "the 'none' algorithm is never accepted",
        ));
    }
    let alg = Alg::from_name(alg_name).ok_or_else(|| {
        Error::new(
            ErrorKind::UnsupportedAlgorithm,
            "the token's algorithm is not supported",
        )
    })?;
    for member in ["crit", "b64"] {
        if value.get(member).is_some() {
            return Err(Error::new(
                ErrorKind::UnsupportedHeader,
                format!("the JOSE header member '{member}' is not supported"),
            ));
        }
    }
    if value.get("enc").is_some() || value.get("zip").is_some() {
        return Err(Error::new(
            ErrorKind::UnsupportedHeader,
            "encrypted tokens (JWE) are not supported",
        ));
    }
    if let Some(cty) = string_member(value, "cty")? {
        if names_nested_jwt(cty) {
            return Err(Error::new(
                ErrorKind::UnsupportedHeader,
                "nested tokens are not supported",
            ));
        }
    }
    let kid = string_member(value, "kid")?;
    if kid.is_some_and(|k| k.len() > MAX_KID_LEN) {
        return Err(Error::new(ErrorKind::UnknownKey, "no key matches the token's key id"));
    }
    let typ = string_member(value, "typ")?;
    Ok(Header {
        alg,
        kid: kid.map(str::to_owned),
        typ: typ.map(str::to_owned),
    })
}

/// RFC 7515 §4.1.9 / RFC 8725 §3.11: media types compare case-insensitively, and the
/// `application/` prefix may be left out. `expected` is the configured value.
pub fn typ_matches(expected: &str, actual: &str) -> bool {
    fn strip(s: &str) -> &str {
        // Compared as bytes: byte 12 is a char boundary once the 12 ASCII bytes matched.
        if s.len() > 12 && s.as_bytes()[..12].eq_ignore_ascii_case(b"application/") {
            &s[12..]
        } else {
            s
        }
    }
    strip(expected).eq_ignore_ascii_case(strip(actual))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> &'static str {
        parse(s.as_bytes()).unwrap_err().code()
    }

    #[test]
    fn reads_alg_kid_typ() {
        let h = parse(br#"{"alg":"ES256","kid":"k1","typ":"at+jwt","jku":"https://evil","jwk":{"kty":"EC"}}"#).unwrap();
        assert_eq!(
            h,
            Header {
                alg: Alg::ES256,
                kid: Some("k1".into()),
                typ: Some("at+jwt".into())
            }
        );
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for none in ["none", "None", "NONE", "nOnE"] {
            assert_eq!(code(&format!(r#"{{"alg":"{none}"}}"#)), "unsupported_algorithm");
        }
        assert_eq!(code(r#"{"alg":"HS257"}"#), "unsupported_algorithm");
        assert_eq!(code(r#"{"alg":"hs256"}"#), "unsupported_algorithm");
        assert_eq!(code(r#"{"alg":"HS256","crit":["exp"],"exp":1}"#), "unsupported_header");
        assert_eq!(code(r#"{"alg":"HS256","crit":[]}"#), "unsupported_header");
        assert_eq!(
            code(r#"{"alg":"HS256","b64":false,"crit":["b64"]}"#),
            "unsupported_header"
        );
        assert_eq!(code(r#"{"alg":"HS256","b64":true}"#), "unsupported_header");
        assert_eq!(code(r#"{"alg":"HS256","enc":"A128GCM"}"#), "unsupported_header");
        assert_eq!(code(r#"{"alg":"HS256","cty":"JWT"}"#), "unsupported_header");
        assert_eq!(code(r#"{"alg":"HS256","cty":"application/jwt"}"#), "unsupported_header");
        assert_eq!(code(r#"{"typ":"JWT"}"#), "token_malformed");
        assert_eq!(code(r#"{"alg":256}"#), "token_malformed");
        assert_eq!(code(r#"{"alg":"HS256","kid":7}"#), "token_malformed");
        assert_eq!(code(r#"{"alg":"HS256","alg":"none"}"#), "token_malformed");
        let long = format!(r#"{{"alg":"HS256","kid":"{}"}}"#, "k".repeat(MAX_KID_LEN + 1));
        assert_eq!(code(&long), "unknown_key");
    }

    #[test]
    fn typ_comparison() {
        assert!(typ_matches("at+jwt", "AT+JWT"));
        assert!(typ_matches("at+jwt", "application/at+jwt"));
        assert!(typ_matches("application/at+jwt", "at+JWT"));
        assert!(!typ_matches("at+jwt", "jwt"));
        assert!(!typ_matches("at+jwt", "application/"));
    }
}
