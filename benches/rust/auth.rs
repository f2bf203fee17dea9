//! Criterion benchmarks of the request-path pieces without Python: `cargo bench --no-default-features
//! --bench auth`.
//!
//! The header is a JWT-sized bearer value; the rule set holds 20 rules shaped like a real API's (literal
//! health checks, `{id}` routes with methods, `*` subtrees), and requests hit the first rule, the last
//! rule, or none (the default, the worst case: every rule is tried).

use std::hint::black_box;

use _core::auth::{authorize, AuthMode, Rule, RuleSet};
use _core::bearer::{parse_authorization, DEFAULT_MAX_HEADER_BYTES};
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

criterion_group!(benches, bench_header, bench_rules);
criterion_main!(benches);
