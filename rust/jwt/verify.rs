//! The verifier: structure checks, key selection and signature verification, in the order RFC 8725
//! asks — size cap, then exactly three canonical base64url segments, strict JSON header and payload,
//! the allow-list and key selection, the signature, and only then the claims.
//!
//! Key selection: by `kid` when the token has one (no such kid → `unknown_key`; the key does not
//! serve the token's alg → `unsupported_algorithm`); without a kid, the one key that can serve the
//! token's alg (none, or more than one → `unknown_key`).
//!
//! Over 400 lines only with its unit tests, which stay beside the code (the crate's convention).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;

use crate::error::{Error, ErrorKind, Result};
use crate::json::Sink;
use crate::jwt::alg::Alg;
use crate::jwt::b64;
use crate::jwt::claims::{self, Policy, Registered, Times};
use crate::jwt::crypto::Verifying;
use crate::jwt::header::{self, Header};
use crate::jwt::keys::Key;
use crate::jwt::watched;

/// Default `max_token_bytes`: 8 KiB, larger than any sane access token.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8192;

const N_ALGS: usize = Alg::ALL.len();

/// One (key, algorithm) pair the verifier can use.
#[derive(Debug)]
pub struct Entry {
    pub kid: Option<String>,
    pub alg: Alg,
    pub verifying: Verifying,
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Empty,
    One(usize),
    Many,
}

/// How many distinct header segments the verifier remembers. Tokens from one issuer share a handful
/// of headers (one per kid), so their base64 decoding, JSON parsing and key selection run once.
/// A header is remembered only once a token carrying it fully verified, so only a key holder can
/// fill the slots; they are write-once and read without a lock.
const KNOWN_HEADERS: usize = 8;
/// Signatures (at most 1024 bytes, RSA-8192) and payloads up to this size are decoded on the stack.
const STACK_SIGNATURE: usize = 1024;
const STACK_PAYLOAD: usize = 4096;

/// An encoded header segment, its parsed form and the entry it selects.
type KnownHeader = (Box<[u8]>, Header, usize);

/// The keys of a verifier, indexed for selection, with the header memo that points into them: replaced
/// as one value, so a header remembered under one key set can never select into another.
#[derive(Debug)]
struct KeyIndex {
    known_headers: [OnceLock<KnownHeader>; KNOWN_HEADERS],
    entries: Vec<Entry>,
    by_kid: HashMap<String, [Option<usize>; N_ALGS]>,
    by_alg: [Slot; N_ALGS],
}

/// A configured verifier, `Sync`: one instance serves every thread. Its policy and allow-list are fixed;
/// its keys can be replaced while tokens are verified ([`Verifier::replace_keys`]): a verification reads
/// the key index it started with (one atomic load, no lock), the next one the new index.
#[derive(Debug)]
pub struct Verifier {
    algorithms: Vec<Alg>,
    allowed: [bool; N_ALGS],
    keys: ArcSwap<KeyIndex>,
    /// Bumped by every [`Verifier::replace_keys`]: a cache of verified tokens filled under an older
    /// generation is stale.
    generation: AtomicU64,
    /// The claim checks.
    pub policy: Policy,
    /// Tokens longer than this are refused before any decoding (`token_too_large`).
    pub max_token_bytes: usize,
}

/// The three segments of a compact JWS, decoded.
#[derive(Debug)]
pub struct Segments<'t> {
    pub header: Vec<u8>,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
    /// `header.payload` as it appears in the token: what the signature covers.
    pub signing_input: &'t [u8],
}

/// The error of a token over `max_token_bytes` (`token_too_large`).
pub fn too_large() -> Error {
    Error::new(ErrorKind::TokenTooLarge, "the token is too large")
}

/// Size cap, then exactly three non-empty-header segments: the positions of the two dots.
fn dots(token: &[u8], max_token_bytes: usize) -> Result<(usize, usize)> {
    if token.len() > max_token_bytes {
        return Err(too_large());
    }
    let malformed = || {
        Error::new(
            ErrorKind::TokenMalformed,
            "the token is not a compact JWS (three segments)",
        )
    };
    let first = memchr(token, 0).ok_or_else(malformed)?;
    let second = memchr(token, first + 1).ok_or_else(malformed)?;
    if memchr(token, second + 1).is_some() || first == 0 || second == first + 1 {
        return Err(malformed());
    }
    Ok((first, second))
}

