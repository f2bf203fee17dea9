//! The middlewares' per-request glue (`bastion.asgi` / `bastion.wsgi`): one call that steps the request
//! through the core and, when it is admitted, builds everything the app sees — the child scope (or the
//! environ's keys), `AuthContext`, `Credentials`, the bound audit context, the `send` / `start_response`
//! wrapper that learns the status and adds the RateLimit fields — and one call when the app is done that
//! queues the audit record. The Python middlewares keep what is rare: refusals, I/O the core asks for,
//! preflights, trusted proxies and WebSockets (which admit through the same `admit_*` calls).

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use super::args::{config_err, wall_now};
use super::audit;
use super::audit_queue::PyAuditQueue;
use super::auth::PyAuthenticator;
use super::context::{filled, PyAuthContext, PyCredentials};
use super::outcome::{PyOutcome, REFUSED};
use super::request_id::new_request_id;
use super::rules::PyRuleSet;
use crate::audit::Entry;

/// The status recorded when the app never started a response (it raised first).
const NO_RESPONSE: u16 = 500;

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
                let copy = PyDict::new(py);
                copy.update(message.cast::<pyo3::types::PyMapping>()?)?;
                let headers = match copy.get_item(intern!(py, "headers"))? {
                    Some(h) => list_of(&h)?,
                    None => PyList::empty(py),
                };
                for pair in extra.bind(py).iter() {
                    headers.append(pair)?;
                }
                copy.set_item(intern!(py, "headers"), headers)?;
                return Ok(self.send.bind(py).call1((copy,))?.unbind());
            }
        }
        Ok(self.send.bind(py).call1((message,))?.unbind())
    }
}

/// `items` as a new list, in their order.
fn list_of<'py>(items: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(items.py());
    for item in items.try_iter()? {
        list.append(item?)?;
    }
    Ok(list)
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
            Some(extra) => {
                let list = list_of(&headers)?;
                for pair in extra.bind(py).iter() {
                    list.append(pair)?;
                }
                list.into_any()
            }
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
enum Status {
    /// The app's `send` / `start_response` as is: nothing to learn (no audit), nothing to add.
    Unwatched,
    Asgi(Py<PySending>),
    Wsgi(Py<PyStarting>),
}

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
    outcome: Option<Py<PyOutcome>>,
    method: Py<PyAny>,
    path: Py<PyAny>,
    started: Instant,
    /// The audit context's token, until the request unbinds it.
    bound: Mutex<Option<Py<PyAny>>>,
    /// What the record goes to (taken by the first `finish`).
    audit: Mutex<Option<Py<PyAny>>>,
    gate: Py<PyGate>,
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
            self.gate
                .get()
                .var
                .bind(py)
                .call_method1(intern!(py, "reset"), (token,))?;
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
        let status = status.unwrap_or_else(|| match &self.status {
            Status::Unwatched => NO_RESPONSE,
            Status::Asgi(s) => s.get().status.load(Ordering::Relaxed),
            Status::Wsgi(s) => s.get().status.load(Ordering::Relaxed),
        });
        let context = self.context.get();
        let reason = match context.refusal.lock().as_ref() {
            Some(r) => Some(r.bind(py).getattr(intern!(py, "code"))?),
            None => None,
        };
        let duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let gate = self.gate.get();
        let sink = sink.bind(py);
        if let Some(queue) = gate.queue_of(sink)? {
            // an AuditLog: the record as Rust data, written on its thread without the interpreter
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
                duration_ms,
                refused_after: match &reason {
                    Some(code) => audit::text(code)?,
                    None => None,
                },
                ..Entry::default()
            };
            if let Some(outcome) = &self.outcome {
                let outcome = outcome.get();
                audit::outcome_into(&mut entry, outcome, py)?;
                if let Some((route, exempt)) = usize::try_from(outcome.rule).ok().and_then(|i| gate.routes.get(i)) {
                    entry.route = Some(Arc::clone(route));
                    entry.exempt = *exempt;
                }
            }
            return queue.get().put_entry(py, entry);
        }
        let item = (
            self.outcome.as_ref().map(|o| o.clone_ref(py)),
            context.rule.as_ref().map(|r| r.clone_ref(py)),
            self.method.clone_ref(py),
            self.path.clone_ref(py),
            status,
            context.request_id.clone_ref(py),
            context.client_address.as_ref().map(|a| a.clone_ref(py)),
            duration_ms,
            wall_now(),
            reason,
        );
        gate.emit.bind(py).call1((sink, item.into_pyobject(py)?))?;
        Ok(())
    }
}

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
    /// The audit context's `ContextVar`.
    var: Py<PyAny>,
    anonymous: Py<PyAny>,
    /// `bastion.audit.writer.AuditLog` (its queue is filled directly) and the function any other audit
    /// object's records go through (`Gate._emit`).
    audit_log_type: Py<PyAny>,
    emit: Py<PyAny>,
    /// Each rule's pattern and whether it needs no token, by index: what its requests' records name.
    routes: Vec<(Arc<str>, bool)>,
}

