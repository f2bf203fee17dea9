//! `_core.Authenticator` and `_core.Outcome`: one call per request into the core's request flow
//! (`crate::auth::flow`), over the configured `JWTVerifier`s (one, or one per issuer), `TokenStore`
//! index and `RateLimiter`.
//!
//! This layer converts: header values from the ASGI list or the WSGI strings, the route rule, Python
//! objects for the principal and the decision, and the flow's `Step` into an `Outcome`. The order of the
//! checks is the flow's. GIL: attached throughout, but for an asymmetric signature check (the JWT
//! binding's `run_signature` detaches around it; HMAC, an index hit and a limiter check are far shorter
//! than a detach/attach round trip).
//!
//! Over 400 lines: the flow's `Backends` over the configured Python objects and the `Authenticator` class
//! that reads a request into it are one concern (each needs the other's fields); `Outcome` is in `outcome.rs`.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use super::args::{config_err, config_usize, resolve_now};
use super::bearer::value_bytes;
use super::errors::to_pyerr;
use super::jwt::verifier::{run_signature, PyJWTVerifier};
use super::opaque::PyOpaqueIndex;
use super::outcome::{PyOutcome, DONE, NEED_KEY, NEED_LIMIT, NEED_RECORD, REFUSED};
use super::principal::{PyPrincipal, Source};
use super::ratelimit::{PyDecision, PyRateLimiter};
use super::rules::PyRuleSet;
use crate::auth::flow::{self, Backends, Credential, Limit, Lookup, Step};
use crate::auth::rules::{AuthMode, Rule};
use crate::bearer::{self, DEFAULT_MAX_HEADER_BYTES};
use crate::error::{Error, ErrorKind, Result};

use crate::jwt::claims;
use crate::jwt::identity::IdentitySink;
use crate::jwt::issuers::Issuers;
use crate::jwt::verify;
use crate::opaque::Miss;
use crate::principal::Principal;

/// A principal object as the flow holds it.
struct Handle(Py<PyPrincipal>);

impl AsRef<Principal> for Handle {
    fn as_ref(&self) -> &Principal {
        self.0.get().p()
    }
}

impl flow::Verdict for Py<PyDecision> {
    fn allowed(&self) -> bool {
        self.get().allowed()
    }
    fn retry_after(&self) -> f64 {
        flow::Verdict::retry_after(self.get())
    }
    fn unavailable(&self) -> bool {
        self.get().unavailable()
    }
}

/// What the shell fetches after an `unknown_key` from a verifier with a key source: the source and the
/// token's (unverified) kid.
type KeyNeed = (Py<PyAny>, Option<String>);

/// The per-request path, configured once.
#[pyclass(frozen, module = "bastion._core", name = "Authenticator")]
pub struct PyAuthenticator {
    /// No verifier, one, or one per issuer (then `issuers` chooses among them).
    jwt: Vec<Py<PyJWTVerifier>>,
    issuers: Option<Issuers>,
    /// The largest `max_token_bytes` of the verifiers: the cap of the `iss` peek that chooses one.
    peek_max: usize,
    tokens: Option<Py<PyOpaqueIndex>>,
    limiter: Option<Py<PyRateLimiter>>,
    remote_limit: bool,
    tier_of: Option<Py<PyAny>>,
    /// The API-key header's name, lowercase (as ASGI gives names).
    api_key_header: Option<Box<[u8]>>,
    max_header_bytes: usize,
}

/// The flow's view of one call: the configuration and the interpreter, plus the first Python exception
/// a backend raised (an app's `tier_of`, a failed allocation). Such an exception is not a refusal: it
/// propagates to the caller once the flow returns.
struct Call<'a, 'py> {
    auth: &'a PyAuthenticator,
    py: Python<'py>,
    raised: RefCell<Option<PyErr>>,
    /// The verifier the token went to (its position in `auth.jwt`).
    chosen: Cell<usize>,
    /// The request runs again after its key source was asked: an `unknown_key` now is the answer.
    refetched: bool,
}

