//! Python bindings for the JWT core: `Key`, `KeySet`, `JWTVerifier`, `JWTSigner` and the
//! functions behind `bastion.dangerous`.
//!
//! The claims dict is built straight from the token's bytes by a [`Sink`] that makes Python objects
//! (no intermediate tree). GIL rule: HMAC verify/sign stays attached (well under a microsecond);
//! RSA, ECDSA and `EdDSA` run detached, on inputs copied into owned buffers first.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::error::{Error, ErrorKind};
use crate::jwt::cache::Cache;
use crate::jwt::claims::{self, Policy, Times};
use crate::jwt::json::{self, Value};
use crate::jwt::verify::{self, Verifier, DEFAULT_MAX_TOKEN_BYTES};
use crate::jwt::{Alg, Key, KeySet, Signer};

fn config_err(msg: impl Into<std::borrow::Cow<'static, str>>) -> PyErr {
    Error::new(ErrorKind::InvalidConfiguration, msg).into()
}

mod convert;

use convert::{py_to_value, value_to_py, write_json, Cached, Expected, PySink, Shapes};

// ------------------------------------------------------------------------------------------------
// argument helpers

/// The token as bytes: a `str` as UTF-8, or `bytes`. The size cap comes first: a `str` longer than
/// `max_token_bytes` in code points is refused before CPython encodes it (a 100 MB non-ASCII `str` is
/// never copied); one within it is encoded and the byte length is checked again by the verifier.
fn token_bytes<'a>(token: &'a Bound<'_, PyAny>, max_token_bytes: usize) -> PyResult<&'a [u8]> {
    if let Ok(s) = token.cast::<PyString>() {
        let too_long = super::text::code_points(s)
            .map_err(|_| Error::new(ErrorKind::TokenMalformed, "the token is not valid text"))?
            > max_token_bytes;
        if too_long {
            return Err(verify::too_large().into());
        }
        return s
            .to_str()
            .map(str::as_bytes)
            .map_err(|_| Error::new(ErrorKind::TokenMalformed, "the token is not valid text").into());
    }
    if let Ok(b) = token.cast::<PyBytes>() {
        return Ok(b.as_bytes());
    }
    Err(Error::new(ErrorKind::TokenMalformed, "the token must be str or bytes").into())
}

fn resolve_now(now: Option<&Bound<'_, PyAny>>) -> PyResult<f64> {
    match now {
        None => Ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())),
        Some(v) if v.is_none() => resolve_now(None),
        Some(v) => {
            if v.is_instance_of::<PyBool>() {
                return Err(config_err("now= must be a number of seconds since the epoch"));
            }
            let f: f64 = v
                .extract()
                .map_err(|_| config_err("now= must be a number of seconds since the epoch"))?;
            if f.is_finite() {
                Ok(f)
            } else {
                Err(config_err("now= must be finite"))
            }
        }
    }
}

/// A Python `str` as Rust text; anything else (or a lone surrogate) is a configuration error.
fn config_text(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    let s = obj
        .cast::<PyString>()
        .map_err(|_| config_err(format!("{what} must be a string")))?;
    Ok(s.to_str()
        .map_err(|_| config_err(format!("{what} must be valid Unicode text")))?
        .to_owned())
}

/// `None` or a string (see [`config_text`]).
fn config_opt_text(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<String>> {
    obj.filter(|o| !o.is_none()).map(|o| config_text(o, what)).transpose()
}

/// A non-negative integer that fits a `usize`; anything else is a configuration error.
fn config_size(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<usize> {
    if obj.is_instance_of::<PyBool>() {
        return Err(config_err(format!("{what} must be a non-negative integer")));
    }
    obj.extract::<usize>()
        .map_err(|_| config_err(format!("{what} must be a non-negative integer")))
}

/// A token lifetime in whole seconds: an int of at most 100 years (larger values cannot be a
/// deliberate lifetime); anything else is a configuration error, never a `TypeError`/`OverflowError`.
struct Ttl(i64);

impl<'a, 'py> FromPyObject<'a, 'py> for Ttl {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let err = || config_err("ttl must be a whole number of seconds, at most 100 years (or None for no exp)");
        if obj.is_instance_of::<PyBool>() {
            return Err(err());
        }
        obj.extract::<i64>()
            .ok()
            .filter(|t| *t <= 100 * 366 * 86_400)
            .map(Ttl)
            .ok_or_else(err)
    }
}

/// `KeySet.from_jwks(allow_symmetric=)`: exactly `True` or `False` (not `None`, not 1); anything else is
/// a configuration error, never a `TypeError`.
#[derive(Clone, Copy)]
struct AllowSymmetric(bool);

impl<'a, 'py> FromPyObject<'a, 'py> for AllowSymmetric {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        obj.cast::<PyBool>()
            .map(|b| AllowSymmetric(b.is_true()))
            .map_err(|_| config_err("allow_symmetric must be True or False"))
    }
}

