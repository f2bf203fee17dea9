//! A strict JSON library: one parser that builds its output through a [`Sink`] (so the binding
//! layer builds Python objects straight from a token's bytes, with no intermediate tree), a plain
//! [`Value`] tree for headers, JWKs, claims and metadata, and a compact serializer.
//!
//! Stricter than RFC 8259 requires, as RFC 8725 asks of a JWT parser: input must be valid UTF-8
//! (checked once, up front), string escapes may not produce lone surrogates, numbers must be finite
//! (`NaN`, `Infinity` and overflowing exponents such as `1e400` are refused), an object may not
//! repeat a member name, and nesting is bounded by [`MAX_DEPTH`]. Whitespace is the four JSON
//! whitespace bytes only. Every failure is `token_malformed`.

use std::borrow::Cow;

use crate::error::{Error, ErrorKind, Result};

pub(crate) mod parse;
mod value;
mod write;

pub use value::{DocumentSink, Object, Value, ValueSink, MAX_VALUE_MEMBERS};
pub use write::{write_members, write_str, write_value};

/// Deepest nesting of arrays and objects accepted (the top-level object counts as 1).
pub const MAX_DEPTH: usize = 32;

/// True when an array or object inside `enclosing` others is within [`MAX_DEPTH`]: the one nesting
/// rule, of the parser and of every writer of JSON that bastion parses back (the binding's writer of
/// claims and headers), so nothing is written that the parser would refuse.
pub fn nesting_allowed(enclosing: usize) -> bool {
    enclosing < MAX_DEPTH
}

/// Where the parser puts what it reads. `object_insert` returns `false` when the key was already
/// present (the parser then rejects the document as having a duplicate member).
pub trait Sink {
    /// A finished JSON value.
    type Value;
    /// An object under construction.
    type Object;
    /// An array under construction.
    type Array;

    fn null(&mut self) -> Result<Self::Value>;
    fn boolean(&mut self, b: bool) -> Result<Self::Value>;
    fn int(&mut self, i: i64) -> Result<Self::Value>;
    /// An integer outside `i64`, as its decimal digits (with an optional leading `-`).
    fn big_int(&mut self, digits: &str) -> Result<Self::Value>;
    fn float(&mut self, f: f64) -> Result<Self::Value>;
    fn string(&mut self, s: &str) -> Result<Self::Value>;
    fn object_new(&mut self) -> Result<Self::Object>;
    /// Insert a member; `Ok(false)` when `key` was already present.
    fn object_insert(&mut self, obj: &mut Self::Object, key: &str, value: Self::Value) -> Result<bool>;
    fn object_finish(&mut self, obj: Self::Object) -> Result<Self::Value>;
    fn array_new(&mut self) -> Result<Self::Array>;
    fn array_push(&mut self, arr: &mut Self::Array, value: Self::Value) -> Result<()>;
    fn array_finish(&mut self, arr: Self::Array) -> Result<Self::Value>;

    /// The whole document [`parse_object_watching`] is about to read (by default, ignored): a sink that
    /// keeps the text, to parse it fully later if it is ever asked for, takes it here.
    fn document(&mut self, json: &[u8]) {
        let _ = json;
    }

    /// The string value of the watched top-level member in `slot` (by default, [`Sink::string`]):
    /// lets a sink hand back a value it already holds (a configured issuer or audience).
    fn claim_string(&mut self, slot: usize, s: &str) -> Result<Self::Value> {
        let _ = slot;
        self.string(s)
    }

    /// The top-level object of [`parse_object_watching`] from its members in document order;
    /// `Ok(None)` when a member name repeats. By default, one `object_insert` per member.
    fn object_from_members(&mut self, members: Members<'_, Self::Value>) -> Result<Option<Self::Value>> {
        let mut obj = self.object_new()?;
        for (key, value) in members {
            if !self.object_insert(&mut obj, &key, value)? {
                return Ok(None);
            }
        }
        self.object_finish(obj).map(Some)
    }
}

/// The members of an object in document order, names borrowed from the input when unescaped.
pub type Members<'a, V> = Vec<(Cow<'a, str>, V)>;

/// The error of every malformed document (`token_malformed`).
pub(crate) fn malformed(msg: &'static str) -> Error {
    Error::new(ErrorKind::TokenMalformed, msg)
}

