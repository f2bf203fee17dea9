//! Subject cut-offs: "every token of this subject issued at or before `t` is revoked", in O(1)
//! whatever the number of tokens. They apply to any token that names its subject and issue time
//! (an opaque record's creation, a JWT's `iat`), so they stand apart from the opaque index that
//! fills them from its records and change feed.

use std::sync::atomic::{AtomicBool, Ordering};

use compact_str::CompactString;
use hashbrown::HashMap;
use parking_lot::RwLock;

/// Per-subject "valid after" times, epoch seconds. A cut-off only ever rises: a late, older event
/// cannot un-revoke tokens.
#[derive(Default)]
pub struct Cutoffs {
    subjects: RwLock<HashMap<CompactString, f64>>,
    /// False until the first cut-off: until then a check is one atomic load, no lock, no hash.
    any: AtomicBool,
}

impl Cutoffs {
    /// No cut-offs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raise `subject`'s cut-off to `valid_after` (a lower value than the current one changes nothing).
    pub fn raise(&self, subject: &str, valid_after: f64) {
        let mut subjects = self.subjects.write();
        let slot = subjects
            .entry(CompactString::from(subject))
            .or_insert(f64::NEG_INFINITY);
        if valid_after > *slot {
            *slot = valid_after;
        }
        self.any.store(true, Ordering::Release);
    }

    /// The subject's "valid after" time, if it has one.
    #[inline]
    pub fn valid_after(&self, subject: &str) -> Option<f64> {
        if self.any.load(Ordering::Acquire) {
            self.subjects.read().get(subject).copied()
        } else {
            None
        }
    }

    /// Whether a token of `subject` issued at `issued_at` (epoch seconds) is revoked by its cut-off.
    #[inline]
    pub fn revokes(&self, subject: &str, issued_at: f64) -> bool {
        revoked_by(issued_at, self.valid_after(subject))
    }
}

/// The cut-off rule, written once: a token issued at or before its subject's `valid_after` is revoked.
#[inline]
pub fn revoked_by(issued_at: f64, valid_after: Option<f64>) -> bool {
    valid_after.is_some_and(|cut| issued_at <= cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_only_rise_and_revoke_at_or_before() {
        let c = Cutoffs::new();
        assert_eq!(c.valid_after("erin"), None);
        assert!(!c.revokes("erin", 0.0));
        c.raise("erin", 120.0);
        c.raise("erin", 110.0);
        assert_eq!(c.valid_after("erin"), Some(120.0));
        assert_eq!(c.valid_after("frank"), None);
        assert!(c.revokes("erin", 120.0) && c.revokes("erin", 100.0));
        assert!(!c.revokes("erin", 120.5) && !c.revokes("frank", 1.0));
        assert!(!revoked_by(1.0, None));
    }
}
