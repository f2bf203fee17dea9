//! `Decision`: the answer for one request, and its rate-limit headers.

use std::fmt::Write as _;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use super::{cfg, secs, NS_PER_S};
use crate::ratelimit::gcra::Outcome;
use crate::ratelimit::{policy, redis, Decision, Quota, MAX_RATES};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    Local,
    Redis,
    Fallback,
    Open,
    Closed,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Local => "local",
            Source::Redis => "redis",
            Source::Fallback => "fallback",
            Source::Open => "open",
            Source::Closed => "closed",
        }
    }

    fn parse(s: &str) -> PyResult<Self> {
        Ok(match s {
            "local" => Source::Local,
            "redis" => Source::Redis,
            "fallback" => Source::Fallback,
            "open" => Source::Open,
            "closed" => Source::Closed,
            _ => return Err(cfg("source must be local, redis, fallback, open or closed")),
        })
    }
}

/// The answer for one request: whether it is allowed and the state of the tier's rates.
///
/// A core [`Decision`] (the verdict, the binding rate and each rate's outcome) with what the
/// headers add to it: each rate's quota, the tier's name and who decided. Plain data, no box: it
/// is built on every `check`.
#[pyclass(frozen, freelist = 64, module = "bastion._core", name = "Decision")]
pub struct PyDecision {
    /// The core decision; its `tier` index is the limiter's and unused here (`tier` names it).
    pub(super) core: Decision,
    /// Each rate's quota and window, in the tier's order (the first `core.len` are meaningful).
    pub(super) quotas: [Quota; MAX_RATES],
    pub(super) source: Source,
    pub(super) tier: Py<PyString>,
    /// Nanoseconds until the same request can succeed: the binding rate's wait, or longer when a
    /// decision built by hand says so.
    pub(super) retry_after_ns: u64,
    /// The `RateLimit-Policy` value and its header pairs, when the limiter made them once for the tier.
    pub(super) policy: Option<PolicyValue>,
}

impl crate::auth::flow::Verdict for PyDecision {
    fn allowed(&self) -> bool {
        self.core.allowed
    }
    fn retry_after(&self) -> f64 {
        super::secs(self.retry_after_ns)
    }
    fn unavailable(&self) -> bool {
        matches!(self.source, Source::Closed)
    }
}

/// A tier's `RateLimit-Policy` value, made once by the limiter: as `str` (`headers()`), and the header pair
/// of WSGI and of ASGI (the value as bytes there).
pub(crate) struct PolicyValue {
    pub(super) text: Py<PyString>,
    /// `("RateLimit-Policy", text)`, and ASGI's `(b"ratelimit-policy", <the value as bytes>)`.
    wsgi_pair: Py<PyTuple>,
    asgi_pair: Py<PyTuple>,
}

impl PolicyValue {
    pub(super) fn new(py: Python<'_>, value: &str) -> PyResult<Self> {
        let text = PyString::new(py, value);
        Ok(PolicyValue {
            wsgi_pair: PyTuple::new(py, [pyo3::intern!(py, "RateLimit-Policy").as_any(), text.as_any()])?.unbind(),
            asgi_pair: PyTuple::new(
                py,
                [
                    asgi_name(py, &POLICY_NAME, b"ratelimit-policy").as_any(),
                    PyBytes::new(py, value.as_bytes()).as_any(),
                ],
            )?
            .unbind(),
            text: text.unbind(),
        })
    }

    pub(super) fn clone_ref(&self, py: Python<'_>) -> Self {
        PolicyValue {
            text: self.text.clone_ref(py),
            wsgi_pair: self.wsgi_pair.clone_ref(py),
            asgi_pair: self.asgi_pair.clone_ref(py),
        }
    }
}

static POLICY_NAME: PyOnceLock<Py<PyBytes>> = PyOnceLock::new();
static STATE_NAME: PyOnceLock<Py<PyBytes>> = PyOnceLock::new();

/// An ASGI header name, made once.
fn asgi_name<'py>(py: Python<'py>, cell: &'static PyOnceLock<Py<PyBytes>>, name: &[u8]) -> Bound<'py, PyBytes> {
    cell.get_or_init(py, || PyBytes::new(py, name).unbind())
        .bind(py)
        .clone()
}

