//! Route rules: which authentication a request needs (`required`, `optional`, `none`) and which scopes
//! and roles, chosen by path pattern and method; the first rule that matches wins. (About 400 lines
//! of code and 200 of tests: validation, compilation, matching and `authorize` all read the one
//! compiled `Rule`, and splitting them would spread its invariants over several files.)
//!
//! Patterns (`/api/v1/reports/{id}`, `/reports*`, `/public/*`) are compiled once: a literal-only
//! pattern is one slice comparison, a literal prefix followed by `*` one `starts_with`, anything with a
//! `{name}` a literal-prefix check and then one walk over the path bytes. Matching never allocates.
//!
//! - `{name}` matches exactly one non-empty segment (no `/`).
//! - A trailing `*` makes the pattern a prefix of the path *string*: `/reports*` matches `/reports`,
//!   `/reports/1` and `/reportsX`; `/public/*` matches `/public/` and everything below it, not
//!   `/public`. A `*` anywhere else is refused.
//! - Paths are compared byte for byte and case-sensitively, as Starlette, Flask and Django route.
//! - Rules match the path the application itself routes on: the percent-decoded path (ASGI
//!   `scope["path"]`, WSGI `PATH_INFO`), so `%2F` or `%41` cannot make the two disagree. A request path
//!   with a `.` or `..` segment or an empty segment before the last (`/a//b`) is refused with
//!   `invalid_request` instead of being matched: whether a router, a file handler or a proxy behind this
//!   layer would resolve `/api/v1/reports/../admin` to `/admin` is not ours to guess, and a rule chosen
//!   for the wrong path is a bypass. RFC 3986 clients never send such paths (§5.2.4 removes dot segments).
//! - Methods compare case-insensitively; a rule naming `GET` also matches `HEAD`, because the
//!   frameworks answer `HEAD` with the `GET` handler — otherwise `HEAD` would skip the rule's scopes.

use crate::error::{Error, ErrorKind, Result};

/// How much authentication a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMode {
    /// A valid token is required (the default for paths no rule matches).
    Required,
    /// A token is verified if one is sent; a request without one goes through anonymous.
    Optional,
    /// No token is looked at.
    None,
}

impl AuthMode {
    /// Every mode, as the Python `Rule(auth=...)` names them.
    pub const ALL: [AuthMode; 3] = [AuthMode::Required, AuthMode::Optional, AuthMode::None];

    /// The name used in configuration: `"required"`, `"optional"` or `"none"`.
    pub const fn name(self) -> &'static str {
        match self {
            AuthMode::Required => "required",
            AuthMode::Optional => "optional",
            AuthMode::None => "none",
        }
    }

    /// The mode of a configuration name; anything else is `invalid_configuration`.
    pub fn from_name(name: &str) -> Result<AuthMode> {
        AuthMode::ALL.into_iter().find(|m| m.name() == name).ok_or_else(|| {
            config(format!(
                "auth must be \"required\", \"optional\" or \"none\", not {name:?}"
            ))
        })
    }
}

fn config(message: String) -> Error {
    Error::new(ErrorKind::InvalidConfiguration, message)
}

/// A compiled path pattern.
#[derive(Debug, Clone)]
enum Pattern {
    /// No parameter, no `*`: the whole path.
    Exact(Box<[u8]>),
    /// Literal text then a trailing `*`: a prefix of the path.
    Prefix(Box<[u8]>),
    /// At least one `{name}`: the literal text before the first one (a cheap reject), the segments,
    /// and the literal of a trailing `*` segment if there is one.
    Segments {
        prefix: Box<[u8]>,
        segs: Box<[Seg]>,
        tail: Option<Box<[u8]>>,
    },
}

#[derive(Debug, Clone)]
enum Seg {
    Literal(Box<[u8]>),
    Param,
}

