//! Python bindings of the rate limiter: `Rate`, `RateLimiter`, `Decision`.
//!
//! The call path is kept minimal because per-call overhead dominates at this scale: the key is
//! hashed straight from the `str`'s cached UTF-8 (no copy), the tier is matched by identity with
//! the interned tier names before any string comparison, `allow` builds no Python object but its
//! `bool`, and a `Decision` is only built by `check`. The GIL stays attached: the work is far
//! shorter than a detach/attach round trip.

use std::fmt::Write as _;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::clock::{Clock, MonotonicClock};
use crate::error::{Error, ErrorKind};
use crate::ratelimit::{self, Limiter, Policy, Tier, DEFAULT_MAX_KEYS, MAX_RATES};

const NS_PER_S: f64 = 1e9;

fn cfg(msg: impl Into<std::borrow::Cow<'static, str>>) -> PyErr {
    Error::new(ErrorKind::InvalidConfiguration, msg).into()
}

/// A Python `int` (not `bool`) that fits a `u64`, or a configuration error naming `what`.
fn uint(value: &Bound<'_, PyAny>, what: &'static str) -> PyResult<u64> {
    if value.is_instance_of::<pyo3::types::PyBool>() {
        return Err(cfg(format!("{what} must be an int, not a bool")));
    }
    if !value.is_instance_of::<pyo3::types::PyInt>() {
        return Err(cfg(format!("{what} must be an int")));
    }
    value
        .extract::<u64>()
        .map_err(|_| cfg(format!("{what} must be between 0 and 2**64-1")))
}

fn secs(ns: u64) -> f64 {
    ns as f64 / NS_PER_S
}

// ------------------------------------------------------------------------------------------ Rate

/// `count` requests per `per` seconds, with a bucket of `burst` (default `count`).
#[pyclass(frozen, eq, hash, module = "bastion._core", name = "Rate")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PyRate {
    count: u64,
    period_ns: u64,
    burst: u64,
    interval_ns: u64,
    window: u64,
}

impl PyRate {
    fn core(&self) -> ratelimit::Rate {
        ratelimit::Rate::new(self.count, self.period_ns, Some(self.burst)).expect("validated at construction")
    }
}

#[pymethods]
impl PyRate {
    #[new]
    #[pyo3(signature = (count, per = None, burst = None))]
    fn new(
        count: &Bound<'_, PyAny>,
        per: Option<&Bound<'_, PyAny>>,
        burst: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let count = uint(count, "Rate count")?;
        let period_ns = match per {
            None => 1_000_000_000,
            Some(p) => period_ns(p)?,
        };
        let burst = match burst {
            None => None,
            Some(b) if b.is_none() => None,
            Some(b) => Some(uint(b, "Rate burst")?),
        };
        let rate = ratelimit::Rate::new(count, period_ns, burst)?;
        Ok(PyRate {
            count,
            period_ns,
            burst: rate.burst,
            interval_ns: rate.gcra.interval_ns(),
            window: rate.window_s(),
        })
    }

    /// Requests per period.
    #[getter]
    fn count(&self) -> u64 {
        self.count
    }

    /// The period in seconds.
    #[getter]
    fn per(&self) -> f64 {
        secs(self.period_ns)
    }

    /// The period in nanoseconds.
    #[getter]
    fn period_ns(&self) -> u64 {
        self.period_ns
    }

    /// The bucket's capacity (the quota `q` of the headers).
    #[getter]
    fn burst(&self) -> u64 {
        self.burst
    }

    /// Nanoseconds per token (the period divided by the count, rounded up).
    #[getter]
    fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    /// The window `w` of the headers, in whole seconds: `per × burst / count`, rounded.
    #[getter]
    fn window(&self) -> u64 {
        self.window
    }

    fn __repr__(&self) -> String {
        format!(
            "Rate({}, per={:?}, burst={})",
            self.count,
            secs(self.period_ns),
            self.burst
        )
    }
}

