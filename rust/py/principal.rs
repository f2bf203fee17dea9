//! `bastion._core.Principal`: the immutable identity returned by every verification.
//!
//! The object wraps the core [`Principal`] behind an `Arc` (for opaque tokens, the index entry itself),
//! and builds its Python views (frozensets, the claims mapping) once, on first access.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyFrozenSet, PyMapping, PyMappingProxy, PyTuple};

use super::json::{self, Shape};
use crate::json::Value;
use crate::principal::{name_set, Claims, NameSet, Principal, TokenType};

/// What a `Principal` object reads from: a core principal, or an index entry that holds one.
pub type Source = Arc<dyn AsRef<Principal> + Send + Sync>;

/// An authenticated identity. Immutable; built by bastion, never by the caller.
#[pyclass(frozen, module = "bastion._core", name = "Principal")]
pub struct PyPrincipal {
    source: Source,
    // scopes and roles share one cell (the object is cached per index record: kept small); the claims have
    // their own, because every request reads the scopes (the audit, the context) and few read the claims,
    // which cost several times more to build (a frozen dict of every member)
    views: PyOnceLock<Views>,
    claims: PyOnceLock<Py<PyMappingProxy>>,
}

/// The set views of a principal, built together on first access.
struct Views {
    scopes: Py<PyFrozenSet>,
    roles: Py<PyFrozenSet>,
}

impl PyPrincipal {
    /// Wrap a core principal (or anything holding one) for Python.
    pub fn new(source: Source) -> Self {
        PyPrincipal {
            source,
            views: PyOnceLock::new(),
            claims: PyOnceLock::new(),
        }
    }

    /// What this object reads from, shared (an audit entry holds it past the request).
    pub fn source(&self) -> Source {
        Arc::clone(&self.source)
    }

    /// The core principal behind this object.
    pub fn p(&self) -> &Principal {
        (*self.source).as_ref()
    }

    fn views(&self, py: Python<'_>) -> PyResult<&Views> {
        self.views.get_or_try_init(py, || {
            let p = self.p();
            Ok::<_, PyErr>(Views {
                scopes: frozen(py, &p.scopes)?.unbind(),
                roles: frozen(py, &p.roles)?.unbind(),
            })
        })
    }

    fn claims_view(&self, py: Python<'_>) -> PyResult<&Py<PyMappingProxy>> {
        self.claims.get_or_try_init(py, || {
            // nested values frozen too: this object is shared by every request that presents the token
            let members = self.p().claims.as_deref().map_or(&[][..], |c| c.members().as_slice());
            let dict = json::members_to_dict(py, members, Shape::Frozen)?;
            Ok::<_, PyErr>(PyMappingProxy::new(py, dict.cast::<PyMapping>()?).unbind())
        })
    }
}

fn name_list(s: &NameSet) -> Vec<&str> {
    s.iter().map(|n| &**n).collect()
}

fn frozen<'py>(py: Python<'py>, set: &NameSet) -> PyResult<Bound<'py, PyFrozenSet>> {
    PyFrozenSet::new(py, set.iter().map(|s| &**s))
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
        Ok(self.claims_view(py)?.bind(py).clone())
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

    /// Immutable: a copy is the object itself.
    fn __copy__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Immutable: a deep copy is the object itself.
    fn __deepcopy__(slf: Py<Self>, _memo: &Bound<'_, PyAny>) -> Py<Self> {
        slf
    }

    /// Pickles by value (subject, scopes, claims, …), never holding a token: the copy is a detached Principal.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyTuple>,))> {
        let p = self.p();
        let claims = p.claims.as_ref().map(|claims| {
            let mut text = String::new();
            crate::json::write_members(claims.members(), &mut text);
            text
        });
        let state = (
            &*p.subject,
            p.client_id.as_deref(),
            name_list(&p.scopes),
            name_list(&p.roles),
            p.tier.as_deref().map(String::as_str),
            p.token_type.name(),
            p.token_id.as_deref(),
            p.issuer.as_deref().map(String::as_str),
            p.expires_at,
            p.machine,
            claims,
        )
            .into_pyobject(py)?;
        let restore = py.import("bastion._core")?.getattr("_restore_principal")?;
        Ok((restore, (state,)))
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

type State = (
    String,
    Option<String>,
    Vec<String>,
    Vec<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    f64,
    bool,
    Option<String>,
);

/// Rebuild a pickled `Principal` (the other half of `Principal.__reduce__`).
#[pyfunction]
fn _restore_principal(state: State) -> PyResult<PyPrincipal> {
    let (subject, client_id, scopes, roles, tier, token_type, token_id, issuer, expires_at, machine, claims) = state;
    let bad = |what: &str| pyo3::exceptions::PyValueError::new_err(format!("not a pickled Principal: {what}"));
    let token_type = TokenType::from_name(&token_type).ok_or_else(|| bad("token_type"))?;
    let claims = match claims {
        None => None,
        Some(text) => match crate::json::parse_document(text.as_bytes()) {
            Ok(Value::Object(members)) => Some(Arc::new(Claims::parsed(members))),
            _ => return Err(bad("claims")),
        },
    };
    let principal = Principal {
        subject: subject.into(),
        client_id: client_id.map(Into::into),
        scopes: name_set(scopes),
        roles: name_set(roles),
        tier: tier.map(Arc::new),
        token_type,
        token_id: token_id.map(Into::into),
        issuer: issuer.map(Arc::new),
        expires_at,
        machine,
        claims,
    };
    Ok(PyPrincipal::new(Arc::new(principal)))
}

/// Register the class.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPrincipal>()?;
    m.add_function(wrap_pyfunction!(_restore_principal, m)?)
}