/// Parse a whole document into `sink`; the top level must be an object.
pub fn parse_object<S: Sink>(input: &[u8], sink: &mut S) -> Result<S::Value> {
    let mut p = parse::Parser::new(input)?;
    p.skip_ws();
    if p.peek() != Some(b'{') {
        return Err(malformed("the JSON document is not an object"));
    }
    let v = p.value(sink, 0)?;
    p.finish()?;
    Ok(v)
}

/// Parse a whole document of any JSON type into a [`Value`].
pub fn parse_value(input: &[u8]) -> Result<Value> {
    let mut p = parse::Parser::new(input)?;
    let v = p.value(&mut ValueSink, 0)?;
    p.finish()?;
    Ok(v)
}

/// Parse a whole document of any JSON type into a [`Value`] with no cap on object members (claims,
/// opaque metadata, pickled principals): see [`DocumentSink`].
pub fn parse_document(input: &[u8]) -> Result<Value> {
    let mut p = parse::Parser::new(input)?;
    let v = p.value(&mut DocumentSink, 0)?;
    p.finish()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &str) -> Result<Value> {
        parse_object(s.as_bytes(), &mut ValueSink)
    }

    fn code(r: Result<Value>) -> &'static str {
        r.unwrap_err().code()
    }

    #[test]
    fn parses_every_type() {
        let v = obj(r#" {"a": 1, "b": -2.5e3, "c": "x\u00e9\ud83d\ude00\n", "d": [true, false, null], "e": {}, "f": 123456789012345678901234567890} "#).unwrap();
        assert_eq!(v.get("a"), Some(&Value::Int(1)));
        assert_eq!(v.get("b"), Some(&Value::Float(-2500.0)));
        assert_eq!(v.get("c").and_then(Value::as_str), Some("xé😀\n"));
        assert_eq!(
            v.get("d"),
            Some(&Value::Array(vec![Value::Bool(true), Value::Bool(false), Value::Null]))
        );
        assert_eq!(v.get("e"), Some(&Value::Object(vec![])));
        assert_eq!(
            v.get("f"),
            Some(&Value::BigInt("123456789012345678901234567890".into()))
        );
    }

    #[test]
    fn string_scan_and_integers_at_the_edges() {
        for len in 0..40 {
            let body = "a".repeat(len);
            let v = obj(&format!(r#"{{"k":"{body}","q":"{body}\"x"}}"#)).unwrap();
            assert_eq!(v.get("k").and_then(Value::as_str), Some(body.as_str()));
            assert_eq!(v.get("q").and_then(Value::as_str).map(str::len), Some(len + 2));
            for bad in ["\u{1}", "\u{1f}", "\t"] {
                let text = format!("{{\"k\":\"{body}{bad}{body}\"}}");
                assert_eq!(code(obj(&text)), "token_malformed", "{len} {bad:?}");
            }
        }
        let v = obj(r#"{"a":9223372036854775807,"b":-9223372036854775807,"c":-9223372036854775808,"d":9223372036854775808,"e":-0,"f":0}"#).unwrap();
        assert_eq!(v.get("a"), Some(&Value::Int(i64::MAX)));
        assert_eq!(v.get("b"), Some(&Value::Int(-i64::MAX)));
        assert_eq!(v.get("c"), Some(&Value::BigInt("-9223372036854775808".into())));
        assert_eq!(v.get("d"), Some(&Value::BigInt("9223372036854775808".into())));
        assert_eq!(v.get("e"), Some(&Value::Int(0)));
        assert_eq!(v.get("f"), Some(&Value::Int(0)));
        // non-ASCII bytes (>= 0x80) are not special
        assert_eq!(
            obj(r#"{"k":"éééééééééé"}"#).unwrap().get("k").and_then(Value::as_str),
            Some("éééééééééé")
        );
    }

    #[test]
    fn rejects_duplicates_at_any_depth() {
        assert_eq!(code(obj(r#"{"a":1,"a":2}"#)), "token_malformed");
        assert_eq!(code(obj(r#"{"x":{"a":1,"a":1}}"#)), "token_malformed");
        // escaped spelling of the same name is still a duplicate
        assert_eq!(code(obj(r#"{"a":1,"\u0061":2}"#)), "token_malformed");
    }

    #[test]
    fn rejects_non_finite_and_bad_numbers() {
        for bad in [
            r#"{"a":NaN}"#,
            r#"{"a":Infinity}"#,
            r#"{"a":-Infinity}"#,
            r#"{"a":1e400}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":+1}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
        ] {
            assert_eq!(code(obj(bad)), "token_malformed", "{bad}");
        }
    }

    #[test]
    fn rejects_bad_strings() {
        for bad in [
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00"}"#,
            r#"{"a":"\ud800\u0041"}"#,
            r#"{"a":"\x"}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":"abc}"#,
            r#"{"a":"\u12"}"#,
        ] {
            assert_eq!(code(obj(bad)), "token_malformed", "{bad}");
        }
        assert_eq!(
            code(parse_object(b"{\"a\":\"\xff\"}", &mut ValueSink)),
            "token_malformed"
        );
    }

    #[test]
    fn rejects_structure_errors() {
        for bad in [
            "",
            "[]",
            "1",
            "\"s\"",
            "{",
            "{}x",
            "{}{}",
            "{\"a\"}",
            "{\"a\":1,}",
            "{,}",
            "{'a':1}",
            "{\"a\":[1,]}",
            "{\"a\":tru}",
            "\u{feff}{}",
            "{\"a\":1}\u{a0}",
        ] {
            assert_eq!(code(obj(bad)), "token_malformed", "{bad:?}");
        }
    }

    #[test]
    fn writes_what_it_reads() {
        let text = r#"{"a":[1,-2.5,true,null,"q\"\\\n\u0001é"],"b":{},"c":123456789012345678901234567890}"#;
        let v = parse_value(text.as_bytes()).unwrap();
        let mut out = String::new();
        write_value(&v, &mut out);
        assert_eq!(parse_value(out.as_bytes()).unwrap(), v);
    }

    #[test]
    fn bounds_depth() {
        let ok = format!("{}1{}", "{\"a\":".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert!(obj(&ok).is_ok());
        let deep = format!("{}1{}", "{\"a\":".repeat(MAX_DEPTH + 1), "}".repeat(MAX_DEPTH + 1));
        assert_eq!(code(obj(&deep)), "token_malformed");
        let arrays = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(code(obj(&arrays)), "token_malformed");
    }

    #[test]
    fn documents_have_no_member_cap_and_no_duplicates() {
        let members = |n: usize, dup: Option<usize>| {
            let body: Vec<String> = (0..n)
                .map(|i| format!("\"m{}\":{i}", dup.filter(|_| i == n - 1).unwrap_or(i)))
                .collect();
            format!("{{{}}}", body.join(","))
        };
        let big = members(500, None);
        assert_eq!(code(obj(&big)), "token_malformed", "ValueSink keeps its cap");
        match parse_document(big.as_bytes()).unwrap() {
            Value::Object(m) => assert_eq!((m.len(), m[499].0.as_str()), (500, "m499")),
            other => panic!("{other:?}"),
        }
        for n in [2, 16, 17, 500] {
            let text = members(n, Some(0));
            assert_eq!(
                parse_document(text.as_bytes()).unwrap_err().code(),
                "token_malformed",
                "{n}"
            );
            let nested = format!("{{\"x\":[{text}]}}");
            assert_eq!(
                parse_document(nested.as_bytes()).unwrap_err().code(),
                "token_malformed",
                "{n}"
            );
        }
        assert_eq!(parse_document(b"null").unwrap(), Value::Null);
        assert_eq!(parse_document(b"NaN").unwrap_err().code(), "token_malformed");
    }

    #[test]
    fn floats_and_big_integers_round_trip_exactly() {
        for f in [
            0.1,
            -2.5e-308,
            1e300,
            5.0,
            1.0 / 3.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            123_456_789.123_456_78,
        ] {
            let mut out = String::new();
            write_value(&Value::Float(f), &mut out);
            assert_eq!(parse_document(out.as_bytes()).unwrap(), Value::Float(f), "{out}");
        }
        let big = "18446744073709551615";
        let mut out = String::new();
        write_value(&parse_document(big.as_bytes()).unwrap(), &mut out);
        assert_eq!(out, big);
    }
}
