//! Claim validation (RFC 7519 §4.1, RFC 8725 §3.8–3.10): what the verifier checks and its defaults.
//!
//! Defaults: `exp` required; no issuer and no audience configured, which means a token that carries
//! `aud` is refused (RFC 7519 §4.1.3); leeway 0 (`exp == now` is expired); no `typ` check.

use crate::error::{Error, ErrorKind, Result};
use crate::jwt::header::typ_matches;
use crate::jwt::watched::{Claim, Watched};

/// The top-level members the verifier reads from the payload, in slot order.
pub const REGISTERED: [&str; 7] = ["exp", "nbf", "iat", "iss", "aud", "sub", "jti"];

/// The registered claims of one payload, by slot.
pub type Registered<'a> = Watched<'a, 7>;

/// The slot of a registered claim name (its position in [`REGISTERED`]).
pub fn slot(name: &str) -> Option<usize> {
    // Every registered name has three bytes: one length test rejects most other claims.
    if name.len() != 3 {
        return None;
    }
    Some(match name.as_bytes() {
        b"exp" => 0,
        b"nbf" => 1,
        b"iat" => 2,
        b"iss" => 3,
        b"aud" => 4,
        b"sub" => 5,
        b"jti" => 6,
        _ => return None,
    })
}

/// The times of a verified token, kept with cached tokens so every hit re-checks them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Times {
    pub exp: Option<f64>,
    pub nbf: Option<f64>,
    pub iat: Option<f64>,
}

/// What a verifier checks beyond the signature.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Accepted issuers (exact match); `None` = not checked.
    pub issuers: Option<Vec<String>>,
    /// Accepted audiences (any-of); `None` = a token carrying `aud` is refused.
    pub audiences: Option<Vec<String>>,
    /// Seconds of clock skew tolerated for `exp`, `nbf` and `iat`. Default 0.
    pub leeway: f64,
    /// Registered claims that must be present. Default `["exp"]`.
    pub require: Vec<&'static str>,
    /// Expected `typ` header (RFC 8725 §3.11); `None` = not checked.
    pub typ: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            issuers: None,
            audiences: None,
            leeway: 0.0,
            require: vec!["exp"],
            typ: None,
        }
    }
}

/// The registered claim named `name`, as a `&'static str` (for error details).
pub fn registered(name: &str) -> Result<&'static str> {
    REGISTERED.iter().copied().find(|r| *r == name).ok_or_else(|| {
        Error::config(format!(
            "require= names registered claims only ({}), not {name:?}",
            REGISTERED.join(", ")
        ))
    })
}

fn invalid(claim: &'static str, msg: &'static str) -> Error {
    Error::claim(ErrorKind::InvalidClaim, claim, msg)
}

fn numeric_date(v: &Claim<'_>, claim: &'static str) -> Result<f64> {
    v.as_number()
        .filter(|f| f.is_finite())
        .ok_or_else(|| invalid(claim, "a NumericDate claim is not a JSON number"))
}

/// Check the time claims of a verified token against `now` (also used on cache hits).
pub fn check_times(times: &Times, leeway: f64, now: f64) -> Result<()> {
    if let Some(exp) = times.exp {
        if now >= exp + leeway {
            return Err(Error::claim(ErrorKind::TokenExpired, "exp", "the token has expired"));
        }
    }
    if let Some(nbf) = times.nbf {
        if now + leeway < nbf {
            return Err(Error::claim(
                ErrorKind::TokenNotYetValid,
                "nbf",
                "the token is not valid yet",
            ));
        }
    }
    if let Some(iat) = times.iat {
        if now + leeway < iat {
            return Err(Error::claim(
                ErrorKind::TokenNotYetValid,
                "iat",
                "the token was issued in the future",
            ));
        }
    }
    Ok(())
}

