//! The middlewares' per-request glue (`bastion.asgi` / `bastion.wsgi`): one call that steps the request
//! through the core and, when it is admitted, builds everything the app sees — the child scope (or the
//! environ's keys), `AuthContext`, `Credentials`, the bound audit context, the `send` / `start_response`
//! wrapper that learns the status and adds the RateLimit fields (`respond.rs`) — and one call when the app
//! is done that queues the audit record (`admitted.rs`). The Python middlewares keep what is rare:
//! refusals, I/O the core asks for, preflights, trusted proxies and WebSockets (which admit through the
//! same `admit_*` calls).

mod admitted;
mod respond;

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use self::admitted::{Admission, HeldOutcome, PyAdmitted};
use self::respond::{PySending, PyStarting, Status};
use super::args::config_err;
use super::audit;
use super::audit_queue::PyAuditQueue;
use super::auth::PyAuthenticator;
use super::context::{filled, PyAuthContext, PyCredentials};
use super::outcome::{PyOutcome, REFUSED};
use super::ratelimit::PyDecision;
use super::request_id::new_request_id;
use super::rules::PyRuleSet;

/// One middleware's configuration, as the glue needs it (built by `bastion._gate.Gate`).
#[pyclass(frozen, module = "bastion._core", name = "GateCore")]
pub struct PyGate {
    /// `bastion.Authenticator`: its core, and its `audit` (read per request: it may be replaced).
    auth: Py<PyAny>,
    core: Py<PyAuthenticator>,
    rules: Py<PyRuleSet>,
    /// What each index of the compiled rules refers to (the `bastion.Rule` objects).
    rule_list: Py<PyTuple>,
    ratelimit_headers: bool,
    /// Forwarding headers are believed from some peers: the Python shell resolves the client.
    trusting: bool,
    /// The WSGI environ key of the API-key header, if one is configured.
    api_key_environ: Option<Py<PyString>>,
    /// The audit context's `ContextVar`'s bound `set` and `reset` (looked up once).
    var_set: Py<PyAny>,
    var_reset: Py<PyAny>,
    anonymous: Py<PyAny>,
    /// `bastion.audit.writer.AuditLog` (its queue is filled directly) and the function any other audit
    /// object's records go through (`Gate._emit`).
    audit_log_type: Py<PyAny>,
    emit: Py<PyAny>,
    /// Each rule's pattern and whether it needs no token, by index: what its requests' records name.
    routes: Vec<(Arc<str>, bool)>,
}

/// Which of the two the request came through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Asgi,
    Wsgi,
}

impl PyGate {
    fn rule(&self, py: Python<'_>, index: isize) -> Option<Py<PyAny>> {
        let index = usize::try_from(index).ok()?;
        self.rule_list.bind(py).get_item(index).ok().map(Bound::unbind)
    }

    /// The pattern of the rule at `index` and whether it needs no token (`None`: the default applied).
    fn route(&self, index: isize) -> Option<(&Arc<str>, bool)> {
        let (route, exempt) = self.routes.get(usize::try_from(index).ok()?)?;
        Some((route, *exempt))
    }

    /// `sink`'s queue when it is an `AuditLog` (whose queue the glue fills directly), else `None`: its
    /// records go through `emit`.
    fn queue_of<'py>(&self, sink: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAuditQueue>>> {
        let py = sink.py();
        if !sink.is_exact_instance(self.audit_log_type.bind(py)) {
            return Ok(None);
        }
        Ok(sink.getattr(intern!(py, "_queue"))?.cast_into::<PyAuditQueue>().ok())
    }

    /// What admitting a request shares between ASGI and WSGI: the context, the bound audit context, the
    /// audit sink, and the RateLimit fields the response carries.
    #[allow(clippy::too_many_arguments)]
    fn admission(
        &self,
        py: Python<'_>,
        outcome: Option<HeldOutcome>,
        request_id: Option<Py<PyAny>>,
        address: Option<Py<PyAny>>,
        kind: Kind,
        method: Bound<'_, PyString>,
        path: Bound<'_, PyString>,
        started: Instant,
    ) -> PyResult<(Admission, Option<Py<PyList>>)> {
        let request_id = match request_id {
            Some(id) => id,
            None => new_request_id(|id| PyString::new(py, id))?.into_any().unbind(),
        };
        let (principal, decision, rule) = match &outcome {
            Some(o) => {
                let o = o.get();
                (
                    o.principal.as_ref().map(|p| p.clone_ref(py)),
                    o.decision.as_ref().map(|d| d.clone_ref(py)),
                    self.rule(py, o.rule),
                )
            }
            None => (None, None, None),
        };
        let extra = match (&decision, self.ratelimit_headers) {
            (Some(d), true) => {
                let headers = match d.bind(py).cast::<PyDecision>() {
                    Ok(d) => d.get().success_headers(py, kind == Kind::Asgi)?,
                    Err(_) => return Err(config_err("an Outcome's decision is a bastion.Decision")),
                };
                (!headers.is_empty()).then(|| headers.unbind())
            }
            _ => None,
        };
        let bound = (principal.as_ref().map(|p| p.clone_ref(py)), request_id.clone_ref(py));
        let bound = self.var_set.bind(py).call1((bound,))?.unbind();
        let context = Py::new(
            py,
            PyAuthContext {
                principal,
                decision,
                request_id,
                client_address: address,
                rule,
                refusal: Mutex::new(None),
            },
        )?;
        let log = self.auth.bind(py).getattr(intern!(py, "audit"))?;
        let admission = Admission {
            context,
            bound,
            sink: (!log.is_none()).then(|| log.unbind()),
            outcome,
            method: method.unbind(),
            path: path.unbind(),
            started,
        };
        Ok((admission, extra))
    }
}