/// Size cap, then exactly three canonical base64url segments.
pub fn split(token: &[u8], max_token_bytes: usize) -> Result<Segments<'_>> {
    let (first, second) = dots(token, max_token_bytes)?;
    Ok(Segments {
        header: b64::decode(&token[..first])?,
        payload: b64::decode(&token[first + 1..second])?,
        signature: b64::decode(&token[second + 1..])?,
        signing_input: &token[..second],
    })
}

/// The `kid` of a token's header, unverified: what a key source is asked for after an `unknown_key`
/// (never a lookup key for anything else). `None` when the token has none or is malformed.
pub fn kid_of(token: &[u8], max_token_bytes: usize) -> Option<String> {
    let (first, _) = dots(token, max_token_bytes).ok()?;
    header::parse(&b64::decode(&token[..first]).ok()?).ok()?.kid
}

#[inline]
fn memchr(token: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(b'.', &token[from..]).map(|i| i + from)
}

/// The signature step of one verification, handed to [`Verifier::verify_with`]'s runner.
#[derive(Debug, Clone, Copy)]
pub struct SignatureCheck<'a> {
    /// The selected key, prepared for the token's algorithm.
    pub verifying: &'a Verifying,
    /// `header.payload` as it appears in the token: what the signature covers. It may borrow the
    /// caller's buffer (a Python `str`): copy it before releasing whatever keeps that buffer alive.
    pub signing_input: &'a [u8],
    /// The decoded signature (on the verifier's stack).
    pub signature: &'a [u8],
}

impl SignatureCheck<'_> {
    /// Whether the algorithm is HMAC (well under a microsecond: not worth leaving the interpreter).
    pub fn is_symmetric(&self) -> bool {
        self.verifying.is_symmetric()
    }

    /// Verify the signature here, on the calling thread.
    pub fn check(&self) -> Result<()> {
        self.verifying.verify(self.signing_input, self.signature)
    }
}

/// A token that passed every check up to the signature.
#[derive(Debug)]
pub struct Prepared<'a> {
    pub header: &'a Header,
    pub payload: &'a [u8],
    pub signature: &'a [u8],
    /// `header.payload` as it appears in the token: what the signature covers.
    pub signing_input: &'a [u8],
    pub entry: &'a Entry,
}

impl Verifier {
    /// Build a verifier. `algorithms` is the required allow-list. Every key serves the allowed
    /// algorithms of its family (or only its bound alg); alg-dependent hygiene (HMAC secret length)
    /// is checked here for each of them. Keys whose JWK `use`/`key_ops` rule out verification are left out.
    pub fn new(keys: &[Arc<Key>], algorithms: &[Alg], policy: Policy, max_token_bytes: usize) -> Result<Verifier> {
        let verifier = Verifier::without_keys(algorithms, policy, max_token_bytes)?;
        verifier.replace_keys(keys)?;
        verifier.generation.store(0, Ordering::Relaxed);
        Ok(verifier)
    }

    /// A verifier with no key yet, for keys fetched later (a JWKS source): every token is `unknown_key`
    /// until [`Verifier::replace_keys`] gives it some.
    pub fn without_keys(algorithms: &[Alg], policy: Policy, max_token_bytes: usize) -> Result<Verifier> {
        if algorithms.is_empty() {
            return Err(Error::config("algorithms= must name at least one algorithm"));
        }
        if !(policy.leeway.is_finite() && policy.leeway >= 0.0) {
            return Err(Error::config("leeway must be a finite number of seconds >= 0"));
        }
        if max_token_bytes == 0 {
            return Err(Error::config("max_token_bytes must be positive"));
        }
        let mut allowed = [false; N_ALGS];
        let mut algs = Vec::new();
        for a in algorithms {
            if !allowed[a.index()] {
                allowed[a.index()] = true;
                algs.push(*a);
            }
        }
        Ok(Verifier {
            algorithms: algs,
            allowed,
            keys: ArcSwap::from_pointee(KeyIndex::empty()),
            generation: AtomicU64::new(0),
            policy,
            max_token_bytes,
        })
    }

