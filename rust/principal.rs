//! The authenticated identity behind a request, whatever the token type.
//!
//! A `Principal` is immutable once built. Strings that repeat across many tokens (scope and role sets,
//! tiers, issuers) are shared (`Arc`); per-token strings are `CompactString`s, stored inline up to 24
//! bytes, which keeps a million opaque records small.

use std::sync::{Arc, OnceLock};

use compact_str::CompactString;
use hashbrown::HashMap;
use parking_lot::Mutex;

use crate::json;

/// A set of names (scopes or roles), sorted and deduplicated, shared between principals. A thin
/// pointer (`Arc<Vec<_>>`, not `Arc<[_]>`): it sits in every index record.
pub type NameSet = Arc<Vec<Box<str>>>;

/// A string shared between many principals (tier, issuer). A thin pointer, like [`NameSet`].
pub type Shared = Arc<String>;

/// Which kind of token authenticated the principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    /// A JSON Web Token.
    Jwt,
    /// An opaque ("database") token.
    Opaque,
}

impl TokenType {
    /// `"jwt"` or `"opaque"`.
    pub const fn name(self) -> &'static str {
        match self {
            TokenType::Jwt => "jwt",
            TokenType::Opaque => "opaque",
        }
    }

    /// The type named `"jwt"` or `"opaque"`.
    pub fn from_name(name: &str) -> Option<TokenType> {
        match name {
            "jwt" => Some(TokenType::Jwt),
            "opaque" => Some(TokenType::Opaque),
            _ => None,
        }
    }
}

/// A principal's claims (a JSON object's members): given parsed (an opaque record's metadata, an unpickled
/// principal), or as the verified JSON text, parsed on first read — most requests never read their claims,
/// and a token's identity is read without building them (`jwt::identity`).
#[derive(Debug, Clone)]
pub struct Claims {
    json: Option<Box<[u8]>>,
    members: OnceLock<json::Object>,
}

impl Claims {
    /// Claims already parsed.
    pub fn parsed(members: json::Object) -> Self {
        Claims {
            json: None,
            members: OnceLock::from(members),
        }
    }

    /// Claims as the text of a JSON object that was parsed once already (verified): parsed again on first
    /// read.
    pub fn text(json: Box<[u8]>) -> Self {
        Claims {
            json: Some(json),
            members: OnceLock::new(),
        }
    }

    /// The members, in document order.
    pub fn members(&self) -> &json::Object {
        self.members.get_or_init(|| {
            // the text was read by the same parser when the token was verified: it parses again
            match self.json.as_deref().map(json::parse_document) {
                Some(Ok(json::Value::Object(members))) => members,
                _ => Vec::new(),
            }
        })
    }
}

impl PartialEq for Claims {
    fn eq(&self, other: &Self) -> bool {
        self.members() == other.members()
    }
}

/// The identity a token proves: who, through which client, with which scopes, roles and tier.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The subject (user or client id).
    pub subject: CompactString,
    /// The OAuth client the token was issued to, if any.
    pub client_id: Option<CompactString>,
    /// Scopes, sorted and unique.
    pub scopes: NameSet,
    /// Roles, sorted and unique.
    pub roles: NameSet,
    /// The rate-limit tier.
    pub tier: Option<Shared>,
    /// JWT or opaque.
    pub token_type: TokenType,
    /// The jti or the opaque record id: public, safe to log, never the secret.
    pub token_id: Option<CompactString>,
    /// The issuer (`iss`), if any.
    pub issuer: Option<Shared>,
    /// Expiry, epoch seconds; `f64::INFINITY` when the token has none.
    pub expires_at: f64,
    /// True for machine clients (client-credential tokens, or subject equal to client id): their rate
    /// limit key is the client id.
    pub machine: bool,
    /// The verified claims (JWT) or the record's metadata (opaque).
    pub claims: Option<Arc<Claims>>,
}

impl AsRef<Principal> for Principal {
    fn as_ref(&self) -> &Principal {
        self
    }
}

impl Principal {
    /// The expiry, if the token has one.
    pub fn expiry(&self) -> Option<f64> {
        self.expires_at.is_finite().then_some(self.expires_at)
    }

    /// The key to rate-limit on: the client id for machine clients, else the subject. Never the token.
    pub fn rate_limit_key(&self) -> &str {
        match (&self.client_id, self.machine) {
            (Some(client), true) => client,
            _ => &self.subject,
        }
    }

    /// Whether every one of `wanted` is among the scopes.
    pub fn has_scopes<'a>(&self, wanted: impl IntoIterator<Item = &'a str>) -> bool {
        wanted.into_iter().all(|s| contains(&self.scopes, s))
    }

    /// Whether `role` is among the roles.
    pub fn has_role(&self, role: &str) -> bool {
        contains(&self.roles, role)
    }
}