fn since(waited: f64) -> Instant {
    let now = Instant::now();
    Duration::try_from_secs_f64(waited)
        .ok()
        .and_then(|d| now.checked_sub(d))
        .unwrap_or(now)
}

#[pymethods]
impl PyGate {
    #[new]
    #[pyo3(signature = (auth, rules, rule_list, ratelimit_headers, trusting, api_key_environ, var, anonymous,
                        audit_log_type, emit))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        auth: Py<PyAny>,
        rules: Py<PyRuleSet>,
        rule_list: Py<PyTuple>,
        ratelimit_headers: bool,
        trusting: bool,
        api_key_environ: Option<Py<PyString>>,
        var: &Bound<'_, PyAny>,
        anonymous: Py<PyAny>,
        audit_log_type: Py<PyAny>,
        emit: Py<PyAny>,
    ) -> PyResult<Self> {
        let core = auth
            .bind(py)
            .getattr(intern!(py, "_core"))?
            .cast_into::<PyAuthenticator>()
            .map_err(|_| config_err("auth must be a bastion.Authenticator"))?
            .unbind();
        let mut routes = Vec::with_capacity(rule_list.bind(py).len());
        for rule in rule_list.bind(py).iter() {
            let path = audit::text(&rule.getattr(intern!(py, "path"))?)?.unwrap_or_default();
            let auth = rule.getattr(intern!(py, "auth"))?;
            let exempt = auth.cast::<PyString>().is_ok_and(|a| a == "none");
            routes.push((Arc::from(path.as_str()), exempt));
        }
        let var_set = var.getattr(intern!(py, "set"))?.unbind();
        let var_reset = var.getattr(intern!(py, "reset"))?.unbind();
        Ok(PyGate {
            auth,
            core,
            rules,
            rule_list,
            ratelimit_headers,
            trusting,
            api_key_environ,
            var_set,
            var_reset,
            anonymous,
            audit_log_type,
            emit,
            routes,
        })
    }

    /// An ASGI HTTP request: `Admitted`, or the core's `Outcome` when it is refused or needs I/O, or
    /// `None` when the shell decides it (a trusted proxy's headers to read, an `OPTIONS` request).
    fn asgi(slf: &Bound<'_, Self>, scope: &Bound<'_, PyDict>, send: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let started = Instant::now();
        let gate = slf.get();
        let method = required(scope, intern!(py, "method"))?.cast_into::<PyString>()?;
        if gate.trusting || method == "OPTIONS" {
            return Ok(py.None());
        }
        let path = required(scope, intern!(py, "path"))?.cast_into::<PyString>()?;
        let headers = required(scope, intern!(py, "headers"))?;
        let rules = gate.rules.bind(py);
        let outcome = gate
            .core
            .get()
            .step(py, rules, &method, &path, Some(&headers), None, None, None, false)?;
        if outcome.kind >= REFUSED || outcome.error.is_some() {
            return Ok(Py::new(py, outcome)?.into_any());
        }
        let address = match scope.get_item(intern!(py, "client"))? {
            Some(client) if !client.is_none() => Some(client.get_item(0)?.unbind()),
            _ => None,
        };
        let outcome = Some(HeldOutcome::Owned(outcome));
        let request = (method, path);
        let admitted = admit_asgi(slf, scope, request, outcome, Some(send), None, address, started)?;
        Ok(admitted.into_any())
    }

    /// Admit an ASGI request the shell decided (`outcome` None: a preflight, passed through anonymous);
    /// `send` None: a WebSocket (its status is the shell's to say); `waited`: seconds since it arrived.
    #[pyo3(name = "admit_asgi", signature = (scope, outcome, send, request_id, address, waited))]
    #[allow(clippy::too_many_arguments)]
    fn py_admit_asgi(
        slf: &Bound<'_, Self>,
        scope: &Bound<'_, PyDict>,
        outcome: Option<&Bound<'_, PyOutcome>>,
        send: Option<&Bound<'_, PyAny>>,
        request_id: Py<PyAny>,
        address: Option<Py<PyAny>>,
        waited: f64,
    ) -> PyResult<Py<PyAdmitted>> {
        let py = slf.py();
        let method = match send {
            Some(_) => required(scope, intern!(py, "method"))?.cast_into::<PyString>()?,
            None => PyString::new(py, "GET"),
        };
        let path = required(scope, intern!(py, "path"))?.cast_into::<PyString>()?;
        let outcome = outcome.map(|o| HeldOutcome::Shared(o.clone().unbind()));
        admit_asgi(
            slf,
            scope,
            (method, path),
            outcome,
            send,
            Some(request_id),
            address,
            since(waited),
        )
    }

    /// A WSGI request: `Admitted` (the environ given its keys), the core's `Outcome` when it is refused or
    /// needs I/O, or `None` when the shell decides it.
    fn wsgi(
        slf: &Bound<'_, Self>,
        environ: &Bound<'_, PyDict>,
        start_response: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let started = Instant::now();
        let gate = slf.get();
        let method = wsgi_method(environ)?;
        if gate.trusting || method == "OPTIONS" {
            return Ok(py.None());
        }
        let path = wsgi_path(environ)?;
        let authorization = environ.get_item(intern!(py, "HTTP_AUTHORIZATION"))?;
        let api_key = match &gate.api_key_environ {
            Some(key) => environ.get_item(key)?,
            None => None,
        };
        let rules = gate.rules.bind(py);
        let outcome = gate.core.get().step(
            py,
            rules,
            &method,
            &path,
            None,
            authorization.as_ref(),
            api_key.as_ref(),
            None,
            false,
        )?;
        if outcome.kind >= REFUSED || outcome.error.is_some() {
            return Ok(Py::new(py, outcome)?.into_any());
        }
        let address = environ.get_item(intern!(py, "REMOTE_ADDR"))?.map(Bound::unbind);
        let outcome = Some(HeldOutcome::Owned(outcome));
        let request = (method, path);
        let admitted = admit_wsgi(slf, environ, request, outcome, start_response, None, address, started)?;
        Ok(admitted.into_any())
    }

    /// Admit a WSGI request the shell decided (`outcome` None: a preflight).
    #[pyo3(name = "admit_wsgi", signature = (environ, outcome, start_response, request_id, address, waited))]
    #[allow(clippy::too_many_arguments)]
    fn py_admit_wsgi(
        slf: &Bound<'_, Self>,
        environ: &Bound<'_, PyDict>,
        outcome: Option<&Bound<'_, PyOutcome>>,
        start_response: &Bound<'_, PyAny>,
        request_id: Py<PyAny>,
        address: Option<Py<PyAny>>,
        waited: f64,
    ) -> PyResult<Py<PyAdmitted>> {
        let request = (wsgi_method(environ)?, wsgi_path(environ)?);
        admit_wsgi(
            slf,
            environ,
            request,
            outcome.map(|o| HeldOutcome::Shared(o.clone().unbind())),
            start_response,
            Some(request_id),
            address,
            since(waited),
        )
    }
}