impl<'a, 'py> Call<'a, 'py> {
    fn new(auth: &'a PyAuthenticator, py: Python<'py>, refetched: bool) -> Self {
        Call {
            auth,
            py,
            raised: RefCell::new(None),
            chosen: Cell::new(0),
            refetched,
        }
    }

    fn stash(&self, err: PyErr) -> Error {
        self.raised.borrow_mut().get_or_insert(err);
        Error::new(ErrorKind::AuthUnavailable, "authentication failed unexpectedly")
    }
}

impl Call<'_, '_> {
    fn jwt_principal(&self, verifier: &PyJWTVerifier, token: &[u8], now: f64) -> Result<(Handle, Option<f64>)> {
        let core = verifier.core();
        let cache = verifier.principals();
        if let Some(cache) = cache {
            if token.len() <= core.max_token_bytes {
                // only plain Rust work under the slot's lock (see the JWT cache's notes): copy and incref
                if let Some((times, p)) = cache.with(token, |times, p| (*times, p.clone_ref(self.py))) {
                    claims::check_times(&times, core.policy.leeway, now)?;
                    return Ok((Handle(p), times.iat));
                }
            }
        }
        let py = self.py;
        let generation = core.generation();
        let mut sink = IdentitySink::default();
        let (_, times) = core.verify_with(token, now, &mut sink, |sig| run_signature(py, sig))?;
        let principal = sink.principal(&times)?;
        let object = Py::new(py, PyPrincipal::new(Arc::new(principal) as Source)).map_err(|e| self.stash(e))?;
        if let Some(cache) = cache {
            drop(cache.insert(token, times, object.clone_ref(py)));
            verifier.forget_if_rotated(generation);
        }
        Ok((Handle(object), times.iat))
    }
}

impl Backends for Call<'_, '_> {
    type Principal = Handle;
    type Miss = Miss;
    type Decision = Py<PyDecision>;
    type KeyNeed = KeyNeed;

    fn has_opaque(&self) -> bool {
        self.auth.tokens.is_some()
    }

    fn jwt(&self, token: &[u8], now: f64) -> Result<(Handle, Option<f64>)> {
        if let Some(tokens) = &self.auth.tokens {
            // its revocations are checked for every JWT: a closed store cannot say, so nothing passes
            tokens.get().serving()?;
        }
        let verifier = match (&self.auth.issuers, self.auth.jwt.as_slice()) {
            (_, []) => {
                return Err(Error::new(
                    ErrorKind::TokenMalformed,
                    "the token is not a well-formed opaque token",
                ))
            }
            (None, [one, ..]) => one,
            (Some(issuers), all) => {
                let i = issuers.choose(token, self.auth.peek_max)?;
                self.chosen.set(i);
                &all[i]
            }
        };
        self.jwt_principal(verifier.get(), token, now)
    }

    fn key_need(&self, token: &[u8]) -> Option<KeyNeed> {
        if self.refetched {
            return None;
        }
        let verifier = self.auth.jwt.get(self.chosen.get())?.get();
        let source = verifier.key_source()?.clone_ref(self.py);
        Some((source, verify::kid_of(token, verifier.core().max_token_bytes)))
    }

    fn opaque(&self, token: &[u8], now: f64) -> Result<Lookup<Handle, Miss>> {
        let Some(tokens) = &self.auth.tokens else {
            return Err(Error::new(ErrorKind::TokenMalformed, "the token is not a compact JWS"));
        };
        match tokens.get().lookup(self.py, token, now) {
            Ok(Ok(Lookup::Found(p))) => Ok(Lookup::Found(Handle(p))),
            Ok(Ok(Lookup::Miss(m))) => Ok(Lookup::Miss(m)),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(self.stash(e)),
        }
    }

