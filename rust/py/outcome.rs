//! `_core.Outcome`: where a request stands after one call of the fused request path (`rust/py/auth.rs`).

use pyo3::prelude::*;

use super::args::config_err;

pub(crate) const DONE: u8 = 0;
pub(crate) const REFUSED: u8 = 1;
pub(crate) const NEED_RECORD: u8 = 2;
pub(crate) const NEED_LIMIT: u8 = 3;
pub(crate) const NEED_KEY: u8 = 4;

/// Where a request stands after a call: answered (`DONE`, `REFUSED`), or waiting for the shell to
/// supply a record (`NEED_RECORD`, `need` is the miss), a shared limiter's decision (`NEED_LIMIT`,
/// `need` is `(key, tier)`) or a key source's fresh keys (`NEED_KEY`, `need` is `(source, kid)`; the
/// request then runs again once).
#[pyclass(frozen, freelist = 32, module = "bastion._core", name = "Outcome")]
pub struct PyOutcome {
    #[pyo3(get)]
    pub(crate) kind: u8,
    #[pyo3(get)]
    pub(crate) principal: Option<Py<PyAny>>,
    #[pyo3(get)]
    pub(crate) decision: Option<Py<PyAny>>,
    #[pyo3(get)]
    pub(crate) error: Option<Py<PyAny>>,
    #[pyo3(get)]
    pub(crate) rule: isize,
    #[pyo3(get)]
    pub(crate) need: Option<Py<PyAny>>,
}

impl PyOutcome {
    /// Another `Outcome` holding the same objects.
    pub(crate) fn clone_ref(&self, py: Python<'_>) -> Self {
        PyOutcome {
            kind: self.kind,
            principal: self.principal.as_ref().map(|p| p.clone_ref(py)),
            decision: self.decision.as_ref().map(|d| d.clone_ref(py)),
            error: self.error.as_ref().map(|e| e.clone_ref(py)),
            rule: self.rule,
            need: self.need.as_ref().map(|n| n.clone_ref(py)),
        }
    }
}

#[pymethods]
impl PyOutcome {
    #[classattr]
    const DONE: u8 = DONE;
    #[classattr]
    const REFUSED: u8 = REFUSED;
    #[classattr]
    const NEED_RECORD: u8 = NEED_RECORD;
    #[classattr]
    const NEED_LIMIT: u8 = NEED_LIMIT;
    #[classattr]
    const NEED_KEY: u8 = NEED_KEY;

    #[new]
    #[pyo3(signature = (kind, principal=None, decision=None, error=None, rule=-1, need=None))]
    fn new(
        kind: u8,
        principal: Option<Py<PyAny>>,
        decision: Option<Py<PyAny>>,
        error: Option<Py<PyAny>>,
        rule: isize,
        need: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        if kind > NEED_KEY {
            return Err(config_err(
                "an Outcome kind is DONE, REFUSED, NEED_RECORD, NEED_LIMIT or NEED_KEY",
            ));
        }
        Ok(PyOutcome {
            kind,
            principal,
            decision,
            error,
            rule,
            need,
        })
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let kind = ["DONE", "REFUSED", "NEED_RECORD", "NEED_LIMIT", "NEED_KEY"][usize::from(self.kind)];
        let error = self
            .error
            .as_ref()
            .and_then(|e| e.bind(py).getattr("code").ok())
            .map_or_else(|| "None".to_owned(), |c| c.to_string());
        format!("Outcome({kind}, rule={}, error={error})", self.rule)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyOutcome>()
}
