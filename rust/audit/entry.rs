//! One request's audit record as owned Rust data: captured on the request path (a few string copies
//! and a shared principal), turned into its [`Fields`] and written on the writer's thread without
//! the interpreter. How a request's fields are derived — the reason, the refusal after admission,
//! what a preflight writes — is decided here once, for every way a record arrives.

use std::borrow::Cow;
use std::sync::Arc;

use compact_str::CompactString;

use super::{at, reason, write_line, Field, Fields};
use crate::principal::Principal;

/// What an entry reads its identity from: a core principal, or an index entry that holds one.
pub type SharedPrincipal = Arc<dyn AsRef<Principal> + Send + Sync>;

/// The record of one request, as the middleware saw it.
#[derive(Clone, Default)]
pub struct Entry {
    /// Epoch seconds when the request ended.
    pub timestamp: f64,
    pub method: CompactString,
    pub path: CompactString,
    /// The response status (`None`: the app never started one and none was given).
    pub status: Option<i64>,
    pub request_id: CompactString,
    pub client_address: Option<CompactString>,
    /// From the first byte of the request to the end of the response (NaN: not known, left out).
    pub duration_ms: f64,
    /// `false` for a CORS preflight bastion let through undecided: it has no outcome.
    pub decided: bool,
    pub principal: Option<SharedPrincipal>,
    /// The code of the core's refusal.
    pub error_code: Option<CompactString>,
    /// The rate decision's tier and, for a limited tier, the requests left.
    pub tier: Option<CompactString>,
    pub remaining: Option<i64>,
    /// The matched rule's pattern, and whether it needs no token.
    pub route: Option<Arc<str>>,
    pub exempt: bool,
    /// The code of a refusal made after admission (an endpoint's own check): the request's outcome.
    pub refused_after: Option<CompactString>,
}

impl Entry {
    /// The line's fields, borrowed from the entry.
    pub fn fields<'a>(&'a self) -> Fields<'a> {
        let mut f: Fields<'a> = std::array::from_fn(|_| Field::Absent);
        // an empty one was not given (a hand-made `AuditLog.request` call): left out, as None would be
        let given = |s: &'a CompactString| {
            if s.is_empty() {
                Field::Absent
            } else {
                Field::Str(Cow::Borrowed(s.as_str()))
            }
        };
        f[at::METHOD] = given(&self.method);
        f[at::PATH] = given(&self.path);
        if let Some(status) = self.status {
            f[at::STATUS] = Field::Int(status);
        }
        f[at::REQUEST_ID] = given(&self.request_id);
        if let Some(address) = &self.client_address {
            f[at::CLIENT_ADDRESS] = Field::Str(Cow::Borrowed(address));
        }
        if !self.duration_ms.is_nan() {
            f[at::DURATION_MS] = Field::Float(self.duration_ms);
        }
        let after = self.refused_after.as_deref().map(|c| Field::Str(Cow::Borrowed(c)));
        if !self.decided {
            f[at::REASON] = after.unwrap_or(Field::Str(Cow::Borrowed("preflight")));
            return f;
        }
        if let Some(route) = &self.route {
            f[at::ROUTE] = Field::Str(Cow::Borrowed(route));
        }
        let principal = self.principal.as_deref().map(AsRef::as_ref);
        if let Some(p) = principal {
            f[at::ENDUSER_ID] = Field::Str(Cow::Borrowed(p.subject.as_str()));
            f[at::ROLES] = Field::Names(p.roles.iter().map(|n| Cow::Borrowed(&**n)).collect());
            f[at::SCOPES] = Field::Names(p.scopes.iter().map(|n| Cow::Borrowed(&**n)).collect());
            f[at::TOKEN_TYPE] = Field::Str(Cow::Borrowed(p.token_type.name()));
            if let Some(id) = &p.token_id {
                f[at::TOKEN_ID] = Field::Str(Cow::Borrowed(id.as_str()));
            }
        }
        if let Some(tier) = &self.tier {
            f[at::TIER] = Field::Str(Cow::Borrowed(tier));
        }
        if let Some(n) = self.remaining {
            f[at::REMAINING] = Field::Int(n);
        }
        let code = self.error_code.as_deref();
        f[at::REASON] = Field::Str(Cow::Borrowed(reason(code, principal.is_some(), self.exempt)));
        if let Some(code) = code {
            f[at::ERROR_TYPE] = Field::Str(Cow::Borrowed(code));
        }
        if let Some(after) = after {
            // refused after admission: that refusal is the request's outcome
            f[at::REASON] = after.clone();
            f[at::ERROR_TYPE] = after;
        }
        f
    }
}

