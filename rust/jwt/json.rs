//! A strict JSON parser that builds its output through a [`Sink`], so the binding layer can build
//! Python objects straight from the token's bytes (no intermediate tree, no second conversion).
//!
//! Stricter than RFC 8259 requires, as RFC 8725 asks of a JWT parser: input must be valid UTF-8
//! (checked once, up front), string escapes may not produce lone surrogates, numbers must be finite
//! (`NaN`, `Infinity` and overflowing exponents such as `1e400` are refused), an object may not
//! repeat a member name, and nesting is bounded by [`MAX_DEPTH`]. Whitespace is the four JSON
//! whitespace bytes only. Every failure is `token_malformed`.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::error::{Error, ErrorKind, Result};

/// Deepest nesting of arrays and objects accepted (the top-level object counts as 1).
pub const MAX_DEPTH: usize = 32;

/// Most members of one object read into a [`Value`] (headers, JWKs; claims go to Python dicts).
pub const MAX_VALUE_MEMBERS: usize = 128;

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

/// Members room reserved up front for a payload (an access token has about ten claims).
const MEMBERS_CAPACITY: usize = 16;

pub(crate) fn malformed(msg: &'static str) -> Error {
    Error::new(ErrorKind::TokenMalformed, msg)
}

/// A plain Rust JSON value, for headers, JWKs and tests. Objects keep member order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    BigInt(String),
    Float(f64),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number as `f64`, if this is a JSON number (never for booleans or strings).
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::BigInt(d) => d.parse::<f64>().ok(),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// Builds [`Value`]s.
#[derive(Debug, Default)]
pub struct ValueSink;

impl Sink for ValueSink {
    type Value = Value;
    type Object = Vec<(String, Value)>;
    type Array = Vec<Value>;

    fn null(&mut self) -> Result<Value> {
        Ok(Value::Null)
    }
    fn boolean(&mut self, b: bool) -> Result<Value> {
        Ok(Value::Bool(b))
    }
    fn int(&mut self, i: i64) -> Result<Value> {
        Ok(Value::Int(i))
    }
    fn big_int(&mut self, digits: &str) -> Result<Value> {
        Ok(Value::BigInt(digits.to_owned()))
    }
    fn float(&mut self, f: f64) -> Result<Value> {
        Ok(Value::Float(f))
    }
    fn string(&mut self, s: &str) -> Result<Value> {
        Ok(Value::String(s.to_owned()))
    }
    fn object_new(&mut self) -> Result<Self::Object> {
        Ok(Vec::new())
    }
    fn object_insert(&mut self, obj: &mut Self::Object, key: &str, value: Value) -> Result<bool> {
        // The duplicate check is a linear scan (objects here are headers and JWKs, with a handful of
        // members): cap the members so an unauthenticated header cannot make it quadratic.
        if obj.len() >= MAX_VALUE_MEMBERS {
            return Err(malformed("the JSON object has too many members"));
        }
        if obj.iter().any(|(k, _)| k == key) {
            return Ok(false);
        }
        obj.push((key.to_owned(), value));
        Ok(true)
    }
    fn object_finish(&mut self, obj: Self::Object) -> Result<Value> {
        Ok(Value::Object(obj))
    }
    fn array_new(&mut self) -> Result<Self::Array> {
        Ok(Vec::new())
    }
    fn array_push(&mut self, arr: &mut Self::Array, value: Value) -> Result<()> {
        arr.push(value);
        Ok(())
    }
    fn array_finish(&mut self, arr: Self::Array) -> Result<Value> {
        Ok(Value::Array(arr))
    }
}

/// Parse a whole document into `sink`; the top level must be an object.
pub fn parse_object<S: Sink>(input: &[u8], sink: &mut S) -> Result<S::Value> {
    let mut p = Parser::new(input)?;
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
    let mut p = Parser::new(input)?;
    let v = p.value(&mut ValueSink, 0)?;
    p.finish()?;
    Ok(v)
}

/// A registered claim as the verifier sees it, borrowed from the payload when it can be.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim<'a> {
    /// An integer that fits `i64`.
    Int(i64),
    /// A number with a fraction or exponent.
    Number(f64),
    /// An integer beyond `i64`, as the nearest `f64` (fine for times).
    BigInt(f64),
    Str(Cow<'a, str>),
    /// An array whose items are all strings.
    StrList(Vec<Cow<'a, str>>),
    /// Anything else (a boolean, null, an object, a mixed array…).
    Other,
}

impl Claim<'_> {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Claim::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as `f64`, if this is a JSON number (never for booleans or strings).
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Claim::Int(i) => Some(*i as f64),
            Claim::Number(f) | Claim::BigInt(f) => Some(*f),
            _ => None,
        }
    }
}