fn required<'py>(scope: &Bound<'py, PyDict>, key: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    scope
        .get_item(key)?
        .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(key.clone().unbind()))
}

/// `REQUEST_METHOD` (`GET` when the server left it out).
fn wsgi_method<'py>(environ: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyString>> {
    let py = environ.py();
    match environ.get_item(intern!(py, "REQUEST_METHOD"))? {
        Some(m) => Ok(m.cast_into::<PyString>()?),
        None => Ok(PyString::new(py, "GET")),
    }
}

/// `SCRIPT_NAME` + `PATH_INFO`, as the request's path.
fn wsgi_path<'py>(environ: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyString>> {
    let py = environ.py();
    let info = match environ.get_item(intern!(py, "PATH_INFO"))? {
        Some(p) => p.cast_into::<PyString>()?,
        None => PyString::new(py, ""),
    };
    match environ.get_item(intern!(py, "SCRIPT_NAME"))? {
        Some(script) => {
            let script = script.cast_into::<PyString>()?;
            if script.is_empty()? {
                Ok(info)
            } else {
                Ok(PyString::new(py, &format!("{}{}", script.to_cow()?, info.to_cow()?)))
            }
        }
        None => Ok(info),
    }
}

/// The child scope (`user`, `auth`, `bastion` set on a copy) and the `send` the app gets; `send` None: a
/// WebSocket, whose messages are passed as they are.
#[allow(clippy::too_many_arguments)]
fn admit_asgi(
    slf: &Bound<'_, PyGate>,
    scope: &Bound<'_, PyDict>,
    (method, path): (Bound<'_, PyString>, Bound<'_, PyString>),
    outcome: Option<HeldOutcome>,
    send: Option<&Bound<'_, PyAny>>,
    request_id: Option<Py<PyAny>>,
    address: Option<Py<PyAny>>,
    started: Instant,
) -> PyResult<Py<PyAdmitted>> {
    let py = slf.py();
    let gate = slf.get();
    let (admission, extra) = gate.admission(py, outcome, request_id, address, Kind::Asgi, method, path, started)?;
    let child = scope.copy()?;
    let principal = admission.context.get().principal.as_ref().map(|p| p.clone_ref(py));
    let credentials = PyCredentials {
        principal: principal.as_ref().map(|p| p.clone_ref(py)),
        scopes: match principal {
            Some(_) => PyOnceLock::new(),
            None => filled(py, PyList::empty(py).unbind()),
        },
    };
    child.set_item(
        intern!(py, "user"),
        principal.unwrap_or_else(|| gate.anonymous.clone_ref(py)),
    )?;
    child.set_item(intern!(py, "auth"), Py::new(py, credentials)?)?;
    child.set_item(intern!(py, "bastion"), admission.context.clone_ref(py))?;
    let (send, status) = match send {
        Some(send) => Status::asgi(send, extra, admission.sink.is_some())?,
        None => (py.None(), Status::Unwatched),
    };
    PyAdmitted::new(slf, admission, child.into_any().unbind(), send, status)
}