    fn jwt_revoked(&self, principal: &Principal, iat: Option<f64>, now: f64) -> bool {
        self.auth
            .tokens
            .as_ref()
            .is_some_and(|t| t.get().jwt_revoked(principal, iat, now))
    }

    fn limit(&self, principal: &Handle) -> Result<Limit<Py<PyDecision>>> {
        if self.auth.limiter.is_none() && !self.auth.remote_limit {
            return Ok(Limit::Off);
        }
        if self.auth.remote_limit {
            return Ok(Limit::Remote);
        }
        let limiter = self.auth.limiter.as_ref().map(Py::get);
        let Some(limiter) = limiter else { return Ok(Limit::Off) };
        let p = principal.as_ref();
        let decided = match &self.auth.tier_of {
            None => limiter.decide_named(self.py, p.rate_limit_key(), p.tier.as_deref().map(String::as_str)),
            Some(tier_of) => self
                .chosen_tier(tier_of, principal)
                .and_then(|tier| limiter.decide_named(self.py, p.rate_limit_key(), tier.as_deref())),
        };
        let decision = decided.and_then(|d| Py::new(self.py, d)).map_err(|e| self.stash(e))?;
        Ok(Limit::Decided(decision))
    }
}

impl Call<'_, '_> {
    /// The application's `tier_of(principal)`: a tier name, or `None` for the limiter's default.
    fn chosen_tier(&self, tier_of: &Py<PyAny>, principal: &Handle) -> PyResult<Option<String>> {
        let tier = tier_of.bind(self.py).call1((principal.0.clone_ref(self.py),))?;
        if tier.is_none() {
            return Ok(None);
        }
        match tier.cast::<PyString>() {
            Ok(s) => Ok(Some(s.to_str()?.to_owned())),
            Err(_) => Err(config_err("tier_of must return a tier name (str) or None")),
        }
    }
}

/// The header values of one name, borrowed from the request.
struct Headers<'py> {
    authorization: Vec<Bound<'py, PyAny>>,
    api_key: Vec<Bound<'py, PyAny>>,
}

