//! Criterion benchmarks of the request-path pieces without Python: `cargo bench --no-default-features
//! --bench auth`.
//!
//! The header is a JWT-sized bearer value; the rule set holds 20 rules shaped like a real API's (literal
//! health checks, `{id}` routes with methods, `*` subtrees), and requests hit the first rule, the last
//! rule, or none (the default, the worst case: every rule is tried).
//!
//! "fused request" is the whole of one request as the binding runs it, without Python: the rule match,
//! the Authorization header, [`flow::step`] over a pure-Rust [`Backends`] (a real HS256 [`Verifier`],
//! the claims into a [`Principal`], a real in-process [`Limiter`] on a rate that never runs dry, the
//! rule's scope) — uncached, and with the verified-principal cache the binding keeps for `cache_size`.
//! The difference to `python -m bastion bench middleware` is the interpreter's share.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use _core::auth::flow::{self, Backends, Credential, Limit, Lookup, Step};
use _core::auth::{authorize, AuthMode, Rule, RuleSet};
use _core::bearer::{parse_authorization, DEFAULT_MAX_HEADER_BYTES};
use _core::clock::{Clock, MonotonicClock};
use _core::json::Value;
use _core::jwt::cache::Cache;
use _core::jwt::claims::check_times;
use _core::jwt::identity::IdentitySink;
use _core::jwt::verify::DEFAULT_MAX_TOKEN_BYTES;
use _core::jwt::{Alg, Key, Policy, Signer, Verifier};
use _core::principal::Principal;
use _core::ratelimit::{self, Limiter, Rate, Tier};
use _core::{Error, ErrorKind, Result};
use criterion::{criterion_group, criterion_main, Criterion};

const JWT: &str = "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyXzEiLCJzY29wZSI6InJlYWQ6cmVwb3J0cyIsImV4cCI6NDEwMjQ0NDgwMH0.dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSBidXQgaXQgaXM";

fn rules() -> RuleSet {
    let none: &[&str] = &[];
    let mut rules = vec![
        Rule::new("/health", None, none, none, AuthMode::None).unwrap(),
        Rule::new("/metrics", None, none, none, AuthMode::None).unwrap(),
        Rule::new("/public/*", None, none, none, AuthMode::Optional).unwrap(),
    ];
    for resource in [
        "reports", "users", "orders", "invoices", "teams", "projects", "files", "events",
    ] {
        let item = format!("/api/v1/{resource}/{{id}}");
        let write = format!("write:{resource}");
        let scope = [write.as_str()];
        rules.push(Rule::new(&item, Some(&["DELETE", "PUT"]), none, &["admin"], AuthMode::Required).unwrap());
        let tree = format!("/api/v1/{resource}*");
        rules.push(Rule::new(&tree, Some(&["POST"]), &scope, none, AuthMode::Required).unwrap());
    }
    rules.push(
        Rule::new(
            "/api/v2/{tenant}/items/{id}/history",
            None,
            none,
            none,
            AuthMode::Required,
        )
        .unwrap(),
    );
    assert_eq!(rules.len(), 20);
    RuleSet::new(rules, AuthMode::Required)
}

fn bench_header(c: &mut Criterion) {
    let mut g = c.benchmark_group("bearer header");
    let header = JWT.as_bytes();
    g.bench_function("parse one Authorization value (JWT, 190 bytes)", |b| {
        b.iter(|| parse_authorization(black_box(&[header]), DEFAULT_MAX_HEADER_BYTES).map(<[u8]>::len));
    });
    g.bench_function("refuse another scheme (Basic)", |b| {
        b.iter(|| parse_authorization(black_box(&[&b"Basic dXNlcjpwYXNz"[..]]), DEFAULT_MAX_HEADER_BYTES).is_err());
    });
    g.finish();
}

