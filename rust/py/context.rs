//! `_core.AuthContext` and `_core.Credentials`: what an admitted request's app finds in `scope["bastion"]`
//! and `scope["auth"]` (`environ["bastion.auth"]` under WSGI), built by the middlewares' glue (`gate.rs`).

use parking_lot::Mutex;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyList;

/// `scope["bastion"]` / `environ["bastion.auth"]`: what bastion decided about this request.
#[pyclass(frozen, module = "bastion._core", name = "AuthContext")]
pub struct PyAuthContext {
    /// The authenticated principal, or `None` for an anonymous request.
    #[pyo3(get)]
    pub(crate) principal: Option<Py<PyAny>>,
    /// The rate-limit decision, when the request was rate-limited.
    #[pyo3(get)]
    pub(crate) decision: Option<Py<PyAny>>,
    #[pyo3(get)]
    pub(crate) request_id: Py<PyAny>,
    /// The client's address: the peer, or what trusted proxies said.
    #[pyo3(get)]
    pub(crate) client_address: Option<Py<PyAny>>,
    /// The route rule that applied (`None`: the default).
    #[pyo3(get)]
    pub(crate) rule: Option<Py<PyAny>>,
    pub(crate) refusal: Mutex<Option<Py<PyAny>>>,
}

#[pymethods]
impl PyAuthContext {
    #[new]
    #[pyo3(signature = (principal, decision, request_id, client_address, rule))]
    fn new(
        principal: Option<Py<PyAny>>,
        decision: Option<Py<PyAny>>,
        request_id: Py<PyAny>,
        client_address: Option<Py<PyAny>>,
        rule: Option<Py<PyAny>>,
    ) -> Self {
        // an argument given as None arrives as None here (PyO3 maps it), never as a Py of None
        PyAuthContext {
            principal,
            decision,
            request_id,
            client_address,
            rule,
            refusal: Mutex::new(None),
        }
    }

    /// The refusal of a check made after the middleware admitted the request (a framework integration's
    /// scopes or roles on an endpoint): the middleware's audit record then names its code.
    #[getter]
    fn refusal(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.refusal.lock().as_ref().map(|r| r.clone_ref(py))
    }

    #[setter]
    fn set_refusal(&self, py: Python<'_>, refusal: Option<Py<PyAny>>) {
        *self.refusal.lock() = refusal.filter(|r| !r.is_none(py));
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let who = match &self.principal {
            Some(p) => p.bind(py).getattr(intern!(py, "subject"))?.repr()?.to_string(),
            None => "None".to_owned(),
        };
        Ok(format!(
            "AuthContext(subject={who}, request_id={})",
            self.request_id.bind(py).repr()?
        ))
    }
}

/// `scope["auth"]`: the granted scopes, in the shape of Starlette's `AuthCredentials` (`.scopes`, a sorted
/// list). Built from the principal, sorted only when `scopes` is first read.
#[pyclass(frozen, module = "bastion._core", name = "Credentials")]
pub struct PyCredentials {
    pub(crate) principal: Option<Py<PyAny>>,
    pub(crate) scopes: PyOnceLock<Py<PyList>>,
}

fn sorted_list<'py>(items: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(items.py());
    for item in items.try_iter()? {
        list.append(item?)?;
    }
    list.sort()?;
    Ok(list)
}

pub(crate) fn filled(py: Python<'_>, list: Py<PyList>) -> PyOnceLock<Py<PyList>> {
    let cell = PyOnceLock::new();
    let _ = cell.set(py, list);
    cell
}

#[pymethods]
impl PyCredentials {
    #[new]
    #[pyo3(signature = (scopes = None))]
    fn new(py: Python<'_>, scopes: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let list = match scopes {
            Some(s) => sorted_list(s)?,
            None => PyList::empty(py),
        };
        Ok(PyCredentials {
            principal: None,
            scopes: filled(py, list.unbind()),
        })
    }

    /// The credentials of `principal`, read when first asked for.
    #[classmethod]
    fn of(_cls: &Bound<'_, pyo3::types::PyType>, principal: Py<PyAny>) -> Self {
        PyCredentials {
            principal: Some(principal),
            scopes: PyOnceLock::new(),
        }
    }

    #[getter]
    fn scopes(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let list = self.scopes.get_or_try_init(py, || match &self.principal {
            Some(p) => Ok::<_, PyErr>(sorted_list(&p.bind(py).getattr(intern!(py, "scopes"))?)?.unbind()),
            None => Ok(PyList::empty(py).unbind()),
        })?;
        Ok(list.clone_ref(py))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("Credentials(scopes={})", self.scopes(py)?.bind(py).repr()?))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyAuthContext>()?;
    m.add_class::<PyCredentials>()
}
