//! The in-memory index: digest → record, the hot path of opaque-token verification.
//!
//! `probe` checks the format and checksum, computes the keyed digest and looks it up. A hit is checked
//! (revocation, the subject's "valid after", expiry) and counted; a miss that is not in the bounded
//! negative cache is returned to the shell with the digests to look up in the backend, and the shell
//! hands the result back through `admit`.
//!
//! Invalidation is race-free through an epoch: every eviction bumps it under the table lock, and
//! `admit` inserts a record only if the epoch has not moved since the miss. A record read from the
//! backend before a revocation committed therefore never lands in the index after that revocation.
//!
//! The mechanisms the index consults live beside it: the negative cache (`negative.rs`), subject
//! cut-offs (`cutoff.rs`), the constant-time digest comparison (`digest.rs`) and the name interner
//! (`crate::principal`). What remains (over 400 lines with its tests) is one protocol: probe, admit,
//! evict and clear share the tables' lock and the epoch, so they stay in one file.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use compact_str::CompactString;
use hashbrown::{DefaultHashBuilder, HashTable};
use parking_lot::{Mutex, RwLock};

use super::cutoff::Cutoffs;
use super::digest::{digests_equal, Candidate, Digest, Digester};
use super::format;
use super::negative::NegativeCache;
use super::record::{Entry, Record, Slot};
use crate::error::{Error, ErrorKind, Result};
use crate::principal::Interner;
/// Bounds on tokens outside bastion's format (imported stores), in bytes.
const FOREIGN_MIN: usize = 16;
const FOREIGN_MAX: usize = 512;

/// Settings of an index; the defaults are those of `TokenStore`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The token prefix (default `bst`).
    pub prefix: String,
    /// Accept tokens outside bastion's format (imported stores) and look them up; default false, which
    /// makes every such token `token_malformed` before any lookup.
    pub foreign_tokens: bool,
    /// Unknown digests remembered (default 65,536); 0 disables the negative cache.
    pub negative_capacity: usize,
    /// Seconds an unknown digest is remembered (default 5): a token that appears in the backend
    /// through another path (an import, another process) is found at most this late.
    pub negative_ttl: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            prefix: "bst".into(),
            foreign_tokens: false,
            negative_capacity: 65_536,
            negative_ttl: 5.0,
        }
    }
}

/// The outcome of a probe that did not fail.
pub enum Probe<S> {
    /// Found, valid and counted.
    Hit(Arc<Entry<S>>),
    /// Not in the index: look these digests up in the backend, then call [`Index::admit`].
    Miss(Miss),
}

/// A miss, to be settled by [`Index::admit`].
#[derive(Debug, Clone)]
pub struct Miss {
    /// The digest under the current scheme: the key the record is indexed (and re-keyed) under.
    pub digest: Digest,
    /// Every digest the record may be stored under, the current one first.
    pub candidates: Vec<Candidate>,
    epoch: u64,
}

/// Outcome of [`Index::probe_cached`].
pub enum Fast<R, S> {
    /// A hit answered by the caller's cached value.
    Cached(R),
    /// What [`Index::probe`] would have returned.
    Probe(Probe<S>),
}

/// Outcome of [`Index::admit`].
pub enum Admitted<S> {
    /// The record is indexed, valid and counted.
    Hit(Arc<Entry<S>>),
    /// The index was invalidated while the record was being read: probe again.
    Stale,
}

struct Tables<S> {
    by_digest: HashTable<Arc<Entry<S>>>,
    by_id: HashTable<Arc<Entry<S>>>,
}

/// Usage counted since the last drain: `(id, uses, last_used_at)`.
pub type Usage = (CompactString, u32, f64);

/// The index. `S` is the binding layer's per-entry slot.
pub struct Index<S: Slot> {
    config: Config,
    digester: Digester,
    tables: RwLock<Tables<S>>,
    cutoffs: Cutoffs,
    negative: NegativeCache,
    epoch: AtomicU64,
    dirty: Mutex<Vec<Arc<Entry<S>>>>,
    interner: Interner,
    id_hasher: DefaultHashBuilder,
}