/// The watched top-level members of a document, in the slots the caller's `index` function gives.
pub type Watched<'a, const N: usize> = [Option<Claim<'a>>; N];

/// Parse an object into `sink`, and also return, as [`Claim`]s, the top-level members for which
/// `index` gives a slot (the registered claims the verifier checks). A watched string or number is
/// read once and handed to the sink from its claim view; other watched values are read twice.
pub fn parse_object_watching<'a, S: Sink, const N: usize>(
    input: &'a [u8],
    sink: &mut S,
    index: impl Fn(&str) -> Option<usize>,
) -> Result<(S::Value, Watched<'a, N>)> {
    let mut p = Parser::new(input)?;
    let mut watched: Watched<'a, N> = std::array::from_fn(|_| None);
    p.skip_ws();
    if !p.eat(b'{') {
        return Err(malformed("the JSON document is not an object"));
    }
    let mut members: Members<'a, S::Value> = Vec::with_capacity(MEMBERS_CAPACITY);
    p.skip_ws();
    if !p.eat(b'}') {
        loop {
            p.skip_ws();
            let key = match p.plain_string() {
                Some(k) => Cow::Borrowed(k),
                None => p.string()?,
            };
            p.skip_ws();
            p.expect(b':')?;
            p.skip_ws();
            let value = match index(&key).filter(|i| *i < N) {
                None => p.value(sink, 1)?,
                Some(slot) => {
                    let start = p.pos;
                    let claim = p.claim()?;
                    let value = match &claim {
                        Claim::Str(s) => sink.claim_string(slot, s)?,
                        Claim::Int(i) => sink.int(*i)?,
                        Claim::Number(f) => sink.float(*f)?,
                        _ => {
                            p.pos = start;
                            p.value(sink, 1)?
                        }
                    };
                    watched[slot] = Some(claim);
                    value
                }
            };
            members.push((key, value));
            p.skip_ws();
            if p.eat(b',') {
                continue;
            }
            p.expect(b'}')?;
            break;
        }
    }
    p.finish()?;
    let v = sink
        .object_from_members(members)?
        .ok_or_else(|| malformed("the JSON object has a duplicate member"))?;
    Ok((v, watched))
}

/// A scanned number: small enough to come back in registers.
enum Num {
    Int(i64),
    Float(f64),
    /// An integer outside `i64`, starting at this offset (ending at the cursor).
    Big(usize),
    Malformed,
    OutOfRange,
}

