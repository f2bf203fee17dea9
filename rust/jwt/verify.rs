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
use std::sync::{Arc, OnceLock};

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

/// A configured verifier. Immutable (but for its header memo) and `Sync`: one instance serves every thread.
#[derive(Debug)]
pub struct Verifier {
    known_headers: [OnceLock<KnownHeader>; KNOWN_HEADERS],
    algorithms: Vec<Alg>,
    allowed: [bool; N_ALGS],
    entries: Vec<Entry>,
    by_kid: HashMap<String, [Option<usize>; N_ALGS]>,
    by_alg: [Slot; N_ALGS],
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
            for alg in &algs {
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
        Ok(Verifier {
            known_headers: Default::default(),
            algorithms: algs,
            allowed,
            entries,
            by_kid,
            by_alg,
            policy,
            max_token_bytes,
        })
    }

    /// The allow-list, without duplicates, in the order given.
    pub fn algorithms(&self) -> &[Alg] {
        &self.algorithms
    }

    /// How many (key, alg) pairs this verifier can use.
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// Everything before the payload JSON and the signature (size, structure, header, allow-list,
    /// key), then `f` on the result, which parses the payload, checks the signature and the claims.
    /// The decoded segments live on this call's stack.
    pub fn with_prepared<R>(&self, token: &[u8], f: impl FnOnce(&Prepared<'_>) -> Result<R>) -> Result<R> {
        let (first, second) = dots(token, self.max_token_bytes)?;
        let segment = &token[..first];
        let mut parsed: Option<Header> = None;
        let (header, idx) = if let Some(known) = self.known_header(segment) {
            known
        } else {
            let header = header::parse(&b64::decode(segment)?)?;
            let idx = self.select(&header)?;
            (&*parsed.insert(header), idx)
        };
        let result = b64::with_decoded::<STACK_SIGNATURE, _>(&token[second + 1..], |signature| {
            b64::with_decoded::<STACK_PAYLOAD, _>(&token[first + 1..second], |payload| {
                f(&Prepared {
                    header,
                    payload,
                    signature,
                    signing_input: &token[..second],
                    entry: &self.entries[idx],
                })
            })
        })?;
        if let Some(header) = parsed {
            self.remember_header(segment, header, idx);
        }
        Ok(result)
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

    fn select(&self, header: &Header) -> Result<usize> {
        let alg = header.alg;
        if !self.allowed[alg.index()] {
            return Err(Error::new(
                ErrorKind::UnsupportedAlgorithm,
                "the token's algorithm is not allowed",
            ));
        }
        let unknown = || Error::new(ErrorKind::UnknownKey, "no key matches the token");
        let idx = match &header.kid {
            Some(kid) => self.by_kid.get(kid.as_str()).ok_or_else(unknown)?[alg.index()].ok_or_else(|| {
                Error::new(
                    ErrorKind::UnsupportedAlgorithm,
                    "the token's algorithm does not match its key",
                )
            })?,
            None => match self.by_alg[alg.index()] {
                Slot::One(i) => i,
                Slot::Empty | Slot::Many => return Err(unknown()),
            },
        };
        Ok(idx)
    }

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
}
