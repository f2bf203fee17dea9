//! RFC 6750 bearer credentials: the `Authorization` header values of one request → the token bytes
//! (§2.1), an API-key header → the same, and the `WWW-Authenticate` challenge text (§3).
//!
//! The parser sees raw header bytes and borrows the token out of them (no copy). It decides two things
//! only: "no bearer credential here" (`missing_token`: no header, or another scheme — the challenge then
//! carries no error, RFC 6750 §3.1) and "a bearer credential, but malformed" (`invalid_request`, 400).
//!
//! Choices the RFCs leave to us, made strict but sensible:
//! - Several `Authorization` headers are `invalid_request` whatever they hold: the field is not a
//!   list (RFC 9110 §5.3 allows repeating only list-valued fields), and picking one would let a proxy
//!   and the application disagree about which credential was checked.
//! - Leading and trailing OWS (SP / HTAB) around the whole value is ignored: it is not part of the
//!   field value (RFC 9110 §5.5), servers normally strip it already, and a stray trailing space from a
//!   client's string formatting is no attack. Inside the value the grammar is exact: the scheme, then
//!   one or more SP (never HTAB), then exactly one b64token and nothing after it.
//! - A value holding a control byte other than HTAB (NUL, CR, LF, DEL, …) is not a valid field value
//!   (RFC 9110 §5.5) and is `invalid_request` whatever its scheme; so is any value over the size cap,
//!   checked before a single byte is looked at.
//! - The scheme is the leading run of `token` characters (RFC 9110 §5.6.2): `Bearerx abc` is scheme
//!   `Bearerx` (another scheme), while `Bearer\tabc` or `Bearer,abc` is the Bearer scheme followed by
//!   something that is not `1*SP b64token`. An empty value has no scheme: `missing_token`.
//!
//! Over 400 lines only with its unit tests, which stay beside the code (the crate's convention); the parser
//! and the challenge builder are about 220.

use crate::error::{Error, ErrorKind, Result};
use crate::jwt::verify::DEFAULT_MAX_TOKEN_BYTES;

/// The default cap on one `Authorization` value: the JWT verifier's default `max_token_bytes` (the
/// longest token worth reading) plus `"Bearer "`.
pub const DEFAULT_MAX_HEADER_BYTES: usize = DEFAULT_MAX_TOKEN_BYTES + SCHEME.len() + 1;

const SCHEME: &[u8] = b"bearer";

fn invalid(message: &'static str) -> Error {
    Error::new(ErrorKind::InvalidRequest, message)
}

/// The error for a header value over the size cap (the binding raises it before encoding a long `str`).
pub fn header_too_large() -> Error {
    invalid("the header is too large")
}

fn missing() -> Error {
    Error::new(ErrorKind::MissingToken, "an Authorization: Bearer token is required")
}

/// The bearer token of a request, from all of its `Authorization` header values (zero, one or more),
/// each at most `max_bytes` long. The token is borrowed from the value it was found in.
///
/// Errors: `missing_token` for no header, an empty one or another scheme; `invalid_request` for several
/// headers, a value over `max_bytes`, a control byte, or a Bearer value that is not `1*SP b64token`.
pub fn parse_authorization<'a>(values: &[&'a [u8]], max_bytes: usize) -> Result<&'a [u8]> {
    let value = capped(single(values, "send one Authorization header, not several")?, max_bytes)?;
    let value = trim_ows(value);
    let Some(rest) = strip_scheme(value) else {
        // not ours to parse, but still not a header value if it holds control bytes
        no_controls(value)?;
        return Err(missing());
    };
    // at least one SP, and only SP: HTAB between scheme and token is not in RFC 6750's grammar
    let spaces = rest.iter().take_while(|&&b| b == b' ').count();
    if spaces == 0 {
        return Err(if rest.is_empty() {
            invalid("the Bearer scheme needs a token")
        } else {
            invalid("the Bearer scheme must be followed by one or more spaces and the token")
        });
    }
    // b64token admits no control byte, so this one pass is also the field-value check
    b64token(&rest[spaces..])
}