/// `None`, one string, or a sequence of strings.
fn strings(obj: Option<&Bound<'_, PyAny>>, what: &'static str) -> PyResult<Option<Vec<String>>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Some(vec![config_text(s.as_any(), what)?]));
    }
    let err = || config_err(format!("{what} must be a string or a list of strings"));
    let mut out = Vec::new();
    for item in obj.try_iter().map_err(|_| err())? {
        let item = item.map_err(|_| err())?;
        item.cast::<PyString>().map_err(|_| err())?;
        out.push(config_text(&item, what)?);
    }
    Ok(Some(out))
}

fn alg_list(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Alg>> {
    let names = strings(Some(obj), "algorithms")?.unwrap_or_default();
    names
        .iter()
        .map(|n| Alg::parse_config(n).map_err(PyErr::from))
        .collect()
}

fn optional_alg(alg: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Alg>> {
    config_opt_text(alg, "alg")?
        .map(|a| Alg::parse_config(&a).map_err(PyErr::from))
        .transpose()
}

fn key_list(keys: &Bound<'_, PyAny>) -> PyResult<Vec<Arc<Key>>> {
    if let Ok(k) = keys.cast::<PyKey>() {
        return Ok(vec![k.get().inner.clone()]);
    }
    if let Ok(s) = keys.cast::<PyKeySet>() {
        return Ok(s.get().inner.keys.clone());
    }
    let err = || config_err("keys must be a Key, a KeySet or a list of Keys");
    if keys.is_instance_of::<PyString>() || keys.is_instance_of::<PyBytes>() {
        return Err(err());
    }
    let mut out = Vec::new();
    for item in keys.try_iter().map_err(|_| err())? {
        let item = item.map_err(|_| err())?;
        out.push(item.cast::<PyKey>().map_err(|_| err())?.get().inner.clone());
    }
    Ok(out)
}

fn text_bytes(obj: &Bound<'_, PyAny>, what: &'static str) -> PyResult<Vec<u8>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s
            .to_str()
            .map_err(|_| Error::new(ErrorKind::InvalidKey, format!("{what} must be valid Unicode text")))?
            .as_bytes()
            .to_vec());
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = obj.extract::<Vec<u8>>() {
        if !obj.is_instance_of::<PyList>() && !obj.is_instance_of::<PyTuple>() {
            return Ok(b);
        }
    }
    Err(Error::new(ErrorKind::InvalidKey, format!("{what} must be bytes or str")).into())
}

fn json_text(obj: &Bound<'_, PyAny>, what: &'static str) -> PyResult<Vec<u8>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return text_bytes(obj, what);
    }
    if obj.is_instance_of::<PyDict>() {
        let mut text = String::new();
        write_json(obj, &mut text, 0).map_err(|_| Error::new(ErrorKind::InvalidKey, format!("{what} is not JSON")))?;
        return Ok(text.into_bytes());
    }
    Err(Error::new(ErrorKind::InvalidKey, format!("{what} must be a dict or JSON text")).into())
}

// ------------------------------------------------------------------------------------------------
// Key, KeySet

/// A signing or verification key bound to one algorithm family (or one algorithm).
#[pyclass(frozen, module = "bastion._core", name = "Key")]
pub struct PyKey {
    inner: Arc<Key>,
}