/// The environ given its keys (`bastion.auth`, `bastion.principal`, `AUTH_TYPE`, `REMOTE_USER` unless the
/// server set it) and the `start_response` the app gets.
#[allow(clippy::too_many_arguments)]
fn admit_wsgi(
    slf: &Bound<'_, PyGate>,
    environ: &Bound<'_, PyDict>,
    (method, path): (Bound<'_, PyString>, Bound<'_, PyString>),
    outcome: Option<HeldOutcome>,
    start_response: &Bound<'_, PyAny>,
    request_id: Option<Py<PyAny>>,
    address: Option<Py<PyAny>>,
    started: Instant,
) -> PyResult<Py<PyAdmitted>> {
    let py = slf.py();
    let gate = slf.get();
    let (admission, extra) = gate.admission(py, outcome, request_id, address, Kind::Wsgi, method, path, started)?;
    environ.set_item(intern!(py, "bastion.auth"), admission.context.clone_ref(py))?;
    match admission.context.get().principal.as_ref() {
        Some(p) => {
            let subject = p.bind(py).getattr(intern!(py, "subject"))?;
            environ.set_item(intern!(py, "bastion.principal"), p)?;
            environ.set_item(intern!(py, "AUTH_TYPE"), intern!(py, "Bearer"))?;
            if !environ.contains(intern!(py, "REMOTE_USER"))? {
                environ.set_item(intern!(py, "REMOTE_USER"), subject)?;
            }
        }
        None => environ.set_item(intern!(py, "bastion.principal"), py.None())?,
    }
    let (send, status) = Status::wsgi(start_response, extra, admission.sink.is_some())?;
    PyAdmitted::new(slf, admission, environ.clone().into_any().unbind(), send, status)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGate>()?;
    m.add_class::<PyAdmitted>()?;
    m.add_class::<PySending>()?;
    m.add_class::<PyStarting>()?;
    Ok(())
}