/// Seconds (int or float, positive, finite) to whole nanoseconds.
fn period_ns(per: &Bound<'_, PyAny>) -> PyResult<u64> {
    const MSG: &str = "Rate per= must be a positive number of seconds (at most 146 years)";
    if per.is_instance_of::<pyo3::types::PyBool>() {
        return Err(cfg(MSG));
    }
    if per.is_instance_of::<pyo3::types::PyInt>() {
        let s = per.extract::<u64>().map_err(|_| cfg(MSG))?;
        return s
            .checked_mul(1_000_000_000)
            .filter(|&ns| ns > 0 && ns <= ratelimit::gcra::MAX_TIME_NS)
            .ok_or_else(|| cfg(MSG));
    }
    if per.is_instance_of::<pyo3::types::PyFloat>() {
        let s: f64 = per.extract()?;
        let ns = (s * NS_PER_S).round();
        if s.is_finite() && ns >= 1.0 && ns <= ratelimit::gcra::MAX_TIME_NS as f64 {
            return Ok(ns as u64);
        }
    }
    Err(cfg(MSG))
}

// -------------------------------------------------------------------------------------- Decision

#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct RateInfo {
    quota: u64,
    window: u64,
    remaining: u64,
    reset_after_ns: u64,
    retry_after_ns: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
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
/// Kept small (the binding rate inline, the others boxed only for multi-rate tiers) because it is
/// built on every `check`.
#[pyclass(frozen, freelist = 64, module = "bastion._core", name = "Decision")]
pub struct PyDecision {
    allowed: bool,
    source: Source,
    /// How many rates the tier has (0: unlimited or not checked).
    len: u8,
    tier: Py<PyString>,
    retry_after_ns: u64,
    /// The binding rate: the one that refused (longest wait) or, when admitted, the one with the
    /// fewest tokens left.
    main: RateInfo,
    /// Every rate, in the tier's order, when there are several.
    all: Option<Box<[RateInfo]>>,
    /// The `RateLimit-Policy` value, when the limiter made it once for the tier.
    policy: Option<Py<PyString>>,
}

impl PyDecision {
    fn rate_slice(&self) -> &[RateInfo] {
        match &self.all {
            Some(all) => all,
            None if self.len == 1 => std::slice::from_ref(&self.main),
            None => &[],
        }
    }
}

fn ns_from_secs(v: f64, what: &'static str) -> PyResult<u64> {
    if v.is_finite() && v >= 0.0 && v * NS_PER_S < u64::MAX as f64 {
        Ok((v * NS_PER_S).round() as u64)
    } else {
        Err(cfg(format!("{what} must be a finite, non-negative number of seconds")))
    }
}

