//! The fuzz targets' bodies, written once: the cargo-fuzz crate (`fuzz/`, which enables the `fuzzing`
//! feature) calls them on generated inputs, and the replay test below runs every committed corpus and
//! regression file through them under a plain `cargo test`, so a crash once found stays fixed.
//!
//! Each body feeds untrusted bytes to one parser and asserts what must hold whatever the input: no
//! panic, and for what is accepted, the invariants the callers rely on (a verified payload is an
//! object, JSON that parses writes back to the same value, a loaded key's public JWK reloads, a
//! bearer token is a b64token borrowed from the header).

use std::sync::{Arc, OnceLock};

use crate::json::{self, DocumentSink, Value};
use crate::jwt::{Alg, Key, KeySet, Policy, Verifier};

/// The RFC fixtures' keys, public halves only, in one verifier that accepts the fixtures' tokens
/// (no required claims, a clock within their lifetime), so mutations of a valid token reach every
/// step up to the signature.
fn rfc_verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let mut keys: Vec<Arc<Key>> = Vec::new();
        for text in [
            include_str!("../tests/fixtures/jwt/rfc7515.json"),
            include_str!("../tests/fixtures/jwt/rfc8037.json"),
        ] {
            let doc = json::parse_value(text.as_bytes()).expect("the fixture is JSON");
            for list in ["jwt", "jws"] {
                let Some(Value::Array(cases)) = doc.get(list) else {
                    continue;
                };
                for case in cases {
                    let Some(jwk) = case.get("jwk") else { continue };
                    let key = Key::from_jwk(jwk).expect("the fixture's key loads");
                    let public = key.public_jwk().map_or(key, |p| Key::from_jwk(&p).expect("reloads"));
                    if !keys.iter().any(|k| k.family() == public.family()) {
                        keys.push(Arc::new(public));
                    }
                }
            }
        }
        let policy = Policy {
            require: Vec::new(),
            ..Policy::default()
        };
        Verifier::new(&keys, &Alg::ALL, policy, 16 * 1024).expect("the fixture keys make a verifier")
    })
}

/// A compact JWS, through the whole verification and the signature-only path.
pub fn jwt_verify(data: &[u8]) {
    let verifier = rfc_verifier();
    if let Ok((claims, _)) = verifier.verify(data, 1_300_819_379.0, &mut DocumentSink) {
        assert!(matches!(claims, Value::Object(_)), "a verified payload is an object");
    }
    if let Ok(payload) = verifier.verify_jws(data) {
        assert!(payload.len() <= data.len(), "the payload is decoded from the token");
    }
    let _ = crate::jwt::verify::split(data, 16 * 1024);
}

/// Strict JSON: a document that parses writes back to text that parses to the same value.
pub fn json(data: &[u8]) {
    for value in [json::parse_value(data), json::parse_document(data)]
        .into_iter()
        .flatten()
    {
        let mut text = String::new();
        json::write_value(&value, &mut text);
        let again = json::parse_document(text.as_bytes()).expect("written JSON parses");
        assert_eq!(again, value, "JSON round trip of {text}");
    }
    let _ = json::parse_object(data, &mut DocumentSink);
}

/// Differential JSON against serde_json: what bastion's stricter parser accepts, serde_json accepts
/// too, with the same value (bastion refuses more: duplicate members, depth over 32, lone surrogates).
pub fn json_differential(data: &[u8]) {
    let Ok(ours) = json::parse_document(data) else { return };
    match serde_json::from_slice::<serde_json::Value>(data) {
        Ok(theirs) => assert!(same_value(&ours, &theirs), "bastion {ours:?} vs serde_json {theirs:?}"),
        // bastion keeps an integer's exact digits; serde_json (without arbitrary_precision) refuses one
        // beyond the f64 range, and that is the only refusal allowed of what bastion accepts
        Err(e) => assert!(
            has_int_beyond_f64(&ours),
            "serde_json refused what bastion accepts: {e}"
        ),
    }
}

fn has_int_beyond_f64(v: &Value) -> bool {
    match v {
        Value::BigInt(digits) => digits.parse::<f64>().is_ok_and(f64::is_infinite),
        Value::Array(items) => items.iter().any(has_int_beyond_f64),
        Value::Object(members) => members.iter().any(|(_, v)| has_int_beyond_f64(v)),
        _ => false,
    }
}