/// A line to write: a request's entry, or a record's fields given as they are (a hand-built record).
#[allow(clippy::large_enum_variant)] // built and written in place: boxing would allocate per request
pub enum Line {
    Entry(Entry),
    Fields(f64, Box<Fields<'static>>),
}

impl Line {
    /// Append this line and a newline to `out`.
    pub fn write(&mut self, level: &str, logger: &str, out: &mut String) {
        match self {
            Line::Entry(entry) => write_line(entry.timestamp, level, logger, &mut entry.fields(), out),
            Line::Fields(timestamp, fields) => write_line(*timestamp, level, logger, fields, out),
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::{name_set, TokenType};

    fn principal() -> SharedPrincipal {
        Arc::new(Principal {
            subject: "user_1".into(),
            client_id: None,
            scopes: name_set(["write", "read"]),
            roles: name_set(["admin"]),
            tier: None,
            token_type: TokenType::Jwt,
            token_id: Some("j1".into()),
            issuer: None,
            expires_at: f64::INFINITY,
            machine: false,
            claims: None,
        })
    }

    fn entry() -> Entry {
        Entry {
            method: "GET".into(),
            path: "/api/r".into(),
            status: Some(200),
            request_id: "r1".into(),
            decided: true,
            ..Entry::default()
        }
    }

    fn text<'a>(f: &'a Field<'a>) -> &'a str {
        match f {
            Field::Str(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }

    #[test]
    fn an_authenticated_entry_names_its_principal() {
        let e = Entry {
            principal: Some(principal()),
            tier: Some("internal".into()),
            remaining: Some(9),
            route: Some("/api/*".into()),
            ..entry()
        };
        let f = e.fields();
        assert_eq!(text(&f[at::ENDUSER_ID]), "user_1");
        assert_eq!(text(&f[at::REASON]), "authenticated");
        assert_eq!(text(&f[at::ROUTE]), "/api/*");
        assert_eq!(f[at::REMAINING], Field::Int(9));
        assert_eq!(f[at::ERROR_TYPE], Field::Absent);
        assert_eq!(text(&f[at::TOKEN_ID]), "j1");
    }

    #[test]
    fn reasons_of_refusals_exemptions_and_preflights() {
        let refused = Entry {
            error_code: Some("token_expired".into()),
            ..entry()
        };
        let f = refused.fields();
        assert_eq!(text(&f[at::REASON]), "token_expired");
        assert_eq!(text(&f[at::ERROR_TYPE]), "token_expired");
        assert_eq!(
            text(
                &Entry {
                    exempt: true,
                    ..entry()
                }
                .fields()[at::REASON]
            ),
            "exempt"
        );
        assert_eq!(text(&entry().fields()[at::REASON]), "anonymous");
        let preflight = Entry {
            decided: false,
            route: Some("/x".into()),
            ..entry()
        };
        let f = preflight.fields();
        assert_eq!(text(&f[at::REASON]), "preflight");
        assert_eq!(f[at::ROUTE], Field::Absent);
    }

    #[test]
    fn a_refusal_after_admission_is_the_outcome() {
        let e = Entry {
            principal: Some(principal()),
            refused_after: Some("insufficient_scope".into()),
            ..entry()
        };
        let f = e.fields();
        assert_eq!(text(&f[at::REASON]), "insufficient_scope");
        assert_eq!(text(&f[at::ERROR_TYPE]), "insufficient_scope");
        let mut out = String::new();
        Line::Entry(e).write("INFO", "bastion.audit", &mut out);
        assert!(out.ends_with("}\n"), "{out}");
        assert!(out.contains(r#""bastion.auth.scopes":["read","write"]"#), "{out}");
    }
}