impl Pattern {
    fn compile(path: &str) -> std::result::Result<Pattern, String> {
        if !path.starts_with('/') {
            return Err("the path must start with '/'".into());
        }
        if let Some(c) = path.chars().find(|c| c.is_control() || matches!(c, '?' | '#' | '%')) {
            return Err(format!(
                "{c:?} cannot appear in a path pattern (patterns match the decoded path, without query or fragment)"
            ));
        }
        let (body, star) = match path.strip_suffix('*') {
            Some(body) => (body, true),
            None => (path, false),
        };
        if body.contains('*') {
            return Err("'*' is only allowed at the end of the pattern".into());
        }
        let mut pieces: Vec<&str> = body[1..].split('/').collect();
        let tail = if star { pieces.pop() } else { None };
        if tail.is_some_and(|t| t.contains(['{', '}'])) {
            return Err("a trailing '*' must follow literal text, not a {parameter}".into());
        }
        let mut names: Vec<&str> = Vec::new();
        let mut segs = Vec::with_capacity(pieces.len());
        let count = pieces.len();
        for (i, piece) in pieces.into_iter().enumerate() {
            if let Some(name) = piece.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if !is_ident(name) {
                    return Err(format!("{{{name}}} is not a parameter name (letters, digits, '_')"));
                }
                if names.contains(&name) {
                    return Err(format!("the parameter {{{name}}} appears twice"));
                }
                names.push(name);
                segs.push(Seg::Param);
            } else if piece.contains(['{', '}']) {
                return Err("'{' and '}' must enclose a whole segment, as in /reports/{id}".into());
            } else if piece.is_empty() && (i + 1 < count || star) {
                return Err("the pattern has an empty segment ('//')".into());
            } else if piece == "." || piece == ".." {
                return Err("'.' and '..' segments never match: such request paths are refused".into());
            } else {
                segs.push(Seg::Literal(piece.as_bytes().into()));
            }
        }
        Ok(if names.is_empty() {
            if star {
                Pattern::Prefix(body.as_bytes().into())
            } else {
                Pattern::Exact(path.as_bytes().into())
            }
        } else {
            Pattern::Segments {
                prefix: path.as_bytes()[..path.find('{').unwrap_or(0)].into(),
                segs: segs.into(),
                tail: tail.map(|t| t.as_bytes().into()),
            }
        })
    }

    fn matches(&self, path: &[u8]) -> bool {
        match self {
            Pattern::Exact(p) => path == &**p,
            Pattern::Prefix(p) => path.starts_with(p),
            Pattern::Segments { prefix, segs, tail } => path.starts_with(prefix) && walk(segs, tail.as_deref(), path),
        }
    }
}

fn walk(segs: &[Seg], tail: Option<&[u8]>, path: &[u8]) -> bool {
    let mut rest = path;
    for seg in segs {
        let Some(after_slash) = rest.strip_prefix(b"/") else {
            return false;
        };
        let end = after_slash.iter().position(|&b| b == b'/').unwrap_or(after_slash.len());
        let (segment, after) = after_slash.split_at(end);
        let ok = match seg {
            Seg::Literal(lit) => segment == &**lit,
            Seg::Param => !segment.is_empty(),
        };
        if !ok {
            return false;
        }
        rest = after;
    }
    match tail {
        None => rest.is_empty(),
        Some(t) => rest.strip_prefix(b"/").is_some_and(|r| r.starts_with(t)),
    }
}

fn is_ident(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// RFC 9110 §5.6.2 `tchar`: what a method name is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 6749 §3.3 `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

/// Whether a request path is in normal form: no `.` or `..` segment, no empty segment but the last.
fn is_normal(path: &[u8]) -> bool {
    let mut pieces = path.split(|&b| b == b'/').skip(1).peekable();
    while let Some(piece) = pieces.next() {
        if piece == b"." || piece == b".." || (piece.is_empty() && pieces.peek().is_some()) {
            return false;
        }
    }
    true
}

/// One route rule, validated and compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    path: Box<str>,
    pattern: Pattern,
    methods: Option<Box<[Box<str>]>>,
    // whether `HEAD` requests match through a listed `GET`
    head: bool,
    scopes: Box<[Box<str>]>,
    roles: Box<[Box<str>]>,
    auth: AuthMode,
}