fn binding_of(allowed: bool, rs: &[RateInfo]) -> usize {
    if allowed {
        (0..rs.len()).min_by_key(|&i| (rs[i].remaining, u64::MAX - rs[i].reset_after_ns))
    } else {
        (0..rs.len()).min_by_key(|&i| std::cmp::Reverse(rs[i].retry_after_ns))
    }
    .unwrap_or(0)
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
        let allowed = allowed.is_truthy()?;
        let tier = tier.cast::<PyString>().map_err(|_| cfg("tier must be a str"))?.clone();
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
                    .to_str()?,
            )?,
        };
        let mut infos = Vec::new();
        if let Some(rates) = rates {
            for item in rates
                .try_iter()
                .map_err(|_| cfg("rates must be a sequence of tuples"))?
            {
                let item = item?;
                if infos.len() == MAX_RATES {
                    return Err(cfg("a decision holds at most 4 rates"));
                }
                let (q, w, r, reset, retry): (u64, u64, u64, f64, f64) = item
                    .extract()
                    .map_err(|_| cfg("each rate is (limit, window, remaining, reset_after, retry_after)"))?;
                infos.push(RateInfo {
                    quota: q,
                    window: w,
                    remaining: r,
                    reset_after_ns: ns_from_secs(reset, "reset_after")?,
                    retry_after_ns: ns_from_secs(retry, "retry_after")?,
                });
            }
        }
        let binding = binding_of(allowed, &infos);
        let main = infos.get(binding).copied().unwrap_or_default();
        let explicit = ns_from_secs(retry_after, "retry_after")?;
        Ok(PyDecision {
            allowed,
            source,
            len: infos.len() as u8,
            tier: tier.unbind(),
            retry_after_ns: if allowed { 0 } else { main.retry_after_ns.max(explicit) },
            main,
            all: (infos.len() > 1).then(|| infos.into_boxed_slice()),
            policy: None,
        })
    }

    /// Whether the request is admitted.
    #[getter]
    fn allowed(&self) -> bool {
        self.allowed
    }

    /// The quota (burst) of the binding rate: the one that refused, or the one with the fewest
    /// tokens left. 0 for an unlimited tier.
    #[getter]
    fn limit(&self) -> u64 {
        self.main.quota
    }

    /// Whole requests left in the binding rate (after this one, when admitted).
    #[getter]
    fn remaining(&self) -> u64 {
        self.main.remaining
    }

    /// Seconds until the binding rate's bucket is full again.
    #[getter]
    fn reset_after(&self) -> f64 {
        secs(self.main.reset_after_ns)
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
        self.len == 0 && self.source == Source::Local
    }

    /// Every rate of the tier as `(limit, window, remaining, reset_after, retry_after)`.
    #[getter]
    fn rates<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self.rate_slice().iter().map(|r| {
            (
                r.quota,
                r.window,
                r.remaining,
                secs(r.reset_after_ns),
                secs(r.retry_after_ns),
            )
        });
        PyList::new(py, items)
    }

    /// The `draft-ietf-httpapi-ratelimit-headers` fields (`RateLimit-Policy`, `RateLimit`) and, when
    /// refused, `Retry-After` (whole seconds, at least 1). A tier with several rates names them
    /// `"tier.0"`, `"tier.1"`, …; an unlimited tier sends none.
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let tier = self.tier.bind(py).to_str()?;
        let out = PyList::empty(py);
        if self.len > 0 {
            let mut state = String::with_capacity(48);
            for (i, r) in self.rate_slice().iter().enumerate() {
                if i > 0 {
                    state.push_str(", ");
                }
                let t = r.reset_after_ns.div_ceil(1_000_000_000);
                if self.len == 1 {
                    let _ = write!(state, "\"{tier}\";r={};t={t}", r.remaining);
                } else {
                    let _ = write!(state, "\"{tier}.{i}\";r={};t={t}", r.remaining);
                }
            }
            let policy = match &self.policy {
                Some(p) => p.clone_ref(py).into_bound(py),
                None => PyString::new(py, &policy_value(tier, self.rate_slice())),
            };
            out.append((pyo3::intern!(py, "RateLimit-Policy"), policy))?;
            out.append((pyo3::intern!(py, "RateLimit"), state))?;
        }
        if !self.allowed {
            let s = self.retry_after_ns.div_ceil(1_000_000_000).max(1);
            out.append((pyo3::intern!(py, "Retry-After"), s.to_string()))?;
        }
        Ok(out)
    }

    /// The decision in a reply of `RedisRateLimiter`'s script, straight from the RESP bytes:
    /// `*N` then `:allowed` and `:remaining`, `:reset_after_us`, `:retry_after_us` per rate; `shape`
    /// holds each rate's `(limit, window)`. `None` when the bytes are not exactly such a reply.
    #[staticmethod]
    #[allow(clippy::needless_pass_by_value)] // PyO3 hands extracted arguments over by value
    fn _from_resp(tier: &Bound<'_, PyString>, shape: Vec<(u64, u64)>, data: &[u8]) -> Option<Self> {
        let values = parse_int_array(data)?;
        if shape.is_empty() || shape.len() > MAX_RATES || values.len() != 1 + 3 * shape.len() {
            return None;
        }
        let allowed = values[0] == 1;
        let us = |v: i64| u64::try_from(v).ok().map(|v| v.saturating_mul(1000));
        let mut infos = Vec::with_capacity(shape.len());
        for (i, &(quota, window)) in shape.iter().enumerate() {
            infos.push(RateInfo {
                quota,
                window,
                remaining: u64::try_from(values[1 + 3 * i]).ok()?,
                reset_after_ns: us(values[2 + 3 * i])?,
                retry_after_ns: us(values[3 + 3 * i])?,
            });
        }
        let main = infos[binding_of(allowed, &infos)];
        Some(PyDecision {
            allowed,
            source: Source::Redis,
            len: infos.len() as u8,
            tier: tier.clone().unbind(),
            retry_after_ns: if allowed { 0 } else { main.retry_after_ns },
            main,
            all: (infos.len() > 1).then(|| infos.into_boxed_slice()),
            policy: None,
        })
    }

    /// The same decision reported by another source (used by `RedisRateLimiter` when it falls
    /// back to its in-process limiter).
    fn _relabel(&self, py: Python<'_>, source: &str) -> PyResult<Self> {
        Ok(PyDecision {
            allowed: self.allowed,
            source: Source::parse(source)?,
            len: self.len,
            tier: self.tier.clone_ref(py),
            retry_after_ns: self.retry_after_ns,
            main: self.main,
            all: self.all.clone(),
            policy: self.policy.as_ref().map(|p| p.clone_ref(py)),
        })
    }

    fn __bool__(&self) -> bool {
        self.allowed
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Decision(allowed={}, tier={}, limit={}, remaining={}, reset_after={:?}, retry_after={:?}, source='{}')",
            if self.allowed { "True" } else { "False" },
            self.tier.bind(py).repr()?,
            self.main.quota,
            self.main.remaining,
            secs(self.main.reset_after_ns),
            secs(self.retry_after_ns),
            self.source.name(),
        ))
    }
}