impl Policy {
    /// Check the registered claims of a token whose signature has verified. `typ` is the header's.
    pub fn check(&self, watched: &Registered<'_>, typ: Option<&str>, now: f64) -> Result<Times> {
        let get = |name: &str| slot(name).and_then(|i| watched[i].as_ref());
        let mut times = Times::default();
        if let Some(v) = get("exp") {
            times.exp = Some(numeric_date(v, "exp")?);
        }
        if let Some(v) = get("nbf") {
            times.nbf = Some(numeric_date(v, "nbf")?);
        }
        if let Some(v) = get("iat") {
            times.iat = Some(numeric_date(v, "iat")?);
        }
        for name in ["iss", "sub", "jti"] {
            if get(name).is_some_and(|v| v.as_str().is_none()) {
                let name = registered(name)?;
                return Err(invalid(name, "the claim must be a string"));
            }
        }
        let aud: Option<&[std::borrow::Cow<'_, str>]> = match get("aud") {
            None => None,
            Some(Claim::Str(s)) => Some(std::slice::from_ref(s)),
            Some(Claim::StrList(items)) => Some(items),
            Some(_) => return Err(invalid("aud", "aud must be a string or a list of strings")),
        };
        for name in &self.require {
            if get(name).is_none() {
                return Err(Error::claim(
                    ErrorKind::MissingClaim,
                    name,
                    "a required claim is missing",
                ));
            }
        }
        if let Some(expected) = &self.typ {
            if !typ.is_some_and(|t| typ_matches(expected, t)) {
                return Err(Error::claim(
                    ErrorKind::InvalidType,
                    "typ",
                    "the token type is not accepted",
                ));
            }
        }
        check_times(&times, self.leeway, now)?;
        if let Some(issuers) = &self.issuers {
            let iss = get("iss").and_then(Claim::as_str);
            if !iss.is_some_and(|i| issuers.iter().any(|e| e == i)) {
                return Err(Error::claim(
                    ErrorKind::InvalidIssuer,
                    "iss",
                    "the token issuer is not accepted",
                ));
            }
        }
        match (&self.audiences, aud) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(Error::claim(
                    ErrorKind::InvalidAudience,
                    "aud",
                    "the token has an audience and the verifier expects none",
                ))
            }
            (Some(_), None) => {
                return Err(Error::claim(
                    ErrorKind::InvalidAudience,
                    "aud",
                    "the token has no audience",
                ));
            }
            (Some(expected), Some(aud)) => {
                if !aud.iter().any(|a| expected.iter().any(|e| e == a.as_ref())) {
                    return Err(Error::claim(
                        ErrorKind::InvalidAudience,
                        "aud",
                        "the token audience is not accepted",
                    ));
                }
            }
        }
        Ok(times)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::ValueSink;
    use crate::jwt::watched::parse_object_watching;

    fn check(policy: &Policy, payload: &str, now: f64) -> Result<Times> {
        let (_, w) = parse_object_watching(payload.as_bytes(), &mut ValueSink, slot).unwrap();
        policy.check(&w, None, now)
    }

    fn err(policy: &Policy, payload: &str, now: f64) -> (&'static str, Option<&'static str>) {
        let e = check(policy, payload, now).unwrap_err();
        (e.code(), e.claim)
    }

    #[test]
    fn exp_boundary_and_leeway() {
        let p = Policy::default();
        assert!(check(&p, r#"{"exp":100}"#, 99.9).is_ok());
        assert_eq!(err(&p, r#"{"exp":100}"#, 100.0), ("token_expired", Some("exp")));
        let lenient = Policy {
            leeway: 5.0,
            ..Policy::default()
        };
        assert!(check(&lenient, r#"{"exp":100}"#, 104.0).is_ok());
        assert_eq!(err(&lenient, r#"{"exp":100}"#, 105.0).0, "token_expired");
        assert_eq!(
            err(&p, r#"{"exp":1000,"nbf":50}"#, 49.0),
            ("token_not_yet_valid", Some("nbf"))
        );
        assert!(check(&p, r#"{"exp":1000,"nbf":50}"#, 50.0).is_ok());
        assert_eq!(
            err(&p, r#"{"exp":1000,"iat":60}"#, 59.0),
            ("token_not_yet_valid", Some("iat"))
        );
        assert_eq!(err(&p, r#"{"sub":"x"}"#, 0.0), ("missing_claim", Some("exp")));
        let none = Policy {
            require: vec![],
            ..Policy::default()
        };
        assert!(check(&none, "{}", 0.0).is_ok());
    }

    #[test]
    fn numeric_dates_must_be_numbers() {
        let p = Policy::default();
        assert_eq!(err(&p, r#"{"exp":"9999999999"}"#, 0.0), ("invalid_claim", Some("exp")));
        assert_eq!(err(&p, r#"{"exp":true}"#, 0.0), ("invalid_claim", Some("exp")));
        assert_eq!(
            err(&p, r#"{"exp":9e9,"nbf":null}"#, 0.0),
            ("invalid_claim", Some("nbf"))
        );
        assert_eq!(err(&p, r#"{"exp":9e9,"iat":[1]}"#, 0.0), ("invalid_claim", Some("iat")));
        assert!(check(&p, r#"{"exp":99999999999999999999999}"#, 0.0).is_ok());
        assert!(check(&p, r#"{"exp":100.5}"#, 100.4).is_ok());
    }

    #[test]
    fn issuer_and_audience() {
        let p = Policy {
            issuers: Some(vec!["https://idp".into()]),
            audiences: Some(vec!["api".into(), "web".into()]),
            require: vec![],
            ..Policy::default()
        };
        assert!(check(&p, r#"{"iss":"https://idp","aud":"api"}"#, 0.0).is_ok());
        assert!(check(&p, r#"{"iss":"https://idp","aud":["x","web"]}"#, 0.0).is_ok());
        assert_eq!(
            err(&p, r#"{"iss":"https://idp/","aud":"api"}"#, 0.0).0,
            "invalid_issuer"
        );
        assert_eq!(err(&p, r#"{"iss":"HTTPS://IDP","aud":"api"}"#, 0.0).0, "invalid_issuer");
        assert_eq!(err(&p, r#"{"aud":"api"}"#, 0.0).0, "invalid_issuer");
        assert_eq!(
            err(&p, r#"{"iss":["https://idp"],"aud":"api"}"#, 0.0),
            ("invalid_claim", Some("iss"))
        );
        assert_eq!(err(&p, r#"{"iss":"https://idp"}"#, 0.0).0, "invalid_audience");
        assert_eq!(err(&p, r#"{"iss":"https://idp","aud":[]}"#, 0.0).0, "invalid_audience");
        assert_eq!(
            err(&p, r#"{"iss":"https://idp","aud":"API"}"#, 0.0).0,
            "invalid_audience"
        );
        assert_eq!(
            err(&p, r#"{"iss":"https://idp","aud":["api",1]}"#, 0.0),
            ("invalid_claim", Some("aud"))
        );
        let no_aud = Policy {
            require: vec![],
            ..Policy::default()
        };
        assert_eq!(err(&no_aud, r#"{"aud":"api"}"#, 0.0), ("invalid_audience", Some("aud")));
        assert_eq!(err(&no_aud, r#"{"sub":5}"#, 0.0), ("invalid_claim", Some("sub")));
    }

    #[test]
    fn typ_is_checked_when_configured() {
        let p = Policy {
            typ: Some("at+jwt".into()),
            require: vec![],
            ..Policy::default()
        };
        let (_, w) = parse_object_watching(b"{}", &mut ValueSink, slot).unwrap();
        assert!(p.check(&w, Some("application/AT+JWT"), 0.0).is_ok());
        assert_eq!(p.check(&w, Some("JWT"), 0.0).unwrap_err().code(), "invalid_type");
        assert_eq!(p.check(&w, None, 0.0).unwrap_err().code(), "invalid_type");
        assert!(registered("custom").is_err());
    }
}