/// The token carried bare (no scheme) in an API-key header such as `X-API-Key`, from all of that
/// header's values, each at most `max_bytes` long. Same token grammar and byte rules as
/// [`parse_authorization`].
///
/// Errors: `missing_token` for no header; `invalid_request` for several headers, an empty value, a
/// value over `max_bytes`, a control byte, or a value that is not one b64token.
pub fn parse_api_key<'a>(values: &[&'a [u8]], max_bytes: usize) -> Result<&'a [u8]> {
    let value = capped(single(values, "send one API key header, not several")?, max_bytes)?;
    b64token(trim_ows(value))
}

/// The one value of a header that may not repeat.
fn single<'a>(values: &[&'a [u8]], several: &'static str) -> Result<&'a [u8]> {
    match values {
        [] => Err(missing()),
        [one] => Ok(one),
        _ => Err(invalid(several)),
    }
}

/// A header value within the cap, checked before a single byte is looked at.
fn capped(value: &[u8], max_bytes: usize) -> Result<&[u8]> {
    if value.len() > max_bytes {
        return Err(header_too_large());
    }
    Ok(value)
}

/// No control byte other than HTAB (RFC 9110 §5.5 field-value).
fn no_controls(value: &[u8]) -> Result<()> {
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(invalid("the header contains control characters"));
    }
    Ok(())
}