impl Rule {
    /// Compile a rule. `methods`: `None` for every method, else a non-empty list of method names
    /// (stored upper-case, duplicates dropped). `scopes`: all of them are required (each one RFC 6749
    /// scope-token). `roles`: any one of them is required (non-empty, no whitespace or control
    /// characters). Scopes and roles need `auth` [`AuthMode::Required`].
    ///
    /// Errors: `invalid_configuration`, with a message naming the rule and what to change.
    pub fn new<S: AsRef<str>>(
        path: &str,
        methods: Option<&[S]>,
        scopes: &[S],
        roles: &[S],
        auth: AuthMode,
    ) -> Result<Rule> {
        let fail = |what: String| config(format!("rule {path:?}: {what}"));
        let pattern = Pattern::compile(path).map_err(fail)?;
        let methods = match methods {
            None => None,
            Some([]) => {
                return Err(fail(
                    "methods=[] would match no request; pass None to match every method".into(),
                ))
            }
            Some(list) => {
                let mut upper: Vec<Box<str>> = Vec::with_capacity(list.len());
                for m in list {
                    let m = m.as_ref();
                    if m.is_empty() || !m.bytes().all(is_tchar) {
                        return Err(fail(format!("{m:?} is not an HTTP method name")));
                    }
                    let m = m.to_ascii_uppercase().into_boxed_str();
                    if !upper.contains(&m) {
                        upper.push(m);
                    }
                }
                Some(upper.into_boxed_slice())
            }
        };
        let head = methods.as_deref().is_some_and(|ms| ms.iter().any(|m| &**m == "GET"));
        for s in scopes.iter().map(AsRef::as_ref) {
            if s.is_empty() {
                return Err(fail("an empty scope string; remove it or name the scope".into()));
            }
            if !is_scope_token(s) {
                return Err(fail(format!(
                    "scope {s:?} is not one scope token (no spaces, quotes, backslashes or non-ASCII); \
                     pass each scope as its own string"
                )));
            }
        }
        for r in roles.iter().map(AsRef::as_ref) {
            if r.is_empty() || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(fail(format!("role {r:?} must be a non-empty name without whitespace")));
            }
        }
        if auth != AuthMode::Required && !(scopes.is_empty() && roles.is_empty()) {
            return Err(fail(format!(
                "auth={:?} cannot require scopes or roles (an anonymous request would pass); use auth=\"required\"",
                auth.name()
            )));
        }
        let names = |list: &[S]| -> Box<[Box<str>]> {
            let mut out: Vec<Box<str>> = Vec::with_capacity(list.len());
            for s in list.iter().map(AsRef::as_ref) {
                if !out.iter().any(|o| &**o == s) {
                    out.push(s.into());
                }
            }
            out.into_boxed_slice()
        };
        Ok(Rule {
            path: path.into(),
            pattern,
            methods,
            head,
            scopes: names(scopes),
            roles: names(roles),
            auth,
        })
    }

    /// The path pattern as written.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The methods it applies to (upper-case), or `None` for every method.
    pub fn methods(&self) -> Option<&[Box<str>]> {
        self.methods.as_deref()
    }

    /// The scopes a principal must all hold.
    pub fn scopes(&self) -> &[Box<str>] {
        &self.scopes
    }

    /// The roles of which a principal must hold one (none listed: no role needed).
    pub fn roles(&self) -> &[Box<str>] {
        &self.roles
    }

    /// How much authentication the rule asks for.
    pub fn auth(&self) -> AuthMode {
        self.auth
    }

    /// Whether the rule applies to this method and (normal-form) path.
    pub fn matches(&self, method: &[u8], path: &[u8]) -> bool {
        let method_ok = match &self.methods {
            None => true,
            Some(ms) => {
                ms.iter().any(|m| m.as_bytes().eq_ignore_ascii_case(method))
                    || (self.head && method.eq_ignore_ascii_case(b"HEAD"))
            }
        };
        method_ok && self.pattern.matches(path)
    }
}