struct Parser<'a> {
    input: &'a [u8],
    /// `input` as text: validated as UTF-8 once, so string slices need no second check.
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    /// One UTF-8 check for the whole document (fast on ASCII); slices of `text` are then free.
    fn new(input: &'a [u8]) -> Result<Self> {
        let text = std::str::from_utf8(input).map_err(|_| malformed("the JSON text is not valid UTF-8"))?;
        Ok(Parser { input, text, pos: 0 })
    }

    /// A slice between ASCII delimiters, hence on char boundaries.
    fn slice(&self, start: usize, end: usize) -> &'a str {
        self.text.get(start..end).unwrap_or_default()
    }

    /// The claim view of the value at the cursor. Strings and numbers are read (strictly) and
    /// consumed; for anything else the caller rewinds and parses the value through its sink.
    fn claim(&mut self) -> Result<Claim<'a>> {
        match self.peek() {
            Some(b'"') => Ok(Claim::Str(match self.plain_string() {
                Some(s) => Cow::Borrowed(s),
                None => self.string()?,
            })),
            Some(b'-' | b'0'..=b'9') => match self.scan_number() {
                Num::Int(i) => Ok(Claim::Int(i)),
                Num::Float(f) => Ok(Claim::Number(f)),
                Num::Big(start) => Ok(self
                    .slice(start, self.pos)
                    .parse::<f64>()
                    .map_or(Claim::Other, Claim::BigInt)),
                Num::Malformed => Err(malformed("the JSON number is malformed")),
                Num::OutOfRange => Err(malformed("the JSON number is out of range")),
            },
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.eat(b']') {
                    return Ok(Claim::StrList(items));
                }
                loop {
                    self.skip_ws();
                    if self.peek() != Some(b'"') {
                        return Ok(Claim::Other);
                    }
                    items.push(self.string()?);
                    self.skip_ws();
                    if self.eat(b',') {
                        continue;
                    }
                    return Ok(if self.eat(b']') {
                        Claim::StrList(items)
                    } else {
                        Claim::Other
                    });
                }
            }
            _ => Ok(Claim::Other),
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    #[inline]
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8) -> Result<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(malformed("the JSON text is malformed"))
        }
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn finish(&mut self) -> Result<()> {
        self.skip_ws();
        if self.pos == self.input.len() {
            Ok(())
        } else {
            Err(malformed("the JSON text has trailing data"))
        }
    }

    fn value<S: Sink>(&mut self, sink: &mut S, depth: usize) -> Result<S::Value> {
        self.skip_ws();
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                self.object(sink, depth + 1)
            }
            Some(b'[') => {
                self.pos += 1;
                self.array(sink, depth + 1)
            }
            Some(b'"') => match self.plain_string() {
                Some(s) => sink.string(s),
                None => sink.string(&self.string()?),
            },
            Some(b't') => self.literal(b"true").and_then(|()| sink.boolean(true)),
            Some(b'f') => self.literal(b"false").and_then(|()| sink.boolean(false)),
            Some(b'n') => self.literal(b"null").and_then(|()| sink.null()),
            Some(b'-' | b'0'..=b'9') => self.number(sink),
            _ => Err(malformed("the JSON text is malformed")),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if self.input[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(malformed("the JSON text is malformed"))
        }
    }

    fn object<S: Sink>(&mut self, sink: &mut S, depth: usize) -> Result<S::Value> {
        if depth > MAX_DEPTH {
            return Err(malformed("the JSON text is nested too deeply"));
        }
        let mut obj = sink.object_new()?;
        self.skip_ws();
        if self.eat(b'}') {
            return sink.object_finish(obj);
        }
        loop {
            self.skip_ws();
            let key = self.string()?;
            self.skip_ws();
            self.expect(b':')?;
            let value = self.value(sink, depth)?;
            if !sink.object_insert(&mut obj, &key, value)? {
                return Err(malformed("the JSON object has a duplicate member"));
            }
            self.skip_ws();
            if self.eat(b',') {
                continue;
            }
            self.expect(b'}')?;
            return sink.object_finish(obj);
        }
    }

    fn array<S: Sink>(&mut self, sink: &mut S, depth: usize) -> Result<S::Value> {
        if depth > MAX_DEPTH {
            return Err(malformed("the JSON text is nested too deeply"));
        }
        let mut arr = sink.array_new()?;
        self.skip_ws();
        if self.eat(b']') {
            return sink.array_finish(arr);
        }
        loop {
            let value = self.value(sink, depth)?;
            sink.array_push(&mut arr, value)?;
            self.skip_ws();
            if self.eat(b',') {
                continue;
            }
            self.expect(b']')?;
            return sink.array_finish(arr);
        }
    }

    /// The string at the cursor when it has no escape (returned in registers), consumed; `None`
    /// (cursor unchanged) for anything else, which [`Parser::string`] then reads or refuses.
    #[inline]
    fn plain_string(&mut self) -> Option<&'a str> {
        let input = self.input;
        if input.get(self.pos) != Some(&b'"') {
            return None;
        }
        let start = self.pos + 1;
        let end = scan_plain(input, start);
        if input.get(end) == Some(&b'"') {
            self.pos = end + 1;
            Some(self.slice(start, end))
        } else {
            None
        }
    }

    /// A string starting at `"`; borrowed from the input unless it has escapes.
    fn string(&mut self) -> Result<Cow<'a, str>> {
        if let Some(s) = self.plain_string() {
            return Ok(Cow::Borrowed(s));
        }
        if !self.eat(b'"') {
            return Err(malformed("the JSON text is malformed"));
        }
        let input = self.input;
        let start = self.pos;
        // Fast path: no escape before the closing quote.
        let end = scan_plain(input, start);
        match input.get(end) {
            None => return Err(malformed("the JSON string is unterminated")),
            Some(b'"') => {
                self.pos = end + 1;
                return Ok(Cow::Borrowed(self.slice(start, end)));
            }
            Some(b'\\') => {}
            Some(_) => return Err(malformed("the JSON string has a control character")),
        }
        let mut i = end;
        let mut out: Vec<u8> = input[start..i].to_vec();
        while i < input.len() {
            match input[i] {
                b'"' => {
                    self.pos = i + 1;
                    return String::from_utf8(out)
                        .map(Cow::Owned)
                        .map_err(|_| malformed("the JSON string is not valid UTF-8"));
                }
                b'\\' => {
                    let esc = *input
                        .get(i + 1)
                        .ok_or_else(|| malformed("the JSON string is unterminated"))?;
                    i += 2;
                    let c = match esc {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = hex4(input, i)?;
                            i += 4;
                            if (0xD800..0xDC00).contains(&hi) {
                                if input.get(i) != Some(&b'\\') || input.get(i + 1) != Some(&b'u') {
                                    return Err(malformed("the JSON string has a lone surrogate"));
                                }
                                let lo = hex4(input, i + 2)?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(malformed("the JSON string has a lone surrogate"));
                                }
                                i += 6;
                                let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                char::from_u32(cp).ok_or_else(|| malformed("the JSON string has a bad escape"))?
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return Err(malformed("the JSON string has a lone surrogate"));
                            } else {
                                char::from_u32(hi).ok_or_else(|| malformed("the JSON string has a bad escape"))?
                            }
                        }
                        _ => return Err(malformed("the JSON string has a bad escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return Err(malformed("the JSON string has a control character")),
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        Err(malformed("the JSON string is unterminated"))
    }

    /// Scan the number at the cursor (returned in registers: no `Result` through memory).
    fn scan_number(&mut self) -> Num {
        let input = self.input;
        let start = self.pos;
        let mut i = start;
        let negative = input.get(i) == Some(&b'-');
        if negative {
            i += 1;
        }
        // The integer part is accumulated while it is scanned: `None` once it leaves i64's range.
        let mut magnitude: Option<i64> = Some(0);
        match input.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                // Up to 18 digits cannot overflow i64: no checks for them (times have 10).
                let mut m: i64 = 0;
                let fast_end = input.len().min(i + 18);
                while i < fast_end && input[i].is_ascii_digit() {
                    m = m * 10 + i64::from(input[i] - b'0');
                    i += 1;
                }
                magnitude = Some(m);
                while let Some(&d @ b'0'..=b'9') = input.get(i) {
                    magnitude = magnitude
                        .and_then(|m| m.checked_mul(10))
                        .and_then(|m| m.checked_add(i64::from(d - b'0')));
                    i += 1;
                }
            }
            _ => return Num::Malformed,
        }
        let mut integral = true;
        if input.get(i) == Some(&b'.') {
            integral = false;
            i += 1;
            let digits = i;
            while let Some(b'0'..=b'9') = input.get(i) {
                i += 1;
            }
            if i == digits {
                return Num::Malformed;
            }
        }
        if let Some(b'e' | b'E') = input.get(i) {
            integral = false;
            i += 1;
            if let Some(b'+' | b'-') = input.get(i) {
                i += 1;
            }
            let digits = i;
            while let Some(b'0'..=b'9') = input.get(i) {
                i += 1;
            }
            if i == digits {
                return Num::Malformed;
            }
        }
        self.pos = i;
        if integral {
            // i64::MIN's magnitude does not fit, so it takes the (exact) big-integer path.
            match magnitude {
                Some(m) => Num::Int(if negative { -m } else { m }),
                None => Num::Big(start),
            }
        } else {
            match self.slice(start, i).parse::<f64>() {
                Ok(f) if f.is_finite() => Num::Float(f),
                Ok(_) => Num::OutOfRange,
                Err(_) => Num::Malformed,
            }
        }
    }

    fn number<S: Sink>(&mut self, sink: &mut S) -> Result<S::Value> {
        match self.scan_number() {
            Num::Int(i) => sink.int(i),
            Num::Float(f) => sink.float(f),
            Num::Big(start) => sink.big_int(self.slice(start, self.pos)),
            Num::Malformed => Err(malformed("the JSON number is malformed")),
            Num::OutOfRange => Err(malformed("the JSON number is out of range")),
        }
    }
}