impl PyAuthenticator {
    /// The two headers this path reads: from ASGI's `[(name, value)]` (lowercase byte names), or given
    /// one by one (WSGI's `HTTP_AUTHORIZATION`, a script's argument).
    fn headers<'py>(
        &self,
        headers: Option<&Bound<'py, PyAny>>,
        authorization: Option<&Bound<'py, PyAny>>,
        api_key: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Headers<'py>> {
        let mut found = Headers {
            authorization: Vec::new(),
            api_key: Vec::new(),
        };
        if let Some(headers) = headers.filter(|h| !h.is_none()) {
            let list = headers
                .cast::<PyList>()
                .map_err(|_| config_err("headers must be the ASGI list of (name, value) byte pairs"))?;
            for item in list.iter() {
                let pair = item
                    .cast::<PyTuple>()
                    .map_err(|_| config_err("headers must be the ASGI list of (name, value) byte pairs"))?;
                if pair.len() != 2 {
                    return Err(config_err("headers must be the ASGI list of (name, value) byte pairs"));
                }
                let name = pair.get_item(0)?;
                let Ok(name) = name.cast::<PyBytes>() else { continue };
                let name = name.as_bytes();
                if name.eq_ignore_ascii_case(b"authorization") {
                    found.authorization.push(pair.get_item(1)?);
                } else if self
                    .api_key_header
                    .as_deref()
                    .is_some_and(|k| name.eq_ignore_ascii_case(k))
                {
                    found.api_key.push(pair.get_item(1)?);
                }
            }
        }
        if let Some(a) = authorization.filter(|a| !a.is_none()) {
            found.authorization.push(a.clone());
        }
        if let Some(k) = api_key.filter(|k| !k.is_none()) {
            found.api_key.push(k.clone());
        }
        Ok(found)
    }

    fn outcome(
        &self,
        py: Python<'_>,
        rule: Option<(usize, &Rule)>,
        step: Step<Handle, Miss, Py<PyDecision>, KeyNeed>,
    ) -> PyResult<PyOutcome> {
        let index = rule.map_or(-1, |(i, _)| i as isize);
        let mut out = PyOutcome {
            kind: DONE,
            principal: None,
            decision: None,
            error: None,
            rule: index,
            need: None,
        };
        match step {
            Step::Done { principal, decision } => {
                out.principal = principal.map(|p| p.0.into_any());
                out.decision = decision.map(Py::into_any);
            }
            Step::Refused {
                principal,
                decision,
                error,
            } => {
                out.kind = REFUSED;
                out.principal = principal.map(|p| p.0.into_any());
                out.decision = decision.map(Py::into_any);
                let exc = to_pyerr(py, &error).into_value(py);
                if error.kind == ErrorKind::InsufficientScope {
                    if let Some((_, rule)) = rule {
                        let scopes: Vec<&str> = rule.scopes().iter().map(AsRef::as_ref).collect();
                        exc.bind(py).setattr("required_scopes", PyTuple::new(py, scopes)?)?;
                    }
                }
                out.error = Some(exc.into_any());
            }
            Step::NeedRecord(miss) => {
                out.kind = NEED_RECORD;
                out.need = Some(PyOpaqueIndex::miss_to_py(py, miss)?);
            }
            Step::NeedKey(need) => {
                out.kind = NEED_KEY;
                out.need = Some(need.into_pyobject(py)?.into_any().unbind());
            }
            Step::NeedLimit(principal) => {
                out.kind = NEED_LIMIT;
                let p = principal.as_ref();
                let tier: Option<String> = match &self.tier_of {
                    None => p.tier.as_deref().cloned(),
                    Some(tier_of) => {
                        let call = Call::new(self, py, false);
                        call.chosen_tier(tier_of, &principal)?
                    }
                };
                out.need = Some((p.rate_limit_key(), tier).into_pyobject(py)?.into_any().unbind());
                out.principal = Some(principal.0.into_any());
            }
        }
        Ok(out)
    }

    fn finish_call(
        &self,
        call: Call<'_, '_>,
        rule: Option<(usize, &Rule)>,
        step: Step<Handle, Miss, Py<PyDecision>, KeyNeed>,
    ) -> PyResult<PyOutcome> {
        if let Some(err) = call.raised.into_inner() {
            return Err(err);
        }
        self.outcome(call.py, rule, step)
    }
}

fn rule_at(rules: &PyRuleSet, index: isize) -> Option<(usize, &Rule)> {
    usize::try_from(index)
        .ok()
        .and_then(|i| rules.core.rules().get(i).map(|r| (i, r)))
}