/// The `RateLimit-Policy` value for a tier's rates: `"tier";q=…;w=…`, or `"tier.0";…, "tier.1";…`.
fn policy_value(tier: &str, rates: &[RateInfo]) -> String {
    let mut policy = String::with_capacity(48);
    for (i, r) in rates.iter().enumerate() {
        if i > 0 {
            policy.push_str(", ");
        }
        if rates.len() == 1 {
            let _ = write!(policy, "\"{tier}\";q={};w={}", r.quota, r.window);
        } else {
            let _ = write!(policy, "\"{tier}.{i}\";q={};w={}", r.quota, r.window);
        }
    }
    policy
}

// ----------------------------------------------------------------------------------- RateLimiter

enum TimeSource {
    Real(MonotonicClock),
    Python { func: Py<PyAny>, origin: u64 },
}

fn read_py_clock(func: &Bound<'_, PyAny>) -> PyResult<u64> {
    let v = func.call0()?;
    uint(&v, "clock() (monotonic nanoseconds)")
}

/// An in-process, thread-safe rate limiter over named tiers.
#[pyclass(frozen, module = "bastion._core", name = "RateLimiter")]
pub struct PyRateLimiter {
    core: Limiter,
    names: Vec<Py<PyString>>,
    windows: Vec<Vec<u64>>,
    rates: Vec<Vec<PyRate>>,
    /// Each tier's `RateLimit-Policy` value, made once (`None` for unlimited tiers).
    policy_values: Vec<Option<Py<PyString>>>,
    clock: TimeSource,
}

impl PyRateLimiter {
    #[inline]
    fn now(&self, py: Python<'_>) -> PyResult<u64> {
        match &self.clock {
            TimeSource::Real(c) => Ok(c.now_ns()),
            TimeSource::Python { func, origin } => Ok(read_py_clock(func.bind(py))?.saturating_sub(*origin)),
        }
    }

    /// The tier index for `tier`: `None` is the default tier; an unknown name falls back to it.
    #[inline]
    fn tier_index(&self, tier: Option<&Bound<'_, PyAny>>) -> PyResult<usize> {
        let Some(tier) = tier else {
            return Ok(self.core.policy().default);
        };
        // Names are interned, and so are the literals callers usually pass: try identity first.
        if let Some(i) = self.names.iter().position(|n| n.as_ptr() == tier.as_ptr()) {
            return Ok(i);
        }
        if tier.is_none() {
            return Ok(self.core.policy().default);
        }
        let s = tier.cast::<PyString>().map_err(|_| cfg("tier must be a str or None"))?;
        let found = s.to_str().ok().and_then(|s| self.core.policy().find(s));
        Ok(found.unwrap_or(self.core.policy().default))
    }

