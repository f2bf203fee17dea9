//! Rates and tiers: what a limiter enforces, validated once at construction.

use std::collections::HashMap;

use crate::error::{Error, Result};

use super::decision::Quota;
use super::gcra::Gcra;
pub use super::gcra::MAX_RATES;

/// The longest tier name accepted.
pub const MAX_TIER_NAME: usize = 64;

/// `count` requests per `period_ns`, with a bucket of `burst` (the default burst is `count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per period.
    pub count: u64,
    /// The period in nanoseconds.
    pub period_ns: u64,
    /// The bucket's capacity: how many requests may arrive at once.
    pub burst: u64,
    /// The GCRA form of this rate.
    pub gcra: Gcra,
}

impl Rate {
    /// Validate and build a rate. `burst = None` means `burst = count`.
    pub fn new(count: u64, period_ns: u64, burst: Option<u64>) -> Result<Self> {
        let burst = burst.unwrap_or(count);
        let gcra = Gcra::new(count, period_ns, burst)?;
        Ok(Rate {
            count,
            period_ns,
            burst,
            gcra,
        })
    }

    /// The window `w` of the rate-limit headers, in whole seconds (at least 1): the time the
    /// declared rate takes to refill a whole burst, `period × burst / count`, rounded to nearest.
    pub fn window_s(&self) -> u64 {
        let ns = u128::from(self.period_ns) * u128::from(self.burst) / u128::from(self.count);
        let s = (ns + 500_000_000) / 1_000_000_000;
        u64::try_from(s).unwrap_or(u64::MAX).max(1)
    }

    /// The quota and window the rate-limit headers state for this rate.
    pub fn quota(&self) -> Quota {
        Quota {
            limit: self.burst,
            window_s: self.window_s(),
        }
    }
}

/// A named tier: several rates checked all-or-nothing, or none at all (unlimited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    /// The tier's name, as in `RateLimit-Policy`.
    pub name: String,
    /// Its rates; empty means unlimited.
    pub rates: Vec<Rate>,
}

impl Tier {
    /// A tier with `rates` (an empty list is refused: unlimited tiers say so with [`Tier::unlimited`]).
    pub fn limited(name: &str, rates: Vec<Rate>) -> Result<Self> {
        check_name(name)?;
        if rates.is_empty() {
            return Err(Error::config(
                "a tier needs at least one rate (use None for an unlimited tier)",
            ));
        }
        if rates.len() > MAX_RATES {
            return Err(Error::config("a tier may combine at most 4 rates"));
        }
        Ok(Tier {
            name: name.to_owned(),
            rates,
        })
    }

    /// A tier that admits everything without keeping any state.
    pub fn unlimited(name: &str) -> Result<Self> {
        check_name(name)?;
        Ok(Tier {
            name: name.to_owned(),
            rates: Vec::new(),
        })
    }

    /// True when the tier admits everything.
    pub fn is_unlimited(&self) -> bool {
        self.rates.is_empty()
    }

    /// The largest cost one request may have: the smallest burst of the tier's rates.
    pub fn max_cost(&self) -> u64 {
        self.rates.iter().map(|r| r.burst).min().unwrap_or(u64::MAX)
    }
}

/// Tier names appear in headers as structured-field strings: printable ASCII without `"` or `\`.
/// (Also applied to the tier of a `Decision` built by hand, whose headers carry it.)
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_TIER_NAME
        && name
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err(Error::config(
            "a tier name must be 1-64 printable ASCII characters without quotes or backslashes",
        ))
    }
}

/// Up to this many tiers a name is found by comparing it with each; beyond, by a hash map.
const LINEAR_FIND: usize = 8;

/// Every tier of a limiter and the default one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The tiers, in the caller's order.
    pub tiers: Vec<Tier>,
    /// Index of the tier used when none (or an unknown one) is named.
    pub default: usize,
    /// Name → index, when there are more than [`LINEAR_FIND`] tiers (a name lookup is then O(1)).
    by_name: Option<HashMap<String, usize>>,
}