fn bench_rules(c: &mut Criterion) {
    let set = rules();
    let mut g = c.benchmark_group("rule match, 20 rules");
    for (name, method, path) in [
        ("first rule (literal)", "GET", "/health"),
        ("a {id} rule in the middle", "DELETE", "/api/v1/files/42"),
        ("last rule (two params)", "GET", "/api/v2/acme/items/7/history"),
        ("no rule: the default (all 20 tried)", "GET", "/api/v3/unknown/path"),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                set.find(black_box(method.as_bytes()), black_box(path.as_bytes()))
                    .map(|r| r.map(|(i, _)| i))
            });
        });
    }
    let admin = &set.rules()[3];
    g.bench_function("authorize (one role among three)", |b| {
        b.iter(|| {
            authorize(
                black_box(admin),
                &["read:reports"],
                black_box(&["user", "staff", "admin"]),
            )
        });
    });
    g.finish();
}

const SECRET: &[u8] = b"bench-middleware-secret-0123456789abcdef";

fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64()
}

/// The rate decision as the flow reads it (a local newtype: the trait and the type are both the core's).
struct Decided(ratelimit::Decision);

impl flow::Verdict for Decided {
    fn allowed(&self) -> bool {
        self.0.allowed
    }
    fn retry_after(&self) -> f64 {
        self.0.retry_after_ns() as f64 / 1e9
    }
    fn unavailable(&self) -> bool {
        false
    }
}

/// What the binding's backends do, over Rust values: verify the JWT (through the principal cache when
/// there is one), build the principal from its claims, and check the one tier of the limiter.
struct Rust {
    verifier: Verifier,
    cache: Option<Cache<Arc<Principal>>>,
    limiter: Limiter,
    clock: MonotonicClock,
}

impl Backends for Rust {
    type Principal = Arc<Principal>;
    type Miss = ();
    type Decision = Decided;
    type KeyNeed = ();

    fn has_opaque(&self) -> bool {
        false
    }
    fn jwt(&self, token: &[u8], now: f64) -> Result<(Arc<Principal>, Option<f64>)> {
        if let Some(cache) = &self.cache {
            if let Some((times, p)) = cache.with(token, |times, p| (*times, Arc::clone(p))) {
                check_times(&times, self.verifier.policy.leeway, now)?;
                return Ok((p, times.iat));
            }
        }
        let mut sink = IdentitySink::default();
        let (_, times) = self.verifier.verify(token, now, &mut sink)?;
        let principal = Arc::new(sink.principal(&times)?);
        if let Some(cache) = &self.cache {
            drop(cache.insert(token, times, Arc::clone(&principal)));
        }
        Ok((principal, times.iat))
    }
    fn key_need(&self, _token: &[u8]) -> Option<()> {
        None
    }
    fn opaque(&self, _token: &[u8], _now: f64) -> Result<Lookup<Arc<Principal>, ()>> {
        Err(Error::new(ErrorKind::TokenMalformed, "the token is not a compact JWS"))
    }
    fn jwt_revoked(&self, _principal: &Principal, _iat: Option<f64>, _now: f64) -> bool {
        false
    }
    fn limit(&self, principal: &Arc<Principal>) -> Result<Limit<Decided>> {
        let digest = self.limiter.digest(principal.rate_limit_key().as_bytes());
        let mut d = ratelimit::Decision::new(0, 0);
        self.limiter.check_into(0, digest, 1, self.clock.now_ns(), &mut d)?;
        Ok(Limit::Decided(Decided(d)))
    }
}

fn rust_backends(cache_size: usize) -> Rust {
    let key = Arc::new(Key::hmac(SECRET, None, Some(Alg::HS256)).expect("key"));
    let verifier = Verifier::new(&[key], &[Alg::HS256], Policy::default(), DEFAULT_MAX_TOKEN_BYTES).expect("verifier");
    let tier = Tier::limited(
        "default",
        vec![Rate::new(1_000_000_000, 1_000_000_000, None).expect("rate")],
    )
    .expect("tier");
    let policy = ratelimit::Policy::new(vec![tier], None).expect("policy");
    Rust {
        verifier,
        cache: (cache_size > 0).then(|| Cache::new(cache_size)),
        limiter: Limiter::new(policy, 1024).expect("limiter"),
        clock: MonotonicClock::new(),
    }
}