impl PyDecision {
    /// The RateLimit fields an admitted response carries (none for an unlimited tier): `(name, value)` str
    /// pairs for WSGI, or ASGI's lowercase byte pairs (`asgi`); the names and a limiter's policy pair made
    /// once, the state written per request.
    pub(crate) fn success_headers<'py>(&self, py: Python<'py>, asgi: bool) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        let Some(state) = self.state(py)? else { return Ok(out) };
        let policy = if let Some(p) = &self.policy {
            let pair = if asgi { &p.asgi_pair } else { &p.wsgi_pair };
            pair.clone_ref(py).into_bound(py)
        } else {
            let value = policy_value(self.tier.bind(py).to_str()?, &self.quotas[..self.core.len]);
            if asgi {
                (
                    asgi_name(py, &POLICY_NAME, b"ratelimit-policy"),
                    PyBytes::new(py, value.as_bytes()),
                )
                    .into_pyobject(py)?
            } else {
                (pyo3::intern!(py, "RateLimit-Policy"), value).into_pyobject(py)?
            }
        };
        out.append(policy)?;
        if asgi {
            out.append((
                asgi_name(py, &STATE_NAME, b"ratelimit"),
                PyBytes::new(py, state.as_bytes()),
            ))?;
        } else {
            out.append((pyo3::intern!(py, "RateLimit"), state))?;
        }
        Ok(out)
    }

    /// The tier's name and, for a limited tier, the requests left (an unlimited tier has no quota: "0
    /// remaining" would read as used up): what a request's audit record keeps.
    pub(crate) fn audit_fields(&self, py: Python<'_>) -> PyResult<(compact_str::CompactString, Option<i64>)> {
        let tier = self.tier.bind(py).to_str()?.into();
        let remaining = (self.binding_quota().limit > 0).then(|| self.core.summary().remaining as i64);
        Ok((tier, remaining))
    }

    /// Each rate's quota and outcome, in the tier's order.
    fn rate_slice(&self) -> impl Iterator<Item = (&Quota, &Outcome)> {
        self.quotas.iter().zip(self.core.outcomes())
    }

    fn binding_quota(&self) -> Quota {
        self.quotas[self.core.binding]
    }

    /// The `RateLimit-Policy` and `RateLimit` values; no state (and no header) for an unlimited tier.
    fn fields<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyString>, Option<String>)> {
        let Some(state) = self.state(py)? else {
            return Ok((PyString::new(py, ""), None));
        };
        let policy = match &self.policy {
            Some(p) => p.text.clone_ref(py).into_bound(py),
            None => PyString::new(
                py,
                &policy_value(self.tier.bind(py).to_str()?, &self.quotas[..self.core.len]),
            ),
        };
        Ok((policy, Some(state)))
    }

    /// The `RateLimit` value (`"tier";r=<left>;t=<seconds to reset>`, a rate per item, named `"tier.<i>"` when
    /// the tier has several); none for an unlimited tier.
    fn state(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let len = self.core.len;
        if len == 0 {
            return Ok(None);
        }
        let tier = self.tier.bind(py).to_str()?;
        let mut n = itoa::Buffer::new();
        let mut state = String::with_capacity(24 + tier.len());
        for (i, (_, r)) in self.rate_slice().enumerate() {
            if i > 0 {
                state.push_str(", ");
            }
            state.push('"');
            state.push_str(tier);
            if len > 1 {
                state.push('.');
                state.push_str(n.format(i));
            }
            state.push_str("\";r=");
            state.push_str(n.format(r.remaining));
            state.push_str(";t=");
            state.push_str(n.format(r.reset_after_ns.div_ceil(1_000_000_000)));
        }
        Ok(Some(state))
    }

    /// `Retry-After`: whole seconds, at least 1.
    fn retry_after_header(&self) -> String {
        self.retry_after_ns.div_ceil(1_000_000_000).max(1).to_string()
    }
}

fn ns_from_secs(v: f64, what: &'static str) -> PyResult<u64> {
    if v.is_finite() && v >= 0.0 && v * NS_PER_S < u64::MAX as f64 {
        Ok((v * NS_PER_S).round() as u64)
    } else {
        Err(cfg(format!("{what} must be a finite, non-negative number of seconds")))
    }
}