/// The outcome of [`authorize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'r> {
    /// The principal may use the route.
    Allowed,
    /// A required scope is missing; carries every scope the rule requires (RFC 6750 §3 `scope`).
    InsufficientScope(&'r [Box<str>]),
    /// None of the rule's roles is held.
    Forbidden,
}

/// Whether a principal holding `scopes` and `roles` satisfies `rule`: every scope of the rule, and one
/// of its roles when it lists any. Roles are checked first: a principal without the role cannot be
/// helped by a token with more scopes, so `forbidden` is the truthful answer.
pub fn authorize<'r, S: AsRef<str>, R: AsRef<str>>(rule: &'r Rule, scopes: &[S], roles: &[R]) -> Verdict<'r> {
    if !rule.roles.is_empty()
        && !roles
            .iter()
            .any(|r| rule.roles.iter().any(|want| **want == *r.as_ref()))
    {
        return Verdict::Forbidden;
    }
    if rule
        .scopes
        .iter()
        .all(|want| scopes.iter().any(|s| s.as_ref() == &**want))
    {
        Verdict::Allowed
    } else {
        Verdict::InsufficientScope(&rule.scopes)
    }
}

/// Rules in order, and the mode for a path none of them matches.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Box<[Rule]>,
    default: AuthMode,
}

impl RuleSet {
    /// A rule set; `default` applies where no rule matches ([`AuthMode::Required`] is the secure choice).
    pub fn new(rules: Vec<Rule>, default: AuthMode) -> RuleSet {
        RuleSet {
            rules: rules.into_boxed_slice(),
            default,
        }
    }