/// Whether any byte of `word` is `"`, `\\` or below 0x20 (the classic SWAR zero-byte tests; may not
/// say which, and the byte loop after it finds the exact one).
#[inline]
/// Bit 7 of each byte of `word` (little-endian) that may be `"`, `\\` or a control character: the
/// lowest set bit marks the first such byte exactly; bits above it may be false alarms.
fn special_mask(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let quote = zero(word ^ (ONES * u64::from(b'"')));
    let backslash = zero(word ^ (ONES * u64::from(b'\\')));
    // bytes < 0x20 (high bit clear): subtracting 0x20 borrows into bit 7
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    quote | backslash | control
}

/// Bytes that end the fast scan of a string: `"`, `\\` and the control characters.
const STRING_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

fn hex4(input: &[u8], at: usize) -> Result<u32> {
    let digits = input
        .get(at..at + 4)
        .ok_or_else(|| malformed("the JSON string has a bad escape"))?;
    let mut v = 0u32;
    for &d in digits {
        let n = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return Err(malformed("the JSON string has a bad escape")),
        };
        v = (v << 4) | u32::from(n);
    }
    Ok(v)
}

/// Append `s` as a JSON string literal (RFC 8259 escapes; non-ASCII is written as UTF-8).
pub fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Append `v` as compact JSON.
pub fn write_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::BigInt(d) => out.push_str(d),
        Value::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                write_value(item, out);
            }
            out.push('}');
        }
    }
}