#[pymethods]
impl PyKey {
    #[staticmethod]
    #[pyo3(signature = (secret, *, kid=None, alg=None))]
    fn hmac(
        secret: &Bound<'_, PyAny>,
        kid: Option<&Bound<'_, PyAny>>,
        alg: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyKey> {
        let secret = text_bytes(secret, "secret")?;
        let kid = config_opt_text(kid, "kid")?;
        Ok(PyKey {
            inner: Arc::new(Key::hmac(&secret, kid, optional_alg(alg)?)?),
        })
    }

    #[staticmethod]
    #[pyo3(signature = (alg, *, kid=None))]
    fn generate(py: Python<'_>, alg: &Bound<'_, PyAny>, kid: Option<&Bound<'_, PyAny>>) -> PyResult<PyKey> {
        let alg = Alg::parse_config(&config_text(alg, "alg")?)?;
        let kid = config_opt_text(kid, "kid")?;
        let key = py.detach(|| Key::generate(alg, kid))?;
        Ok(PyKey { inner: Arc::new(key) })
    }

    #[staticmethod]
    #[pyo3(signature = (pem, *, kid=None, alg=None))]
    fn from_pem(
        pem: &Bound<'_, PyAny>,
        kid: Option<&Bound<'_, PyAny>>,
        alg: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyKey> {
        let pem = text_bytes(pem, "pem")?;
        let kid = config_opt_text(kid, "kid")?;
        Ok(PyKey {
            inner: Arc::new(Key::from_pem(&pem, kid, optional_alg(alg)?)?),
        })
    }

    #[staticmethod]
    fn from_jwk(jwk: &Bound<'_, PyAny>) -> PyResult<PyKey> {
        let text = json_text(jwk, "jwk")?;
        Ok(PyKey {
            inner: Arc::new(Key::from_jwk_json(&text)?),
        })
    }

    #[getter]
    fn kid(&self) -> Option<&str> {
        self.inner.kid.as_deref()
    }

    #[getter]
    fn alg(&self) -> Option<&'static str> {
        self.inner.alg.map(Alg::name)
    }

    #[getter]
    fn kty(&self) -> &'static str {
        self.inner.kty()
    }

    #[getter]
    fn is_private(&self) -> bool {
        self.inner.is_private()
    }

    fn public_jwk<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.inner.public_jwk() {
            Some(v) => value_to_py(py, &v),
            None => Err(Error::new(ErrorKind::InvalidKey, "HMAC secrets have no public JWK").into()),
        }
    }

    fn __repr__(&self) -> String {
        self.inner.describe()
    }
}

/// Keys indexed by kid.
#[pyclass(frozen, module = "bastion._core", name = "KeySet")]
pub struct PyKeySet {
    inner: KeySet,
}

#[pymethods]
impl PyKeySet {
    #[new]
    fn new(keys: &Bound<'_, PyAny>) -> PyResult<PyKeySet> {
        Ok(PyKeySet {
            inner: KeySet::new(key_list(keys)?)?,
        })
    }

    #[staticmethod]
    #[pyo3(signature = (jwks, *, allow_symmetric=AllowSymmetric(false)),
           text_signature = "(jwks, *, allow_symmetric=False)")]
    fn from_jwks(jwks: &Bound<'_, PyAny>, allow_symmetric: AllowSymmetric) -> PyResult<PyKeySet> {
        let text = json_text(jwks, "jwks")?;
        Ok(PyKeySet {
            inner: KeySet::from_jwks_json(&text, allow_symmetric.0)?,
        })
    }

    fn to_jwks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        value_to_py(py, &self.inner.to_jwks())
    }

    fn keys(&self) -> Vec<PyKey> {
        self.inner.keys.iter().map(|k| PyKey { inner: k.clone() }).collect()
    }

    #[getter]
    fn kids(&self) -> Vec<String> {
        self.inner.keys.iter().filter_map(|k| k.kid.clone()).collect()
    }

    fn __len__(&self) -> usize {
        self.inner.keys.len()
    }

    fn __repr__(&self) -> String {
        format!("KeySet({} keys)", self.inner.keys.len())
    }
}

// ------------------------------------------------------------------------------------------------
// JWTVerifier

/// Verifies JWTs against keys, an algorithm allow-list and claim rules.
#[pyclass(frozen, module = "bastion._core", name = "JWTVerifier")]
pub struct PyJWTVerifier {
    inner: Verifier,
    cache: Option<Cache<Arc<Cached>>>,
    shapes: Shapes,
    expected: Expected,
}

