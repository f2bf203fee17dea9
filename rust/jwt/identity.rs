//! Verified JWT claims → [`Principal`] (DESIGN §3): scopes from `scope` (space-separated, RFC 8693 /
//! RFC 9068) or `scp` (a list, or a space-separated string as Entra ID sends it); roles from `roles` or
//! `role` (a list or one string); the tier from `tier`; the client from `client_id` (RFC 9068) or `azp`
//! (OIDC); the token id from `jti`. The subject is `sub`, or for a client-credentials token without one,
//! the client id. A claim of the wrong type is `invalid_claim`, never silently ignored: a token whose
//! `scope` cannot be read must not pass as a token without scopes.

use std::sync::Arc;

use compact_str::CompactString;

use crate::error::{Error, ErrorKind, Result};
use crate::json::{malformed, Members, Sink};
use crate::jwt::claims::Times;
use crate::principal::{name_set, Claims, NameSet, Principal, TokenType};

/// The top-level claims a principal is read from.
const IDENTITY: [&str; 10] = [
    "sub",
    "client_id",
    "azp",
    "scope",
    "scp",
    "roles",
    "role",
    "tier",
    "jti",
    "iss",
];

/// Members up to which duplicates are found by a linear scan as they arrive (as `DocumentSink` does).
const LINEAR_MEMBERS: usize = 16;

/// What the identity parse keeps of a JSON value: a string, a list of strings, or only that it is
/// something else.
#[derive(Debug)]
pub enum Lite {
    Str(CompactString),
    Strs(Vec<CompactString>),
    Other,
}

/// A [`Sink`] that reads a verified payload's identity claims and nothing else: every member is
/// checked as the document sink checks it (duplicates at any depth, nesting, numbers: the same parser),
/// but no claims document is built — the payload's text is kept, parsed only if its claims are read.
#[derive(Debug, Default)]
pub struct IdentitySink {
    json: Option<Box<[u8]>>,
    found: Vec<(&'static str, Lite)>,
}

fn duplicated(mut keys: Vec<&str>) -> bool {
    keys.sort_unstable();
    keys.windows(2).any(|w| w[0] == w[1])
}

impl Sink for IdentitySink {
    type Value = Lite;
    /// The member names, to find duplicates.
    type Object = Vec<CompactString>;
    /// The strings, while every item is one.
    type Array = Option<Vec<CompactString>>;

