//! `JWTVerifier`: its configuration, the optional verified-token caches (claims dicts for `verify`,
//! principals for the request path), key rotation (`replace_keys`), and the one call into the core's
//! [`Verifier::verify_with`] (the check order lives there; this file only decides that an asymmetric
//! signature is checked with the GIL detached).

use std::sync::{Arc, OnceLock};

use pyo3::prelude::*;
use pyo3::types::PyBool;

use super::convert::{Cached, Expected, PySink, Shapes};
use super::keys::key_list;
use super::{alg_list, token_bytes};
use crate::jwt::cache::Cache;
use crate::jwt::claims::{self, Policy, Times};
use crate::jwt::verify::{self, SignatureCheck, Verifier, DEFAULT_MAX_TOKEN_BYTES};
use crate::py::args::{config_err, config_opt_text, config_strings, config_usize, resolve_now};
use crate::py::principal::PyPrincipal;

/// Verifies JWTs against keys, an algorithm allow-list and claim rules.
#[pyclass(frozen, weakref, module = "bastion._core", name = "JWTVerifier")]
pub struct PyJWTVerifier {
    inner: Verifier,
    cache: Option<Cache<Arc<Cached>>>,
    /// Principals of verified tokens for the request path, made on its first use (as large as `cache`).
    principals: OnceLock<Cache<Py<PyPrincipal>>>,
    shapes: Shapes,
    expected: Expected,
    /// Where missing keys come from (a `bastion.JWKSClient`): an `unknown_key` on the request path is
    /// then a need for its keys, not a refusal.
    key_source: Option<Py<PyAny>>,
}

impl PyJWTVerifier {
    /// The core verifier (the fused request path verifies through it with its own sink).
    pub(crate) fn core(&self) -> &Verifier {
        &self.inner
    }

    /// The verified-token cache's size (0: no cache); the request path keeps a cache of principals as large.
    pub(crate) fn cache_capacity(&self) -> usize {
        self.cache.as_ref().map_or(0, Cache::capacity)
    }

    /// The request path's cache of principals, when the verifier was given a cache.
    pub(crate) fn principals(&self) -> Option<&Cache<Py<PyPrincipal>>> {
        let capacity = self.cache_capacity();
        (capacity > 0).then(|| self.principals.get_or_init(|| Cache::new(capacity)))
    }

    /// The key source, when the keys come from one.
    pub(crate) fn key_source(&self) -> Option<&Py<PyAny>> {
        self.key_source.as_ref()
    }

    /// After a cache was filled from a verification that began at key generation `generation`: if the
    /// keys were replaced meanwhile, the entry may come from a removed key, so the caches are emptied
    /// again (a rotation clears them once, but a verification in flight can insert after that).
    pub(crate) fn forget_if_rotated(&self, generation: u64) {
        if self.inner.generation() != generation {
            self.forget();
        }
    }

    fn forget(&self) {
        if let Some(cache) = &self.cache {
            drop(cache.clear());
        }
        if let Some(principals) = self.principals.get() {
            drop(principals.clear());
        }
    }

    fn verify_uncached<'py>(&self, py: Python<'py>, token: &[u8], now: f64) -> PyResult<(Bound<'py, PyAny>, Times)> {
        let mut sink = PySink::with_memo(py, &self.shapes, &self.expected);
        let (claims, times) = self
            .inner
            .verify_with(token, now, &mut sink, |sig| run_signature(py, sig))?;
        if let Some(names) = sink.unseen.take() {
            self.shapes.remember(py, names)?;
        }
        Ok((claims, times))
    }
}

/// The signature step of a verification. HMAC stays attached (well under a microsecond, less than
/// a detach/attach round trip); RSA, ECDSA and `EdDSA` run with the GIL detached. The signing input
/// borrows the caller's `str`, so it is copied before the GIL is let go.
pub(crate) fn run_signature(py: Python<'_>, sig: SignatureCheck<'_>) -> crate::error::Result<()> {
    if sig.is_symmetric() {
        return sig.check();
    }
    let input = sig.signing_input.to_vec();
    let (verifying, signature) = (sig.verifying, sig.signature);
    py.detach(|| verifying.verify(&input, signature))
}