impl PyJWTVerifier {
    fn verify_uncached<'py>(&self, py: Python<'py>, token: &[u8], now: f64) -> PyResult<(Bound<'py, PyAny>, Times)> {
        let mut sink = PySink::with_memo(py, &self.shapes, &self.expected);
        let result = self.inner.with_prepared(token, |p| {
            let (claims, watched) = verify::parse_payload(p.payload, &mut sink)?;
            let verifying = &p.entry.verifying;
            if verifying.is_symmetric() {
                verifying.verify(p.signing_input, p.signature)?;
            } else {
                // The signing input borrows the caller's str: copy it before letting go of the GIL.
                let input = p.signing_input.to_vec();
                let signature = p.signature;
                py.detach(|| verifying.verify(&input, signature))?;
            }
            let times = self.inner.policy.check(&watched, p.header.typ.as_deref(), now)?;
            Ok((claims, times))
        });
        let (claims, times) = result?;
        if let Some(names) = sink.unseen.take() {
            self.shapes.remember(py, names)?;
        }
        Ok((claims, times))
    }
}

#[pymethods]
impl PyJWTVerifier {
    #[new]
    #[pyo3(signature = (keys, *, algorithms, issuer=None, audience=None, leeway=None, require=None, typ=None,
                        max_token_bytes=None, cache_size=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        keys: &Bound<'_, PyAny>,
        algorithms: &Bound<'_, PyAny>,
        issuer: Option<&Bound<'_, PyAny>>,
        audience: Option<&Bound<'_, PyAny>>,
        leeway: Option<&Bound<'_, PyAny>>,
        require: Option<&Bound<'_, PyAny>>,
        typ: Option<&Bound<'_, PyAny>>,
        max_token_bytes: Option<&Bound<'_, PyAny>>,
        cache_size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyJWTVerifier> {
        let keys_arg = keys;
        let keys = key_list(keys)?;
        let algorithms = alg_list(algorithms)?;
        let leeway: f64 = match leeway {
            None => 0.0,
            Some(l) if l.is_instance_of::<PyBool>() => return Err(config_err("leeway must be a number of seconds")),
            Some(l) => l
                .extract()
                .map_err(|_| config_err("leeway must be a number of seconds"))?,
        };
        let require = match require {
            None => vec!["exp"],
            Some(r) => strings(Some(r), "require")?
                .unwrap_or_default()
                .iter()
                .map(|n| claims::registered(n).map_err(PyErr::from))
                .collect::<PyResult<_>>()?,
        };
        let typ = config_opt_text(typ, "typ")?;
        let count = |v: Option<&Bound<'_, PyAny>>, default: usize, what: &'static str| -> PyResult<usize> {
            match v {
                None => Ok(default),
                Some(v) if v.is_instance_of::<PyBool>() => Err(config_err(what)),
                Some(v) => v.extract::<usize>().map_err(|_| config_err(what)),
            }
        };
        let max_token_bytes = count(
            max_token_bytes,
            DEFAULT_MAX_TOKEN_BYTES,
            "max_token_bytes must be a positive integer",
        )?;
        let cache_size = count(cache_size, 0, "cache_size must be an integer >= 0")?;
        if cache_size > 1 << 24 {
            return Err(config_err("cache_size must be at most 16777216"));
        }
        let policy = Policy {
            issuers: strings(issuer, "issuer")?,
            audiences: strings(audience, "audience")?,
            leeway,
            require,
            typ,
        };
        let py = keys_arg.py();
        let mut expected = Expected::default();
        for (name, values) in [("iss", &policy.issuers), ("aud", &policy.audiences)] {
            if let (Some(slot), Some(values)) = (claims::slot(name), values) {
                for v in values {
                    expected.add(py, slot, v);
                }
            }
        }
        Ok(PyJWTVerifier {
            inner: Verifier::new(&keys, &algorithms, policy, max_token_bytes)?,
            cache: (cache_size > 0).then(|| Cache::new(cache_size)),
            shapes: Shapes::default(),
            expected,
        })
    }