    #[inline]
    fn digest(&self, key: &Bound<'_, PyAny>) -> PyResult<u64> {
        if let Ok(s) = key.cast::<PyString>() {
            if let Ok(utf8) = s.to_str() {
                return Ok(self.core.digest(utf8.as_bytes()));
            }
            // Lone surrogates have no UTF-8 form: hash their surrogate-escaped bytes instead,
            // so distinct strings stay distinct keys.
            let b = s.call_method1("encode", ("utf-8", "surrogatepass"))?;
            let b = b.cast::<PyBytes>().map_err(|_| cfg("key must be str or bytes"))?;
            return Ok(self.core.digest(b.as_bytes()));
        }
        if let Ok(b) = key.cast::<PyBytes>() {
            return Ok(self.core.digest(b.as_bytes()));
        }
        Err(cfg("a rate-limit key must be a str or bytes"))
    }

    fn cost(cost: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
        match cost {
            None => Ok(1),
            Some(c) => uint(c, "cost"),
        }
    }

    fn decide(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        tier: Option<&Bound<'_, PyAny>>,
        cost: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyDecision> {
        let t = self.tier_index(tier)?;
        let cost = Self::cost(cost)?;
        let mut d = ratelimit::Decision::new(t, 0);
        if self.core.is_unlimited(t) {
            self.core.check_into(t, 0, cost, 0, &mut d)?;
        } else {
            let digest = self.digest(key)?;
            self.core.check_into(t, digest, cost, self.now(py)?, &mut d)?;
        }
        let info = |i: usize| {
            let o = &d.rates[i];
            RateInfo {
                quota: self.rates[t][i].burst,
                window: self.windows[t][i],
                remaining: o.remaining,
                reset_after_ns: o.reset_after_ns,
                retry_after_ns: o.retry_after_ns,
            }
        };
        let main = if d.len == 0 {
            RateInfo::default()
        } else {
            info(d.binding)
        };
        Ok(PyDecision {
            allowed: d.allowed,
            source: Source::Local,
            len: d.len as u8,
            tier: self.names[t].clone_ref(py),
            retry_after_ns: if d.allowed { 0 } else { main.retry_after_ns },
            main,
            all: (d.len > 1).then(|| (0..d.len).map(info).collect()),
            policy: self.policy_values[t].as_ref().map(|p| p.clone_ref(py)),
        })
    }
}

fn tier_rates(value: &Bound<'_, PyAny>) -> PyResult<Option<Vec<PyRate>>> {
    if value.is_none() {
        return Ok(None);
    }
    if let Ok(r) = value.cast::<PyRate>() {
        return Ok(Some(vec![r.get().clone()]));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for item in value.try_iter()? {
            let item = item?;
            let r = item
                .cast::<PyRate>()
                .map_err(|_| cfg("a tier's rates must be Rate objects"))?;
            out.push(r.get().clone());
        }
        return Ok(Some(out));
    }
    Err(cfg("a policy is a Rate, a list of Rates, or None (unlimited)"))
}

#[pymethods]
impl PyRateLimiter {
    #[new]
    #[pyo3(signature = (policies, default = None, max_keys = None, clock = None))]
    fn new(
        py: Python<'_>,
        policies: &Bound<'_, PyAny>,
        default: Option<&Bound<'_, PyAny>>,
        max_keys: Option<&Bound<'_, PyAny>>,
        clock: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let policies = policies
            .cast::<PyDict>()
            .map_err(|_| cfg("policies must be a dict of tier name to Rate, list of Rates or None"))?;
        let mut tiers = Vec::with_capacity(policies.len());
        let mut rates = Vec::with_capacity(policies.len());
        for (name, value) in policies.iter() {
            let name = name
                .cast::<PyString>()
                .map_err(|_| cfg("tier names must be str"))?
                .to_str()
                .map_err(|_| cfg("tier names must be printable ASCII"))?
                .to_owned();
            let tier_rates = tier_rates(&value)?;
            tiers.push(match &tier_rates {
                None => Tier::unlimited(&name)?,
                Some(rs) => Tier::limited(&name, rs.iter().map(PyRate::core).collect())?,
            });
            rates.push(tier_rates.unwrap_or_default());
        }
        let default = match default {
            Some(d) if !d.is_none() => Some(
                d.cast::<PyString>()
                    .map_err(|_| cfg("default must be a tier name"))?
                    .to_str()
                    .map_err(|_| cfg("the default tier is not one of the policies"))?
                    .to_owned(),
            ),
            _ => None,
        };
        let policy = Policy::new(tiers, default.as_deref())?;
        let max_keys = match max_keys {
            Some(m) if !m.is_none() => {
                let m = uint(m, "max_keys")?;
                usize::try_from(m).map_err(|_| cfg("max_keys is too large"))?
            }
            _ => DEFAULT_MAX_KEYS,
        };
        let clock = match clock {
            Some(c) if !c.is_none() => {
                if !c.is_callable() {
                    return Err(cfg("clock must be a callable returning monotonic nanoseconds"));
                }
                let origin = read_py_clock(&c)?;
                TimeSource::Python {
                    func: c.unbind(),
                    origin,
                }
            }
            _ => TimeSource::Real(MonotonicClock::new()),
        };
        let names = policy
            .tiers
            .iter()
            .map(|t| PyString::intern(py, &t.name).unbind())
            .collect();
        let windows = policy
            .tiers
            .iter()
            .map(|t| t.rates.iter().map(ratelimit::Rate::window_s).collect())
            .collect();
        let policy_values = policy
            .tiers
            .iter()
            .map(|t| {
                let infos: Vec<RateInfo> = t
                    .rates
                    .iter()
                    .map(|r| RateInfo {
                        quota: r.burst,
                        window: r.window_s(),
                        ..RateInfo::default()
                    })
                    .collect();
                (!infos.is_empty()).then(|| PyString::new(py, &policy_value(&t.name, &infos)).unbind())
            })
            .collect();
        let core = Limiter::new(policy, max_keys)?;
        Ok(PyRateLimiter {
            core,
            names,
            windows,
            rates,
            policy_values,
            clock,
        })
    }