    /// The first rule whose method and path match, with its index; `None` when the default applies.
    ///
    /// Errors: `invalid_request` for a path not in normal form (a `.` or `..` segment, or an empty
    /// segment before the last).
    pub fn find(&self, method: &[u8], path: &[u8]) -> Result<Option<(usize, &Rule)>> {
        if !is_normal(path) {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                "the request path has '.', '..' or empty segments; send it in normal form",
            ));
        }
        Ok(self.rules.iter().enumerate().find(|(_, r)| r.matches(method, path)))
    }

    /// The rules, in matching order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The mode for paths no rule matches.
    pub fn default_mode(&self) -> AuthMode {
        self.default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: &[&str] = &[];

    fn rule(path: &str) -> Rule {
        Rule::new(path, None, NONE, NONE, AuthMode::Required).expect(path)
    }

    fn hits(path_pattern: &str, path: &str) -> bool {
        rule(path_pattern).matches(b"GET", path.as_bytes())
    }

    fn refused(path: &str, methods: Option<&[&str]>, scopes: &[&str], roles: &[&str], auth: AuthMode) -> String {
        let e = Rule::new(path, methods, scopes, roles, auth).expect_err("refused");
        assert_eq!(e.kind, ErrorKind::InvalidConfiguration);
        e.message.into_owned()
    }

    #[test]
    fn literal_patterns_match_the_whole_path() {
        assert!(hits("/health", "/health"));
        assert!(!hits("/health", "/health/"));
        assert!(!hits("/health", "/healthz"));
        assert!(!hits("/health", "/Health"));
        assert!(hits("/", "/"));
        assert!(!hits("/", ""));
        assert!(hits("/api/", "/api/"));
        assert!(!hits("/api/", "/api"));
    }

    #[test]
    fn params_match_one_non_empty_segment() {
        let p = "/api/v1/reports/{id}";
        assert!(hits(p, "/api/v1/reports/42"));
        assert!(hits(p, "/api/v1/reports/a.b-c"));
        assert!(!hits(p, "/api/v1/reports/"));
        assert!(!hits(p, "/api/v1/reports"));
        assert!(!hits(p, "/api/v1/reports/42/x"));
        assert!(hits("/u/{user}/r/{rid}", "/u/ann/r/7"));
        assert!(!hits("/u/{user}/r/{rid}", "/u/ann/x/7"));
        assert!(hits("/{any}", "/x"));
        assert!(!hits("/{any}", "/"));
    }

    #[test]
    fn a_trailing_star_is_a_prefix_of_the_path() {
        for p in ["/reports", "/reports/1", "/reportsX", "/reports/a/b"] {
            assert!(hits("/reports*", p), "{p}");
        }
        assert!(!hits("/reports*", "/report"));
        assert!(hits("/public/*", "/public/"));
        assert!(hits("/public/*", "/public/a/b.css"));
        assert!(!hits("/public/*", "/public"));
        assert!(!hits("/public/*", "/publicX"));
        assert!(hits("/*", "/anything/at/all"));
        assert!(hits("/u/{id}/files/*", "/u/7/files/a/b"));
        assert!(!hits("/u/{id}/files/*", "/u/7/files"));
        assert!(hits("/u/{id}/f*", "/u/7/fx"));
    }

    #[test]
    fn bad_patterns_are_refused_with_advice() {
        let r = |p: &str| refused(p, None, NONE, NONE, AuthMode::Required);
        assert!(r("health").contains("start with '/'"));
        assert!(r("/a/*/b").contains("only allowed at the end"));
        assert!(r("/a/{id}*").contains("literal text"));
        assert!(r("/a/{id").contains("whole segment"));
        assert!(r("/a/x{id}").contains("whole segment"));
        assert!(r("/a/{}").contains("parameter name"));
        assert!(r("/a/{1x}").contains("parameter name"));
        assert!(r("/a/{id}/{id}").contains("twice"));
        assert!(r("/a//b").contains("empty segment"));
        assert!(r("//*").contains("empty segment"));
        assert!(r("/a/../b").contains("'..'"));
        assert!(r("/a?x=1").contains("query"));
        assert!(r("/a%20b").contains("decoded"));
        assert!(r("/a\nb").contains("decoded"));
    }

    #[test]
    fn methods_scopes_and_roles_are_validated() {
        let any = AuthMode::Required;
        assert!(refused("/a", Some(&[]), NONE, NONE, any).contains("pass None"));
        assert!(refused("/a", Some(&["GE T"]), NONE, NONE, any).contains("HTTP method"));
        assert!(refused("/a", Some(&[""]), NONE, NONE, any).contains("HTTP method"));
        assert!(refused("/a", None, &[""], NONE, any).contains("empty scope"));
        assert!(refused("/a", None, &["read write"], NONE, any).contains("own string"));
        assert!(refused("/a", None, &["a\"b"], NONE, any).contains("scope"));
        assert!(refused("/a", None, NONE, &[""], any).contains("role"));
        assert!(refused("/a", None, NONE, &["ad min"], any).contains("role"));
        assert!(refused("/a", None, &["read"], NONE, AuthMode::None).contains("auth=\"required\""));
        assert!(refused("/a", None, NONE, &["admin"], AuthMode::Optional).contains("auth=\"required\""));
        let ok = Rule::new("/a", Some(&["get", "GET", "Post"]), &["r", "r"], &["admin"], any).unwrap();
        assert_eq!(ok.methods().unwrap(), &["GET".into(), "POST".into()] as &[Box<str>]);
        assert_eq!(ok.scopes(), &["r".into()] as &[Box<str>]);
        assert!(ok.matches(b"get", b"/a") && ok.matches(b"pOsT", b"/a") && !ok.matches(b"PUT", b"/a"));
        // GET implies HEAD; HEAD does not imply GET
        assert!(ok.matches(b"HEAD", b"/a"));
        let head = Rule::new("/a", Some(&["HEAD"]), NONE, NONE, any).unwrap();
        assert!(head.matches(b"HEAD", b"/a") && !head.matches(b"GET", b"/a"));
        let post = Rule::new("/a", Some(&["POST"]), NONE, NONE, any).unwrap();
        assert!(!post.matches(b"HEAD", b"/a"));
    }

    #[test]
    fn auth_modes_round_trip_by_name() {
        for m in AuthMode::ALL {
            assert_eq!(AuthMode::from_name(m.name()).unwrap(), m);
        }
        let e = AuthMode::from_name("Required").unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidConfiguration);
        assert!(e.message.contains("\"required\", \"optional\" or \"none\""));
    }

    fn set() -> RuleSet {
        let none: &[&str] = &[];
        RuleSet::new(
            vec![
                Rule::new(
                    "/api/v1/reports/{id}",
                    Some(&["DELETE"]),
                    none,
                    &["admin"],
                    AuthMode::Required,
                )
                .unwrap(),
                Rule::new("/api/v1/reports*", None, &["read:reports"], none, AuthMode::Required).unwrap(),
                Rule::new("/health", None, none, none, AuthMode::None).unwrap(),
                Rule::new("/public/*", None, none, none, AuthMode::Optional).unwrap(),
            ],
            AuthMode::Required,
        )
    }

    fn index(set: &RuleSet, method: &str, path: &str) -> Option<usize> {
        set.find(method.as_bytes(), path.as_bytes()).unwrap().map(|(i, _)| i)
    }

    #[test]
    fn first_match_wins_and_the_default_applies_elsewhere() {
        let s = set();
        assert_eq!(index(&s, "DELETE", "/api/v1/reports/7"), Some(0));
        assert_eq!(index(&s, "GET", "/api/v1/reports/7"), Some(1));
        assert_eq!(index(&s, "delete", "/api/v1/reports"), Some(1));
        assert_eq!(index(&s, "GET", "/health"), Some(2));
        assert_eq!(index(&s, "GET", "/public/x"), Some(3));
        assert_eq!(index(&s, "GET", "/admin"), None);
        assert_eq!(index(&s, "GET", ""), None);
        assert_eq!(index(&s, "OPTIONS", "*"), None);
        assert_eq!(s.default_mode(), AuthMode::Required);
        assert_eq!(s.rules()[3].auth(), AuthMode::Optional);
    }

    #[test]
    fn paths_not_in_normal_form_are_refused() {
        let s = set();
        for p in [
            "/api/v1/reports/../admin",
            "/public/../admin",
            "/public/./x",
            "/public/..",
            "/..",
            "/.",
            "//admin",
            "/public//x",
            "/a/b//",
        ] {
            let e = s.find(b"GET", p.as_bytes()).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidRequest, "{p}");
        }
        // dots inside a segment are ordinary characters
        assert_eq!(index(&s, "GET", "/public/.well-known/x..y"), Some(3));
        assert_eq!(index(&s, "GET", "/public/"), Some(3));
        assert_eq!(index(&s, "GET", "/"), None);
    }

    #[test]
    fn authorize_checks_roles_then_every_scope() {
        let s = set();
        let (admin, reports) = (&s.rules()[0], &s.rules()[1]);
        let none: &[&str] = &[];
        assert_eq!(authorize(admin, none, &["user", "admin"]), Verdict::Allowed);
        assert_eq!(authorize(admin, &["read:reports"], &["user"]), Verdict::Forbidden);
        assert_eq!(authorize(reports, &["read:reports", "x"], none), Verdict::Allowed);
        assert_eq!(
            authorize(reports, &["read:report"], none),
            Verdict::InsufficientScope(reports.scopes())
        );
        let both = Rule::new("/x", None, &["a", "b"], &["r1", "r2"], AuthMode::Required).unwrap();
        assert_eq!(authorize(&both, &["b", "a"], &["r2"]), Verdict::Allowed);
        assert_eq!(
            authorize(&both, &["a"], &["r2"]),
            Verdict::InsufficientScope(both.scopes())
        );
        assert_eq!(authorize(&both, &["a", "b"], &["r3"]), Verdict::Forbidden);
        assert_eq!(authorize(&s.rules()[2], none, none), Verdict::Allowed);
    }
}