    #[pyo3(signature = (token, *, now=None))]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        token: &Bound<'py, PyAny>,
        now: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let token = token_bytes(token, self.inner.max_token_bytes)?;
        let now = resolve_now(now)?;
        let Some(cache) = &self.cache else {
            return Ok(self.verify_uncached(py, token, now)?.0);
        };
        if token.len() > self.inner.max_token_bytes {
            return Err(verify::too_large().into());
        }
        let leeway = self.inner.policy.leeway;
        // Only plain Rust work happens under the slot's lock (copy the times, bump an Arc): building
        // a dict or an exception runs Python code, which can hand the GIL to a thread that then waits
        // on this same lock while holding the GIL — a deadlock. Everything Python happens after.
        if let Some((times, cached)) = cache.with(token, |times, cached| (*times, Arc::clone(cached))) {
            claims::check_times(&times, leeway, now)?;
            return cached.fresh(py);
        }
        let (claims, times) = self.verify_uncached(py, token, now)?;
        drop(cache.insert(token, times, Arc::new(Cached::new(&claims)?)));
        Ok(claims)
    }

    /// Forget every cached token.
    fn clear_cache(&self) {
        if let Some(cache) = &self.cache {
            drop(cache.clear());
        }
    }

    #[getter]
    fn algorithms(&self) -> Vec<&'static str> {
        self.inner.algorithms().iter().map(|a| a.name()).collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "JWTVerifier(algorithms={:?}, keys={}, cache_size={})",
            self.algorithms(),
            self.inner.entry_count(),
            self.cache.as_ref().map_or(0, Cache::capacity)
        )
    }
}

// ------------------------------------------------------------------------------------------------
// JWTSigner

/// Mints JWTs with one private key and algorithm.
#[pyclass(frozen, module = "bastion._core", name = "JWTSigner")]
pub struct PyJWTSigner {
    inner: Signer,
    issuer: Option<String>,
    audience: Option<Value>,
    ttl: Option<i64>,
    typ: Option<String>,
}

const REFUSED_HEADERS: [&str; 5] = ["alg", "crit", "b64", "enc", "zip"];

#[pymethods]
impl PyJWTSigner {
    #[new]
    #[pyo3(signature = (private_key, algorithm=None, *, issuer=None, audience=None, ttl=Some(Ttl(900)), typ=None))]
    fn new(
        private_key: &Bound<'_, PyKey>,
        algorithm: Option<&Bound<'_, PyAny>>,
        issuer: Option<&Bound<'_, PyAny>>,
        audience: Option<&Bound<'_, PyAny>>,
        ttl: Option<Ttl>,
        typ: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyJWTSigner> {
        let alg = match algorithm.filter(|a| !a.is_none()) {
            None => Alg::parse_config("ES256")?,
            Some(a) => Alg::parse_config(&config_text(a, "algorithm")?)?,
        };
        let ttl = ttl.map(|t| t.0);
        let issuer = config_opt_text(issuer, "issuer")?;
        let typ = config_opt_text(typ, "typ")?;
        let inner = Signer::new(&private_key.get().inner, alg)?;
        if ttl.is_some_and(|t| t <= 0) {
            return Err(config_err(
                "ttl must be a positive number of seconds (or None for no exp)",
            ));
        }
        let audience = match strings(audience, "audience")? {
            None => None,
            Some(mut list) if list.len() == 1 => Some(Value::String(list.remove(0))),
            Some(list) => Some(Value::Array(list.into_iter().map(Value::String).collect())),
        };
        Ok(PyJWTSigner {
            inner,
            issuer,
            audience,
            ttl,
            typ,
        })
    }

    #[pyo3(signature = (claims, headers=None, *, now=None))]
    fn sign(
        &self,
        py: Python<'_>,
        claims: &Bound<'_, PyAny>,
        headers: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let claims = claims
            .cast::<PyDict>()
            .map_err(|_| config_err("claims must be a dict"))?;
        let now = resolve_now(now)?.floor() as i64;
        let mut payload = String::with_capacity(256);
        payload.push('{');
        let mut first = true;
        let mut member = |payload: &mut String, name: &str| {
            if !first {
                payload.push(',');
            }
            first = false;
            json::write_str(name, payload);
            payload.push(':');
        };
        if let (Some(iss), false) = (&self.issuer, claims.contains("iss")?) {
            member(&mut payload, "iss");
            json::write_str(iss, &mut payload);
        }
        if let (Some(aud), false) = (&self.audience, claims.contains("aud")?) {
            member(&mut payload, "aud");
            json::write_value(aud, &mut payload);
        }
        for (k, v) in claims.iter() {
            k.cast::<PyString>()
                .map_err(|_| config_err("claim names must be strings"))?;
            member(&mut payload, &config_text(&k, "a claim name")?);
            write_json(&v, &mut payload, 1)?;
        }
        if !claims.contains("iat")? {
            member(&mut payload, "iat");
            payload.push_str(&now.to_string());
        }
        if let (Some(ttl), false) = (self.ttl, claims.contains("exp")?) {
            member(&mut payload, "exp");
            payload.push_str(&now.saturating_add(ttl).to_string());
        }
        if !claims.contains("jti")? {
            let mut id = [0u8; 16];
            aws_lc_rs::rand::fill(&mut id).map_err(|_| config_err("the system random generator failed"))?;
            member(&mut payload, "jti");
            json::write_str(&crate::jwt::b64::encode(&id), &mut payload);
        }
        payload.push('}');

        let mut extra: Vec<(String, Value)> = Vec::new();
        if let Some(typ) = &self.typ {
            extra.push(("typ".to_owned(), Value::String(typ.clone())));
        }
        if let Some(h) = headers.filter(|h| !h.is_none()) {
            let h = h.cast::<PyDict>().map_err(|_| config_err("headers must be a dict"))?;
            for (k, v) in h.iter() {
                k.cast::<PyString>()
                    .map_err(|_| config_err("header names must be strings"))?;
                let name = &*config_text(&k, "a header name")?;
                if REFUSED_HEADERS.contains(&name) {
                    return Err(config_err(format!("the header member '{name}' cannot be set")));
                }
                let v = py_to_value(&v)?;
                if let Some(slot) = extra.iter_mut().find(|(n, _)| n == name) {
                    slot.1 = v;
                } else {
                    extra.push((name.to_owned(), v));
                }
            }
        }
        let extra: Vec<(&str, Value)> = extra.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let input = self.inner.signing_input(&extra, payload.as_bytes());
        let token = if self.inner.is_symmetric() {
            self.inner.finish(input)?
        } else {
            py.detach(|| self.inner.finish(input))?
        };
        Ok(token)
    }

    #[getter]
    fn algorithm(&self) -> &'static str {
        self.inner.alg.name()
    }