#[pymethods]
impl PyAuthenticator {
    #[new]
    #[pyo3(signature = (jwt, tokens, limiter, *, remote_limit=false, tier_of=None, api_key_header=None,
                        max_header_bytes=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        jwt: Option<&Bound<'_, PyAny>>,
        tokens: Option<&Bound<'_, PyAny>>,
        limiter: Option<&Bound<'_, PyAny>>,
        remote_limit: bool,
        tier_of: Option<&Bound<'_, PyAny>>,
        api_key_header: Option<&str>,
        max_header_bytes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let jwt = verifier_list(jwt)?;
        let issuers = if jwt.len() > 1 {
            let policies: Vec<_> = jwt.iter().map(|v| v.get().core().policy.issuers.as_deref()).collect();
            Some(Issuers::new(policies)?)
        } else {
            None
        };
        let peek_max = jwt.iter().map(|v| v.get().core().max_token_bytes).max().unwrap_or(0);
        let tokens = match tokens.filter(|t| !t.is_none()) {
            None => None,
            Some(t) => Some(
                t.cast::<PyOpaqueIndex>()
                    .map_err(|_| config_err("tokens must be a bastion.TokenStore"))?
                    .clone()
                    .unbind(),
            ),
        };
        let limiter = match limiter.filter(|l| !l.is_none()) {
            None => None,
            Some(l) => Some(
                l.cast::<PyRateLimiter>()
                    .map_err(|_| config_err("limiter must be a bastion.RateLimiter"))?
                    .clone()
                    .unbind(),
            ),
        };
        if limiter.is_some() && remote_limit {
            return Err(config_err(
                "an in-process limiter and remote_limit=True exclude each other",
            ));
        }
        let tier_of = match tier_of.filter(|t| !t.is_none()) {
            Some(t) if !t.is_callable() => {
                return Err(config_err("tier_of must be a callable Principal -> str | None"))
            }
            other => other.map(|t| t.clone().unbind()),
        };
        let max_header_bytes = match max_header_bytes {
            None => DEFAULT_MAX_HEADER_BYTES,
            Some(m) => match config_usize(m, "max_header_bytes must be a positive integer")? {
                // a cap of 0 would refuse every request that carries a credential
                0 => return Err(config_err("max_header_bytes must be a positive integer")),
                n => n,
            },
        };
        let _ = py;
        Ok(PyAuthenticator {
            jwt,
            issuers,
            peek_max,
            tokens,
            limiter,
            remote_limit,
            tier_of,
            api_key_header: api_key_header.map(|h| h.to_ascii_lowercase().into_bytes().into_boxed_slice()),
            max_header_bytes,
        })
    }

    /// One request: the rule for `method` and `path`, then the credential (from ASGI `headers`, or the
    /// `authorization` / `api_key` values), verification, the rate limit and the rule's roles and scopes.
    /// `refetched`: the request runs again after a `NEED_KEY` was supplied (an unknown kid is then final).
    #[pyo3(signature = (rules, method, path, headers=None, authorization=None, api_key=None, now=None,
                        refetched=false))]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step(
        &self,
        py: Python<'_>,
        rules: &Bound<'_, PyRuleSet>,
        method: &Bound<'_, PyString>,
        path: &Bound<'_, PyString>,
        headers: Option<&Bound<'_, PyAny>>,
        authorization: Option<&Bound<'_, PyAny>>,
        api_key: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
        refetched: bool,
    ) -> PyResult<PyOutcome> {
        let rules = rules.get();
        let now = resolve_now(now)?;
        let method = method.to_str().map_err(|_| config_err("method must be text"))?;
        let path = path_bytes(path)?;
        let rule = match rules.core.find(method.as_bytes(), &path) {
            Ok(rule) => rule,
            Err(error) => {
                return self.outcome(
                    py,
                    None,
                    Step::Refused {
                        principal: None,
                        decision: None,
                        error,
                    },
                )
            }
        };
        let default = rules.core.default_mode();
        if rule.map_or(default, |(_, r)| r.auth()) == AuthMode::None {
            return self.outcome(
                py,
                rule,
                Step::Done {
                    principal: None,
                    decision: None,
                },
            );
        }
        let found = self.headers(headers, authorization, api_key)?;
        let max = self.max_header_bytes;
        let credential =
            header_values(&found.authorization, max).and_then(|a| Ok((a, header_values(&found.api_key, max)?)));
        let call = Call::new(self, py, refetched);
        let step = match &credential {
            Err(error) => Step::Refused {
                principal: None,
                decision: None,
                error: error.clone(),
            },
            Ok((auth_values, key_values)) => {
                let auth_slices: Vec<&[u8]> = auth_values.iter().map(AsRef::as_ref).collect();
                let key_slices: Vec<&[u8]> = key_values.iter().map(AsRef::as_ref).collect();
                let cred = credential_of(&auth_slices, &key_slices, max);
                flow::step(&call, rule.map(|(_, r)| r), default, cred, now)
            }
        };
        self.finish_call(call, rule, step)
    }

    /// Resume a request once its principal is known (`decision` None: after a record was settled) or
    /// once the shared limiter decided (`decision` given).
    #[pyo3(signature = (rules, outcome, principal, decision=None, now=None))]
    fn resume(
        &self,
        py: Python<'_>,
        rules: &Bound<'_, PyRuleSet>,
        outcome: &Bound<'_, PyOutcome>,
        principal: &Bound<'_, PyPrincipal>,
        decision: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyOutcome> {
        let _ = resolve_now(now)?;
        let rules = rules.get();
        let rule = rule_at(rules, outcome.get().rule);
        let handle = Handle(principal.clone().unbind());
        let call = Call::new(self, py, false);
        let step = match decision.filter(|d| !d.is_none()) {
            None => flow::after_identity(&call, rule.map(|(_, r)| r), handle),
            Some(d) => {
                let d = d
                    .cast::<PyDecision>()
                    .map_err(|_| config_err("a limiter must answer with a bastion.Decision"))?
                    .clone()
                    .unbind();
                flow::finish(rule.map(|(_, r)| r), handle, Some(d))
            }
        };
        self.finish_call(call, rule, step)
    }

    fn __repr__(&self) -> String {
        format!(
            "Authenticator(jwt={}, tokens={}, limiter={})",
            self.jwt.len(),
            self.tokens.is_some(),
            if self.remote_limit {
                "remote"
            } else if self.limiter.is_some() {
                "local"
            } else {
                "none"
            }
        )
    }
}