#[inline]
fn digest_hash(d: &Digest) -> u64 {
    // the digest is a keyed hash: uniformly distributed and unknown to clients
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

fn unknown() -> Error {
    Error::new(ErrorKind::UnknownToken, "the token is not known")
}

impl<S: Slot> Index<S> {
    /// Build an index; checks the prefix.
    pub fn new(config: Config, digester: Digester) -> Result<Self> {
        format::check_prefix(&config.prefix)?;
        if !(config.negative_ttl.is_finite() && config.negative_ttl >= 0.0) {
            return Err(Error::new(
                ErrorKind::InvalidConfiguration,
                "negative_ttl must be a non-negative number",
            ));
        }
        Ok(Index {
            negative: NegativeCache::new(config.negative_capacity, config.negative_ttl),
            config,
            digester,
            tables: RwLock::new(Tables {
                by_digest: HashTable::new(),
                by_id: HashTable::new(),
            }),
            cutoffs: Cutoffs::new(),
            epoch: AtomicU64::new(0),
            dirty: Mutex::new(Vec::new()),
            interner: Interner::default(),
            id_hasher: DefaultHashBuilder::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The digester (current pepper first).
    pub fn digester(&self) -> &Digester {
        &self.digester
    }

    /// Number of indexed records.
    pub fn len(&self) -> usize {
        self.tables.read().by_digest.len()
    }

    /// Whether the index holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The longest token [`Self::check_format`] can accept, in bytes: anything longer is malformed.
    pub fn max_token_len(&self) -> usize {
        let ours = format::token_len(self.config.prefix.len());
        if self.config.foreign_tokens {
            ours.max(FOREIGN_MAX)
        } else {
            ours
        }
    }

    /// Format check: `Ok(false)` for a well-formed bastion token, `Ok(true)` for an accepted foreign
    /// one, `token_malformed` otherwise.
    fn check_format(&self, token: &[u8]) -> Result<bool> {
        match format::parse(token, &self.config.prefix) {
            Ok(_) => Ok(false),
            Err(e) => {
                let ours = token.len() == format::token_len(self.config.prefix.len())
                    && token.starts_with(self.config.prefix.as_bytes());
                let plausible = (FOREIGN_MIN..=FOREIGN_MAX).contains(&token.len())
                    && token
                        .iter()
                        .all(|&c| c.is_ascii_alphanumeric() || b"-_.~+/=".contains(&c));
                if self.config.foreign_tokens && !ours && plausible {
                    Ok(true)
                } else {
                    Err(e)
                }
            }
        }
    }

    fn lookup(&self, digest: &Digest) -> Option<Arc<Entry<S>>> {
        self.tables
            .read()
            .by_digest
            .find(digest_hash(digest), |e| digests_equal(&e.digest, digest))
            .cloned()
    }

    fn finish(&self, entry: Arc<Entry<S>>, now: f64) -> Result<Arc<Entry<S>>> {
        entry.check(now, self.cutoffs.valid_after(&entry.principal.subject))?;
        if entry.count_use(now) {
            self.dirty.lock().push(Arc::clone(&entry));
        }
        Ok(entry)
    }

    /// The hit path without touching the entry's reference count: on a valid, counted hit, `cached` runs under
    /// the index's read lock and, if it returns a value (the binding layer's cached object), that value is the
    /// result. `cached` must not call back into the index. Anything else falls back to [`Index::probe`].
    #[inline]
    pub fn probe_cached<R>(
        &self,
        token: &[u8],
        now: f64,
        cached: impl FnOnce(&Entry<S>) -> Option<R>,
    ) -> Result<Fast<R, S>> {
        let foreign = self.check_format(token)?;
        let digest = self.digester.current(token);
        {
            let tables = self.tables.read();
            if let Some(entry) = tables
                .by_digest
                .find(digest_hash(&digest), |e| digests_equal(&e.digest, &digest))
            {
                entry.check(now, self.cutoffs.valid_after(&entry.principal.subject))?;
                if entry.count_use(now) {
                    self.dirty.lock().push(Arc::clone(entry));
                }
                if let Some(value) = cached(entry) {
                    return Ok(Fast::Cached(value));
                }
                return Ok(Fast::Probe(Probe::Hit(Arc::clone(entry))));
            }
        }
        if self.negative.contains(&digest, now) {
            return Err(unknown());
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        Ok(Fast::Probe(Probe::Miss(Miss {
            digest,
            candidates: self.digester.candidates(token, foreign),
            epoch,
        })))
    }

    /// Verify a token against the index. Errors: `token_malformed` (format, prefix, type letter,
    /// checksum), `token_revoked`, `token_expired`, `unknown_token` (in the negative cache).
    pub fn probe(&self, token: &[u8], now: f64) -> Result<Probe<S>> {
        let foreign = self.check_format(token)?;
        let digest = self.digester.current(token);
        if let Some(entry) = self.lookup(&digest) {
            return self.finish(entry, now).map(Probe::Hit);
        }
        if self.negative.contains(&digest, now) {
            return Err(unknown());
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        Ok(Probe::Miss(Miss {
            digest,
            candidates: self.digester.candidates(token, foreign),
            epoch,
        }))
    }

    /// Every digest a token may be stored under, after the format check (for revoke-by-token).
    pub fn lookup_keys(&self, token: &[u8]) -> Result<Vec<Candidate>> {
        let foreign = self.check_format(token)?;
        Ok(self.digester.candidates(token, foreign))
    }

    fn build(&self, digest: Digest, mut record: Record) -> Arc<Entry<S>> {
        let scopes = self.interner.set(std::mem::take(&mut record.scopes));
        let roles = self.interner.set(std::mem::take(&mut record.roles));
        let tier = record.tier.take().map(|t| self.interner.string(t));
        if let Some(cut) = record.subject_valid_after {
            self.cutoffs.raise(&record.subject, cut);
        }
        Arc::new(Entry::new(digest, record, scopes, roles, tier))
    }

    fn put(&self, tables: &mut Tables<S>, entry: Arc<Entry<S>>) {
        self.remove_locked(tables, entry.id());
        let hasher = &self.id_hasher;
        tables
            .by_digest
            .insert_unique(digest_hash(&entry.digest), Arc::clone(&entry), |e| {
                digest_hash(&e.digest)
            });
        tables
            .by_id
            .insert_unique(hasher.hash_one(entry.id()), entry, |e| hasher.hash_one(e.id()));
    }

    fn remove_locked(&self, tables: &mut Tables<S>, id: &str) -> bool {
        let hash = self.id_hasher.hash_one(id);
        let Ok(found) = tables.by_id.find_entry(hash, |e| e.id() == id) else {
            return false;
        };
        let (entry, _) = found.remove();
        if let Ok(d) = tables
            .by_digest
            .find_entry(digest_hash(&entry.digest), |e| Arc::ptr_eq(e, &entry))
        {
            d.remove();
        }
        entry.retire();
        true
    }

    /// Settle a miss with what the backend returned (`None`: no such record, remembered in the
    /// negative cache). The record is indexed under the current digest.
    pub fn admit(&self, miss: &Miss, record: Option<Record>, now: f64) -> Result<Admitted<S>> {
        let Some(record) = record else {
            if self.epoch.load(Ordering::SeqCst) != miss.epoch {
                return Ok(Admitted::Stale);
            }
            self.negative.remember(miss.digest, now);
            return Err(unknown());
        };
        let entry = self.build(miss.digest, record);
        {
            let mut tables = self.tables.write();
            if self.epoch.load(Ordering::SeqCst) != miss.epoch {
                return Ok(Admitted::Stale);
            }
            self.put(&mut tables, Arc::clone(&entry));
        }
        self.finish(entry, now).map(Admitted::Hit)
    }

    /// Index a record just issued (its digest is the current one), so the first verify is a hit.
    pub fn insert(&self, digest: Digest, record: Record) {
        let entry = self.build(digest, record);
        self.negative.forget(&digest);
        let mut tables = self.tables.write();
        self.put(&mut tables, entry);
    }

    /// Drop a record from the index (revoked, rotated or changed elsewhere); the next verify reloads it.
    /// Returns whether it was indexed.
    pub fn evict(&self, id: &str) -> bool {
        let mut tables = self.tables.write();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.remove_locked(&mut tables, id)
    }

    /// Revoke every token of `subject` created at or before `valid_after`, in O(1).
    pub fn set_subject_cutoff(&self, subject: &str, valid_after: f64) {
        self.cutoffs.raise(subject, valid_after);
        let _tables = self.tables.write();
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// The subject's "valid after" time, if it has one: tokens (opaque or JWT) issued at or before it are revoked.
    pub fn subject_valid_after(&self, subject: &str) -> Option<f64> {
        self.cutoffs.valid_after(subject)
    }

    /// The subject cut-offs this index applies (and fills from its records), for checking other
    /// tokens (JWTs) of the same subjects against them.
    pub fn cutoffs(&self) -> &Cutoffs {
        &self.cutoffs
    }

    /// Forget everything (after a lost change feed): records reload lazily.
    pub fn clear(&self) {
        let mut tables = self.tables.write();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        tables.by_id.clear();
        for entry in tables.by_digest.drain() {
            entry.retire();
        }
        self.negative.clear();
    }

    /// Drop expired and revoked records (they reload, and fail, if presented again). Returns how many.
    pub fn sweep(&self, now: f64) -> usize {
        let mut tables = self.tables.write();
        let before = tables.by_digest.len();
        tables.by_digest.retain(|e| {
            let keep = e.principal.expires_at > now && e.revoked_at > now;
            if !keep {
                e.retire();
            }
            keep
        });
        tables.by_id.retain(|e| e.is_live());
        before - tables.by_digest.len()
    }

    /// Uses counted since the last drain, one row per token used: at most one write per token and
    /// flush interval.
    pub fn drain_usage(&self) -> Vec<Usage> {
        let dirty = std::mem::take(&mut *self.dirty.lock());
        dirty
            .into_iter()
            .filter_map(|e| {
                let (n, last) = e.take_uses();
                (n > 0).then(|| (CompactString::from(e.id()), n, last))
            })
            .collect()
    }
}

impl<S: Slot> Drop for Index<S> {
    fn drop(&mut self) {
        // cached objects in slots may point back at their entries: break those cycles
        for entry in &self.tables.get_mut().by_digest {
            entry.retire();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opaque::format;

    fn index(foreign: bool) -> Index<()> {
        let d = Digester::new(&[("p1".into(), vec![5u8; 32])], "p1").unwrap();
        Index::new(
            Config {
                foreign_tokens: foreign,
                ..Config::default()
            },
            d,
        )
        .unwrap()
    }

    fn record(id: &str, subject: &str) -> Record {
        Record {
            id: id.into(),
            kind: b'k',
            subject: subject.into(),
            client_id: None,
            scopes: vec!["b".into(), "a".into()],
            roles: vec!["user".into()],
            tier: Some("free".into()),
            created_at: 100.0,
            expires_at: 1000.0,
            revoked_at: None,
            subject_valid_after: None,
            metadata: None,
        }
    }

    fn token(n: u8) -> String {
        format::encode("bst", b'k', &[n; 32])
    }

    fn miss(idx: &Index<()>, tok: &str, now: f64) -> Miss {
        match idx.probe(tok.as_bytes(), now).unwrap() {
            Probe::Miss(m) => m,
            Probe::Hit(_) => panic!("expected a miss"),
        }
    }

    fn hit(idx: &Index<()>, tok: &str, now: f64) -> Result<Arc<Entry<()>>> {
        match idx.probe(tok.as_bytes(), now)? {
            Probe::Hit(e) => Ok(e),
            Probe::Miss(_) => panic!("expected a hit"),
        }
    }

    #[test]
    fn miss_admit_hit() {
        let idx = index(false);
        let t = token(1);
        let m = miss(&idx, &t, 150.0);
        assert_eq!(m.candidates[0].digest, m.digest);
        let Admitted::Hit(e) = idx.admit(&m, Some(record("id1", "alice")), 150.0).unwrap() else {
            panic!()
        };
        assert_eq!(e.principal.subject, "alice");
        assert_eq!(&e.principal.scopes[..], &["a".into(), "b".into()] as &[Box<str>]);
        let e2 = hit(&idx, &t, 151.0).unwrap();
        assert!(Arc::ptr_eq(&e, &e2));
        assert_eq!(idx.drain_usage(), vec![(CompactString::from("id1"), 2, 151.0)]);
        assert!(idx.drain_usage().is_empty());
        assert_eq!(hit(&idx, &t, 1000.0).err().unwrap().kind, ErrorKind::TokenExpired);
        // interned: a second record with the same scopes shares the set
        let t2 = token(2);
        let m2 = miss(&idx, &t2, 150.0);
        let Admitted::Hit(f) = idx.admit(&m2, Some(record("id2", "bob")), 150.0).unwrap() else {
            panic!()
        };
        assert!(Arc::ptr_eq(&e.principal.scopes, &f.principal.scopes));
        assert!(Arc::ptr_eq(
            e.principal.tier.as_ref().unwrap(),
            f.principal.tier.as_ref().unwrap()
        ));
        assert_eq!(idx.len(), 2);
    }

    #[test]
    fn probe_cached_checks_and_counts_like_probe() {
        let idx = index(false);
        let t = token(12);
        let mut r = record("c1", "zed");
        r.expires_at = 500.0;
        idx.insert(idx.digester().current(t.as_bytes()), r);
        let fast = idx
            .probe_cached(t.as_bytes(), 150.0, |e| Some(e.id().to_owned()))
            .unwrap();
        assert!(matches!(fast, Fast::Cached(ref id) if id == "c1"));
        let fast = idx.probe_cached(t.as_bytes(), 151.0, |_| None::<()>).unwrap();
        assert!(matches!(fast, Fast::Probe(Probe::Hit(_))));
        assert_eq!(idx.drain_usage(), vec![(CompactString::from("c1"), 2, 151.0)]);
        let err = idx.probe_cached(t.as_bytes(), 500.0, |_| Some(())).err().unwrap();
        assert_eq!(err.kind, ErrorKind::TokenExpired);
        assert!(matches!(
            idx.probe_cached(token(13).as_bytes(), 1.0, |_| Some(())).unwrap(),
            Fast::Probe(Probe::Miss(_))
        ));
        assert_eq!(
            idx.probe_cached(b"nope", 1.0, |_| Some(())).err().unwrap().kind,
            ErrorKind::TokenMalformed
        );
    }

    #[test]
    fn unknown_goes_to_negative_cache_with_ttl() {
        let idx = index(false);
        let t = token(3);
        let m = miss(&idx, &t, 10.0);
        assert_eq!(idx.admit(&m, None, 10.0).err().unwrap().kind, ErrorKind::UnknownToken);
        assert_eq!(
            idx.probe(t.as_bytes(), 11.0).err().unwrap().kind,
            ErrorKind::UnknownToken
        );
        // after the TTL, the backend is asked again (a token issued elsewhere becomes visible)
        assert!(matches!(idx.probe(t.as_bytes(), 15.1).unwrap(), Probe::Miss(_)));
        // insert() (issue) removes a digest from the negative cache at once
        let m = miss(&idx, &t, 20.0);
        let _ = idx.admit(&m, None, 20.0);
        idx.insert(m.digest, record("id3", "carol"));
        assert!(hit(&idx, &t, 21.0).is_ok());
    }

    #[test]
    fn negative_cache_is_bounded() {
        let d = Digester::new(&[("p1".into(), vec![5u8; 32])], "p1").unwrap();
        let idx: Index<()> = Index::new(
            Config {
                negative_capacity: 8,
                ..Config::default()
            },
            d,
        )
        .unwrap();
        for n in 0..50u8 {
            let m = miss(&idx, &token(n), 1.0);
            let _ = idx.admit(&m, None, 1.0);
        }
        assert_eq!(idx.negative.len(), 8);
    }

    #[test]
    fn eviction_during_a_load_makes_it_stale() {
        let idx = index(false);
        let t = token(4);
        let m = miss(&idx, &t, 150.0);
        idx.evict("id4"); // a revocation commits while the record is being read
        assert!(matches!(
            idx.admit(&m, Some(record("id4", "dave")), 150.0).unwrap(),
            Admitted::Stale
        ));
        assert!(matches!(idx.admit(&m, None, 150.0).unwrap(), Admitted::Stale));
        let m = miss(&idx, &t, 150.0);
        let mut r = record("id4", "dave");
        r.revoked_at = Some(149.0);
        assert_eq!(
            idx.admit(&m, Some(r), 150.0).err().unwrap().kind,
            ErrorKind::TokenRevoked
        );
        assert_eq!(hit(&idx, &t, 151.0).err().unwrap().kind, ErrorKind::TokenRevoked);
        assert!(idx.evict("id4"));
        assert!(!idx.evict("id4"));
        assert!(idx.is_empty());
    }

    #[test]
    fn subject_cutoff_kills_earlier_tokens_only() {
        let idx = index(false);
        let (t1, t2) = (token(5), token(6));
        let m = miss(&idx, &t1, 150.0);
        let _ = idx.admit(&m, Some(record("a", "erin")), 150.0).unwrap();
        idx.set_subject_cutoff("erin", 120.0);
        assert_eq!(hit(&idx, &t1, 151.0).err().unwrap().kind, ErrorKind::TokenRevoked);
        let mut later = record("b", "erin");
        later.created_at = 130.0;
        idx.insert(idx.digester().current(t2.as_bytes()), later);
        assert!(hit(&idx, &t2, 151.0).is_ok());
        idx.set_subject_cutoff("erin", 110.0); // never lowered
        assert!(hit(&idx, &t1, 151.0).is_err());
        assert_eq!(idx.subject_valid_after("erin"), Some(120.0));
        assert_eq!(idx.subject_valid_after("frank"), None);
    }

    #[test]
    fn malformed_and_foreign() {
        let idx = index(false);
        for bad in ["", "bstk_", "bsta_x", "hello world", &token(7)[1..]] {
            assert_eq!(
                idx.probe(bad.as_bytes(), 1.0).err().unwrap().kind,
                ErrorKind::TokenMalformed
            );
        }
        let other = format::encode("abc", b'k', &[1; 32]);
        assert_eq!(
            idx.probe(other.as_bytes(), 1.0).err().unwrap().kind,
            ErrorKind::TokenMalformed
        );
        let foreign = index(true);
        let phx = "q3Yx0bKp1n5Hc7bD8k0aZ3hQ2mR9sT4uV6wX1yZ2aB4";
        let Probe::Miss(m) = foreign.probe(phx.as_bytes(), 1.0).unwrap() else {
            panic!()
        };
        assert_eq!(
            m.candidates.last().unwrap().scheme,
            super::super::digest::Scheme::Sha256B64Url
        );
        // our own shape with a broken checksum stays malformed even when foreign tokens are accepted
        let mut broken = token(8).into_bytes();
        broken[10] = if broken[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(
            foreign.probe(&broken, 1.0).err().unwrap().kind,
            ErrorKind::TokenMalformed
        );
        assert_eq!(
            foreign.probe(b"short", 1.0).err().unwrap().kind,
            ErrorKind::TokenMalformed
        );
    }

    #[test]
    fn max_token_len_bounds_what_the_format_check_accepts() {
        let ours = index(false);
        assert_eq!(ours.max_token_len(), token(1).len());
        assert!(ours.check_format(token(1).as_bytes()).is_ok());
        let foreign = index(true);
        assert_eq!(foreign.max_token_len(), FOREIGN_MAX);
        let longest = "a".repeat(FOREIGN_MAX);
        assert_eq!(foreign.check_format(longest.as_bytes()).ok(), Some(true));
        let over = "a".repeat(FOREIGN_MAX + 1);
        assert_eq!(
            foreign.check_format(over.as_bytes()).err().unwrap().kind,
            ErrorKind::TokenMalformed
        );
        let long_ours = format!("{}a", token(1));
        assert_eq!(
            ours.check_format(long_ours.as_bytes()).err().unwrap().kind,
            ErrorKind::TokenMalformed
        );
    }

    #[test]
    fn the_final_comparison_is_the_whole_digest() {
        // the index's final comparison goes through subtle: a different digest with the same
        // 8-byte hash prefix is not a hit
        let idx = index(false);
        let mut r = record("x", "s");
        r.expires_at = 1e12;
        let mut fake = idx.digester().current(token(9).as_bytes());
        idx.insert(fake, r);
        fake[31] ^= 0x80;
        assert!(idx.lookup(&fake).is_none());
        fake[31] ^= 0x80;
        assert!(idx.lookup(&fake).is_some());
    }

    #[test]
    fn sweep_and_clear() {
        let idx = index(false);
        idx.insert(idx.digester().current(token(10).as_bytes()), record("s1", "x"));
        let mut long = record("s2", "x");
        long.expires_at = 5000.0;
        idx.insert(idx.digester().current(token(11).as_bytes()), long);
        assert_eq!(idx.sweep(2000.0), 1);
        assert_eq!(idx.len(), 1);
        idx.clear();
        assert!(idx.is_empty());
    }
}
