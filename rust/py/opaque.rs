//! `bastion._core.OpaqueIndex` (the base of `bastion.TokenStore`) and its helpers.
//!
//! `verify` is the hot path and runs entirely here: format check, keyed digest, index lookup, checks,
//! use counting, and the cached `Principal` object of the record. On a miss it calls the Python
//! subclass's `_fetch(candidates, digest)` (which queries the backend and re-keys old digests) and
//! settles the miss with the result. The async path uses `_probe` / `_settle` around an awaited fetch.
//!
//! Over 400 lines because `OpaqueIndex` is one Python class: its methods (verify, the async halves, the
//! store's private hooks, the request path's lookup and revocation checks) share its fields.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use super::args::{self, config_err, resolve_now};
use super::principal::{PyPrincipal, Source};
use crate::auth::denylist::DenyList;
use crate::auth::flow::Lookup;
use crate::error::{Error, ErrorKind};
use crate::json::Value;
use crate::opaque::format::{self, encode_fixed};
use crate::opaque::{Admitted, Config, Digest, Digester, Entry, Fast, Index, Miss, Probe, Record, Slot};
use crate::principal::Principal;

/// How many times a verify re-reads a record that was invalidated while it was being read.
const STALE_RETRIES: usize = 8;

/// The cached `Principal` object of an index entry (it is immutable, so a hit returns it as is).
#[derive(Default)]
pub struct PrincipalSlot(Mutex<Option<Py<PyPrincipal>>>);

impl Slot for PrincipalSlot {
    fn clear(&self) {
        let taken = self.0.lock().take();
        drop(taken);
    }
}

type SlotEntry = Entry<PrincipalSlot>;

fn principal_of(py: Python<'_>, entry: &Arc<SlotEntry>) -> PyResult<Py<PyPrincipal>> {
    if let Some(p) = entry.slot.0.lock().as_ref() {
        return Ok(p.clone_ref(py));
    }
    let source: Source = Arc::clone(entry) as Source;
    let obj = Py::new(py, PyPrincipal::new(source))?;
    let mut slot = entry.slot.0.lock();
    if let Some(p) = slot.as_ref() {
        return Ok(p.clone_ref(py));
    }
    // an entry already out of the index must not hold its object: that would be a cycle
    if entry.is_live() {
        *slot = Some(obj.clone_ref(py));
    }
    Ok(obj)
}

/// The token's bytes for the store (see [`args::token_bytes`]): anything that cannot be a token,
/// including a `str` longer in code points than the longest token the store accepts (`max_len`
/// bytes), is malformed at once.
fn with_token<R>(token: &Bound<'_, PyAny>, max_len: usize, f: impl FnOnce(&[u8]) -> PyResult<R>) -> PyResult<R> {
    f(args::token_bytes(token, max_len).map_err(|_| malformed())?)
}

fn malformed() -> PyErr {
    Error::new(ErrorKind::TokenMalformed, "the token is not a well-formed opaque token").into()
}

fn store_error() -> PyErr {
    Error::new(ErrorKind::AuthUnavailable, "the token store returned an invalid record").into()
}

/// A backend row, `bastion.tokens.ops.RecordRow`: every field is read by its name, so a row of
/// another shape fails on the field it lacks instead of shifting the others.
#[derive(FromPyObject)]
struct RecordRow {
    #[pyo3(attribute)]
    id: String,
    #[pyo3(attribute)]
    kind: String,
    #[pyo3(attribute)]
    subject: String,
    #[pyo3(attribute)]
    client_id: Option<String>,
    #[pyo3(attribute)]
    scopes: Vec<String>,
    #[pyo3(attribute)]
    roles: Vec<String>,
    #[pyo3(attribute)]
    tier: Option<String>,
    #[pyo3(attribute)]
    created_at: f64,
    #[pyo3(attribute)]
    expires_at: f64,
    #[pyo3(attribute)]
    revoked_at: Option<f64>,
    #[pyo3(attribute)]
    subject_valid_after: Option<f64>,
    /// A JSON object as text.
    #[pyo3(attribute)]
    metadata: Option<String>,
}