/// `jwt=`: `None`, one `JWTVerifier`, or a list or tuple of them (one per issuer).
fn verifier_list(jwt: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Py<PyJWTVerifier>>> {
    let Some(jwt) = jwt.filter(|j| !j.is_none()) else {
        return Ok(Vec::new());
    };
    if let Ok(v) = jwt.cast::<PyJWTVerifier>() {
        return Ok(vec![v.clone().unbind()]);
    }
    let err = || config_err("jwt must be a bastion.JWTVerifier or a list of them (one per issuer)");
    if !(jwt.is_instance_of::<PyList>() || jwt.is_instance_of::<PyTuple>()) {
        return Err(err());
    }
    let mut out = Vec::new();
    for item in jwt.try_iter().map_err(|_| err())? {
        out.push(
            item.map_err(|_| err())?
                .cast::<PyJWTVerifier>()
                .map_err(|_| err())?
                .clone()
                .unbind(),
        );
    }
    if out.is_empty() {
        return Err(err());
    }
    Ok(out)
}

fn header_values<'a>(list: &'a [Bound<'_, PyAny>], max: usize) -> Result<Vec<std::borrow::Cow<'a, [u8]>>> {
    list.iter().map(|v| value_bytes(v, max)).collect()
}

/// The credential of a request: the API-key header, or the Authorization header; both is ambiguous.
fn credential_of<'a>(authorization: &[&'a [u8]], api_key: &[&'a [u8]], max: usize) -> Result<Credential<'a>> {
    if !api_key.is_empty() {
        if !authorization.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                "send the token in one header: Authorization or the API-key header, not both",
            ));
        }
        return bearer::parse_api_key(api_key, max).map(Credential::ApiKey);
    }
    match bearer::parse_authorization(authorization, max) {
        Ok(token) => Ok(Credential::Bearer(token)),
        Err(e) if e.kind == ErrorKind::MissingToken => Ok(Credential::Absent),
        Err(e) => Err(e),
    }
}

/// The path as UTF-8 bytes: ASGI gives it decoded; a WSGI `PATH_INFO` holds latin-1 bytes as a `str`
/// (the shell re-decodes it), and lone surrogates keep their escaped form so that they never match a
/// rule's literal text.
fn path_bytes(path: &Bound<'_, PyString>) -> PyResult<Vec<u8>> {
    if let Ok(s) = path.to_str() {
        return Ok(s.as_bytes().to_vec());
    }
    let encoded = path.call_method1("encode", ("utf-8", "surrogateescape"))?;
    Ok(encoded.cast::<PyBytes>()?.as_bytes().to_vec())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyAuthenticator>()?;
    Ok(())
}