impl PyGate {
    fn rule(&self, py: Python<'_>, index: isize) -> Option<Py<PyAny>> {
        let index = usize::try_from(index).ok()?;
        self.rule_list.bind(py).get_item(index).ok().map(Bound::unbind)
    }

    /// The Authenticator's audit sink now: `None` when it has none.
    fn sink(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let log = self.auth.bind(py).getattr(intern!(py, "audit"))?;
        Ok((!log.is_none()).then(|| log.unbind()))
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

    /// What admitting a request shares between ASGI and WSGI: the context, the bound audit context and
    /// the RateLimit fields the response carries.
    #[allow(clippy::type_complexity)]
    fn admission(
        &self,
        py: Python<'_>,
        outcome: Option<&Bound<'_, PyOutcome>>,
        request_id: Py<PyAny>,
        address: Option<Py<PyAny>>,
        asgi: bool,
    ) -> PyResult<(Py<PyAuthContext>, Option<Py<PyAny>>, Option<Py<PyList>>, Py<PyAny>)> {
        let (principal, decision, rule) = match outcome {
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
                let d = d.bind(py);
                let headers = if asgi {
                    d.call_method0(intern!(py, "_asgi_success_headers"))?
                } else {
                    d.call_method0(intern!(py, "_success_headers"))?
                };
                let headers = headers.cast_into::<PyList>()?;
                (!headers.is_empty()).then(|| headers.unbind())
            }
            _ => None,
        };
        let bound = (principal.as_ref().map(|p| p.clone_ref(py)), request_id.clone_ref(py));
        let token = self.var.bind(py).call_method1(intern!(py, "set"), (bound,))?.unbind();
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
        Ok((context, Some(token), extra, self.anonymous.clone_ref(py)))
    }
}