/// `value` without surrounding OWS (SP / HTAB only: CR, LF and the like stay, and are refused).
fn trim_ows(value: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !ows(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &value[start..end]
}

/// What follows the scheme when `value` uses the Bearer scheme (case-insensitive), else `None`.
fn strip_scheme(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(SCHEME.len())?;
    let bearer = scheme.eq_ignore_ascii_case(SCHEME) && rest.first().is_none_or(|&b| !is_tchar(b));
    bearer.then_some(rest)
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` and nothing else.
fn b64token(token: &[u8]) -> Result<&[u8]> {
    if token.is_empty() {
        return Err(invalid("the token is empty"));
    }
    let body = token.len() - token.iter().rev().take_while(|&&b| b == b'=').count();
    if body == 0 {
        return Err(invalid("the token is empty"));
    }
    // no early exit: the whole body is folded, which the compiler turns into wide compares
    if token[..body].iter().fold(true, |ok, &b| ok & is_b64char(b)) {
        Ok(token)
    } else {
        Err(invalid("the token contains characters a bearer token cannot hold"))
    }
}

/// Whether `token` is exactly one RFC 6750 b64token.
pub fn is_b64token(token: &[u8]) -> bool {
    b64token(token).is_ok()
}

/// A b64token character (`ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/"`), as range compares only (no
/// branch, no table), so that a run of them is checked many bytes at a time.
#[inline]
#[allow(clippy::needless_bitwise_bool)] // branchless on purpose: a lazy `||` would stop the wide compares
fn is_b64char(b: u8) -> bool {
    let letter = (b | 0x20).wrapping_sub(b'a') < 26; // `| 0x20` folds ASCII upper case onto lower
    let digit = b.wrapping_sub(b'0') < 10;
    letter | digit | (b == b'-') | (b == b'.') | (b == b'_') | (b == b'~') | (b == b'+') | (b == b'/')
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}

// ------------------------------------------------------------------------------------------------
// the challenge

/// The `WWW-Authenticate` value of RFC 6750 §3:
/// `Bearer realm="…", error="…", error_description="…", scope="…"`.
///
/// Each attribute is written only when given and non-empty. No input can break out of its quoted
/// string or the header: in `error`, `error_description` and `scope` every character outside
/// `%x20-21 / %x23-5B / %x5D-7E` (the RFC's set: no `"`, no `\`, no control or non-ASCII character)
/// becomes `?`; the realm is a quoted-string (RFC 9110 §5.6.4) whose `"` and `\` are escaped with `\`,
/// and whose control and non-ASCII characters become `?` as well.
pub fn challenge(realm: &str, rfc_error: Option<&str>, description: Option<&str>, scope: Option<&str>) -> String {
    let mut out = String::with_capacity(
        16 + realm.len()
            + [rfc_error, description, scope]
                .iter()
                .flatten()
                .map(|s| s.len() + 24)
                .sum::<usize>(),
    );
    out.push_str("Bearer");
    let mut first = true;
    let mut open = |out: &mut String, name: &str| {
        out.push_str(if first { " " } else { ", " });
        first = false;
        out.push_str(name);
        out.push_str("=\"");
    };
    if !realm.is_empty() {
        open(&mut out, "realm");
        for c in realm.chars() {
            match c {
                '"' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                ' '..='~' => out.push(c),
                _ => out.push('?'),
            }
        }
        out.push('"');
    }
    for (name, value) in [
        ("error", rfc_error),
        ("error_description", description),
        ("scope", scope),
    ] {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        open(&mut out, name);
        out.extend(value.chars().map(|c| match c {
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            _ => '?',
        }));
        out.push('"');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64chars_are_exactly_the_grammars() {
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            assert_eq!(is_b64char(b), want, "{b:#04x}");
        }
    }

    const CAP: usize = DEFAULT_MAX_HEADER_BYTES;

    fn parse(value: &[u8]) -> Result<&[u8]> {
        parse_authorization(&[value], CAP)
    }

    fn kind(r: Result<&[u8]>) -> ErrorKind {
        r.expect_err("refused").kind
    }

    #[test]
    fn accepts_one_b64token_after_the_scheme() {
        assert_eq!(parse(b"Bearer abc.DEF-_~+/09").unwrap(), b"abc.DEF-_~+/09");
        assert_eq!(parse(b"bearer abc").unwrap(), b"abc");
        assert_eq!(parse(b"BEARER abc").unwrap(), b"abc");
        assert_eq!(parse(b"bEaReR abc==").unwrap(), b"abc==");
        assert_eq!(parse(b"Bearer    abc").unwrap(), b"abc");
        // surrounding OWS is not part of the field value
        assert_eq!(parse(b"  Bearer abc \t").unwrap(), b"abc");
    }

    #[test]
    fn the_token_is_borrowed_from_the_header() {
        let header = b"Bearer tok".to_vec();
        let token = parse(&header).unwrap();
        assert_eq!(token.as_ptr(), header[7..].as_ptr());
    }

    #[test]
    fn no_bearer_credential_is_missing_token() {
        assert_eq!(kind(parse_authorization(&[], CAP)), ErrorKind::MissingToken);
        for v in [
            &b""[..],
            b"   ",
            b"Basic dXNlcjpwYXNz",
            b"Token abc",
            b"Bearerx abc",
            b"Bearer-abc",
            b"xBearer abc",
        ] {
            assert_eq!(
                kind(parse(v)),
                ErrorKind::MissingToken,
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
        // another scheme may carry non-ASCII (Basic with UTF-8): still not ours to judge
        assert_eq!(kind(parse("Basic é".as_bytes())), ErrorKind::MissingToken);
    }

    #[test]
    fn malformed_bearer_values_are_invalid_request() {
        for v in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearer   ",
            b"Bearer\tabc",
            b"Bearer\r\nabc",
            b"Bearer \r\n abc",
            b"Bearer\x0cabc",
            b"Bearer \tabc",
            b"Bearer,abc",
            b"Bearer=abc",
            b"Bearer abc def",
            b"Bearer abc,def",
            b"Bearer \"abc\"",
            b"Bearer a=b",
            b"Bearer =",
            b"Bearer ==abc",
            b"Bearer abc=x=",
            b"Bearer realm=\"x\"",
            b"Bearer ab\xc3\xa9",
            b"Bearer ab\xff",
            b"Bearer abc\0",
            b"Bearer abc\r\nX-Evil: 1",
            b"Bearer abc\x7f",
        ] {
            assert_eq!(
                kind(parse(v)),
                ErrorKind::InvalidRequest,
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
        // control bytes are refused whatever the scheme
        assert_eq!(kind(parse(b"Basic abc\r\n")), ErrorKind::InvalidRequest);
        assert_eq!(kind(parse(b"\0Bearer abc")), ErrorKind::InvalidRequest);
    }

    #[test]
    fn several_headers_are_invalid_request_whatever_they_hold() {
        let two: [&[u8]; 2] = [b"Bearer abc", b"Bearer abc"];
        assert_eq!(kind(parse_authorization(&two, CAP)), ErrorKind::InvalidRequest);
        let mixed: [&[u8]; 2] = [b"Basic x", b""];
        assert_eq!(kind(parse_authorization(&mixed, CAP)), ErrorKind::InvalidRequest);
    }

    #[test]
    fn the_cap_is_on_the_whole_value() {
        let token = "a".repeat(DEFAULT_MAX_TOKEN_BYTES);
        let at_cap = format!("Bearer {token}");
        assert_eq!(at_cap.len(), CAP);
        assert_eq!(parse(at_cap.as_bytes()).unwrap(), token.as_bytes());
        let over = format!("Bearer {token}a");
        assert_eq!(kind(parse(over.as_bytes())), ErrorKind::InvalidRequest);
        assert_eq!(
            kind(parse_authorization(&[b"Bearer abcd"], 10)),
            ErrorKind::InvalidRequest
        );
        assert_eq!(parse_authorization(&[b"Bearer abc"], 10).unwrap(), b"abc");
        // a huge value of another scheme is refused without being scanned
        let basic = format!("Basic {}", "a".repeat(100_000));
        assert_eq!(kind(parse(basic.as_bytes())), ErrorKind::InvalidRequest);
    }

    #[test]
    fn api_keys_are_bare_b64tokens() {
        assert_eq!(parse_api_key(&[b"bstk_abc123"], CAP).unwrap(), b"bstk_abc123");
        assert_eq!(parse_api_key(&[b" key== "], CAP).unwrap(), b"key==");
        assert_eq!(kind(parse_api_key(&[], CAP)), ErrorKind::MissingToken);
        for v in [&b""[..], b"  ", b"Bearer abc", b"a=b", b"k\xc3\xa9", b"key\r\n", b"=="] {
            assert_eq!(kind(parse_api_key(&[v], CAP)), ErrorKind::InvalidRequest, "{v:?}");
        }
        let two: [&[u8]; 2] = [b"k1", b"k2"];
        assert_eq!(kind(parse_api_key(&two, CAP)), ErrorKind::InvalidRequest);
        assert_eq!(kind(parse_api_key(&[b"abcdef"], 5)), ErrorKind::InvalidRequest);
    }

    #[test]
    fn messages_never_echo_the_header() {
        for v in [&b"Bearer sec=ret"[..], b"Bearer secret\r\n", b"Bearer secret extra"] {
            let e = parse(v).unwrap_err();
            assert!(!e.message.contains("sec"), "{}", e.message);
        }
    }

    #[test]
    fn challenge_layout() {
        assert_eq!(challenge("api", None, None, None), r#"Bearer realm="api""#);
        assert_eq!(
            challenge("api", Some("invalid_token"), Some("the token has expired"), None),
            r#"Bearer realm="api", error="invalid_token", error_description="the token has expired""#
        );
        assert_eq!(
            challenge(
                "api",
                Some("insufficient_scope"),
                None,
                Some("read:reports write:reports")
            ),
            r#"Bearer realm="api", error="insufficient_scope", scope="read:reports write:reports""#
        );
        assert_eq!(challenge("", None, Some(""), Some("")), "Bearer");
        assert_eq!(
            challenge("", Some("invalid_request"), None, None),
            r#"Bearer error="invalid_request""#
        );
    }

    #[test]
    fn challenge_cannot_be_broken_out_of() {
        let got = challenge(
            "a\"b\\c\r\nd",
            Some("x\"y"),
            Some("line\r\nSet-Cookie: a=\"b\"\\"),
            Some("é\0s"),
        );
        assert_eq!(
            got,
            r#"Bearer realm="a\"b\\c??d", error="x?y", error_description="line??Set-Cookie: a=?b??", scope="??s""#
        );
        assert!(got.bytes().all(|b| (0x20..0x7f).contains(&b)));
    }
}
