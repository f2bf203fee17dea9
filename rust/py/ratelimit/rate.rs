//! `Rate`: a count per period with a burst, validated once.

use pyo3::prelude::*;

use super::{cfg, secs, uint, NS_PER_S};
use crate::ratelimit;

/// `count` requests per `per` seconds, with a bucket of `burst` (default `count`).
#[pyclass(frozen, eq, hash, module = "bastion._core", name = "Rate")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PyRate {
    pub(super) count: u64,
    pub(super) period_ns: u64,
    pub(super) burst: u64,
    pub(super) interval_ns: u64,
    pub(super) window: u64,
}

impl PyRate {
    pub(super) fn core(&self) -> ratelimit::Rate {
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