fn request_id_of(py: Python<'_>, request_id: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
    match request_id {
        Some(id) => Ok(id),
        None => Ok(PyString::new(py, &new_request_id()?).into_any().unbind()),
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
        var: Py<PyAny>,
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
        Ok(PyGate {
            auth,
            core,
            rules,
            rule_list,
            ratelimit_headers,
            trusting,
            api_key_environ,
            var,
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
        let outcome = gate.core.get().step(
            py,
            gate.rules.bind(py),
            &method,
            &path,
            Some(&headers),
            None,
            None,
            None,
            false,
        )?;
        if outcome.kind >= REFUSED || outcome.error.is_some() {
            return Ok(Py::new(py, outcome)?.into_any());
        }
        let outcome = Bound::new(py, outcome)?;
        let address = match scope.get_item(intern!(py, "client"))? {
            Some(client) if !client.is_none() => Some(client.get_item(0)?.unbind()),
            _ => None,
        };
        let admitted = admit_asgi(slf, scope, Some(&outcome), send, None, address, started)?;
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
        send: &Bound<'_, PyAny>,
        request_id: Py<PyAny>,
        address: Option<Py<PyAny>>,
        waited: f64,
    ) -> PyResult<Py<PyAdmitted>> {
        admit_asgi(slf, scope, outcome, send, Some(request_id), address, since(waited))
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
        let method = match environ.get_item(intern!(py, "REQUEST_METHOD"))? {
            Some(m) => m.cast_into::<PyString>()?,
            None => PyString::new(py, "GET"),
        };
        if gate.trusting || method == "OPTIONS" {
            return Ok(py.None());
        }
        let path = wsgi_path(environ)?;
        let authorization = environ.get_item(intern!(py, "HTTP_AUTHORIZATION"))?;
        let api_key = match &gate.api_key_environ {
            Some(key) => environ.get_item(key)?,
            None => None,
        };
        let outcome = gate.core.get().step(
            py,
            gate.rules.bind(py),
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
        let outcome = Bound::new(py, outcome)?;
        let address = environ.get_item(intern!(py, "REMOTE_ADDR"))?.map(Bound::unbind);
        let admitted = admit_wsgi(
            slf,
            environ,
            Some(&outcome),
            start_response,
            None,
            address,
            started,
            method,
            path,
        )?;
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
        let py = slf.py();
        let method = match environ.get_item(intern!(py, "REQUEST_METHOD"))? {
            Some(m) => m.cast_into::<PyString>()?,
            None => PyString::new(py, "GET"),
        };
        let path = wsgi_path(environ)?;
        admit_wsgi(
            slf,
            environ,
            outcome,
            start_response,
            Some(request_id),
            address,
            since(waited),
            method,
            path,
        )
    }
}

fn required<'py>(scope: &Bound<'py, PyDict>, key: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    scope
        .get_item(key)?
        .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(key.clone().unbind()))
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

fn admit_asgi(
    slf: &Bound<'_, PyGate>,
    scope: &Bound<'_, PyDict>,
    outcome: Option<&Bound<'_, PyOutcome>>,
    send: &Bound<'_, PyAny>,
    request_id: Option<Py<PyAny>>,
    address: Option<Py<PyAny>>,
    started: Instant,
) -> PyResult<Py<PyAdmitted>> {
    let py = slf.py();
    let gate = slf.get();
    let request_id = request_id_of(py, request_id)?;
    let sink = gate.sink(py)?;
    let (context, token, extra, anonymous) = gate.admission(py, outcome, request_id, address, true)?;
    let child = scope.copy()?;
    let principal = context.get().principal.as_ref().map(|p| p.clone_ref(py));
    let credentials = PyCredentials {
        principal: principal.as_ref().map(|p| p.clone_ref(py)),
        scopes: match principal {
            Some(_) => PyOnceLock::new(),
            None => filled(py, PyList::empty(py).unbind()),
        },
    };
    child.set_item(intern!(py, "user"), principal.unwrap_or(anonymous))?;
    child.set_item(intern!(py, "auth"), Py::new(py, credentials)?)?;
    child.set_item(intern!(py, "bastion"), context.clone_ref(py))?;
    let websocket = send.is_none();
    let (send, status) = if websocket || (sink.is_none() && extra.is_none()) {
        (send.clone().unbind(), Status::Unwatched)
    } else {
        let sending = Py::new(
            py,
            PySending {
                send: send.clone().unbind(),
                extra,
                status: AtomicU16::new(NO_RESPONSE),
            },
        )?;
        (sending.clone_ref(py).into_any(), Status::Asgi(sending))
    };
    let method = if websocket {
        PyString::new(py, "GET").into_any().unbind()
    } else {
        required(scope, intern!(py, "method"))?.unbind()
    };
    Py::new(
        py,
        PyAdmitted {
            scope: child.into_any().unbind(),
            send,
            context,
            status,
            outcome: outcome.map(|o| o.clone().unbind()),
            method,
            path: required(scope, intern!(py, "path"))?.unbind(),
            started,
            bound: Mutex::new(token),
            audit: Mutex::new(sink),
            gate: slf.clone().unbind(),
        },
    )
}

#[allow(clippy::too_many_arguments)]
fn admit_wsgi(
    slf: &Bound<'_, PyGate>,
    environ: &Bound<'_, PyDict>,
    outcome: Option<&Bound<'_, PyOutcome>>,
    start_response: &Bound<'_, PyAny>,
    request_id: Option<Py<PyAny>>,
    address: Option<Py<PyAny>>,
    started: Instant,
    method: Bound<'_, PyString>,
    path: Bound<'_, PyString>,
) -> PyResult<Py<PyAdmitted>> {
    let py = slf.py();
    let gate = slf.get();
    let request_id = request_id_of(py, request_id)?;
    let sink = gate.sink(py)?;
    let (context, token, extra, _) = gate.admission(py, outcome, request_id, address, false)?;
    let principal = context.get().principal.as_ref().map(|p| p.clone_ref(py));
    environ.set_item(intern!(py, "bastion.auth"), context.clone_ref(py))?;
    match principal {
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
    let (send, status) = if sink.is_none() && extra.is_none() {
        (start_response.clone().unbind(), Status::Unwatched)
    } else {
        let starting = Py::new(
            py,
            PyStarting {
                start_response: start_response.clone().unbind(),
                extra,
                status: AtomicU16::new(NO_RESPONSE),
            },
        )?;
        (starting.clone_ref(py).into_any(), Status::Wsgi(starting))
    };
    Py::new(
        py,
        PyAdmitted {
            scope: environ.clone().into_any().unbind(),
            send,
            context,
            status,
            outcome: outcome.map(|o| o.clone().unbind()),
            method: method.into_any().unbind(),
            path: path.into_any().unbind(),
            started,
            bound: Mutex::new(token),
            audit: Mutex::new(sink),
            gate: slf.clone().unbind(),
        },
    )
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGate>()?;
    m.add_class::<PyAdmitted>()?;
    m.add_class::<PySending>()?;
    m.add_class::<PyStarting>()?;
    Ok(())
}
