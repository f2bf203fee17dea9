//! `RateLimiter`: the in-process limiter's Python face.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::decision::{policy_value, PolicyValue, PyDecision, Source};
use super::rate::PyRate;
use super::{cfg, secs, uint};
use crate::clock::{Clock, MonotonicClock};
use crate::error::{Error, ErrorKind};
use crate::ratelimit::{self, Limiter, Policy, Quota, Tier, DEFAULT_MAX_KEYS, MAX_RATES};

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
    /// Each tier's quotas, as a decision holds them (copied whole into each one).
    quotas: Vec<[Quota; MAX_RATES]>,
    rates: Vec<Vec<PyRate>>,
    /// Each tier's `RateLimit-Policy` value, made once (`None` for unlimited tiers).
    policy_values: Vec<Option<PolicyValue>>,
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
        // Names are interned, and so are the literals callers usually pass: try identity first (over
        // the first few names only: with many tiers the name's hash finds it in O(1) below).
        if let Some(i) = self.names.iter().take(8).position(|n| n.as_ptr() == tier.as_ptr()) {
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
            let b = super::surrogate_escaped(s)?;
            return Ok(self.core.digest(b.as_bytes()));
        }
        if let Ok(b) = key.cast::<PyBytes>() {
            return Ok(self.core.digest(b.as_bytes()));
        }
        Err(cfg("a rate-limit key must be a str or bytes"))
    }

    /// An unlimited tier reads no key, but a key that is neither `str` nor `bytes` is still an error.
    #[cold]
    fn check_key_type(key: &Bound<'_, PyAny>) -> PyResult<()> {
        if key.is_instance_of::<PyString>() || key.is_instance_of::<PyBytes>() {
            Ok(())
        } else {
            Err(cfg("a rate-limit key must be a str or bytes"))
        }
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
        let digest = if self.core.is_unlimited(t) {
            Self::check_key_type(key)?;
            0
        } else {
            self.digest(key)?
        };
        self.decide_digest(py, t, digest, cost)
    }

    /// One check of `key` in the tier named `tier` (`None` or an unknown name: the default tier), for the
    /// fused request path, whose key (the principal's rate-limit key) and tier name are Rust strings.
    pub(crate) fn decide_named(&self, py: Python<'_>, key: &str, tier: Option<&str>) -> PyResult<PyDecision> {
        let policy = self.core.policy();
        let t = tier.and_then(|name| policy.find(name)).unwrap_or(policy.default);
        let digest = if self.core.is_unlimited(t) {
            0
        } else {
            self.core.digest(key.as_bytes())
        };
        self.decide_digest(py, t, digest, 1)
    }

    #[inline]
    fn decide_digest(&self, py: Python<'_>, t: usize, digest: u64, cost: u64) -> PyResult<PyDecision> {
        let mut d = ratelimit::Decision::new(t, 0);
        let now = if self.core.is_unlimited(t) { 0 } else { self.now(py)? };
        self.core.check_into(t, digest, cost, now, &mut d)?;
        Ok(PyDecision {
            retry_after_ns: d.retry_after_ns(),
            core: d,
            quotas: self.quotas[t],
            source: Source::Local,
            tier: self.names[t].clone_ref(py),
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
    // The list's or tuple's own items, read in place: a subclass's `__iter__` is not called, so no
    // Python code runs while the policies are read.
    let items: Vec<Bound<'_, PyAny>> = if let Ok(l) = value.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = value.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        return Err(cfg("a policy is a Rate, a list of Rates, or None (unlimited)"));
    };
    items
        .iter()
        .map(|item| {
            item.cast::<PyRate>()
                .map(|r| r.get().clone())
                .map_err(|_| cfg("a tier's rates must be Rate objects"))
        })
        .collect::<PyResult<Vec<_>>>()
        .map(Some)
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
        // a snapshot of the items: nothing below can be disturbed by the dict changing meanwhile
        for item in policies.items().iter() {
            let (name, value) = item
                .extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()
                .map_err(|_| cfg("policies must be a dict"))?;
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
        let quotas: Vec<[Quota; MAX_RATES]> = policy
            .tiers
            .iter()
            .map(|t| {
                let mut q = [Quota::default(); MAX_RATES];
                for (slot, r) in q.iter_mut().zip(&t.rates) {
                    *slot = r.quota();
                }
                q
            })
            .collect();
        let policy_values = policy
            .tiers
            .iter()
            .zip(&quotas)
            .map(|(t, q)| {
                let q = &q[..t.rates.len()];
                (!q.is_empty())
                    .then(|| PolicyValue::new(py, &policy_value(&t.name, q)))
                    .transpose()
            })
            .collect::<PyResult<_>>()?;
        let core = Limiter::new(policy, max_keys)?;
        Ok(PyRateLimiter {
            core,
            names,
            quotas,
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
            Self::check_key_type(key)?;
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
        if d.core.allowed {
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
            Self::check_key_type(key)?;
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
