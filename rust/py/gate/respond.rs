//! The `send` (ASGI) and `start_response` (WSGI) an admitted app is called with: Rust callables that learn
//! the response's status for the audit record and add the RateLimit fields, then hand over to the server's.

use std::sync::atomic::{AtomicU16, Ordering};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

/// The status recorded when the app never started a response (it raised first).
pub(super) const NO_RESPONSE: u16 = 500;

/// The `send` an admitted ASGI app gets: it learns the response's status and adds the RateLimit fields to
/// `http.response.start`, then hands the message to the server's `send` (its awaitable is returned as is).
#[pyclass(frozen, module = "bastion._core", name = "_Sending")]
pub struct PySending {
    send: Py<PyAny>,
    extra: Option<Py<PyList>>,
    status: AtomicU16,
}

#[pymethods]
impl PySending {
    fn __call__(&self, py: Python<'_>, message: Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let kind = message.get_item(intern!(py, "type"))?;
        if kind.cast::<PyString>().is_ok_and(|k| k == "http.response.start") {
            let status = message.get_item(intern!(py, "status"))?;
            self.status
                .store(status.extract().unwrap_or(NO_RESPONSE), Ordering::Relaxed);
            if let Some(extra) = &self.extra {
                let copy = if let Ok(dict) = message.cast::<PyDict>() {
                    dict.copy()?
                } else {
                    let copy = PyDict::new(py);
                    copy.update(message.cast::<pyo3::types::PyMapping>()?)?;
                    copy
                };
                let headers = match copy.get_item(intern!(py, "headers"))? {
                    Some(h) => with_extra(&h, extra.bind(py))?,
                    None => extra.bind(py).get_slice(0, usize::MAX).into_any(),
                };
                copy.set_item(intern!(py, "headers"), headers)?;
                return Ok(self.send.bind(py).call1((copy,))?.unbind());
            }
        }
        Ok(self.send.bind(py).call1((message,))?.unbind())
    }
}

/// A new list of `headers` (the app's: a list, or any iterable of pairs), then `extra`: a plain list is joined
/// in one allocation (a subclass is iterated: its own `__add__` is never called), the app's own never changed.
fn with_extra<'py>(headers: &Bound<'py, PyAny>, extra: &Bound<'py, PyList>) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(list) = headers.cast_exact::<PyList>() {
        return list.as_sequence().concat(extra.as_sequence()).map(Bound::into_any);
    }
    let list = PyList::empty(headers.py());
    for item in headers.try_iter()? {
        list.append(item?)?;
    }
    for pair in extra.iter() {
        list.append(pair)?;
    }
    Ok(list.into_any())
}

/// The `start_response` an admitted WSGI app gets: the status learnt, the RateLimit fields added.
#[pyclass(frozen, module = "bastion._core", name = "_Starting")]
pub struct PyStarting {
    start_response: Py<PyAny>,
    extra: Option<Py<PyList>>,
    status: AtomicU16,
}

#[pymethods]
impl PyStarting {
    #[pyo3(signature = (status, headers, exc_info = None))]
    fn __call__(
        &self,
        py: Python<'_>,
        status: &Bound<'_, PyAny>,
        headers: Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let code = status
            .cast::<PyString>()
            .ok()
            .and_then(|s| s.to_str().ok().and_then(|s| s.get(..3)?.parse::<u16>().ok()))
            .unwrap_or(NO_RESPONSE);
        self.status.store(code, Ordering::Relaxed);
        let headers = match &self.extra {
            Some(extra) => with_extra(&headers, extra.bind(py))?,
            None => headers,
        };
        let start = self.start_response.bind(py);
        Ok(match exc_info.filter(|e| !e.is_none()) {
            Some(exc) => start.call1((status, headers, exc))?,
            None => start.call1((status, headers))?,
        }
        .unbind())
    }
}

/// Where the status of an admitted request is learnt.
pub(super) enum Status {
    /// The app's `send` / `start_response` as is: nothing to learn (no audit), nothing to add.
    Unwatched,
    Asgi(Py<PySending>),
    Wsgi(Py<PyStarting>),
}

impl Status {
    /// The `send` an ASGI app gets, and where its status is learnt: the server's own when there is nothing
    /// to learn (`watch` false: no audit) and nothing to add.
    pub(super) fn asgi(send: &Bound<'_, PyAny>, extra: Option<Py<PyList>>, watch: bool) -> PyResult<(Py<PyAny>, Self)> {
        if !watch && extra.is_none() {
            return Ok((send.clone().unbind(), Status::Unwatched));
        }
        let sending = Py::new(
            send.py(),
            PySending {
                send: send.clone().unbind(),
                extra,
                status: AtomicU16::new(NO_RESPONSE),
            },
        )?;
        Ok((sending.clone_ref(send.py()).into_any(), Status::Asgi(sending)))
    }

    /// The `start_response` a WSGI app gets, likewise.
    pub(super) fn wsgi(
        start_response: &Bound<'_, PyAny>,
        extra: Option<Py<PyList>>,
        watch: bool,
    ) -> PyResult<(Py<PyAny>, Self)> {
        if !watch && extra.is_none() {
            return Ok((start_response.clone().unbind(), Status::Unwatched));
        }
        let py = start_response.py();
        let starting = Py::new(
            py,
            PyStarting {
                start_response: start_response.clone().unbind(),
                extra,
                status: AtomicU16::new(NO_RESPONSE),
            },
        )?;
        Ok((starting.clone_ref(py).into_any(), Status::Wsgi(starting)))
    }

    /// The status the app sent (500 when it sent none, or nothing was watched).
    pub(super) fn learnt(&self) -> u16 {
        match self {
            Status::Unwatched => NO_RESPONSE,
            Status::Asgi(s) => s.get().status.load(Ordering::Relaxed),
            Status::Wsgi(s) => s.get().status.load(Ordering::Relaxed),
        }
    }
}
