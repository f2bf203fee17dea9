//! The per-request order, written once: the route's mode → the credential → JWT or opaque verification
//! → revocation (JWTs) → the tier's rate limit → the route's roles and scopes.
//!
//! Sans-I/O like the rest of the core: the steps that may need the outside world (an opaque record not
//! in the index, a shared limiter, a key a remote key set may have gained) are behind [`Backends`], and a
//! step that cannot finish here returns a [`Step::NeedRecord`], [`Step::NeedLimit`] or [`Step::NeedKey`];
//! the caller supplies the answer and resumes at [`after_identity`] or [`finish`], or (a key) runs the
//! request again once. The binding implements [`Backends`] over its Python objects; the unit
//! tests below over plain Rust values.
//!
//! Over 400 lines only with its unit tests (the fake backend and one test per branch of the order), which
//! stay beside the code; the flow itself is about 250.

use crate::auth::rules::{self, AuthMode, Rule, Verdict as Authorized};
use crate::error::{Error, ErrorKind, Result};
use crate::principal::Principal;

/// The token a request carries, and where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// No Authorization header (or another scheme) and no API-key header.
    Absent,
    /// `Authorization: Bearer <token>`: a JWT or an opaque token.
    Bearer(&'a [u8]),
    /// The configured API-key header: opaque tokens only.
    ApiKey(&'a [u8]),
}

/// An opaque token's lookup: the principal, or what must be fetched first.
#[derive(Debug)]
pub enum Lookup<P, M> {
    /// In the index.
    Found(P),
    /// Not in the index: the record must be read from the store.
    Miss(M),
}

/// A limiter's answer for one request.
#[derive(Debug)]
pub enum Limit<D> {
    /// Decided here.
    Decided(D),
    /// The shared limiter must be asked: see [`Step::NeedLimit`].
    Remote,
    /// No limiter is configured.
    Off,
}

/// What the flow reads from a rate decision.
pub trait Verdict {
    /// Whether the request is admitted.
    fn allowed(&self) -> bool;
    /// Seconds until a retry can succeed.
    fn retry_after(&self) -> f64;
    /// True when the limiter could not be asked and refuses unchecked (fail closed).
    fn unavailable(&self) -> bool;
}

/// The outside of the flow: verifiers, the token index, the revocation lists and the limiter.
pub trait Backends {
    /// A handle on an authenticated principal.
    type Principal: AsRef<Principal>;
    /// What a caller needs to fetch a missing opaque record.
    type Miss;
    /// A rate decision.
    type Decision: Verdict;
    /// What a caller needs to fetch a key the verifier does not hold yet.
    type KeyNeed;

    /// Whether opaque tokens are configured.
    fn has_opaque(&self) -> bool;
    /// Verify a JWT: its principal and its `iat`, or why it is refused.
    fn jwt(&self, token: &[u8], now: f64) -> Result<(Self::Principal, Option<f64>)>;
    /// After [`Backends::jwt`] refused a token as `unknown_key`: what to fetch so that it may verify after
    /// all, or `None` when its keys are local, or were already fetched for this request.
    fn key_need(&self, token: &[u8]) -> Option<Self::KeyNeed>;
    /// Look up an opaque token (checked for format, expiry and revocation by the index).
    fn opaque(&self, token: &[u8], now: f64) -> Result<Lookup<Self::Principal, Self::Miss>>;
    /// Whether a verified JWT was revoked since it was issued: its subject cut off at or after `iat`,
    /// or its jti on the deny-list.
    fn jwt_revoked(&self, principal: &Principal, iat: Option<f64>, now: f64) -> bool;
    /// The tier's rate decision for this principal.
    fn limit(&self, principal: &Self::Principal) -> Result<Limit<Self::Decision>>;
}

/// Where a request stands.
#[derive(Debug)]
pub enum Step<P, M, D, K = ()> {
    /// Admitted: `principal` is `None` for an anonymous request.
    Done { principal: Option<P>, decision: Option<D> },
    /// Refused with `error`; the principal and decision are kept for the audit record.
    Refused {
        principal: Option<P>,
        decision: Option<D>,
        error: Error,
    },
    /// Fetch the record, settle it in the index, and resume at [`after_identity`].
    NeedRecord(M),
    /// Ask the shared limiter for this principal, and resume at [`finish`].
    NeedLimit(P),
    /// Fetch the key source's keys again (it may hold the token's kid by now), then run the request again
    /// from the start, once: a second `unknown_key` is the answer.
    NeedKey(K),
}

impl<P, M, D, K> Step<P, M, D, K> {
    fn refused(error: Error) -> Self {
        Step::Refused {
            principal: None,
            decision: None,
            error,
        }
    }

    fn anonymous() -> Self {
        Step::Done {
            principal: None,
            decision: None,
        }
    }
}

/// The whole request, from the rule that matched it (`None`: the default `mode` applies) and its
/// credential (as [`crate::bearer`] parsed it) to its answer.
pub fn step<B: Backends>(
    backends: &B,
    rule: Option<&Rule>,
    default: AuthMode,
    credential: Result<Credential<'_>>,
    now: f64,
) -> Step<B::Principal, B::Miss, B::Decision, B::KeyNeed> {
    let mode = rule.map_or(default, Rule::auth);
    if mode == AuthMode::None {
        return Step::anonymous();
    }
    // a malformed header is refused even where a token is optional: the client meant to send one
    let credential = match credential {
        Ok(c) => c,
        Err(e) => return Step::refused(e),
    };
    let principal = match credential {
        Credential::Absent if mode == AuthMode::Optional => return Step::anonymous(),
        Credential::Absent => {
            return Step::refused(Error::new(
                ErrorKind::MissingToken,
                "an Authorization: Bearer token is required",
            ))
        }
        Credential::ApiKey(token) => match opaque(backends, token, now) {
            Ok(Lookup::Found(p)) => p,
            Ok(Lookup::Miss(m)) => return Step::NeedRecord(m),
            Err(e) => return Step::refused(e),
        },
        // a compact JWS has two dots; the opaque format has none, so one scan tells them apart
        Credential::Bearer(token) if backends.has_opaque() && memchr::memchr(b'.', token).is_none() => {
            match opaque(backends, token, now) {
                Ok(Lookup::Found(p)) => p,
                Ok(Lookup::Miss(m)) => return Step::NeedRecord(m),
                Err(e) => return Step::refused(e),
            }
        }
        Credential::Bearer(token) => match backends.jwt(token, now) {
            Ok((p, iat)) if backends.jwt_revoked(p.as_ref(), iat, now) => {
                return Step::refused(Error::new(ErrorKind::TokenRevoked, "the token has been revoked"))
            }
            Ok((p, _)) => p,
            Err(e) if e.kind == ErrorKind::UnknownKey => match backends.key_need(token) {
                Some(need) => return Step::NeedKey(need),
                None => return Step::refused(e),
            },
            Err(e) => return Step::refused(e),
        },
    };
    after_identity(backends, rule, principal)
}

fn opaque<B: Backends>(backends: &B, token: &[u8], now: f64) -> Result<Lookup<B::Principal, B::Miss>> {
    if !backends.has_opaque() {
        return Err(Error::new(ErrorKind::TokenMalformed, "the token is not a compact JWS"));
    }
    backends.opaque(token, now)
}

/// The rate limit, then the rule's roles and scopes: where a request resumes once its principal is known.
pub fn after_identity<B: Backends>(
    backends: &B,
    rule: Option<&Rule>,
    principal: B::Principal,
) -> Step<B::Principal, B::Miss, B::Decision, B::KeyNeed> {
    match backends.limit(&principal) {
        Ok(Limit::Decided(d)) => finish(rule, principal, Some(d)),
        Ok(Limit::Off) => finish(rule, principal, None),
        Ok(Limit::Remote) => Step::NeedLimit(principal),
        Err(error) => Step::Refused {
            principal: Some(principal),
            decision: None,
            error,
        },
    }
}

/// The rate decision, then the rule's roles and scopes: where a request resumes once the shared limiter
/// answered. Rate limiting comes first, so a refused scope still spends the identity's budget.
pub fn finish<P: AsRef<Principal>, M, D: Verdict, K>(
    rule: Option<&Rule>,
    principal: P,
    decision: Option<D>,
) -> Step<P, M, D, K> {
    let error = match &decision {
        Some(d) if d.unavailable() => Some(
            Error::new(
                ErrorKind::AuthUnavailable,
                "the rate limiter is unavailable: retry later",
            )
            .with_retry_after(d.retry_after()),
        ),
        Some(d) if !d.allowed() => {
            Some(Error::new(ErrorKind::RateLimited, "too many requests").with_retry_after(d.retry_after()))
        }
        _ => authorize(rule, principal.as_ref()).err(),
    };
    match error {
        Some(error) => Step::Refused {
            principal: Some(principal),
            decision,
            error,
        },
        None => Step::Done {
            principal: Some(principal),
            decision,
        },
    }
}

/// The rule's roles (any of them) and scopes (all of them), as [`rules::authorize`] decides; without a
/// rule (the default applies) neither is asked for.
pub fn authorize(rule: Option<&Rule>, principal: &Principal) -> Result<()> {
    let Some(rule) = rule else { return Ok(()) };
    match rules::authorize(rule, &principal.scopes, &principal.roles) {
        Authorized::Allowed => Ok(()),
        Authorized::InsufficientScope(_) => Err(Error::new(
            ErrorKind::InsufficientScope,
            "the token does not carry the scopes this resource requires",
        )),
        Authorized::Forbidden => Err(Error::new(
            ErrorKind::Forbidden,
            "this identity is not allowed to use this resource",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::Arc;

    use super::*;
    use crate::principal::{name_set, TokenType};

    fn principal(subject: &str, scopes: &[&str], roles: &[&str]) -> Arc<Principal> {
        Arc::new(Principal {
            subject: subject.into(),
            client_id: None,
            scopes: name_set(scopes.iter().copied()),
            roles: name_set(roles.iter().copied()),
            tier: None,
            token_type: TokenType::Jwt,
            token_id: Some("jti-1".into()),
            issuer: None,
            expires_at: f64::INFINITY,
            machine: false,
            claims: None,
        })
    }

    struct Verdicts(bool, bool);
    impl Verdict for Verdicts {
        fn allowed(&self) -> bool {
            self.0
        }
        fn retry_after(&self) -> f64 {
            if self.0 {
                0.0
            } else {
                2.5
            }
        }
        fn unavailable(&self) -> bool {
            self.1
        }
    }

    #[allow(clippy::struct_excessive_bools)]
    /// A backend of plain values: JWTs are "a.b.c" strings naming their subject's scopes.
    struct Fake {
        opaque: bool,
        remote: bool,
        allowed: bool,
        revoked: bool,
        /// The kid misses have a key source (else they are refused at once).
        remote_keys: bool,
        opaque_calls: Cell<u32>,
        jwt_calls: Cell<u32>,
    }

    impl Fake {
        fn new() -> Self {
            Fake {
                opaque: true,
                remote: false,
                allowed: true,
                revoked: false,
                remote_keys: false,
                opaque_calls: Cell::new(0),
                jwt_calls: Cell::new(0),
            }
        }
    }

    impl Backends for Fake {
        type Principal = Arc<Principal>;
        type Miss = &'static str;
        type Decision = Verdicts;
        type KeyNeed = &'static str;

        fn has_opaque(&self) -> bool {
            self.opaque
        }
        fn jwt(&self, token: &[u8], _now: f64) -> Result<(Arc<Principal>, Option<f64>)> {
            self.jwt_calls.set(self.jwt_calls.get() + 1);
            match token {
                b"good.jwt.sig" => Ok((principal("alice", &["read"], &["user"]), Some(10.0))),
                b"new.kid.sig" => Err(Error::new(ErrorKind::UnknownKey, "no key matches the token")),
                _ => Err(Error::new(
                    ErrorKind::InvalidSignature,
                    "the token's signature is invalid",
                )),
            }
        }
        fn key_need(&self, _token: &[u8]) -> Option<&'static str> {
            self.remote_keys.then_some("source")
        }
        fn opaque(&self, token: &[u8], _now: f64) -> Result<Lookup<Arc<Principal>, &'static str>> {
            self.opaque_calls.set(self.opaque_calls.get() + 1);
            match token {
                b"bstk_hit" => Ok(Lookup::Found(principal("bob", &["read", "write"], &["admin"]))),
                b"bstk_miss" => Ok(Lookup::Miss("digest")),
                _ => Err(Error::new(ErrorKind::UnknownToken, "the token is not known")),
            }
        }
        fn jwt_revoked(&self, _principal: &Principal, _iat: Option<f64>, _now: f64) -> bool {
            self.revoked
        }
        fn limit(&self, _principal: &Arc<Principal>) -> Result<Limit<Verdicts>> {
            Ok(if self.remote {
                Limit::Remote
            } else {
                Limit::Decided(Verdicts(self.allowed, false))
            })
        }
    }

    fn rule(mode: AuthMode, scopes: &[&str], roles: &[&str]) -> Rule {
        Rule::new("/x", None, scopes, roles, mode).unwrap()
    }

    fn run(
        b: &Fake,
        mode: AuthMode,
        credential: Result<Credential<'_>>,
    ) -> Step<Arc<Principal>, &'static str, Verdicts, &'static str> {
        step(b, Some(&rule(mode, &[], &[])), AuthMode::Required, credential, 0.0)
    }

    fn code<P, M, D, K>(step: &Step<P, M, D, K>) -> &'static str {
        match step {
            Step::Done { .. } => "done",
            Step::Refused { error, .. } => error.code(),
            Step::NeedRecord(_) => "need_record",
            Step::NeedLimit(_) => "need_limit",
            Step::NeedKey(_) => "need_key",
        }
    }

    #[allow(clippy::unnecessary_wraps)] // the shape step() takes
    fn bearer(token: &[u8]) -> Result<Credential<'_>> {
        Ok(Credential::Bearer(token))
    }

    #[test]
    fn open_routes_read_nothing() {
        let b = Fake::new();
        let bad = Err(Error::new(ErrorKind::InvalidRequest, "bad"));
        assert_eq!(code(&run(&b, AuthMode::None, bad)), "done");
        assert_eq!(b.jwt_calls.get() + b.opaque_calls.get(), 0);
    }

    #[test]
    fn optional_lets_absent_through_but_not_bad() {
        let b = Fake::new();
        assert!(matches!(
            run(&b, AuthMode::Optional, Ok(Credential::Absent)),
            Step::Done { principal: None, .. }
        ));
        let bad = Err(Error::new(ErrorKind::InvalidRequest, "bad"));
        assert_eq!(code(&run(&b, AuthMode::Optional, bad)), "invalid_request");
        assert_eq!(
            code(&run(&b, AuthMode::Optional, bearer(b"forged.jwt.sig"))),
            "invalid_signature"
        );
        assert_eq!(
            code(&run(&b, AuthMode::Required, Ok(Credential::Absent))),
            "missing_token"
        );
        // no rule matched: the default mode applies
        assert_eq!(
            code(&step(&b, None, AuthMode::Optional, Ok(Credential::Absent), 0.0)),
            "done"
        );
        assert_eq!(
            code(&step(&b, None, AuthMode::Required, Ok(Credential::Absent), 0.0)),
            "missing_token"
        );
    }

    #[test]
    fn dots_choose_the_verifier() {
        let b = Fake::new();
        assert_eq!(code(&run(&b, AuthMode::Required, bearer(b"good.jwt.sig"))), "done");
        assert_eq!((b.jwt_calls.get(), b.opaque_calls.get()), (1, 0));
        assert_eq!(code(&run(&b, AuthMode::Required, bearer(b"bstk_hit"))), "done");
        assert_eq!((b.jwt_calls.get(), b.opaque_calls.get()), (1, 1));
        // an API key is never read as a JWT, even with dots
        assert_eq!(
            code(&run(&b, AuthMode::Required, Ok(Credential::ApiKey(b"good.jwt.sig")))),
            "unknown_token"
        );
        assert_eq!(b.jwt_calls.get(), 1);
        // without opaque tokens every bearer token is a JWT, and an API key is malformed
        let jwt_only = Fake {
            opaque: false,
            ..Fake::new()
        };
        assert_eq!(
            code(&run(&jwt_only, AuthMode::Required, bearer(b"bstk_hit"))),
            "invalid_signature"
        );
        let key = Ok(Credential::ApiKey(&b"bstk_hit"[..]));
        assert_eq!(code(&run(&jwt_only, AuthMode::Required, key)), "token_malformed");
    }

    #[test]
    fn a_miss_asks_for_the_record_then_resumes() {
        let b = Fake::new();
        assert!(matches!(
            run(&b, AuthMode::Required, bearer(b"bstk_miss")),
            Step::NeedRecord("digest")
        ));
        assert_eq!(code(&after_identity(&b, None, principal("bob", &[], &[]))), "done");
    }

    #[test]
    fn an_unknown_kid_asks_for_keys_only_with_a_key_source() {
        let local = Fake::new();
        assert_eq!(
            code(&run(&local, AuthMode::Required, bearer(b"new.kid.sig"))),
            "unknown_key"
        );
        let remote = Fake {
            remote_keys: true,
            ..Fake::new()
        };
        assert!(matches!(
            run(&remote, AuthMode::Required, bearer(b"new.kid.sig")),
            Step::NeedKey("source")
        ));
        // any other refusal stays a refusal: a bad signature never causes a fetch
        assert_eq!(
            code(&run(&remote, AuthMode::Required, bearer(b"forged.jwt.sig"))),
            "invalid_signature"
        );
    }

    #[test]
    fn revoked_jwts_are_refused() {
        let b = Fake {
            revoked: true,
            ..Fake::new()
        };
        assert_eq!(
            code(&run(&b, AuthMode::Required, bearer(b"good.jwt.sig"))),
            "token_revoked"
        );
    }

    #[test]
    fn the_rate_limit_comes_before_the_scopes() {
        let r = rule(AuthMode::Required, &["admin:all"], &[]);
        let b = Fake {
            allowed: false,
            ..Fake::new()
        };
        match step(&b, Some(&r), AuthMode::Required, bearer(b"good.jwt.sig"), 0.0) {
            Step::Refused {
                error,
                principal,
                decision,
            } => {
                assert_eq!(error.code(), "rate_limited");
                assert_eq!(error.retry_after, Some(2.5));
                assert!(principal.is_some() && decision.is_some());
            }
            other => panic!("{}", code(&other)),
        }
        let s = step(&Fake::new(), Some(&r), AuthMode::Required, bearer(b"good.jwt.sig"), 0.0);
        assert_eq!(code(&s), "insufficient_scope");
    }

    #[test]
    fn a_remote_limit_is_asked_for_and_decided_by_finish() {
        let b = Fake {
            remote: true,
            ..Fake::new()
        };
        let s = run(&b, AuthMode::Required, bearer(b"good.jwt.sig"));
        let Step::NeedLimit(p) = s else { panic!("{}", code(&s)) };
        assert_eq!(
            code(&finish::<_, (), _, ()>(None, p.clone(), Some(Verdicts(true, false)))),
            "done"
        );
        assert_eq!(
            code(&finish::<_, (), _, ()>(None, p.clone(), Some(Verdicts(false, false)))),
            "rate_limited"
        );
        assert_eq!(
            code(&finish::<_, (), _, ()>(None, p, Some(Verdicts(false, true)))),
            "auth_unavailable"
        );
    }

    #[test]
    fn roles_any_then_scopes_all() {
        let p = principal("carol", &["read", "write"], &["editor"]);
        let ok = |scopes: &[&str], roles: &[&str]| {
            authorize(Some(&rule(AuthMode::Required, scopes, roles)), &p).map_err(|e| e.code())
        };
        assert_eq!(ok(&["read", "write"], &["admin", "editor"]), Ok(()));
        assert_eq!(ok(&["read", "delete"], &[]), Err("insufficient_scope"));
        assert_eq!(ok(&[], &["admin"]), Err("forbidden"));
        assert_eq!(ok(&["read", "delete"], &["admin"]), Err("forbidden"));
        assert_eq!(authorize(None, &p), Ok(()));
    }
}