    /// True if `key` may make one request now in `tier` (default tier when `None` or unknown),
    /// and takes the token if so. The fastest path: builds no `Decision`.
    #[pyo3(signature = (key, tier = None))]
    fn allow(&self, py: Python<'_>, key: &Bound<'_, PyAny>, tier: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        let t = self.tier_index(tier)?;
        if self.core.is_unlimited(t) {
            return Ok(true);
        }
        let digest = self.digest(key)?;
        Ok(self.core.allow(t, digest, 1, self.now(py)?)?)
    }

    /// Take `cost` tokens from `key`'s bucket in `tier` if every rate has them; report the state.
    #[pyo3(signature = (key, tier = None, cost = None), text_signature = "($self, key, tier=None, cost=1)")]
    fn check(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        tier: Option<&Bound<'_, PyAny>>,
        cost: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyDecision> {
        self.decide(py, key, tier, cost)
    }

    /// Like `check`, but raise `bastion.RateLimited` (with `retry_after`) when refused.
    #[pyo3(signature = (key, tier = None, cost = None), text_signature = "($self, key, tier=None, cost=1)")]
    fn acquire(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        tier: Option<&Bound<'_, PyAny>>,
        cost: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyDecision> {
        let d = self.decide(py, key, tier, cost)?;
        if d.allowed {
            Ok(d)
        } else {
            Err(Error::new(ErrorKind::RateLimited, "too many requests")
                .with_retry_after(secs(d.retry_after_ns))
                .into())
        }
    }

    /// Forget `key` in `tier` (its bucket is full again); True if it was held.
    #[pyo3(signature = (key, tier = None))]
    fn reset(&self, key: &Bound<'_, PyAny>, tier: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        let t = self.tier_index(tier)?;
        if self.core.is_unlimited(t) {
            return Ok(false);
        }
        Ok(self.core.reset(t, self.digest(key)?))
    }

    /// Evict every key whose bucket is full again; returns how many went. Eviction also runs by
    /// itself as requests arrive; this forces it.
    fn sweep(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.core.sweep(self.now(py)?))
    }

    /// Live keys held across all tiers.
    #[getter]
    fn key_count(&self) -> usize {
        self.core.len()
    }

    /// The cap on live keys.
    #[getter]
    fn max_keys(&self) -> usize {
        self.core.max_keys()
    }

    /// The default tier.
    #[getter]
    fn default(&self, py: Python<'_>) -> Py<PyString> {
        self.names[self.core.policy().default].clone_ref(py)
    }

    /// The tiers and their rates (`None`: unlimited), in the order given.
    #[getter]
    fn policies<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (i, name) in self.names.iter().enumerate() {
            if self.core.is_unlimited(i) {
                d.set_item(name.bind(py), py.None())?;
            } else {
                let rs = self.rates[i]
                    .iter()
                    .map(|r| Py::new(py, r.clone()))
                    .collect::<PyResult<Vec<_>>>()?;
                d.set_item(name.bind(py), PyList::new(py, rs)?)?;
            }
        }
        Ok(d)
    }