#[pymethods]
impl PyJWTVerifier {
    #[new]
    #[pyo3(signature = (keys, *, algorithms, issuer=None, audience=None, leeway=None, require=None, typ=None,
                        max_token_bytes=None, cache_size=None, key_source=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        keys: &Bound<'_, PyAny>,
        algorithms: &Bound<'_, PyAny>,
        issuer: Option<&Bound<'_, PyAny>>,
        audience: Option<&Bound<'_, PyAny>>,
        leeway: Option<&Bound<'_, PyAny>>,
        require: Option<&Bound<'_, PyAny>>,
        typ: Option<&Bound<'_, PyAny>>,
        max_token_bytes: Option<&Bound<'_, PyAny>>,
        cache_size: Option<&Bound<'_, PyAny>>,
        key_source: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyJWTVerifier> {
        let keys_arg = keys;
        let key_source = key_source.filter(|s| !s.is_none());
        if let Some(source) = key_source {
            if !(source.hasattr("_refresh_for")? && source.hasattr("_arefresh_for")?) {
                return Err(config_err("key_source must be a bastion.JWKSClient"));
            }
        }
        // a verifier fed by a key source may start with no key: its first token asks the source
        let keys = if key_source.is_some() && keys.is_none() {
            Vec::new()
        } else {
            key_list(keys)?
        };
        let algorithms = alg_list(algorithms)?;
        let leeway: f64 = match leeway {
            None => 0.0,
            Some(l) if l.is_instance_of::<PyBool>() => return Err(config_err("leeway must be a number of seconds")),
            Some(l) => l
                .extract()
                .map_err(|_| config_err("leeway must be a number of seconds"))?,
        };
        let require = match require {
            None => vec!["exp"],
            Some(r) => config_strings(Some(r), "require")?
                .unwrap_or_default()
                .iter()
                .map(|n| claims::registered(n).map_err(PyErr::from))
                .collect::<PyResult<_>>()?,
        };
        let typ = config_opt_text(typ, "typ")?;
        let count = |v: Option<&Bound<'_, PyAny>>, default: usize, what: &'static str| -> PyResult<usize> {
            v.map_or(Ok(default), |v| config_usize(v, what))
        };
        let max_token_bytes = count(
            max_token_bytes,
            DEFAULT_MAX_TOKEN_BYTES,
            "max_token_bytes must be a positive integer",
        )?;
        let cache_size = count(cache_size, 0, "cache_size must be an integer >= 0")?;
        if cache_size > 1 << 24 {
            return Err(config_err("cache_size must be at most 16777216"));
        }
        let policy = Policy {
            issuers: config_strings(issuer, "issuer")?,
            audiences: config_strings(audience, "audience")?,
            leeway,
            require,
            typ,
        };
        let py = keys_arg.py();
        let mut expected = Expected::default();
        for (name, values) in [("iss", &policy.issuers), ("aud", &policy.audiences)] {
            if let (Some(slot), Some(values)) = (claims::slot(name), values) {
                for v in values {
                    expected.add(py, slot, v);
                }
            }
        }
        let inner = if keys.is_empty() && key_source.is_some() {
            Verifier::without_keys(&algorithms, policy, max_token_bytes)?
        } else {
            Verifier::new(&keys, &algorithms, policy, max_token_bytes)?
        };
        Ok(PyJWTVerifier {
            inner,
            cache: (cache_size > 0).then(|| Cache::new(cache_size)),
            principals: OnceLock::new(),
            shapes: Shapes::default(),
            expected,
            key_source: key_source.map(|s| s.clone().unbind()),
        })
    }

    #[pyo3(signature = (token, *, now=None))]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        token: &Bound<'py, PyAny>,
        now: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let token = token_bytes(token, self.inner.max_token_bytes)?;
        let now = resolve_now(now)?;
        let Some(cache) = &self.cache else {
            return Ok(self.verify_uncached(py, token, now)?.0);
        };
        if token.len() > self.inner.max_token_bytes {
            return Err(verify::too_large().into());
        }
        let leeway = self.inner.policy.leeway;
        // Only plain Rust work happens under the slot's lock (copy the times, bump an Arc): building
        // a dict or an exception runs Python code, which can hand the GIL to a thread that then waits
        // on this same lock while holding the GIL — a deadlock. Everything Python happens after.
        if let Some((times, cached)) = cache.with(token, |times, cached| (*times, Arc::clone(cached))) {
            claims::check_times(&times, leeway, now)?;
            return cached.fresh(py);
        }
        let generation = self.inner.generation();
        let (claims, times) = self.verify_uncached(py, token, now)?;
        drop(cache.insert(token, times, Arc::new(Cached::new(&claims)?)));
        self.forget_if_rotated(generation);
        Ok(claims)
    }

    /// Forget every cached token.
    fn clear_cache(&self) {
        self.forget();
    }

    /// Replace every key at once (rotation), while other threads verify: the new set is checked as the
    /// constructor checks keys, and a set that is refused leaves the current keys in place. Every cached
    /// token is forgotten, so a token of a removed key stops verifying now.
    fn replace_keys(&self, keys: &Bound<'_, PyAny>) -> PyResult<()> {
        let keys = key_list(keys)?;
        self.inner.replace_keys(&keys)?;
        self.forget();
        Ok(())
    }

    /// Drop every key (what a key source does when its last good set is too old): every token is
    /// `unknown_key` until keys are replaced again. Only for a verifier with a `key_source`.
    fn clear_keys(&self) -> PyResult<()> {
        if self.key_source.is_none() {
            return Err(config_err(
                "clear_keys is for a verifier fed by a key source; use replace_keys to rotate local keys",
            ));
        }
        self.inner.clear_keys();
        self.forget();
        Ok(())
    }

    /// Whether a key with this kid is loaded.
    fn has_kid(&self, kid: &str) -> bool {
        self.inner.has_kid(kid)
    }

    /// The key source given at construction (a `bastion.JWKSClient`), or `None`.
    #[getter(key_source)]
    fn key_source_py(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.key_source.as_ref().map(|s| s.clone_ref(py))
    }

    /// The issuers this verifier accepts (`None`: any).
    #[getter]
    fn issuers(&self) -> Option<Vec<String>> {
        self.inner.policy.issuers.clone()
    }

    #[getter]
    fn algorithms(&self) -> Vec<&'static str> {
        self.inner.algorithms().iter().map(|a| a.name()).collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "JWTVerifier(algorithms={:?}, keys={}, cache_size={})",
            self.algorithms(),
            self.inner.entry_count(),
            self.cache.as_ref().map_or(0, Cache::capacity)
        )
    }
}
