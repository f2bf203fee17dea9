//! `Decision`: the answer for one request, and its rate-limit headers.

use std::fmt::Write as _;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use super::redis::parse_script_reply;
use super::{cfg, secs, NS_PER_S};
use crate::ratelimit::{policy, MAX_RATES};

#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct RateInfo {
    pub(super) quota: u64,
    pub(super) window: u64,
    pub(super) remaining: u64,
    pub(super) reset_after_ns: u64,
    pub(super) retry_after_ns: u64,
}

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
/// Kept small (the binding rate inline, the others boxed only for multi-rate tiers) because it is
/// built on every `check`.
#[pyclass(frozen, freelist = 64, module = "bastion._core", name = "Decision")]
pub struct PyDecision {
    pub(super) allowed: bool,
    pub(super) source: Source,
    /// How many rates the tier has (0: unlimited or not checked).
    pub(super) len: u8,
    pub(super) tier: Py<PyString>,
    pub(super) retry_after_ns: u64,
    /// The binding rate: the one that refused (longest wait) or, when admitted, the one with the
    /// fewest tokens left.
    pub(super) main: RateInfo,
    /// Every rate, in the tier's order, when there are several.
    pub(super) all: Option<Box<[RateInfo]>>,
    /// The `RateLimit-Policy` value, when the limiter made it once for the tier.
    pub(super) policy: Option<Py<PyString>>,
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

    /// The decision in a reply of `RedisRateLimiter`'s script, straight from the RESP bytes: per
    /// rate, `d` = µs until its bucket is full before this request, or `-1 - d` when that rate
    /// refuses (`:d` alone for a one-rate tier, else `*N` and N such lines). The rest is computed
    /// here, exactly as the GCRA does: `rates` packs each rate's limit, window (s), interval and tau
    /// (µs) as four little-endian u64 (bytes, so nothing is extracted per call), `cost` is the tokens
    /// asked. `None` when the bytes are not such a reply.
    #[staticmethod]
    fn _from_resp(tier: &Bound<'_, PyString>, rates: &[u8], cost: u64, data: &[u8]) -> Option<Self> {
        // per rate, four little-endian u64: limit, window (s), interval, tau (µs)
        if !rates.len().is_multiple_of(32) {
            return None;
        }
        let word = |r: &[u8], i: usize| u64::from_le_bytes(r[8 * i..8 * i + 8].try_into().unwrap_or([0; 8]));
        let n = rates.len() / 32;
        let values = parse_script_reply(data, n)?;
        // per rate: d = the time (µs) until its bucket would be full, before this request; negative
        // (-1 - d) when that rate refuses
        let allowed = values[..n].iter().all(|&v| v >= 0);
        // saturating: a stored TAT absurdly far ahead (a key set by hand) is a very long wait, not a
        // malformed reply
        let us = |v: u64| Some(v.saturating_mul(1000));
        let mut infos = [RateInfo::default(); MAX_RATES];
        for (i, r) in rates.chunks_exact(32).enumerate() {
            let (quota, window, interval, tau) = (word(r, 0), word(r, 1), word(r, 2), word(r, 3));
            let v = values[i];
            let d = u64::try_from(if v < 0 { -1 - v } else { v }).ok()?;
            if interval == 0 {
                return None;
            }
            let r = d.saturating_add(cost.checked_mul(interval)?); // the reset time if it takes the tokens
            let (remaining, reset_after, retry_after) = if allowed {
                (tau.checked_sub(r)? / interval, r, 0)
            } else if v >= 0 {
                (tau.checked_sub(d)? / interval, d, 0) // would admit: its state as it is
            } else {
                (tau.saturating_sub(d) / interval, d, r.checked_sub(tau)?)
            };
            infos[i] = RateInfo {
                quota,
                window,
                remaining,
                reset_after_ns: us(reset_after)?,
                retry_after_ns: us(retry_after)?,
            };
        }
        let infos = &infos[..n];
        let main = infos[binding_of(allowed, infos)];
        Some(PyDecision {
            allowed,
            source: Source::Redis,
            len: n as u8,
            tier: tier.clone().unbind(),
            retry_after_ns: if allowed { 0 } else { main.retry_after_ns },
            main,
            all: (n > 1).then(|| infos.into()),
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
pub(super) fn policy_value(tier: &str, rates: &[RateInfo]) -> String {
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