impl Policy {
    /// Validate a set of tiers. `default = None` is accepted only when there is exactly one tier.
    pub fn new(tiers: Vec<Tier>, default: Option<&str>) -> Result<Self> {
        if tiers.is_empty() {
            return Err(Error::config("a limiter needs at least one tier"));
        }
        let mut index = HashMap::with_capacity(tiers.len());
        for (i, t) in tiers.iter().enumerate() {
            if index.insert(t.name.clone(), i).is_some() {
                return Err(Error::config("duplicate tier name"));
            }
        }
        let default = match default {
            Some(name) => tiers
                .iter()
                .position(|t| t.name == name)
                .ok_or_else(|| Error::config("the default tier is not one of the policies"))?,
            None if tiers.len() == 1 => 0,
            None => return Err(Error::config("default= must name a tier when there are several")),
        };
        let by_name = (tiers.len() > LINEAR_FIND).then_some(index);
        Ok(Policy {
            tiers,
            default,
            by_name,
        })
    }

    /// The index of the tier called `name`, if any.
    pub fn find(&self, name: &str) -> Option<usize> {
        match &self.by_name {
            Some(map) => map.get(name).copied(),
            None => self.tiers.iter().position(|t| t.name == name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn rate_defaults_and_window() {
        let r = Rate::new(100, 60 * S, None).unwrap();
        assert_eq!(r.burst, 100);
        assert_eq!(r.window_s(), 60);
        let r = Rate::new(100, 60 * S, Some(20)).unwrap();
        assert_eq!(r.window_s(), 12);
        let r = Rate::new(7, 60 * S, None).unwrap();
        assert_eq!(r.window_s(), 60);
        let r = Rate::new(1000, S, Some(1)).unwrap();
        assert_eq!(r.window_s(), 1, "at least one second");
    }

    #[test]
    fn tiers_are_validated() {
        let r = Rate::new(1, S, None).unwrap();
        assert!(Tier::limited("", vec![r]).is_err());
        assert!(Tier::limited("a\"b", vec![r]).is_err());
        assert!(Tier::limited("é", vec![r]).is_err());
        assert!(Tier::limited("ok", vec![]).is_err());
        assert!(Tier::limited("ok", vec![r; 5]).is_err());
        let t = Tier::limited("ok", vec![r, Rate::new(10, S, Some(3)).unwrap()]).unwrap();
        assert_eq!(t.max_cost(), 1);
        assert!(Tier::unlimited("admin").unwrap().is_unlimited());
    }

    #[test]
    fn policy_default() {
        let r = Rate::new(1, S, None).unwrap();
        let a = Tier::limited("a", vec![r]).unwrap();
        let b = Tier::unlimited("b").unwrap();
        assert_eq!(Policy::new(vec![a.clone()], None).unwrap().default, 0);
        assert!(Policy::new(vec![a.clone(), b.clone()], None).is_err());
        assert!(Policy::new(vec![a.clone(), b.clone()], Some("c")).is_err());
        assert!(Policy::new(vec![a.clone(), a.clone()], Some("a")).is_err());
        assert!(Policy::new(vec![], None).is_err());
        let p = Policy::new(vec![a, b], Some("b")).unwrap();
        assert_eq!(p.default, 1);
        assert_eq!(p.find("a"), Some(0));
        assert_eq!(p.find("z"), None);
        let many: Vec<Tier> = (0..100)
            .map(|i| Tier::limited(&format!("t{i}"), vec![r]).unwrap())
            .collect();
        let p = Policy::new(many.clone(), Some("t99")).unwrap();
        assert_eq!((p.default, p.find("t42"), p.find("t100")), (99, Some(42), None));
        let mut dup = many;
        dup.push(Tier::unlimited("t7").unwrap());
        assert!(Policy::new(dup, Some("t0")).is_err());
    }
}
