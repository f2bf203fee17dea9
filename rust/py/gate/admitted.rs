//! `_core.Admitted`: an admitted request while its app runs — what the app is called with, and `finish()`
//! once it is done, which restores the audit context and queues the request's audit record.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::respond::Status;
use super::PyGate;
use crate::audit::Entry;
use crate::py::args::wall_now;
use crate::py::audit;
use crate::py::context::PyAuthContext;
use crate::py::outcome::PyOutcome;

/// An admitted request: what the app is called with (`scope` for ASGI, `send`: the `send` or
/// `start_response` to give it), and `finish()` once it is done.
#[pyclass(frozen, module = "bastion._core", name = "Admitted")]
pub struct PyAdmitted {
    /// The child scope (ASGI) or the environ (WSGI).
    #[pyo3(get)]
    scope: Py<PyAny>,
    /// The `send` / `start_response` to call the app with.
    #[pyo3(get)]
    send: Py<PyAny>,
    #[pyo3(get)]
    context: Py<PyAuthContext>,
    status: Status,
    outcome: Option<HeldOutcome>,
    method: Py<PyString>,
    path: Py<PyString>,
    started: Instant,
    /// The audit context's token, until the request unbinds it.
    bound: Mutex<Option<Py<PyAny>>>,
    /// What the record goes to (taken by the first `finish`).
    audit: Mutex<Option<Py<PyAny>>>,
    gate: Py<PyGate>,
}

/// What an admission made before the app's side (scope, `send`) is built: see `PyGate::admission`.
pub(super) struct Admission {
    pub context: Py<PyAuthContext>,
    /// The audit context's token.
    pub bound: Py<PyAny>,
    /// The audit sink the record goes to, if any.
    pub sink: Option<Py<PyAny>>,
    pub outcome: Option<HeldOutcome>,
    pub method: Py<PyString>,
    pub path: Py<PyString>,
    pub started: Instant,
}

/// The outcome an admission was made on: the core's own (the glue's fast path: no Python object made for
/// it), or the `Outcome` the Python shell resolved.
pub(super) enum HeldOutcome {
    Owned(PyOutcome),
    Shared(Py<PyOutcome>),
}

impl HeldOutcome {
    pub(super) fn get(&self) -> &PyOutcome {
        match self {
            HeldOutcome::Owned(o) => o,
            HeldOutcome::Shared(o) => o.get(),
        }
    }

    /// As a Python `Outcome` (for an audit object that is not an `AuditLog`).
    fn to_py(&self, py: Python<'_>) -> PyResult<Py<PyOutcome>> {
        match self {
            HeldOutcome::Owned(o) => Py::new(py, o.clone_ref(py)),
            HeldOutcome::Shared(o) => Ok(o.clone_ref(py)),
        }
    }
}

impl PyAdmitted {
    /// The admitted request of `admission`, whose app is called with `scope` and `send`.
    pub(super) fn new(
        gate: &Bound<'_, PyGate>,
        admission: Admission,
        scope: Py<PyAny>,
        send: Py<PyAny>,
        status: Status,
    ) -> PyResult<Py<Self>> {
        Py::new(
            gate.py(),
            PyAdmitted {
                scope,
                send,
                context: admission.context,
                status,
                outcome: admission.outcome,
                method: admission.method,
                path: admission.path,
                started: admission.started,
                bound: Mutex::new(Some(admission.bound)),
                audit: Mutex::new(admission.sink),
                gate: gate.clone().unbind(),
            },
        )
    }

    /// The request's record as Rust data (for an `AuditLog`, whose thread writes it without the interpreter).
    fn entry(&self, py: Python<'_>, status: u16, reason: Option<&Bound<'_, PyAny>>) -> PyResult<Entry> {
        let context = self.context.get();
        let mut entry = Entry {
            timestamp: wall_now(),
            method: audit::text(self.method.bind(py))?.unwrap_or_default(),
            path: audit::text(self.path.bind(py))?.unwrap_or_default(),
            status: Some(i64::from(status)),
            request_id: audit::text(context.request_id.bind(py))?.unwrap_or_default(),
            client_address: match &context.client_address {
                Some(a) => audit::text(a.bind(py))?,
                None => None,
            },
            duration_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            refused_after: match reason {
                Some(code) => audit::text(code)?,
                None => None,
            },
            ..Entry::default()
        };
        if let Some(outcome) = &self.outcome {
            let outcome = outcome.get();
            audit::outcome_into(&mut entry, outcome, py)?;
            if let Some((route, exempt)) = self.gate.get().route(outcome.rule) {
                entry.route = Some(Arc::clone(route));
                entry.exempt = exempt;
            }
        }
        Ok(entry)
    }
}

#[pymethods]
impl PyAdmitted {
    /// Whether `finish` writes an audit record.
    #[getter]
    fn audited(&self) -> bool {
        self.audit.lock().is_some()
    }

    /// Restore the audit context the request replaced (idempotent).
    fn unbind(&self, py: Python<'_>) -> PyResult<()> {
        let token = self.bound.lock().take();
        if let Some(token) = token {
            self.gate.get().var_reset.bind(py).call1((token,))?;
        }
        Ok(())
    }

    /// The request is done: unbind, and queue its audit record (once) with `status`, or the status the app
    /// sent (500 when it sent none), and the code of a refusal made after admission.
    #[pyo3(signature = (status = None))]
    fn finish(&self, py: Python<'_>, status: Option<u16>) -> PyResult<()> {
        self.unbind(py)?;
        let Some(sink) = self.audit.lock().take() else {
            return Ok(());
        };
        let status = status.unwrap_or_else(|| self.status.learnt());
        let context = self.context.get();
        let reason = match context.refusal.lock().as_ref() {
            Some(r) => Some(r.bind(py).getattr(intern!(py, "code"))?),
            None => None,
        };
        let gate = self.gate.get();
        let sink = sink.bind(py);
        if let Some(queue) = gate.queue_of(sink)? {
            // a value the entry cannot hold (a hand-made outcome): the tuple below, which the log counts
            if let Ok(entry) = self.entry(py, status, reason.as_ref()) {
                return queue.get().put_entry(py, entry);
            }
        }
        // any other audit object: the request tuple `AuditLog.request` takes, through `Gate._emit`
        let item = (
            self.outcome.as_ref().map(|o| o.to_py(py)).transpose()?,
            context.rule.as_ref().map(|r| r.clone_ref(py)),
            self.method.clone_ref(py),
            self.path.clone_ref(py),
            status,
            context.request_id.clone_ref(py),
            context.client_address.as_ref().map(|a| a.clone_ref(py)),
            self.started.elapsed().as_secs_f64() * 1000.0,
            wall_now(),
            reason,
        );
        gate.emit.bind(py).call1((sink, item.into_pyobject(py)?))?;
        Ok(())
    }
}