#[pymethods]
impl PyDecision {
    /// Build a decision (for limiters written in Python, e.g. the Redis one). `rates` holds one
    /// `(limit, window, remaining, reset_after, retry_after)` tuple per rate of the tier.
    #[new]
    #[pyo3(
        signature = (allowed, tier, rates = None, *, retry_after = None, source = None),
        text_signature = "(allowed, tier, rates=None, *, retry_after=0.0, source='local')"
    )]
    fn new(
        allowed: &Bound<'_, PyAny>,
        tier: &Bound<'_, PyAny>,
        rates: Option<&Bound<'_, PyAny>>,
        retry_after: Option<&Bound<'_, PyAny>>,
        source: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        // a caller's object whose own __bool__ or __len__ fails is a bad argument, not an escape
        let allowed = allowed.is_truthy().map_err(|_| cfg("allowed must be true or false"))?;
        let tier = tier.cast::<PyString>().map_err(|_| cfg("tier must be a str"))?.clone();
        // the name goes into the headers verbatim: only names a limiter would accept (no quotes, no
        // line breaks, printable ASCII)
        policy::check_name(tier.to_str().map_err(|_| cfg("a tier name must be printable ASCII"))?)?;
        let retry_after: f64 = match retry_after {
            None => 0.0,
            Some(r) => r
                .extract()
                .map_err(|_| cfg("retry_after must be a number of seconds"))?,
        };
        let source = match source {
            None => Source::Local,
            Some(s) => Source::parse(
                s.cast::<PyString>()
                    .map_err(|_| cfg("source must be a str"))?
                    .to_str()
                    .unwrap_or(""),
            )?,
        };
        let mut core = Decision::new(0, 0);
        core.allowed = allowed;
        let mut quotas = [Quota::default(); MAX_RATES];
        if let Some(rates) = rates {
            for item in rates
                .try_iter()
                .map_err(|_| cfg("rates must be a sequence of tuples"))?
            {
                let item = item.map_err(|_| cfg("rates must be a sequence of tuples"))?;
                if core.len == MAX_RATES {
                    return Err(cfg("a decision holds at most 4 rates"));
                }
                let (q, w, r, reset, retry): (u64, u64, u64, f64, f64) = item
                    .extract()
                    .map_err(|_| cfg("each rate is (limit, window, remaining, reset_after, retry_after)"))?;
                let retry_after_ns = ns_from_secs(retry, "retry_after")?;
                quotas[core.len] = Quota { limit: q, window_s: w };
                core.rates[core.len] = Outcome {
                    allowed: retry_after_ns == 0,
                    remaining: r,
                    reset_after_ns: ns_from_secs(reset, "reset_after")?,
                    retry_after_ns,
                };
                core.len += 1;
            }
        }
        core.pick_binding();
        let explicit = ns_from_secs(retry_after, "retry_after")?;
        Ok(PyDecision {
            retry_after_ns: if allowed {
                0
            } else {
                core.summary().retry_after_ns.max(explicit)
            },
            core,
            quotas,
            source,
            tier: tier.unbind(),
            policy: None,
        })
    }

    /// Whether the request is admitted.
    #[getter]
    fn allowed(&self) -> bool {
        self.core.allowed
    }

    /// The quota (burst) of the binding rate: the one that refused, or the one with the fewest
    /// tokens left. 0 for an unlimited tier.
    #[getter]
    fn limit(&self) -> u64 {
        self.binding_quota().limit
    }

    /// Whole requests left in the binding rate (after this one, when admitted).
    #[getter]
    fn remaining(&self) -> u64 {
        self.core.summary().remaining
    }

    /// Seconds until the binding rate's bucket is full again.
    #[getter]
    fn reset_after(&self) -> f64 {
        secs(self.core.summary().reset_after_ns)
    }

    /// Seconds until the same request can succeed (0.0 when allowed).
    #[getter]
    fn retry_after(&self) -> f64 {
        secs(self.retry_after_ns)
    }

    /// The tier that decided.
    #[getter]
    fn tier(&self, py: Python<'_>) -> Py<PyString> {
        self.tier.clone_ref(py)
    }

    /// Who decided: `local` (in-process), `redis`, or when Redis failed `fallback` (the
    /// in-process limiter), `open` (allowed unchecked) or `closed` (refused unchecked).
    #[getter]
    fn source(&self) -> &'static str {
        self.source.name()
    }

    /// True when the shared limiter could not be asked (`fallback`, `open` or `closed`).
    #[getter]
    fn degraded(&self) -> bool {
        matches!(self.source, Source::Fallback | Source::Open | Source::Closed)
    }

    /// True for an unlimited tier (no rates, no headers).
    #[getter]
    fn unlimited(&self) -> bool {
        self.core.len == 0 && self.source == Source::Local
    }

    /// Every rate of the tier as `(limit, window, remaining, reset_after, retry_after)`.
    #[getter]
    fn rates<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self.rate_slice().map(|(q, o)| {
            (
                q.limit,
                q.window_s,
                o.remaining,
                secs(o.reset_after_ns),
                secs(o.retry_after_ns),
            )
        });
        PyList::new(py, items)
    }

    /// The `draft-ietf-httpapi-ratelimit-headers` fields (`RateLimit-Policy`, `RateLimit`) and, when
    /// refused, `Retry-After` (whole seconds, at least 1). A tier with several rates names them
    /// `"tier.0"`, `"tier.1"`, …; an unlimited tier sends none.
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        let (policy, state) = self.fields(py)?;
        if let Some(state) = state {
            out.append((pyo3::intern!(py, "RateLimit-Policy"), policy))?;
            out.append((pyo3::intern!(py, "RateLimit"), state))?;
        }
        if !self.core.allowed {
            out.append((pyo3::intern!(py, "Retry-After"), self.retry_after_header()))?;
        }
        Ok(out)
    }

    /// The fields of :meth:`headers` an admitted response carries (no `Retry-After`): what the WSGI
    /// middleware adds to every admitted response.
    fn _success_headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.success_headers(py, false)
    }

    /// The fields of :meth:`headers` an admitted response carries (no `Retry-After`), as ASGI byte
    /// pairs with lowercase names: what the ASGI middleware adds to every admitted response.
    fn _asgi_success_headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.success_headers(py, true)
    }

    /// The decision in a reply of `RedisRateLimiter`'s script, straight from the RESP bytes (see
    /// `ratelimit::redis::decide_reply`): `rates` packs each rate's limit, window (s), interval and tau
    /// (µs) as four little-endian u64 (bytes, so nothing is extracted per call), `cost` is the tokens
    /// asked. `None` when the bytes are not such a reply.
    #[staticmethod]
    fn _from_resp(tier: &Bound<'_, PyString>, rates: &[u8], cost: u64, data: &[u8]) -> Option<Self> {
        let (core, quotas) = redis::decide_reply(rates, cost, data)?;
        Some(PyDecision {
            retry_after_ns: core.retry_after_ns(),
            core,
            quotas,
            source: Source::Redis,
            tier: tier.clone().unbind(),
            policy: None,
        })
    }

    /// The same decision reported by another source (used by `RedisRateLimiter` when it falls
    /// back to its in-process limiter).
    fn _relabel(&self, py: Python<'_>, source: &str) -> PyResult<Self> {
        Ok(PyDecision {
            core: self.core,
            quotas: self.quotas,
            source: Source::parse(source)?,
            tier: self.tier.clone_ref(py),
            retry_after_ns: self.retry_after_ns,
            policy: self.policy.as_ref().map(|p| p.clone_ref(py)),
        })
    }

    fn __bool__(&self) -> bool {
        self.core.allowed
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Decision(allowed={}, tier={}, limit={}, remaining={}, reset_after={:?}, retry_after={:?}, source='{}')",
            if self.core.allowed { "True" } else { "False" },
            self.tier.bind(py).repr()?,
            self.binding_quota().limit,
            self.core.summary().remaining,
            secs(self.core.summary().reset_after_ns),
            secs(self.retry_after_ns),
            self.source.name(),
        ))
    }
}

/// The `RateLimit-Policy` value for a tier's rates: `"tier";q=…;w=…`, or `"tier.0";…, "tier.1";…`.
pub(super) fn policy_value(tier: &str, rates: &[Quota]) -> String {
    let mut policy = String::with_capacity(48);
    for (i, r) in rates.iter().enumerate() {
        if i > 0 {
            policy.push_str(", ");
        }
        if rates.len() == 1 {
            let _ = write!(policy, "\"{tier}\";q={};w={}", r.limit, r.window_s);
        } else {
            let _ = write!(policy, "\"{tier}.{i}\";q={};w={}", r.limit, r.window_s);
        }
    }
    policy
}
