//! Criterion benchmarks of the JWT core without Python: `make bench-rust` (or
//! `cargo bench --no-default-features --bench jwt`).
//!
//! The token is the one `python -m bastion bench jwt` verifies: header `{alg, kid, typ: "JWT"}`, claims
//! iss, sub, aud, exp, iat, nbf, jti, scope, role; keys generated at start (RSA 2048, P-256, Ed25519, a
//! 32-byte HMAC secret), the verifier holding only the public half (from the key's public JWK) and
//! checking issuer and audience. A verification reads the wall clock, as the binding does, and builds
//! the claims as a [`Value`] tree (the binding builds a Python `dict` instead).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use _core::json::{Sink, Value, ValueSink};
use _core::jwt::header;
use _core::jwt::verify::{parse_payload, split, DEFAULT_MAX_TOKEN_BYTES};
use _core::jwt::{Alg, Key, Policy, Signer, Verifier};
use _core::Result;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "api://reports";
const KID: &str = "key-2026-11";
const ALGS: [Alg; 4] = [Alg::HS256, Alg::RS256, Alg::ES256, Alg::EdDSA];

fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64()
}

fn claims_json(now: i64) -> String {
    format!(
        r#"{{"iss":"{ISSUER}","sub":"user_8c1f2b7e","aud":"{AUDIENCE}","exp":{exp},"iat":{now},"nbf":{now},"jti":"4f1c6a2e-8a4b-4f7e-9d3c-1b2a3c4d5e6f","scope":"read:reports write:reports","role":"analyst"}}"#,
        exp = now + 3600,
    )
}

/// A token signed with a fresh key for `alg`, the key a resource server holds (the secret for HMAC, the
/// public JWK otherwise) and a verifier over that key.
struct Fixture {
    token: String,
    key: Arc<Key>,
    verifier: Verifier,
}

fn fixture(alg: Alg) -> Fixture {
    let private = Key::generate(alg, Some(KID.to_owned())).expect("key generation");
    let signer = Signer::new(&private, alg).expect("signer");
    let token = signer
        .sign_json(
            &[("typ", Value::String("JWT".into()))],
            claims_json(wall_now() as i64).as_bytes(),
        )
        .expect("signing");
    let key = Arc::new(match private.public_jwk() {
        Some(jwk) => Key::from_jwk(&jwk).expect("public JWK"),
        None => private,
    });
    let policy = Policy {
        issuers: Some(vec![ISSUER.to_owned()]),
        audiences: Some(vec![AUDIENCE.to_owned()]),
        ..Policy::default()
    };
    let verifier =
        Verifier::new(std::slice::from_ref(&key), &[alg], policy, DEFAULT_MAX_TOKEN_BYTES).expect("verifier");
    let (claims, _) = verifier
        .verify(token.as_bytes(), wall_now(), &mut ValueSink)
        .expect("the fixture verifies");
    assert_eq!(claims.get("sub").and_then(Value::as_str), Some("user_8c1f2b7e"));
    Fixture { token, key, verifier }
}

/// A sink that builds nothing: what verification costs before any output is made (the binding's
/// sink builds the Python dict instead, `ValueSink` a `Value` tree). It does not detect duplicate
/// members, which the benchmark token does not have.
struct Discard;

impl Sink for Discard {
    type Value = ();
    type Object = ();
    type Array = ();

    fn null(&mut self) -> Result<()> {
        Ok(())
    }
    fn boolean(&mut self, _: bool) -> Result<()> {
        Ok(())
    }
    fn int(&mut self, _: i64) -> Result<()> {
        Ok(())
    }
    fn big_int(&mut self, _: &str) -> Result<()> {
        Ok(())
    }
    fn float(&mut self, _: f64) -> Result<()> {
        Ok(())
    }
    fn string(&mut self, _: &str) -> Result<()> {
        Ok(())
    }
    fn object_new(&mut self) -> Result<()> {
        Ok(())
    }
    fn object_insert(&mut self, (): &mut (), _: &str, (): ()) -> Result<bool> {
        Ok(true)
    }
    fn object_finish(&mut self, (): ()) -> Result<()> {
        Ok(())
    }
    fn array_new(&mut self) -> Result<()> {
        Ok(())
    }
    fn array_push(&mut self, (): &mut (), (): ()) -> Result<()> {
        Ok(())
    }
    fn array_finish(&mut self, (): ()) -> Result<()> {
        Ok(())
    }
}

fn verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("jwt verify -> claims");
    for alg in ALGS {
        let fx = fixture(alg);
        g.bench_function(BenchmarkId::from_parameter(alg.name()), |b| {
            b.iter(|| {
                fx.verifier
                    .verify(black_box(fx.token.as_bytes()), wall_now(), &mut ValueSink)
                    .expect("valid")
            });
        });
    }
    let fx = fixture(Alg::HS256);
    g.bench_function("HS256, claims discarded (no output built)", |b| {
        b.iter(|| {
            fx.verifier
                .verify(black_box(fx.token.as_bytes()), wall_now(), &mut Discard)
                .expect("valid")
        });
    });
    g.finish();
}

/// The signature check alone (aws-lc; RustCrypto HMAC for HS256), on the token's own signing input:
/// the verification minus this is bastion's parsing, key selection and claim checks.
fn signature_only(c: &mut Criterion) {
    let mut g = c.benchmark_group("jwt signature only");
    for alg in ALGS {
        let fx = fixture(alg);
        let parts = split(fx.token.as_bytes(), DEFAULT_MAX_TOKEN_BYTES).expect("split");
        let verifying = fx.key.verifying(alg).expect("verifying key");
        g.bench_function(BenchmarkId::from_parameter(alg.name()), |b| {
            b.iter(|| {
                verifying
                    .verify(black_box(parts.signing_input), black_box(&parts.signature))
                    .expect("valid");
            });
        });
    }
    g.finish();
}

/// Structure and JSON without any key: base64url-decode the three segments, parse the header, parse
/// the claims (with the registered ones picked out); and the claims JSON alone.
fn parse(c: &mut Criterion) {
    let token = fixture(Alg::HS256).token;
    let mut g = c.benchmark_group("jwt parse (no signature)");
    g.bench_function("split + header + claims", |b| {
        b.iter(|| {
            let parts = split(black_box(token.as_bytes()), DEFAULT_MAX_TOKEN_BYTES).expect("split");
            let h = header::parse(&parts.header).expect("header");
            let (claims, registered) = parse_payload(&parts.payload, &mut ValueSink).expect("claims");
            (h, claims, registered.iter().flatten().count())
        });
    });
    let parts = split(token.as_bytes(), DEFAULT_MAX_TOKEN_BYTES).expect("split");
    g.bench_function("claims JSON only", |b| {
        b.iter(|| {
            let (claims, registered) = parse_payload(black_box(&parts.payload), &mut ValueSink).expect("claims");
            (claims, registered.iter().flatten().count())
        });
    });
    g.finish();
}

criterion_group!(benches, verify, signature_only, parse);
criterion_main!(benches);
