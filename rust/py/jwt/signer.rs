//! `JWTSigner`: mints compact JWS tokens, writing the claims JSON straight from the Python dict.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString};

use super::keys::PyKey;
use crate::json::{self, Value};
use crate::jwt::sign::check_header;
use crate::jwt::{Alg, Signer};
use crate::py::args::{config_err, config_opt_text, config_strings, config_text, resolve_now};
use crate::py::json::{py_to_value, write_json};

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

/// Mints JWTs with one private key and algorithm.
#[pyclass(frozen, module = "bastion._core", name = "JWTSigner")]
pub struct PyJWTSigner {
    inner: Signer,
    issuer: Option<String>,
    audience: Option<Value>,
    ttl: Option<i64>,
    typ: Option<String>,
}

#[pymethods]
impl PyJWTSigner {
    #[new]
    #[pyo3(signature = (private_key, algorithm=None, *, issuer=None, audience=None, ttl=Some(Ttl(900)), typ=None))]
    fn new(
        private_key: &Bound<'_, PyAny>,
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
        let key = private_key.cast::<PyKey>().map_err(|_| {
            config_err("private_key must be a Key (Key.generate, Key.from_pem, Key.from_jwk or Key.hmac)")
        })?;
        let inner = Signer::new(&key.get().inner, alg)?;
        if ttl.is_some_and(|t| t <= 0) {
            return Err(config_err(
                "ttl must be a positive number of seconds (or None for no exp)",
            ));
        }
        let audience = match config_strings(audience, "audience")? {
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
                let v = py_to_value(&v, 1)?;
                check_header(name, &v)?;
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