/// The record in a backend row (`None` for no row). A row that is not a `RecordRow` is
/// `auth_unavailable`, naming the field that failed (never a value: the message is PyO3's type error).
fn record_from_py(row: &Bound<'_, PyAny>) -> PyResult<Option<Record>> {
    if row.is_none() {
        return Ok(None);
    }
    let r: RecordRow = row.extract().map_err(|e| {
        Error::new(
            ErrorKind::AuthUnavailable,
            format!("the token store returned an invalid record: {e}"),
        )
    })?;
    let metadata = match r.metadata.as_deref() {
        None => None,
        Some(text) => match crate::json::parse_document(text.as_bytes()) {
            Ok(Value::Object(members)) => Some(members),
            Ok(Value::Null) => None,
            _ => return Err(store_error()),
        },
    };
    Ok(Some(Record {
        kind: *r.kind.as_bytes().first().ok_or_else(store_error)?,
        id: r.id,
        subject: r.subject,
        client_id: r.client_id,
        scopes: r.scopes,
        roles: r.roles,
        tier: r.tier,
        created_at: r.created_at,
        expires_at: r.expires_at,
        revoked_at: r.revoked_at,
        subject_valid_after: r.subject_valid_after,
        metadata,
    }))
}

fn digest_arg(digest: &[u8]) -> PyResult<Digest> {
    digest.try_into().map_err(|_| config_err("a digest is 32 bytes"))
}

/// A miss, handed to the async shell: look `candidates` up, then call `_settle`.
#[pyclass(frozen, module = "bastion._core", name = "_Miss")]
pub struct PyMiss {
    miss: Miss,
}

#[pymethods]
impl PyMiss {
    /// `[(scheme, pepper_id | None, digest), …]`, the current digest first.
    #[getter]
    fn candidates<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        candidates_py(py, &self.miss)
    }

    /// The digest under the current scheme and pepper.
    #[getter]
    fn digest<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.miss.digest)
    }
}

fn candidates_py<'py>(py: Python<'py>, miss: &Miss) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for c in &miss.candidates {
        list.append((c.scheme.name(), c.pepper_id.as_deref(), PyBytes::new(py, &c.digest)))?;
    }
    Ok(list)
}

/// The Rust index behind `TokenStore`: format, digests, lookups, checks and usage counters.
#[pyclass(frozen, subclass, module = "bastion._core", name = "OpaqueIndex")]
pub struct PyOpaqueIndex {
    index: Index<PrincipalSlot>,
    rng: SystemRandom,
    /// JWTs revoked one by one (`TokenStore.revoke_jti`), fed by the same change feed as the index.
    denied: DenyList,
    /// Set by `close()`: nothing is served any more.
    closed: AtomicBool,
}

impl PyOpaqueIndex {
    /// The index half of a verify for the fused request path: the record's `Principal` (a hit), or
    /// the miss to fetch. `token` is the raw credential of the request.
    pub(crate) fn lookup(
        &self,
        py: Python<'_>,
        token: &[u8],
        now: f64,
    ) -> PyResult<crate::error::Result<Lookup<Py<PyPrincipal>, Miss>>> {
        if let Err(e) = self.serving() {
            return Ok(Err(e));
        }
        if token.len() > self.index.max_token_len() {
            return Ok(Err(Error::new(
                ErrorKind::TokenMalformed,
                "the token is not a well-formed opaque token",
            )));
        }
        let probed = match self
            .index
            .probe_cached(token, now, |e| e.slot.0.lock().as_ref().map(|p| p.clone_ref(py)))
        {
            Ok(Fast::Cached(principal)) => return Ok(Ok(Lookup::Found(principal))),
            Ok(Fast::Probe(probed)) => probed,
            Err(e) => return Ok(Err(e)),
        };
        Ok(Ok(match probed {
            Probe::Hit(entry) => Lookup::Found(principal_of(py, &entry)?),
            Probe::Miss(miss) => Lookup::Miss(miss),
        }))
    }

    /// `auth_unavailable` once the store is closed.
    pub(crate) fn serving(&self) -> crate::error::Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::AuthUnavailable, "the token store is closed").with_retry_after(1.0));
        }
        Ok(())
    }

    /// Whether a verified JWT is revoked: its subject cut off at or after `iat` (a JWT without `iat`
    /// cannot prove it came later), or its jti on the deny-list.
    pub(crate) fn jwt_revoked(&self, principal: &Principal, iat: Option<f64>, now: f64) -> bool {
        self.index
            .cutoffs()
            .revokes(&principal.subject, iat.unwrap_or(f64::NEG_INFINITY))
            || principal
                .token_id
                .as_deref()
                .is_some_and(|jti| self.denied.is_denied(jti, now))
    }

    /// Wrap a miss for Python (the shell fetches its record and calls `_settle`).
    pub(crate) fn miss_to_py(py: Python<'_>, miss: Miss) -> PyResult<Py<PyAny>> {
        Ok(Py::new(py, PyMiss { miss })?.into_any())
    }

    fn random<const N: usize>(&self) -> PyResult<[u8; N]> {
        let mut out = [0u8; N];
        self.rng
            .fill(&mut out)
            .map_err(|_| PyErr::from(Error::new(ErrorKind::AuthUnavailable, "the system CSPRNG failed")))?;
        Ok(out)
    }

    fn settle(
        &self,
        py: Python<'_>,
        miss: &Miss,
        row: &Bound<'_, PyAny>,
        now: f64,
    ) -> PyResult<Option<Py<PyPrincipal>>> {
        let record = record_from_py(row)?;
        match self.index.admit(miss, record, now)? {
            Admitted::Hit(entry) => principal_of(py, &entry).map(Some),
            Admitted::Stale => Ok(None),
        }
    }
}

