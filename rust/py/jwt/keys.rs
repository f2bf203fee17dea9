//! `Key` and `KeySet`: key material from secrets, PEM, JWK and JWKS, and the argument forms they take.

use std::sync::Arc;

use pyo3::exceptions::PyUserWarning;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::error::{Error, ErrorKind};
use crate::jwt::{Alg, Key, KeySet};
use crate::py::args::{config_err, config_opt_text, config_text};
use crate::py::json::{to_py, write_json, Shape};

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

fn optional_alg(alg: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Alg>> {
    config_opt_text(alg, "alg")?
        .map(|a| Alg::parse_config(&a).map_err(PyErr::from))
        .transpose()
}

pub(super) fn key_list(keys: &Bound<'_, PyAny>) -> PyResult<Vec<Arc<Key>>> {
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

/// A signing or verification key bound to one algorithm family (or one algorithm).
#[pyclass(frozen, module = "bastion._core", name = "Key")]
pub struct PyKey {
    pub(super) inner: Arc<Key>,
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
            Some(v) => to_py(py, &v, Shape::Mutable),
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
        let inner = KeySet::from_jwks_json(&text, allow_symmetric.0)?;
        // one UserWarning per member skipped as unsupported; the core escaped each kid
        let py = jwks.py();
        for line in &inner.skipped {
            let message = std::ffi::CString::new(line.as_str()).unwrap_or_else(|_| c"a JWKS member was skipped".into());
            PyErr::warn(py, &py.get_type::<PyUserWarning>(), &message, 1)?;
        }
        Ok(PyKeySet { inner })
    }

    fn to_jwks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.to_jwks(), Shape::Mutable)
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