/// The index of the first `"`, `\\` or control character at or after `start` (or the input's end):
/// eight bytes at a time, then byte by byte (claim strings are short: this beats a SIMD search's setup).
#[inline]
fn scan_plain(input: &[u8], start: usize) -> usize {
    let mut end = start;
    loop {
        let Some(chunk) = input.get(end..end + 8) else {
            while end < input.len() && !STRING_SPECIAL[usize::from(input[end])] {
                end += 1;
            }
            break;
        };
        let special = special_mask(u64::from_le_bytes(chunk.try_into().unwrap_or_default()));
        if special != 0 {
            // The lowest flagged byte is exact (borrows only run upwards from it).
            end += (special.trailing_zeros() / 8) as usize;
            break;
        }
        end += 8;
    }
    end
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
    fn watching_returns_registered_members() {
        let index = |k: &str| ["exp", "aud", "iss"].iter().position(|w| *w == k);
        let (v, w): (Value, Watched<'_, 3>) = parse_object_watching(
            br#"{"sub":"u","exp":17,"aud":["a","b"],"x":{"exp":1}}"#,
            &mut ValueSink,
            index,
        )
        .unwrap();
        assert_eq!(
            w,
            [
                Some(Claim::Int(17)),
                Some(Claim::StrList(vec![Cow::Borrowed("a"), Cow::Borrowed("b")])),
                None
            ]
        );
        let strs = Value::Array(vec![Value::String("a".into()), Value::String("b".into())]);
        assert_eq!(v.get("aud"), Some(&strs));
        assert_eq!(v.get("exp"), Some(&Value::Int(17)));
        let (v, w): (Value, Watched<'_, 3>) =
            parse_object_watching(br#"{"exp":1.5e3,"aud":["a",2],"iss":"\u0041"}"#, &mut ValueSink, index).unwrap();
        assert_eq!(
            w,
            [
                Some(Claim::Number(1500.0)),
                Some(Claim::Other),
                Some(Claim::Str(Cow::Owned("A".into())))
            ]
        );
        let mixed = Value::Array(vec![Value::String("a".into()), Value::Int(2)]);
        assert_eq!(v.get("aud"), Some(&mixed));
        let (v, w): (Value, Watched<'_, 3>) =
            parse_object_watching(br#"{"exp":123456789012345678901234567890}"#, &mut ValueSink, index).unwrap();
        assert_eq!(w[0], Some(Claim::BigInt(1.234_567_890_123_456_8e29)));
        assert_eq!(
            v.get("exp"),
            Some(&Value::BigInt("123456789012345678901234567890".into()))
        );
        for bad in [
            &br#"{"exp":1,"exp":2}"#[..],
            br#"{"exp":tru}"#,
            br#"{"aud":["a",}"#,
            br#"{"exp":01}"#,
        ] {
            let r: Result<(Value, Watched<'_, 3>)> = parse_object_watching(bad, &mut ValueSink, index);
            assert_eq!(r.unwrap_err().code(), "token_malformed");
        }
    }
}
