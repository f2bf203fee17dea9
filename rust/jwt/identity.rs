//! Verified JWT claims → [`Principal`] (DESIGN §3): scopes from `scope` (space-separated, RFC 8693 /
//! RFC 9068) or `scp` (a list, or a space-separated string as Entra ID sends it); roles from `roles` or
//! `role` (a list or one string); the tier from `tier`; the client from `client_id` (RFC 9068) or `azp`
//! (OIDC); the token id from `jti`. The subject is `sub`, or for a client-credentials token without one,
//! the client id. A claim of the wrong type is `invalid_claim`, never silently ignored: a token whose
//! `scope` cannot be read must not pass as a token without scopes.

use std::sync::Arc;

use compact_str::CompactString;

use crate::error::{Error, ErrorKind, Result};
use crate::json::{Object, Value};
use crate::jwt::claims::Times;
use crate::principal::{name_set, NameSet, Principal, TokenType};

fn invalid(claim: &'static str) -> Error {
    Error::claim(ErrorKind::InvalidClaim, claim, "a claim has the wrong type or value")
}

fn text<'a>(claims: &'a Object, name: &'static str) -> Result<Option<&'a str>> {
    match claims.iter().find(|(k, _)| k == name).map(|(_, v)| v) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(name)),
    }
}

/// A list of names (a JSON array of strings) or one string split on spaces.
fn names(claims: &Object, name: &'static str, split: bool) -> Result<Option<NameSet>> {
    match claims.iter().find(|(k, _)| k == name).map(|(_, v)| v) {
        None => Ok(None),
        Some(Value::String(s)) if split => Ok(Some(name_set(s.split(' ').filter(|p| !p.is_empty())))),
        Some(Value::String(s)) => Ok(Some(name_set([s.as_str()]))),
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) => out.push(s.as_str()),
                    _ => return Err(invalid(name)),
                }
            }
            Ok(Some(name_set(out)))
        }
        Some(_) => Err(invalid(name)),
    }
}

/// The principal a verified token proves. `claims` are the verified payload's members (kept, read-only,
/// as `Principal.claims`), `times` its NumericDates as the claim checks read them.
pub fn principal(claims: Object, times: &Times) -> Result<Principal> {
    let client = match text(&claims, "client_id")? {
        Some(c) => Some(c),
        None => text(&claims, "azp")?,
    };
    let Some(subject) = text(&claims, "sub")?.or(client) else {
        return Err(Error::claim(
            ErrorKind::MissingClaim,
            "sub",
            "a required claim is missing",
        ));
    };
    let scopes = match names(&claims, "scope", true)? {
        Some(s) => s,
        None => names(&claims, "scp", true)?.unwrap_or_else(|| name_set::<_, &str>([])),
    };
    let roles = match names(&claims, "roles", false)? {
        Some(r) => r,
        None => names(&claims, "role", false)?.unwrap_or_else(|| name_set::<_, &str>([])),
    };
    let machine = client.is_some_and(|c| c == subject);
    let principal = Principal {
        subject: CompactString::from(subject),
        client_id: client.map(CompactString::from),
        scopes,
        roles,
        tier: text(&claims, "tier")?.map(|t| Arc::new(t.to_owned())),
        token_type: TokenType::Jwt,
        token_id: text(&claims, "jti")?.map(CompactString::from),
        issuer: text(&claims, "iss")?.map(|i| Arc::new(i.to_owned())),
        expires_at: times.exp.unwrap_or(f64::INFINITY),
        machine,
        claims: None,
    };
    Ok(Principal {
        claims: Some(Arc::new(claims)),
        ..principal
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse_document;

    fn of(json: &str) -> Result<Principal> {
        let times = Times {
            exp: Some(100.0),
            nbf: None,
            iat: Some(1.0),
        };
        let crate::json::Value::Object(members) = parse_document(json.as_bytes()).unwrap() else {
            panic!("not an object")
        };
        principal(members, &times)
    }

    fn list(set: &NameSet) -> Vec<&str> {
        set.iter().map(AsRef::as_ref).collect()
    }

    #[test]
    fn scope_string_and_scp_list() {
        let p = of(r#"{"sub":"u1","scope":"write read  read","jti":"j","iss":"https://i"}"#).unwrap();
        assert_eq!(list(&p.scopes), ["read", "write"]);
        assert_eq!(p.token_id.as_deref(), Some("j"));
        assert_eq!(p.issuer.as_deref().map(String::as_str), Some("https://i"));
        assert!((p.expires_at - 100.0).abs() < f64::EPSILON);
        assert_eq!(p.token_type, TokenType::Jwt);
        let p = of(r#"{"sub":"u1","scp":["a","b"]}"#).unwrap();
        assert_eq!(list(&p.scopes), ["a", "b"]);
        let p = of(r#"{"sub":"u1","scp":"a b"}"#).unwrap();
        assert_eq!(list(&p.scopes), ["a", "b"]);
        // `scope` wins over `scp` when both are present
        let p = of(r#"{"sub":"u1","scope":"x","scp":["y"]}"#).unwrap();
        assert_eq!(list(&p.scopes), ["x"]);
    }

    #[test]
    fn roles_list_or_role_string() {
        assert_eq!(list(&of(r#"{"sub":"u","roles":["b","a"]}"#).unwrap().roles), ["a", "b"]);
        // one role name may contain a space: `role` is not split
        assert_eq!(
            list(&of(r#"{"sub":"u","role":"super admin"}"#).unwrap().roles),
            ["super admin"]
        );
        assert!(of(r#"{"sub":"u"}"#).unwrap().roles.is_empty());
    }

    #[test]
    fn clients_and_machines() {
        let p = of(r#"{"sub":"svc","client_id":"svc","tier":"internal"}"#).unwrap();
        assert!(p.machine);
        assert_eq!(p.rate_limit_key(), "svc");
        assert_eq!(p.tier.as_deref().map(String::as_str), Some("internal"));
        let p = of(r#"{"sub":"alice","azp":"spa"}"#).unwrap();
        assert!(!p.machine);
        assert_eq!(p.client_id.as_deref(), Some("spa"));
        assert_eq!(p.rate_limit_key(), "alice");
        // a client-credentials token without `sub` is its client
        let p = of(r#"{"client_id":"svc"}"#).unwrap();
        assert_eq!(p.subject, "svc");
        assert!(p.machine);
    }

    #[test]
    fn wrong_types_are_refused_not_ignored() {
        for (json, claim) in [
            (r#"{"sub":1}"#, "sub"),
            (r#"{"sub":"u","scope":5}"#, "scope"),
            (r#"{"sub":"u","scp":[1]}"#, "scp"),
            (r#"{"sub":"u","roles":{"a":1}}"#, "roles"),
            (r#"{"sub":"u","tier":3}"#, "tier"),
            (r#"{"sub":"u","client_id":false}"#, "client_id"),
            (r#"{"sub":"u","jti":7}"#, "jti"),
        ] {
            let e = of(json).unwrap_err();
            assert_eq!((e.code(), e.claim), ("invalid_claim", Some(claim)), "{json}");
        }
        let e = of(r#"{"scope":"a"}"#).unwrap_err();
        assert_eq!((e.code(), e.claim), ("missing_claim", Some("sub")));
    }

    #[test]
    fn claims_are_kept() {
        let p = of(r#"{"sub":"u","custom":{"n":1.5}}"#).unwrap();
        let claims = p.claims.unwrap();
        assert_eq!(claims.len(), 2);
        assert_eq!(claims[1].0, "custom");
    }
}