    /// Bytes allocated by the key tables (for memory measurements).
    fn _table_bytes(&self) -> usize {
        self.core.allocated_bytes()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let names = self
            .names
            .iter()
            .map(|n| n.bind(py).to_str().map(str::to_owned))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(format!(
            "RateLimiter(tiers={names:?}, default={:?}, keys={}, max_keys={})",
            names[self.core.policy().default],
            self.core.len(),
            self.core.max_keys()
        ))
    }
}

/// `*N\r\n` followed by exactly N `:int\r\n` lines and nothing else, or `None`.
fn parse_int_array(data: &[u8]) -> Option<Vec<i64>> {
    fn line(data: &[u8], pos: usize) -> Option<(&[u8], usize)> {
        let rest = data.get(pos..)?;
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        Some((&rest[..end], pos + end + 2))
    }
    fn int(b: &[u8]) -> Option<i64> {
        std::str::from_utf8(b).ok()?.parse().ok()
    }
    let (head, mut pos) = line(data, 0)?;
    let n = usize::try_from(int(head.strip_prefix(b"*")?)?).ok()?;
    if n > 1 + 3 * MAX_RATES {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (item, next) = line(data, pos)?;
        out.push(int(item.strip_prefix(b":")?)?);
        pos = next;
    }
    (pos == data.len()).then_some(out)
}

/// The digest under which `RedisRateLimiter` stores an identity: BLAKE3 of its bytes (a `str` as
/// UTF-8, lone surrogates escaped), truncated to 128 bits, as 32 lowercase hex digits. Unkeyed on
/// purpose: every host must derive the same Redis key.
#[pyfunction]
fn _redis_key_digest<'py>(py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hash = if let Ok(s) = key.cast::<PyString>() {
        if let Ok(utf8) = s.to_str() {
            blake3::hash(utf8.as_bytes())
        } else {
            let b = s.call_method1("encode", ("utf-8", "surrogatepass"))?;
            blake3::hash(
                b.cast::<PyBytes>()
                    .map_err(|_| cfg("key must be str or bytes"))?
                    .as_bytes(),
            )
        }
    } else if let Ok(b) = key.cast::<PyBytes>() {
        blake3::hash(b.as_bytes())
    } else {
        return Err(cfg("a rate-limit key must be a str or bytes"));
    };
    let mut out = [0u8; 32];
    for (i, byte) in hash.as_bytes()[..16].iter().enumerate() {
        out[2 * i] = HEX[usize::from(byte >> 4)];
        out[2 * i + 1] = HEX[usize::from(byte & 15)];
    }
    Ok(PyBytes::new(py, &out))
}

/// Add the rate-limiting classes to `bastion._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRate>()?;
    m.add_class::<PyDecision>()?;
    m.add_class::<PyRateLimiter>()?;
    m.add_function(wrap_pyfunction!(_redis_key_digest, m)?)?;
    Ok(())
}
