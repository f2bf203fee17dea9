//! Criterion benchmarks of the opaque-token core without Python: `make bench-rust` (or
//! `cargo bench --no-default-features --bench opaque`).
//!
//! Tokens are bastion's format (`bstk_<43 base62><6 base62 CRC>`); the index holds records shaped like
//! those of `python -m bastion bench opaque` (subject, one scope, one role, a tier). A probe reads the
//! wall clock, as the binding does, and answers a hit through `probe_cached` (the binding's path).

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use _core::opaque::digest::sha256;
use _core::opaque::format;
use _core::opaque::{Config, Digester, Fast, Index, Probe, Record};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

const PEPPER_ID: &str = "2026-11";
const PEPPER: &[u8] = b"bench-pepper-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
const SIZES: [usize; 2] = [1_000, 1_000_000];

fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64()
}

fn digester() -> Digester {
    Digester::new(&[(PEPPER_ID.to_owned(), PEPPER.to_vec())], PEPPER_ID).expect("digester")
}

/// The `i`-th token body: SplitMix64 output, distinct for every `i` (the index never sees the body, only
/// the keyed digest, so a CSPRNG adds nothing here).
fn body(i: u64) -> [u8; format::BODY_BYTES] {
    let mut out = [0u8; format::BODY_BYTES];
    let mut x = i.wrapping_mul(4).wrapping_add(0x1234_5678);
    for chunk in out.chunks_exact_mut(8) {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

fn token(i: u64) -> String {
    format::encode("bst", b'k', &body(i))
}

fn record(i: usize, now: f64) -> Record {
    Record {
        id: format!("tok_{i:08}"),
        kind: b'k',
        subject: format!("user_{i}"),
        client_id: None,
        scopes: vec!["read:reports".to_owned()],
        roles: vec!["user".to_owned()],
        tier: Some("third_party".to_owned()),
        created_at: now,
        expires_at: now + 30.0 * 86_400.0,
        revoked_at: None,
        subject_valid_after: None,
        metadata: None,
    }
}

/// An index of `n` records and their tokens, in insertion order.
fn index(n: usize, config: Config) -> (Index<()>, Vec<String>) {
    let index = Index::<()>::new(config, digester()).expect("index");
    let now = wall_now();
    let tokens: Vec<String> = (0..n as u64).map(token).collect();
    for (i, t) in tokens.iter().enumerate() {
        index.insert(index.digester().current(t.as_bytes()), record(i, now));
    }
    assert_eq!(index.len(), n);
    (index, tokens)
}

fn hit(index: &Index<()>, token: &[u8]) -> u8 {
    match index.probe_cached(token, wall_now(), |e| Some(e.kind)) {
        Ok(Fast::Cached(kind)) => kind,
        _ => panic!("expected an index hit"),
    }
}

fn format_and_digest(c: &mut Criterion) {
    let t = token(7);
    let d = digester();
    let hmac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, PEPPER);
    assert!(format::parse(t.as_bytes(), "bst").is_ok());
    let mut g = c.benchmark_group("opaque token");
    g.bench_function("format check (shape, alphabet, CRC32)", |b| {
        b.iter(|| format::parse(black_box(t.as_bytes()), "bst").expect("well-formed"));
    });
    g.bench_function("digest: keyed BLAKE3 (the index key)", |b| {
        b.iter(|| d.current(black_box(t.as_bytes())));
    });
    // what `Digester::candidates` computes for the HMAC-SHA256 scheme (imported stores)
    g.bench_function("digest: HMAC-SHA256 (aws-lc)", |b| {
        b.iter(|| aws_lc_rs::hmac::sign(&hmac_key, black_box(t.as_bytes())));
    });
    g.bench_function("digest: SHA-256 (unkeyed imports)", |b| {
        b.iter(|| sha256(black_box(t.as_bytes())));
    });
    g.bench_function("every candidate digest of a miss", |b| {
        b.iter(|| d.candidates(black_box(t.as_bytes()), false));
    });
    g.finish();
}

fn lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("opaque index probe");
    for n in SIZES {
        let config = Config {
            negative_ttl: 1e9, // the "remembered miss" case must stay remembered for the whole run
            ..Config::default()
        };
        let (idx, tokens) = index(n, config);
        let one = tokens[n / 2].as_bytes();
        assert_eq!(hit(&idx, one), b'k');
        g.bench_function(BenchmarkId::new("hit, one token", n), |b| {
            b.iter(|| hit(&idx, black_box(one)));
        });
        let mut cycle = tokens.iter().cycle();
        g.bench_function(BenchmarkId::new("hit, cycling over every token", n), |b| {
            b.iter(|| hit(&idx, cycle.next().expect("endless").as_bytes()));
        });
        let unknown = token(u64::MAX);
        assert!(matches!(idx.probe(unknown.as_bytes(), wall_now()), Ok(Probe::Miss(_))));
        g.bench_function(BenchmarkId::new("miss (returns the digests to look up)", n), |b| {
            b.iter(|| match idx.probe(black_box(unknown.as_bytes()), wall_now()) {
                Ok(Probe::Miss(miss)) => miss,
                _ => panic!("expected a miss"),
            });
        });
        let Ok(Probe::Miss(miss)) = idx.probe(unknown.as_bytes(), wall_now()) else {
            panic!("expected a miss")
        };
        let settled = idx.admit(&miss, None, wall_now());
        assert_eq!(settled.err().map(|e| e.code()), Some("unknown_token"));
        g.bench_function(BenchmarkId::new("miss remembered (negative cache)", n), |b| {
            b.iter(|| {
                let err = idx.probe(black_box(unknown.as_bytes()), wall_now()).err();
                assert!(err.is_some(), "expected unknown_token");
                err
            });
        });
        let last = if unknown.ends_with('x') { 'y' } else { 'x' };
        let malformed = format!("{}{last}", &unknown[..unknown.len() - 1]);
        let refused = idx.probe(malformed.as_bytes(), wall_now()).err().map(|e| e.code());
        assert_eq!(refused, Some("token_malformed"));
        g.bench_function(BenchmarkId::new("malformed (bad checksum)", n), |b| {
            b.iter(|| {
                let err = idx.probe(black_box(malformed.as_bytes()), wall_now()).err();
                assert!(err.is_some(), "expected token_malformed");
                err
            });
        });
    }
    g.finish();
}

criterion_group!(benches, format_and_digest, lookup);
criterion_main!(benches);