#[pymethods]
impl PyOpaqueIndex {
    #[new]
    #[pyo3(signature = (prefix, peppers, pepper_id, *, foreign_tokens=false, negative_capacity=65_536, negative_ttl=5.0))]
    fn py_new(
        prefix: &Bound<'_, PyAny>,
        peppers: &Bound<'_, PyAny>,
        pepper_id: &Bound<'_, PyAny>,
        foreign_tokens: bool,
        negative_capacity: usize,
        negative_ttl: f64,
    ) -> PyResult<Self> {
        let prefix: String = prefix.extract().map_err(|_| config_err("prefix must be a str"))?;
        let pepper_id: String = pepper_id.extract().map_err(|_| config_err("pepper_id must be a str"))?;
        let dict = peppers
            .cast::<PyDict>()
            .map_err(|_| config_err("peppers must be a dict of id -> bytes"))?;
        let mut pairs = Vec::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            let id: String = k.extract().map_err(|_| config_err("pepper ids must be str"))?;
            let secret = v.cast::<PyBytes>().map_err(|_| config_err("peppers must be bytes"))?;
            pairs.push((id, secret.as_bytes().to_vec()));
        }
        let digester = Digester::new(&pairs, &pepper_id)?;
        let config = Config {
            prefix,
            foreign_tokens,
            negative_capacity,
            negative_ttl,
        };
        Ok(PyOpaqueIndex {
            index: Index::new(config, digester)?,
            rng: SystemRandom::new(),
            denied: DenyList::new(),
            closed: AtomicBool::new(false),
        })
    }

    /// Verify a token: returns its `Principal` or raises `token_malformed`, `unknown_token`,
    /// `token_revoked`, `token_expired` (or `auth_unavailable` when the backend fails).
    #[pyo3(signature = (token, *, now=None))]
    fn verify(
        slf: &Bound<'_, Self>,
        token: &Bound<'_, PyAny>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyPrincipal>> {
        let py = slf.py();
        let this = slf.get();
        let now = resolve_now(now)?;
        this.serving()?;
        with_token(token, this.index.max_token_len(), |bytes| {
            for _ in 0..STALE_RETRIES {
                // the common case: a hit whose Principal is already built, answered under the read lock
                let probed = match this
                    .index
                    .probe_cached(bytes, now, |e| e.slot.0.lock().as_ref().map(|p| p.clone_ref(py)))?
                {
                    Fast::Cached(principal) => return Ok(principal),
                    Fast::Probe(probed) => probed,
                };
                match probed {
                    Probe::Hit(entry) => return principal_of(py, &entry),
                    Probe::Miss(miss) => {
                        let row =
                            slf.call_method1("_fetch", (candidates_py(py, &miss)?, PyBytes::new(py, &miss.digest)))?;
                        if let Some(p) = this.settle(py, &miss, &row, now)? {
                            return Ok(p);
                        }
                    }
                }
            }
            Err(Error::new(
                ErrorKind::AuthUnavailable,
                "the token kept changing while it was being read",
            )
            .with_retry_after(1.0)
            .into())
        })
    }

    /// The index half of a verify: a `Principal` (hit), or a `_Miss` to fetch and `_settle`.
    #[pyo3(signature = (token, now=None))]
    fn _probe(&self, py: Python<'_>, token: &Bound<'_, PyAny>, now: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let now = resolve_now(now)?;
        self.serving()?;
        with_token(token, self.index.max_token_len(), |bytes| {
            match self.index.probe(bytes, now)? {
                Probe::Hit(entry) => Ok(principal_of(py, &entry)?.into_any()),
                Probe::Miss(miss) => Ok(Py::new(py, PyMiss { miss })?.into_any()),
            }
        })
    }

    /// Settle a miss with a backend row (or None); None back means "invalidated meanwhile, probe again".
    #[pyo3(signature = (miss, row, now=None))]
    fn _settle(
        &self,
        py: Python<'_>,
        miss: &Bound<'_, PyMiss>,
        row: &Bound<'_, PyAny>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<Py<PyPrincipal>>> {
        let now = resolve_now(now)?;
        self.settle(py, &miss.get().miss, row, now)
    }

    /// A new token of `kind` and its current digest: `(token, digest)`.
    fn _new_token<'py>(&self, py: Python<'py>, kind: &str) -> PyResult<(String, Bound<'py, PyBytes>)> {
        let letter = match kind.as_bytes() {
            [k] => *k,
            _ => 0,
        };
        format::check_kind(letter)?;
        let body: [u8; 32] = self.random()?;
        let token = format::encode(&self.index.config().prefix, letter, &body);
        let digest = self.index.digester().current(token.as_bytes());
        Ok((token, PyBytes::new(py, &digest)))
    }

    /// A new public record id: 16 random bytes as 22 base62 characters.
    fn _new_id(&self) -> PyResult<String> {
        let raw: [u8; 16] = self.random()?;
        let text = encode_fixed::<22>(&raw).expect("62^22 > 2^128");
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    /// Every digest a token may be stored under (format checked first): `[(scheme, pepper_id, digest)]`.
    fn _lookup_keys<'py>(&self, py: Python<'py>, token: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyList>> {
        with_token(token, self.index.max_token_len(), |bytes| {
            let list = PyList::empty(py);
            for c in self.index.lookup_keys(bytes)? {
                list.append((c.scheme.name(), c.pepper_id, PyBytes::new(py, &c.digest)))?;
            }
            Ok(list)
        })
    }

    /// Index a record just issued under its current digest.
    fn _insert(&self, digest: &[u8], row: &Bound<'_, PyAny>) -> PyResult<()> {
        let digest = digest_arg(digest)?;
        let record = record_from_py(row)?.ok_or_else(store_error)?;
        self.index.insert(digest, record);
        Ok(())
    }

    /// Drop a record from the index; True if it was there.
    fn _evict(&self, id: &str) -> bool {
        self.index.evict(id)
    }

    /// Revoke every token of `subject` created at or before `valid_after`.
    fn _subject_cutoff(&self, subject: &str, valid_after: f64) {
        self.index.set_subject_cutoff(subject, valid_after);
    }

    /// The subject's "valid after" time (epoch seconds), if `revoke_subject` set one: any token of the subject
    /// issued at or before it, opaque or JWT (compare its `iat`), is revoked.
    /// Anything that cannot be a stored subject (not a str, not valid Unicode) has none.
    fn subject_valid_after(&self, subject: &Bound<'_, PyAny>) -> Option<f64> {
        let text = subject.cast::<PyString>().ok()?.to_str().ok()?;
        self.index.subject_valid_after(text)
    }

    /// Forget every record and unknown digest. The denied jtis stay: a JWT never passes through a record
    /// lookup, so nothing would bring its revocation back.
    fn _clear(&self) {
        self.index.clear();
    }

    /// Serve nothing from now on: every lookup, and every JWT whose revocation this index would check,
    /// is `auth_unavailable` (a closed store learns no more revocations: fail closed).
    fn _mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
        self.index.clear();
    }

    /// Refuse the JWT whose `jti` is `jti` until `until` (its `exp`, epoch seconds).
    fn _deny_jti(&self, jti: &str, until: f64) {
        self.denied.deny(jti, until);
    }

    /// Whether the JWT `jti` is refused at `now` (default: the wall clock).
    #[pyo3(signature = (jti, now=None))]
    fn _jti_denied(&self, jti: &str, now: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        Ok(self.denied.is_denied(jti, resolve_now(now)?))
    }

    /// Drop expired and revoked records; returns how many.
    fn _sweep(&self, now: f64) -> usize {
        self.index.sweep(now) + self.denied.sweep(now)
    }

    /// `[(id, uses, last_used_at)]` counted since the last call.
    fn _drain_usage(&self) -> Vec<(String, u32, f64)> {
        self.index
            .drain_usage()
            .into_iter()
            .map(|(id, n, t)| (id.into_string(), n, t))
            .collect()
    }

    /// The token prefix.
    #[getter]
    fn prefix(&self) -> &str {
        &self.index.config().prefix
    }

    /// The current pepper id.
    #[getter]
    fn pepper_id(&self) -> &str {
        self.index.digester().current_id()
    }

    /// Every configured pepper id, the current one first.
    #[getter]
    fn pepper_ids(&self) -> Vec<String> {
        self.index.digester().ids().map(str::to_owned).collect()
    }

    /// Records held in memory.
    fn __len__(&self) -> usize {
        self.index.len()
    }
}

/// Register the classes.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyOpaqueIndex>()?;
    m.add_class::<PyMiss>()?;
    Ok(())
}