    fn document(&mut self, json: &[u8]) {
        self.json = Some(json.into());
    }
    fn null(&mut self) -> Result<Lite> {
        Ok(Lite::Other)
    }
    fn boolean(&mut self, _: bool) -> Result<Lite> {
        Ok(Lite::Other)
    }
    fn int(&mut self, _: i64) -> Result<Lite> {
        Ok(Lite::Other)
    }
    fn big_int(&mut self, _: &str) -> Result<Lite> {
        Ok(Lite::Other)
    }
    fn float(&mut self, _: f64) -> Result<Lite> {
        Ok(Lite::Other)
    }
    fn string(&mut self, s: &str) -> Result<Lite> {
        Ok(Lite::Str(s.into()))
    }
    fn object_new(&mut self) -> Result<Self::Object> {
        Ok(Vec::new())
    }
    fn object_insert(&mut self, obj: &mut Self::Object, key: &str, _: Lite) -> Result<bool> {
        if obj.len() < LINEAR_MEMBERS && obj.iter().any(|k| k == key) {
            return Ok(false);
        }
        obj.push(key.into());
        Ok(true)
    }
    fn object_finish(&mut self, obj: Self::Object) -> Result<Lite> {
        if obj.len() > LINEAR_MEMBERS && duplicated(obj.iter().map(CompactString::as_str).collect()) {
            return Err(malformed("the JSON object has a duplicate member"));
        }
        Ok(Lite::Other)
    }
    fn array_new(&mut self) -> Result<Self::Array> {
        Ok(Some(Vec::new()))
    }
    fn array_push(&mut self, arr: &mut Self::Array, value: Lite) -> Result<()> {
        match (arr.as_mut(), value) {
            (Some(items), Lite::Str(s)) => items.push(s),
            _ => *arr = None,
        }
        Ok(())
    }
    fn array_finish(&mut self, arr: Self::Array) -> Result<Lite> {
        Ok(arr.map_or(Lite::Other, Lite::Strs))
    }
    fn object_from_members(&mut self, members: Members<'_, Lite>) -> Result<Option<Lite>> {
        if duplicated(members.iter().map(|(k, _)| &**k).collect()) {
            return Ok(None);
        }
        for (key, value) in members {
            if let Some(name) = IDENTITY.iter().find(|n| **n == key) {
                self.found.push((name, value));
            }
        }
        Ok(Some(Lite::Other))
    }
}

fn invalid(claim: &'static str) -> Error {
    Error::claim(ErrorKind::InvalidClaim, claim, "a claim has the wrong type or value")
}

impl IdentitySink {
    fn get(&self, name: &str) -> Option<&Lite> {
        self.found.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    fn text(&self, name: &'static str) -> Result<Option<&str>> {
        match self.get(name) {
            None => Ok(None),
            Some(Lite::Str(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(name)),
        }
    }

    /// A list of names (a JSON array of strings) or one string, split on spaces when `split`.
    fn names(&self, name: &'static str, split: bool) -> Result<Option<NameSet>> {
        match self.get(name) {
            None => Ok(None),
            Some(Lite::Str(s)) if split => Ok(Some(name_set(s.split(' ').filter(|p| !p.is_empty())))),
            Some(Lite::Str(s)) => Ok(Some(name_set([s.as_str()]))),
            Some(Lite::Strs(items)) => Ok(Some(name_set(items.iter().map(CompactString::as_str)))),
            Some(Lite::Other) => Err(invalid(name)),
        }
    }

    /// The principal a verified token proves, from what this sink read of its payload; `times` are its
    /// NumericDates as the claim checks read them. The payload's text becomes `Principal.claims`.
    pub fn principal(self, times: &Times) -> Result<Principal> {
        let client = match self.text("client_id")? {
            Some(c) => Some(c),
            None => self.text("azp")?,
        };
        let Some(subject) = self.text("sub")?.or(client) else {
            return Err(Error::claim(
                ErrorKind::MissingClaim,
                "sub",
                "a required claim is missing",
            ));
        };
        let scopes = match self.names("scope", true)? {
            Some(s) => s,
            None => self.names("scp", true)?.unwrap_or_else(|| name_set::<_, &str>([])),
        };
        let roles = match self.names("roles", false)? {
            Some(r) => r,
            None => self.names("role", false)?.unwrap_or_else(|| name_set::<_, &str>([])),
        };
        let machine = client.is_some_and(|c| c == subject);
        let principal = Principal {
            subject: CompactString::from(subject),
            client_id: client.map(CompactString::from),
            scopes,
            roles,
            tier: self.text("tier")?.map(|t| Arc::new(t.to_owned())),
            token_type: TokenType::Jwt,
            token_id: self.text("jti")?.map(CompactString::from),
            issuer: self.text("iss")?.map(|i| Arc::new(i.to_owned())),
            expires_at: times.exp.unwrap_or(f64::INFINITY),
            machine,
            claims: None,
        };
        Ok(Principal {
            claims: self.json.map(|json| Arc::new(Claims::text(json))),
            ..principal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::verify::parse_payload;
    use std::fmt::Write as _;

    fn of(json: &str) -> Result<Principal> {
        let times = Times {
            exp: Some(100.0),
            nbf: None,
            iat: Some(1.0),
        };
        let mut sink = IdentitySink::default();
        parse_payload(json.as_bytes(), &mut sink)?;
        sink.principal(&times)
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
    fn duplicates_are_refused_at_any_depth_and_the_claims_read_back_whole() {
        assert_eq!(of(r#"{"sub":"u","sub":"v"}"#).unwrap_err().code(), "token_malformed");
        assert_eq!(
            of(r#"{"sub":"u","x":{"a":1,"a":2}}"#).unwrap_err().code(),
            "token_malformed"
        );
        let mut many = String::new();
        for i in 0..40 {
            let _ = write!(many, r#""k{i}":{i},"#);
        }
        assert!(of(&format!(r#"{{{many}"sub":"u","k7":0}}"#)).is_err());
        let json = r#"{"sub":"u","x":{"a":[1,"b",{"c":null}]},"scp":["a","b"],"n":1.5e3,"big":123456789012345678901}"#;
        let p = of(json).unwrap();
        let crate::json::Value::Object(want) = crate::json::parse_document(json.as_bytes()).unwrap() else {
            panic!("not an object")
        };
        assert_eq!(p.claims.unwrap().members(), &want);
    }

    #[test]
    fn claims_are_kept() {
        let p = of(r#"{"sub":"u","custom":{"n":1.5}}"#).unwrap();
        let claims = p.claims.unwrap();
        assert_eq!(claims.members().len(), 2);
        assert_eq!(claims.members()[1].0, "custom");
    }
}