/// The middleware benchmark's token: HS256 over sub, iat, nbf, exp, jti and scope `read`.
fn bearer() -> String {
    let now = wall_now() as i64;
    let claims = format!(
        r#"{{"sub":"user_8c1f2b7e","iat":{now},"nbf":{now},"exp":{exp},"jti":"4f1c6a2e-8a4b-4f7e-9d3c-1b2a3c4d5e6f","scope":"read","type":"access","fresh":false}}"#,
        exp = now + 3600
    );
    let key = Key::hmac(SECRET, None, Some(Alg::HS256)).expect("key");
    let token = Signer::new(&key, Alg::HS256)
        .expect("signer")
        .sign_json(&[("typ", Value::String("JWT".into()))], claims.as_bytes())
        .expect("signing");
    format!("Bearer {token}")
}

/// One request through the rule set, the header and the flow: true when admitted.
fn request(backends: &Rust, set: &RuleSet, header: &[u8]) -> bool {
    let rule = set.find(b"GET", b"/api/items").expect("rule match").map(|(_, r)| r);
    let credential = parse_authorization(&[header], DEFAULT_MAX_HEADER_BYTES).map(Credential::Bearer);
    matches!(
        flow::step(backends, rule, set.default_mode(), credential, wall_now()),
        Step::Done { principal: Some(_), .. }
    )
}

fn bench_flow(c: &mut Criterion) {
    let none: &[&str] = &[];
    let set = RuleSet::new(
        vec![Rule::new("/api/*", None, &["read"], none, AuthMode::Required).expect("rule")],
        AuthMode::Required,
    );
    let header = bearer();
    let mut g = c.benchmark_group("fused request (rule, header, HS256, principal, limiter, scope)");
    for (name, cache_size) in [("HS256, no cache", 0), ("repeated HS256 token (cache of 1024)", 1024)] {
        let backends = rust_backends(cache_size);
        assert!(
            request(&backends, &set, header.as_bytes()),
            "the benchmark's token is admitted"
        );
        g.bench_function(name, |b| {
            b.iter(|| request(black_box(&backends), &set, black_box(header.as_bytes())));
        });
    }
    g.finish();
}

/// One request's audit line, as the writer's thread formats it (without the interpreter): an admitted
/// JWT request with two scopes, a role, a tier and a client address.
fn bench_audit(c: &mut Criterion) {
    use _core::audit::{Entry, Line};
    use _core::principal::{name_set, TokenType};
    let principal: Arc<dyn AsRef<Principal> + Send + Sync> = Arc::new(Principal {
        subject: "user_8c1f2b7e".into(),
        client_id: None,
        scopes: name_set(["read", "write:reports"]),
        roles: name_set(["analyst"]),
        tier: None,
        token_type: TokenType::Jwt,
        token_id: Some("4f1c6a2e-8a4b-4f7e-9d3c-1b2a3c4d5e6f".into()),
        issuer: None,
        expires_at: f64::INFINITY,
        machine: false,
        claims: None,
    });
    let entry = Entry {
        timestamp: 1_800_000_000.123,
        method: "GET".into(),
        path: "/api/v1/reports/42".into(),
        status: Some(200),
        request_id: "9f86d081884c7d659a2feaa0c55ad015".into(),
        client_address: Some("203.0.113.7".into()),
        duration_ms: 0.412,
        decided: true,
        principal: Some(principal),
        tier: Some("internal".into()),
        remaining: Some(998),
        route: Some("/api/v1/reports/{id}".into()),
        ..Entry::default()
    };
    let mut g = c.benchmark_group("audit");
    let mut line = Line::Entry(entry);
    let mut out = String::with_capacity(1024);
    g.bench_function("one request's JSON line", |b| {
        b.iter(|| {
            out.clear();
            black_box(&mut line).write("INFO", "bastion.audit", &mut out);
            out.len()
        });
    });
    g.finish();
}

criterion_group!(benches, bench_header, bench_rules, bench_flow, bench_audit);
criterion_main!(benches);