fn contains(set: &NameSet, name: &str) -> bool {
    set.binary_search_by(|probe| (**probe).cmp(name)).is_ok()
}

/// Sort and deduplicate names into a [`NameSet`].
pub fn name_set<I, S>(names: I) -> NameSet
where
    I: IntoIterator<Item = S>,
    S: Into<Box<str>>,
{
    let mut v: Vec<Box<str>> = names.into_iter().map(Into::into).collect();
    v.sort_unstable();
    v.dedup();
    Arc::new(v)
}

/// Whether a token of this subject and client is a machine client's.
pub fn is_machine(subject: &str, client_id: Option<&str>, client_credential: bool) -> bool {
    client_id.is_some_and(|c| client_credential || c == subject)
}

/// Distinct scope/role sets and strings an [`Interner`] keeps by default.
pub const INTERN_MAX: usize = 4096;

#[derive(Default)]
struct Interned {
    sets: HashMap<Vec<Box<str>>, NameSet>,
    strings: HashMap<String, Shared>,
}

/// Shares equal [`NameSet`]s and [`Shared`] strings between principals (a million tokens carry a
/// handful of distinct scope sets and tiers). Bounded: beyond `max` distinct values of a kind, new
/// ones are returned unshared, so hostile variety costs memory per principal, never an unbounded map.
pub struct Interner {
    max: usize,
    interned: Mutex<Interned>,
}

impl Default for Interner {
    fn default() -> Self {
        Interner::new(INTERN_MAX)
    }
}

impl Interner {
    /// An interner keeping at most `max` distinct sets and `max` distinct strings.
    pub fn new(max: usize) -> Self {
        Interner {
            max,
            interned: Mutex::new(Interned::default()),
        }
    }

    /// `names` as a sorted, deduplicated set, shared with every equal set interned before.
    pub fn set<I, S>(&self, names: I) -> NameSet
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>,
    {
        let set = name_set(names);
        let mut interned = self.interned.lock();
        if let Some(shared) = interned.sets.get(&set[..]) {
            return Arc::clone(shared);
        }
        if interned.sets.len() < self.max {
            interned.sets.insert(set.to_vec(), Arc::clone(&set));
        }
        set
    }

    /// `s`, shared with every equal string interned before.
    pub fn string(&self, s: String) -> Shared {
        let mut interned = self.interned.lock();
        if let Some(shared) = interned.strings.get(&s) {
            return Arc::clone(shared);
        }
        let shared = Arc::new(s);
        if interned.strings.len() < self.max {
            interned.strings.insert((*shared).clone(), Arc::clone(&shared));
        }
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(client_id: Option<&str>, machine: bool) -> Principal {
        Principal {
            subject: "user_1".into(),
            client_id: client_id.map(Into::into),
            scopes: name_set(["write", "read", "read"]),
            roles: name_set(["admin"]),
            tier: None,
            token_type: TokenType::Opaque,
            token_id: Some("id1".into()),
            issuer: None,
            expires_at: 10.0,
            machine,
            claims: None,
        }
    }

    #[test]
    fn scopes_roles_and_rate_limit_key() {
        let p = principal(Some("app"), false);
        assert_eq!(&p.scopes[..], &["read".into(), "write".into()] as &[Box<str>]);
        assert!(p.has_scopes(["read", "write"]));
        assert!(p.has_scopes([]));
        assert!(!p.has_scopes(["read", "delete"]));
        assert!(p.has_role("admin") && !p.has_role("user"));
        assert_eq!(p.rate_limit_key(), "user_1");
        assert_eq!(principal(Some("app"), true).rate_limit_key(), "app");
        assert_eq!(principal(None, true).rate_limit_key(), "user_1");
        assert!(is_machine("app", Some("app"), false));
        assert!(is_machine("x", Some("app"), true));
        assert!(!is_machine("x", Some("app"), false));
        assert!(!is_machine("x", None, true));
        assert_eq!(TokenType::Jwt.name(), "jwt");
        for t in [TokenType::Jwt, TokenType::Opaque] {
            assert_eq!(TokenType::from_name(t.name()), Some(t));
        }
        assert_eq!(TokenType::from_name("x"), None);
    }

    #[test]
    fn the_interner_shares_equal_values_up_to_its_bound() {
        let i = Interner::new(2);
        let a = i.set(["b", "a"]);
        assert!(Arc::ptr_eq(&a, &i.set(["a", "b", "a"])));
        assert_eq!(&a[..], &["a".into(), "b".into()] as &[Box<str>]);
        let _c = i.set(["c"]);
        let d1 = i.set(["d"]);
        assert!(!Arc::ptr_eq(&d1, &i.set(["d"])), "beyond the bound: unshared");
        assert_eq!(d1, i.set(["d"]));
        let t = i.string("free".into());
        assert!(Arc::ptr_eq(&t, &i.string("free".into())));
    }
}
