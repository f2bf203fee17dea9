//! Token records: what the shell loads from a backend, and the index entry built from it.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use compact_str::CompactString;

use super::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::principal::{NameSet, Principal, Shared};

/// A record as stored by a backend (minus its digest columns), handed to the index after a lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Public id, safe to log.
    pub id: String,
    /// Type letter (`k`, `a`, `r`, `c`).
    pub kind: u8,
    /// Subject.
    pub subject: String,
    /// OAuth client, if any.
    pub client_id: Option<String>,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Roles.
    pub roles: Vec<String>,
    /// Rate-limit tier.
    pub tier: Option<String>,
    /// Creation time, epoch seconds.
    pub created_at: f64,
    /// Expiry, epoch seconds (required).
    pub expires_at: f64,
    /// Revocation time (in the future for a rotated token's grace period), epoch seconds.
    pub revoked_at: Option<f64>,
    /// The subject's "valid after" time: tokens created at or before it are revoked.
    pub subject_valid_after: Option<f64>,
    /// Metadata (a JSON object), exposed as the principal's claims.
    pub metadata: Option<crate::json::Object>,
}

/// Per-entry storage the binding layer attaches to an index entry (the cached Python `Principal`).
/// `clear` must drop whatever the slot holds: it is called when the entry leaves the index, which
/// breaks the entry ↔ cached object cycle.
pub trait Slot: Default + Send + Sync {
    /// Drop what the slot holds.
    fn clear(&self);
}

impl Slot for () {
    fn clear(&self) {}
}

/// An index entry: the principal plus what verification and usage tracking need.
pub struct Entry<S> {
    /// The digest under the current scheme and pepper.
    pub digest: Digest,
    /// The identity this token proves.
    pub principal: Principal,
    /// Creation time, compared with the subject's "valid after".
    pub created_at: f64,
    /// Revocation time, `INFINITY` when not revoked.
    pub revoked_at: f64,
    /// Type letter.
    pub kind: u8,
    live: AtomicBool,
    pending_uses: AtomicU32,
    last_used: AtomicU64,
    /// Binding-layer storage.
    pub slot: S,
}

impl<S: Slot> Entry<S> {
    /// Build an entry from a record.
    pub fn new(digest: Digest, record: Record, scopes: NameSet, roles: NameSet, tier: Option<Shared>) -> Self {
        let machine = crate::principal::is_machine(&record.subject, record.client_id.as_deref(), record.kind == b'c');
        Entry {
            digest,
            principal: Principal {
                subject: CompactString::from(record.subject),
                client_id: record.client_id.map(CompactString::from),
                scopes,
                roles,
                tier,
                token_type: crate::principal::TokenType::Opaque,
                token_id: Some(CompactString::from(record.id)),
                issuer: None,
                expires_at: record.expires_at,
                machine,
                claims: record
                    .metadata
                    .map(|m| std::sync::Arc::new(crate::principal::Claims::parsed(m))),
            },
            created_at: record.created_at,
            revoked_at: record.revoked_at.unwrap_or(f64::INFINITY),
            kind: record.kind,
            live: AtomicBool::new(true),
            pending_uses: AtomicU32::new(0),
            last_used: AtomicU64::new(0),
            slot: S::default(),
        }
    }

    /// The record id.
    pub fn id(&self) -> &str {
        self.principal.token_id.as_deref().unwrap_or_default()
    }

    /// Revoked (explicitly, by the subject's cut-off, or at the end of a rotation's grace), then
    /// expired, in that order; `exp == now` is expired.
    pub fn check(&self, now: f64, subject_valid_after: Option<f64>) -> Result<()> {
        if self.revoked_at <= now {
            return Err(Error::new(ErrorKind::TokenRevoked, "the token has been revoked"));
        }
        if super::cutoff::revoked_by(self.created_at, subject_valid_after) {
            return Err(Error::new(ErrorKind::TokenRevoked, "the token has been revoked"));
        }
        if self.principal.expires_at <= now {
            return Err(Error::claim(ErrorKind::TokenExpired, "exp", "the token has expired"));
        }
        Ok(())
    }

    /// Count one use at `now`; true when this is the first use since the last drain (the caller then
    /// queues the entry for the usage flusher).
    #[inline]
    pub fn count_use(&self, now: f64) -> bool {
        self.last_used.store(now.to_bits(), Ordering::Relaxed);
        self.pending_uses.fetch_add(1, Ordering::AcqRel) == 0
    }

    /// Take the uses counted since the last drain and the last use time.
    pub fn take_uses(&self) -> (u32, f64) {
        let n = self.pending_uses.swap(0, Ordering::AcqRel);
        (n, f64::from_bits(self.last_used.load(Ordering::Relaxed)))
    }

    /// Whether the entry is still in the index.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }

    /// Mark the entry as out of the index and clear its slot.
    pub fn retire(&self) {
        self.live.store(false, Ordering::SeqCst);
        self.slot.clear();
    }
}

impl<S> AsRef<Principal> for Entry<S> {
    fn as_ref(&self) -> &Principal {
        &self.principal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::name_set;

    pub(crate) fn record(id: &str, subject: &str) -> Record {
        Record {
            id: id.into(),
            kind: b'k',
            subject: subject.into(),
            client_id: None,
            scopes: vec!["read".into()],
            roles: vec![],
            tier: None,
            created_at: 100.0,
            expires_at: 200.0,
            revoked_at: None,
            subject_valid_after: None,
            metadata: None,
        }
    }

    #[test]
    fn checks_in_order() {
        let e: Entry<()> = Entry::new(
            [0; 32],
            record("i", "s"),
            name_set(["read"]),
            name_set::<[&str; 0], _>([]),
            None,
        );
        assert!(e.check(150.0, None).is_ok());
        assert_eq!(e.check(200.0, None).unwrap_err().kind, ErrorKind::TokenExpired);
        assert_eq!(e.check(150.0, Some(100.0)).unwrap_err().kind, ErrorKind::TokenRevoked);
        assert!(e.check(150.0, Some(99.0)).is_ok());
        let mut r = record("i", "s");
        r.revoked_at = Some(160.0);
        let e: Entry<()> = Entry::new([0; 32], r, name_set(["read"]), name_set::<[&str; 0], _>([]), None);
        assert!(
            e.check(159.0, None).is_ok(),
            "a rotated token works during its grace period"
        );
        assert_eq!(e.check(160.0, None).unwrap_err().kind, ErrorKind::TokenRevoked);
        assert_eq!(
            e.check(500.0, None).unwrap_err().kind,
            ErrorKind::TokenRevoked,
            "revoked wins over expired"
        );
    }

    #[test]
    fn uses_are_counted_and_drained() {
        let e: Entry<()> = Entry::new(
            [0; 32],
            record("i", "s"),
            name_set(["read"]),
            name_set::<[&str; 0], _>([]),
            None,
        );
        assert!(e.count_use(1.0));
        assert!(!e.count_use(2.0));
        assert_eq!(e.take_uses(), (2, 2.0));
        assert!(e.count_use(3.0), "first use after a drain queues the entry again");
        assert_eq!(e.id(), "i");
        assert!(e.is_live());
        e.retire();
        assert!(!e.is_live());
    }
}
