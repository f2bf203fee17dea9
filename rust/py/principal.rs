//! `bastion._core.Principal`: the immutable identity returned by every verification.
//!
//! The object wraps the core [`Principal`] behind an `Arc` (for opaque tokens, the index entry itself),
//! and builds its Python views (frozensets, the claims mapping) once, on first access.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyFrozenSet, PyList, PyMapping, PyMappingProxy, PyTuple};

use crate::principal::{NameSet, Principal};

/// What a `Principal` object reads from: a core principal, or an index entry that holds one.
pub type Source = Arc<dyn AsRef<Principal> + Send + Sync>;

/// An authenticated identity. Immutable; built by bastion, never by the caller.
#[pyclass(frozen, module = "bastion._core", name = "Principal")]
pub struct PyPrincipal {
    source: Source,
    // one cell for the three views keeps the object small: it is cached per index record
    views: PyOnceLock<Views>,
}

/// The Python views of a principal, built together on first access.
struct Views {
    scopes: Py<PyFrozenSet>,
    roles: Py<PyFrozenSet>,
    claims: Py<PyMappingProxy>,
}

impl PyPrincipal {
    /// Wrap a core principal (or anything holding one) for Python.
    pub fn new(source: Source) -> Self {
        PyPrincipal {
            source,
            views: PyOnceLock::new(),
        }
    }

    fn p(&self) -> &Principal {
        (*self.source).as_ref()
    }

    fn views(&self, py: Python<'_>) -> PyResult<&Views> {
        self.views.get_or_try_init(py, || {
            let p = self.p();
            let dict = match &p.claims {
                Some(map) => map_to_py(py, map)?,
                None => PyDict::new(py),
            };
            Ok::<_, PyErr>(Views {
                scopes: frozen(py, &p.scopes)?.unbind(),
                roles: frozen(py, &p.roles)?.unbind(),
                claims: PyMappingProxy::new(py, dict.cast::<PyMapping>()?).unbind(),
            })
        })
    }
}

fn frozen<'py>(py: Python<'py>, set: &NameSet) -> PyResult<Bound<'py, PyFrozenSet>> {
    PyFrozenSet::new(py, set.iter().map(|s| &**s))
}

/// Convert a JSON value to Python (objects → dict, arrays → list).
pub fn json_to_py<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => map_to_py(py, map)?.into_any(),
    })
}

fn map_to_py<'py>(py: Python<'py>, map: &serde_json::Map<String, serde_json::Value>) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in map {
        dict.set_item(k, json_to_py(py, v)?)?;
    }
    Ok(dict)
}

#[pymethods]
impl PyPrincipal {
    /// The subject (user or client id).
    #[getter]
    fn subject(&self) -> &str {
        &self.p().subject
    }

    /// The OAuth client the token was issued to, if any.
    #[getter]
    fn client_id(&self) -> Option<&str> {
        self.p().client_id.as_deref()
    }

    /// Scopes, as a frozenset.
    #[getter]
    fn scopes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
        Ok(self.views(py)?.scopes.bind(py).clone())
    }

    /// Roles, as a frozenset.
    #[getter]
    fn roles<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
        Ok(self.views(py)?.roles.bind(py).clone())
    }

    /// The rate-limit tier, if any.
    #[getter]
    fn tier(&self) -> Option<&str> {
        self.p().tier.as_deref().map(String::as_str)
    }

    /// `"jwt"` or `"opaque"`.
    #[getter]
    fn token_type(&self) -> &'static str {
        self.p().token_type.name()
    }

    /// The jti or opaque record id: safe to log, never the secret.
    #[getter]
    fn token_id(&self) -> Option<&str> {
        self.p().token_id.as_deref()
    }

    /// The issuer, if any.
    #[getter]
    fn issuer(&self) -> Option<&str> {
        self.p().issuer.as_deref().map(String::as_str)
    }

    /// Expiry, epoch seconds, if the token has one.
    #[getter]
    fn expires_at(&self) -> Option<f64> {
        self.p().expiry()
    }

    /// The verified claims (JWT) or the token's metadata (opaque), as a read-only mapping.
    #[getter]
    fn claims<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyMappingProxy>> {
        Ok(self.views(py)?.claims.bind(py).clone())
    }

    /// The key to rate-limit on: the client id for machine clients, else the subject.
    #[getter]
    fn rate_limit_key(&self) -> &str {
        self.p().rate_limit_key()
    }

    /// True when the token carries every one of `scopes`.
    #[pyo3(signature = (*scopes))]
    fn has_scopes(&self, scopes: &Bound<'_, PyTuple>) -> bool {
        scopes
            .iter()
            .all(|s| s.extract::<&str>().is_ok_and(|s| self.p().has_scopes([s])))
    }

    /// True when the token carries `role`.
    fn has_role(&self, role: &Bound<'_, PyAny>) -> bool {
        role.extract::<&str>().is_ok_and(|r| self.p().has_role(r))
    }

    /// Starlette `BaseUser`: always True.
    #[getter]
    #[allow(clippy::unused_self)] // a property of the instance in Python
    fn is_authenticated(&self) -> bool {
        true
    }

    /// Starlette `BaseUser`: the subject.
    #[getter]
    fn display_name(&self) -> &str {
        &self.p().subject
    }

    /// Starlette `BaseUser`: the subject.
    #[getter]
    fn identity(&self) -> &str {
        &self.p().subject
    }

    fn __repr__(&self) -> String {
        let p = self.p();
        let names = |s: &NameSet| s.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
        let opt = |s: Option<&str>| s.map_or_else(|| "None".to_owned(), |s| format!("{s:?}"));
        format!(
            "Principal(subject={:?}, token_type={:?}, token_id={}, scopes=[{}], roles=[{}], tier={})",
            &*p.subject,
            p.token_type.name(),
            opt(p.token_id.as_deref()),
            names(&p.scopes),
            names(&p.roles),
            opt(p.tier.as_deref().map(String::as_str)),
        )
    }
}

/// Register the class.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPrincipal>()
}