    /// Replace every key at once (rotation): built and checked first with the same rules as
    /// [`Verifier::new`] (duplicate kids, hygiene, at least one usable key), so a set that is refused
    /// leaves the current keys in place. Verifications already running finish with the keys they
    /// started with; a key left out verifies nothing from the next verification on.
    pub fn replace_keys(&self, keys: &[Arc<Key>]) -> Result<()> {
        let index = self.index(keys)?;
        self.keys.store(Arc::new(index));
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Drop every key (a key source whose last good set is too old to trust): every token is
    /// `unknown_key` until [`Verifier::replace_keys`] gives it keys again.
    pub fn clear_keys(&self) {
        self.keys.store(Arc::new(KeyIndex::empty()));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// How many times the keys were replaced since the verifier was built.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether a key with this `kid` is loaded (whatever algorithm it serves).
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.load().by_kid.contains_key(kid)
    }

    fn index(&self, keys: &[Arc<Key>]) -> Result<KeyIndex> {
        let mut entries = Vec::new();
        let mut by_kid: HashMap<String, [Option<usize>; N_ALGS]> = HashMap::new();
        let mut by_alg = [Slot::Empty; N_ALGS];
        for (i, key) in keys.iter().enumerate() {
            if let Some(kid) = &key.kid {
                if keys[..i].iter().any(|o| o.kid.as_ref() == Some(kid)) {
                    return Err(Error::new(ErrorKind::InvalidKey, "two keys have the same kid"));
                }
            }
            if !key.verifies {
                continue;
            }
            for alg in &self.algorithms {
                if !key.serves(*alg) {
                    continue;
                }
                let idx = entries.len();
                entries.push(Entry {
                    kid: key.kid.clone(),
                    alg: *alg,
                    verifying: key.verifying(*alg)?,
                });
                if let Some(kid) = &key.kid {
                    by_kid.entry(kid.clone()).or_insert([None; N_ALGS])[alg.index()] = Some(idx);
                }
                let slot = &mut by_alg[alg.index()];
                *slot = match slot {
                    Slot::Empty => Slot::One(idx),
                    _ => Slot::Many,
                };
            }
        }
        if entries.is_empty() {
            return Err(Error::config("no key can verify any of the allowed algorithms"));
        }
        Ok(KeyIndex {
            known_headers: Default::default(),
            entries,
            by_kid,
            by_alg,
        })
    }

    /// The allow-list, without duplicates, in the order given.
    pub fn algorithms(&self) -> &[Alg] {
        &self.algorithms
    }

    /// How many (key, alg) pairs this verifier can use.
    pub fn entry_count(&self) -> usize {
        self.keys.load().entries.len()
    }

    /// Everything before the payload JSON and the signature (size, structure, header, allow-list,
    /// key), then `f` on the result, which parses the payload, checks the signature and the claims.
    /// The decoded segments live on this call's stack.
    pub fn with_prepared<R>(&self, token: &[u8], f: impl FnOnce(&Prepared<'_>) -> Result<R>) -> Result<R> {
        let (first, second) = dots(token, self.max_token_bytes)?;
        let segment = &token[..first];
        // one atomic load: this verification uses the keys it started with, whatever a rotation does
        let index = self.keys.load();
        let mut parsed: Option<Header> = None;
        let (header, idx) = if let Some(known) = index.known_header(segment) {
            known
        } else {
            let header = header::parse(&b64::decode(segment)?)?;
            let idx = self.select(&index, &header)?;
            (&*parsed.insert(header), idx)
        };
        let result = b64::with_decoded::<STACK_SIGNATURE, _>(&token[second + 1..], |signature| {
            b64::with_decoded::<STACK_PAYLOAD, _>(&token[first + 1..second], |payload| {
                f(&Prepared {
                    header,
                    payload,
                    signature,
                    signing_input: &token[..second],
                    entry: &index.entries[idx],
                })
            })
        })?;
        if let Some(header) = parsed {
            index.remember_header(segment, header, idx);
        }
        Ok(result)
    }

    fn select(&self, index: &KeyIndex, header: &Header) -> Result<usize> {
        let alg = header.alg;
        if !self.allowed[alg.index()] {
            return Err(Error::new(
                ErrorKind::UnsupportedAlgorithm,
                "the token's algorithm is not allowed",
            ));
        }
        let unknown = || Error::new(ErrorKind::UnknownKey, "no key matches the token");
        let idx = match &header.kid {
            Some(kid) => index.by_kid.get(kid.as_str()).ok_or_else(unknown)?[alg.index()].ok_or_else(|| {
                Error::new(
                    ErrorKind::UnsupportedAlgorithm,
                    "the token's algorithm does not match its key",
                )
            })?,
            None => match index.by_alg[alg.index()] {
                Slot::One(i) => i,
                Slot::Empty | Slot::Many => return Err(unknown()),
            },
        };
        Ok(idx)
    }
}

impl KeyIndex {
    fn empty() -> KeyIndex {
        KeyIndex {
            known_headers: Default::default(),
            entries: Vec::new(),
            by_kid: HashMap::new(),
            by_alg: [Slot::Empty; N_ALGS],
        }
    }

    fn known_header(&self, segment: &[u8]) -> Option<(&Header, usize)> {
        for slot in &self.known_headers {
            match slot.get() {
                Some((known, header, idx)) if **known == *segment => return Some((header, *idx)),
                Some(_) => {}
                None => return None,
            }
        }
        None
    }

    fn remember_header(&self, segment: &[u8], header: Header, idx: usize) {
        // Racing threads may both add the same header: a harmless duplicate slot.
        if let Some(slot) = self.known_headers.iter().find(|s| s.get().is_none()) {
            let _ = slot.set((Box::from(segment), header, idx));
        }
    }
}

impl Verifier {
    /// The whole verification into `sink`: the claims object and the token's times.
    pub fn verify<S: Sink>(&self, token: &[u8], now: f64, sink: &mut S) -> Result<(S::Value, Times)> {
        self.verify_with(token, now, sink, |sig| sig.check())
    }

    /// The whole verification, in the one order RFC 8725 asks (structure, header, key, payload
    /// JSON, signature, claims), with the claims object built by `sink` and the signature step run
    /// by `run_sig`. A caller decides only *where* the signature runs (a binding detaches from its
    /// interpreter for asymmetric algorithms), never whether or when: `run_sig` must call
    /// [`SignatureCheck::check`] (or verify the same inputs itself) and return its result.
    ///
    /// The sink decides what the claims become: a binding's sink builds its own objects, and
    /// [`DocumentSink`](crate::json::DocumentSink) builds the members that
    /// [`Principal::claims`](crate::principal::Principal::claims) holds, with no conversion:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use _core::json::{DocumentSink, Value};
    /// use _core::jwt::{Alg, Key, Policy, Signer, Verifier};
    ///
    /// let key = Arc::new(Key::hmac(&[7; 32], None, None)?);
    /// let token = Signer::new(&key, Alg::HS256)?.sign_json(&[], br#"{"sub":"u","exp":100}"#)?;
    /// let verifier = Verifier::new(&[key], &[Alg::HS256], Policy::default(), 8192)?;
    /// let (claims, times) = verifier.verify_with(token.as_bytes(), 50.0, &mut DocumentSink, |sig| sig.check())?;
    /// let Value::Object(members) = claims else { unreachable!("a payload is an object") };
    /// assert_eq!(members[0], ("sub".to_owned(), Value::String("u".into())));
    /// assert_eq!(times.exp, Some(100.0));
    /// # Ok::<(), _core::Error>(())
    /// ```
    pub fn verify_with<S: Sink>(
        &self,
        token: &[u8],
        now: f64,
        sink: &mut S,
        run_sig: impl FnOnce(SignatureCheck<'_>) -> Result<()>,
    ) -> Result<(S::Value, Times)> {
        self.with_prepared(token, |p| {
            let (value, watched) = parse_payload(p.payload, sink)?;
            run_sig(SignatureCheck {
                verifying: &p.entry.verifying,
                signing_input: p.signing_input,
                signature: p.signature,
            })?;
            let times = self.policy.check(&watched, p.header.typ.as_deref(), now)?;
            Ok((value, times))
        })
    }

    /// Signature only, no claims, payload returned as bytes (RFC 7515 test vectors, debugging).
    pub fn verify_jws(&self, token: &[u8]) -> Result<Vec<u8>> {
        self.with_prepared(token, |p| {
            p.entry.verifying.verify(p.signing_input, p.signature)?;
            Ok(p.payload.to_vec())
        })
    }
}

/// Strict JSON payload into `sink`, with the registered claims seen on the side.
pub fn parse_payload<'a, S: Sink>(payload: &'a [u8], sink: &mut S) -> Result<(S::Value, Registered<'a>)> {
    watched::parse_object_watching(payload, sink, claims::slot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{Value, ValueSink};
    use crate::jwt::sign::Signer;

    fn hkey(kid: Option<&str>, byte: u8) -> Arc<Key> {
        Arc::new(Key::hmac(&[byte; 32], kid.map(str::to_owned), None).unwrap())
    }

    fn token(key: &Key, headers: &[(&str, Value)], claims: &str) -> String {
        let signer = Signer::new(key, Alg::HS256).unwrap();
        signer.sign_json(headers, claims.as_bytes()).unwrap()
    }

    fn code(r: Result<(Value, Times)>) -> &'static str {
        r.unwrap_err().code()
    }

    #[test]
    fn verifies_and_selects_keys() {
        let a = hkey(Some("a"), 1);
        let b = hkey(Some("b"), 2);
        let v = Verifier::new(&[a.clone(), b.clone()], &[Alg::HS256], Policy::default(), 8192).unwrap();
        let kid_b = [("kid", Value::String("b".into()))];
        let t = token(&b, &kid_b, r#"{"sub":"u","exp":100}"#);
        let (claims, times) = v.verify(t.as_bytes(), 50.0, &mut ValueSink).unwrap();
        assert_eq!(claims.get("sub").and_then(Value::as_str), Some("u"));
        assert_eq!(times.exp, Some(100.0));
        assert_eq!(code(v.verify(t.as_bytes(), 100.0, &mut ValueSink)), "token_expired");
        // no kid, two HS256 keys: ambiguous
        let t = token(&hkey(None, 2), &[], r#"{"exp":100}"#);
        assert_eq!(code(v.verify(t.as_bytes(), 0.0, &mut ValueSink)), "unknown_key");
        // kid of another key: the signature fails
        let t = token(&b, &[("kid", Value::String("a".into()))], r#"{"exp":100}"#);
        assert_eq!(code(v.verify(t.as_bytes(), 0.0, &mut ValueSink)), "invalid_signature");
        let t = token(
            &b,
            &[("kid", Value::String("../../etc/passwd".into()))],
            r#"{"exp":100}"#,
        );
        assert_eq!(code(v.verify(t.as_bytes(), 0.0, &mut ValueSink)), "unknown_key");
        // one key, no kid in the token
        let single = Verifier::new(std::slice::from_ref(&a), &[Alg::HS256], Policy::default(), 8192).unwrap();
        let t = token(&a, &[], r#"{"exp":100}"#);
        assert!(single.verify(t.as_bytes(), 0.0, &mut ValueSink).is_ok());
        // expired and forged: the signature is reported, not the expiry
        let forged = token(&hkey(None, 2), &[], r#"{"exp":1}"#);
        assert_eq!(
            code(single.verify(forged.as_bytes(), 50.0, &mut ValueSink)),
            "invalid_signature"
        );
    }

    #[test]
    fn structure_rules() {
        let a = hkey(None, 1);
        let v = Verifier::new(std::slice::from_ref(&a), &[Alg::HS256], Policy::default(), 300).unwrap();
        let t = token(&a, &[], r#"{"exp":100}"#);
        assert!(v.verify(t.as_bytes(), 0.0, &mut ValueSink).is_ok());
        for bad in [
            String::new(),
            "a.b".into(),
            format!("{t}."),
            format!(".{t}"),
            t.replacen('.', "..", 1),
            format!("{t}="),
            format!(" {t}"),
            t.replacen('.', "\n.", 1),
        ] {
            assert_eq!(
                code(v.verify(bad.as_bytes(), 0.0, &mut ValueSink)),
                "token_malformed",
                "{bad:?}"
            );
        }
        let big = token(&a, &[], &format!(r#"{{"exp":100,"pad":"{}"}}"#, "x".repeat(400)));
        assert_eq!(code(v.verify(big.as_bytes(), 0.0, &mut ValueSink)), "token_too_large");
        assert_eq!(code(v.verify(&[b'.'; 10_000], 0.0, &mut ValueSink)), "token_too_large");
        let rs = Verifier::new(
            std::slice::from_ref(&a),
            &[Alg::HS384, Alg::HS256],
            Policy::default(),
            8192,
        );
        assert_eq!(rs.unwrap_err().code(), "weak_key");
        let none = Verifier::new(std::slice::from_ref(&a), &[Alg::RS256], Policy::default(), 8192);
        assert_eq!(none.unwrap_err().code(), "invalid_configuration");
        let only384 = Verifier::new(&[hkey(None, 3)], &[Alg::HS256], Policy::default(), 8192).unwrap();
        let mut header = [("alg", Value::String("HS384".into()))];
        let t = token(&a, &header, r#"{"exp":100}"#);
        assert_eq!(
            code(only384.verify(t.as_bytes(), 0.0, &mut ValueSink)),
            "unsupported_algorithm"
        );
        header[0].1 = Value::String("none".into());
        let t = token(&a, &header, r#"{"exp":100}"#);
        assert_eq!(
            code(only384.verify(t.as_bytes(), 0.0, &mut ValueSink)),
            "unsupported_algorithm"
        );
    }

    #[test]
    fn keys_are_replaced_whole() {
        let (a, b) = (hkey(Some("a"), 1), hkey(Some("b"), 2));
        let v = Verifier::new(std::slice::from_ref(&a), &[Alg::HS256], Policy::default(), 8192).unwrap();
        let ta = token(&a, &[("kid", Value::String("a".into()))], r#"{"exp":100}"#);
        let tb = token(&b, &[("kid", Value::String("b".into()))], r#"{"exp":100}"#);
        assert!(v.verify(ta.as_bytes(), 0.0, &mut ValueSink).is_ok());
        assert_eq!(code(v.verify(tb.as_bytes(), 0.0, &mut ValueSink)), "unknown_key");
        assert_eq!(v.generation(), 0);
        v.replace_keys(std::slice::from_ref(&b)).unwrap();
        assert_eq!(v.generation(), 1);
        assert!(v.has_kid("b") && !v.has_kid("a"));
        assert!(v.verify(tb.as_bytes(), 0.0, &mut ValueSink).is_ok());
        // the header memo went with the old keys: a's header no longer selects anything
        assert_eq!(code(v.verify(ta.as_bytes(), 0.0, &mut ValueSink)), "unknown_key");
        // a set that would not build leaves the keys in place
        assert_eq!(
            v.replace_keys(&[b.clone(), b.clone()]).unwrap_err().code(),
            "invalid_key"
        );
        assert_eq!(v.replace_keys(&[]).unwrap_err().code(), "invalid_configuration");
        assert!(v.verify(tb.as_bytes(), 0.0, &mut ValueSink).is_ok());
        assert_eq!(v.generation(), 1);
        let empty = Verifier::without_keys(&[Alg::HS256], Policy::default(), 8192).unwrap();
        assert_eq!(code(empty.verify(tb.as_bytes(), 0.0, &mut ValueSink)), "unknown_key");
        assert_eq!(empty.entry_count(), 0);
        v.clear_keys();
        assert_eq!((v.entry_count(), v.generation()), (0, 2));
        assert_eq!(code(v.verify(tb.as_bytes(), 0.0, &mut ValueSink)), "unknown_key");
    }
}
