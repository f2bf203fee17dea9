//! `Decision`: what a tier's rates say about one request, and which of them binds.

use super::gcra::{Outcome, MAX_RATES};

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is admitted.
    pub allowed: bool,
    /// The tier that decided (the default one when the caller named none or an unknown one).
    pub tier: usize,
    /// How many of `rates` are meaningful (0 for an unlimited tier).
    pub len: usize,
    /// The rate the summary reports: the one that refused with the longest wait, or when admitted
    /// the one with the fewest tokens left (then the longest reset); ties go to the earlier rate.
    pub binding: usize,
    /// Each rate's outcome, in the tier's order.
    pub rates: [Outcome; MAX_RATES],
}

impl Decision {
    /// An admitting decision of `tier` with `len` rates, to be filled by
    /// [`Limiter::check_into`](super::Limiter::check_into).
    pub fn new(tier: usize, len: usize) -> Self {
        Decision {
            allowed: true,
            tier,
            len,
            binding: 0,
            rates: [Outcome::default(); MAX_RATES],
        }
    }

    /// The binding rate's outcome (a default, admitting one for an unlimited tier).
    pub fn summary(&self) -> Outcome {
        self.rates[self.binding]
    }

    /// Each rate's outcome, in the tier's order (empty for an unlimited tier).
    pub fn outcomes(&self) -> &[Outcome] {
        &self.rates[..self.len]
    }

    /// Nanoseconds until the same request could be admitted: 0 when admitted, else the binding
    /// rate's retry time.
    #[inline]
    pub fn retry_after_ns(&self) -> u64 {
        if self.allowed {
            0
        } else {
            self.rates[self.binding].retry_after_ns
        }
    }

    /// Choose the binding rate from `allowed` and the outcomes: the one rule for every source (the
    /// in-process limiter, a Redis reply, a decision built by hand).
    pub fn pick_binding(&mut self) {
        let rates = &self.rates[..self.len];
        self.binding = if self.allowed {
            (0..rates.len())
                .min_by_key(|&i| (rates[i].remaining, u64::MAX - rates[i].reset_after_ns))
                .unwrap_or(0)
        } else {
            (0..rates.len())
                .min_by_key(|&i| std::cmp::Reverse(rates[i].retry_after_ns))
                .unwrap_or(0)
        };
    }
}

/// What the rate-limit headers state about a rate besides its live state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quota {
    /// The quota `q`: the rate's burst.
    pub limit: u64,
    /// The window `w`, in whole seconds (see [`Rate::window_s`](super::Rate::window_s)).
    pub window_s: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(allowed: bool, remaining: u64, reset_after_ns: u64, retry_after_ns: u64) -> Outcome {
        Outcome {
            allowed,
            remaining,
            reset_after_ns,
            retry_after_ns,
        }
    }

    #[test]
    fn the_binding_rate_is_the_longest_wait_or_the_fewest_tokens() {
        let mut d = Decision::new(0, 3);
        d.rates[0] = outcome(true, 5, 10, 0);
        d.rates[1] = outcome(true, 2, 7, 0);
        d.rates[2] = outcome(true, 2, 9, 0);
        d.pick_binding();
        assert_eq!(d.binding, 2, "fewest left, then the longest reset");
        assert_eq!(d.retry_after_ns(), 0);
        d.allowed = false;
        d.rates[0] = outcome(false, 0, 10, 4);
        d.rates[1] = outcome(false, 0, 10, 8);
        d.rates[2] = outcome(false, 0, 10, 8);
        d.pick_binding();
        assert_eq!(d.binding, 1, "the longest wait; ties go to the earlier rate");
        assert_eq!(d.retry_after_ns(), 8);
        assert_eq!(d.outcomes().len(), 3);
        assert_eq!(Decision::new(0, 0).summary(), Outcome::default());
    }
}
