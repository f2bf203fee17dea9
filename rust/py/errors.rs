//! The one funnel from core errors to Python exceptions: `From<Error> for PyErr`.
//!
//! The exception classes are defined in Python (`bastion.errors`) so that they pickle, carry
//! docstrings and can be subclassed; Rust looks each class up once by its code.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};

use crate::error::{Error, ErrorKind};

static CLASSES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

fn classes(py: Python<'_>) -> PyResult<&Bound<'_, PyDict>> {
    CLASSES
        .get_or_try_init(py, || {
            let module = py.import("bastion.errors")?;
            let by_code = module.getattr("ERRORS_BY_CODE")?;
            Ok::<_, PyErr>(by_code.cast_into::<PyDict>()?.unbind())
        })
        .map(|d| d.bind(py))
}

/// Build the Python exception instance for a core error.
pub fn to_pyerr(py: Python<'_>, err: &Error) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = classes(py)?
            .get_item(err.kind.code())?
            .ok_or_else(|| PyRuntimeError::new_err(format!("no Python class for {}", err.kind.code())))?;
        let kwargs = PyDict::new(py);
        if let Some(claim) = err.claim {
            kwargs.set_item("claim", claim)?;
        }
        if let Some(retry_after) = err.retry_after {
            kwargs.set_item("retry_after", retry_after)?;
        }
        let args = PyTuple::new(py, [err.message.as_ref()])?;
        let value = cls.call(args, Some(&kwargs))?;
        Ok(PyErr::from_value(value))
    };
    build().unwrap_or_else(|e| e)
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        Python::attach(|py| to_pyerr(py, &err))
    }
}

/// The codes the core can raise, in table order, for the drift test.
pub fn error_codes() -> Vec<&'static str> {
    ErrorKind::ALL.iter().map(|k| k.code()).collect()
}