    fn __repr__(&self) -> String {
        format!(
            "JWTSigner(algorithm={:?}, kid={:?})",
            self.inner.alg.name(),
            self.inner.kid
        )
    }
}

// ------------------------------------------------------------------------------------------------
// dangerous

/// Header and claims of a token, without verifying anything (strict structure and JSON still apply).
#[pyfunction]
#[pyo3(signature = (token, *, max_token_bytes=None))]
fn _decode_unverified<'py>(
    py: Python<'py>,
    token: &Bound<'py, PyAny>,
    max_token_bytes: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let max_token_bytes = match max_token_bytes.filter(|m| !m.is_none()) {
        None => DEFAULT_MAX_TOKEN_BYTES,
        Some(m) => config_size(m, "max_token_bytes")?,
    };
    let token = token_bytes(token, max_token_bytes)?;
    let segments = verify::split(token, max_token_bytes)?;
    let header = json::parse_object(&segments.header, &mut PySink::new(py))?;
    let claims = json::parse_object(&segments.payload, &mut PySink::new(py))?;
    let out = PyDict::new(py);
    out.set_item("header", header)?;
    out.set_item("claims", claims)?;
    Ok(out)
}

/// Verify a compact JWS signature only and return its payload bytes (no claim checks).
#[pyfunction]
#[pyo3(signature = (token, keys, *, algorithms, max_token_bytes=None))]
fn _verify_jws<'py>(
    py: Python<'py>,
    token: &Bound<'py, PyAny>,
    keys: &Bound<'py, PyAny>,
    algorithms: &Bound<'py, PyAny>,
    max_token_bytes: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let max_token_bytes = match max_token_bytes.filter(|m| !m.is_none()) {
        None => DEFAULT_MAX_TOKEN_BYTES,
        Some(m) => config_size(m, "max_token_bytes")?,
    };
    let verifier = Verifier::new(
        &key_list(keys)?,
        &alg_list(algorithms)?,
        Policy::default(),
        max_token_bytes,
    )?;
    let token = token_bytes(token, max_token_bytes)?;
    Ok(PyBytes::new(py, &verifier.verify_jws(token)?))
}

/// Register the JWT classes and functions on `bastion._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyKey>()?;
    m.add_class::<PyKeySet>()?;
    m.add_class::<PyJWTVerifier>()?;
    m.add_class::<PyJWTSigner>()?;
    m.add_function(wrap_pyfunction!(_decode_unverified, m)?)?;
    m.add_function(wrap_pyfunction!(_verify_jws, m)?)?;
    m.add("JWT_ALGORITHMS", Alg::ALL.iter().map(|a| a.name()).collect::<Vec<_>>())?;
    Ok(())
}