fn same_value(ours: &Value, theirs: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (ours, theirs) {
        (Value::Null, J::Null) => true,
        (Value::Bool(a), J::Bool(b)) => a == b,
        (Value::Int(a), J::Number(b)) => b.as_i64() == Some(*a) || b.as_f64() == Some(*a as f64),
        // beyond i64: serde_json keeps a u64 exactly, or rounds to the nearest f64
        (Value::BigInt(digits), J::Number(b)) => b.as_u64().map_or_else(
            || b.as_f64().is_some_and(|f| digits.parse::<f64>().ok() == Some(f)),
            |u| u.to_string() == *digits,
        ),
        (Value::Float(a), J::Number(b)) => b.as_f64() == Some(*a),
        (Value::String(a), J::String(b)) => a == b,
        (Value::Array(a), J::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(x, y)),
        (Value::Object(a), J::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => false,
    }
}

/// Opaque tokens: the default and a longer prefix; an accepted token has the exact shape.
pub fn opaque_format(data: &[u8]) {
    use crate::opaque::format::{parse, BODY_CHARS, CRC_CHARS, KINDS};
    for prefix in ["bst", "acme2026"] {
        if let Ok(parsed) = parse(data, prefix) {
            assert!(KINDS.contains(&parsed.kind));
            assert_eq!(data.len(), prefix.len() + 2 + BODY_CHARS + CRC_CHARS);
        }
    }
    if let Some(bytes) = crate::opaque::format::decode_fixed::<32>(data) {
        let text = crate::opaque::format::encode_fixed::<BODY_CHARS>(&bytes).expect("32 bytes fit in 43 chars");
        if data.len() == BODY_CHARS {
            assert_eq!(&text[..], data, "base62 bodies are canonical");
        }
    }
}

/// Key loaders: PEM, JWK and JWKS text. A loaded key's public JWK reloads as the same kind of key.
pub fn keys(data: &[u8]) {
    let _ = Key::from_pem(data, None, None);
    if let Ok(key) = Key::from_jwk_json(data) {
        if let Some(public) = key.public_jwk() {
            let again = Key::from_jwk(&public).expect("a public JWK reloads");
            assert_eq!(again.family(), key.family());
            assert!(!again.is_private());
        }
        for alg in Alg::ALL {
            if key.serves(alg) {
                let _ = key.verifying(alg);
            }
        }
    }
    for allow_symmetric in [false, true] {
        if let Ok(set) = KeySet::from_jwks_json(data, allow_symmetric) {
            assert!(allow_symmetric || set.keys.iter().all(|k| k.kty() != "oct"));
            let _ = KeySet::from_jwks(&set.to_jwks(), false).expect("a published set reloads");
        }
    }
}

/// Authorization and API-key header values: the input split on `\n` into header values.
pub fn bearer(data: &[u8]) {
    let values: Vec<&[u8]> = if data.is_empty() {
        Vec::new()
    } else {
        data.split(|&b| b == b'\n').collect()
    };
    for max in [8192 + 7, 16] {
        for token in [
            crate::bearer::parse_authorization(&values, max),
            crate::bearer::parse_api_key(&values, max),
        ]
        .into_iter()
        .flatten()
        {
            assert!(crate::bearer::is_b64token(token), "a token is a b64token");
            let start = token.as_ptr() as usize - values[0].as_ptr() as usize;
            assert!(
                start + token.len() <= values[0].len(),
                "the token is borrowed from the header"
            );
        }
    }
}

/// A target's body.
pub type Target = fn(&[u8]);

/// The targets by name, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/` call them.
pub const TARGETS: [(&str, Target); 6] = [
    ("jwt_verify", jwt_verify),
    ("json", json),
    ("json_differential", json_differential),
    ("opaque_format", opaque_format),
    ("keys", keys),
    ("bearer", bearer),
];

#[cfg(test)]
mod tests {
    use super::TARGETS;
    use std::path::Path;

    /// Every committed corpus and regression file, through its target.
    #[test]
    fn replay_the_fuzz_corpora() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        for (name, target) in TARGETS {
            let mut count = 0;
            for dir in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                    continue;
                };
                for entry in entries {
                    let path = entry.unwrap().path();
                    target(&std::fs::read(&path).unwrap());
                    count += 1;
                }
            }
            assert!(count > 0, "fuzz/corpus/{name} holds the seeds");
        }
    }

    /// The JWT seeds include tokens the target's verifier accepts, so mutations start from valid ones.
    #[test]
    fn the_rfc_tokens_verify_in_the_jwt_target() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/jwt_verify");
        let verified = std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                let token = std::fs::read(e.as_ref().unwrap().path()).unwrap();
                super::rfc_verifier().verify_jws(&token).is_ok()
            })
            .count();
        assert!(verified >= 4, "{verified} seeds verify");
    }
}
