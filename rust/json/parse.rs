//! The strict parser: one pass over validated UTF-8, unescaped strings borrowed from the input,
//! numbers scanned once into registers, and an eight-bytes-at-a-time scan for string ends.
//!
//! Just over 400 lines: one recursive-descent parser whose string, number and structure scanners share
//! one cursor; split, they would pass it back and forth through every call.

use std::borrow::Cow;

use super::{malformed, nesting_allowed, Sink};
use crate::error::Result;

/// A scanned number: small enough to come back in registers.
pub(crate) enum Num {
    Int(i64),
    Float(f64),
    /// An integer outside `i64`, starting at this offset (ending at the cursor).
    Big(usize),
    Malformed,
    OutOfRange,
}

pub(crate) struct Parser<'a> {
    input: &'a [u8],
    /// `input` as text: validated as UTF-8 once, so string slices need no second check.
    text: &'a str,
    pub(crate) pos: usize,
}

impl<'a> Parser<'a> {
    /// One UTF-8 check for the whole document (fast on ASCII); slices of `text` are then free.
    pub(crate) fn new(input: &'a [u8]) -> Result<Self> {
        let text = std::str::from_utf8(input).map_err(|_| malformed("the JSON text is not valid UTF-8"))?;
        Ok(Parser { input, text, pos: 0 })
    }

    /// A slice between ASCII delimiters, hence on char boundaries.
    pub(crate) fn slice(&self, start: usize, end: usize) -> &'a str {
        self.text.get(start..end).unwrap_or_default()
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    #[inline]
    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn expect(&mut self, b: u8) -> Result<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(malformed("the JSON text is malformed"))
        }
    }

    #[inline]
    pub(crate) fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    pub(crate) fn finish(&mut self) -> Result<()> {
        self.skip_ws();
        if self.pos == self.input.len() {
            Ok(())
        } else {
            Err(malformed("the JSON text has trailing data"))
        }
    }

    pub(crate) fn value<S: Sink>(&mut self, sink: &mut S, depth: usize) -> Result<S::Value> {
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
        if !nesting_allowed(depth - 1) {
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
        if !nesting_allowed(depth - 1) {
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
    pub(crate) fn plain_string(&mut self) -> Option<&'a str> {
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
    pub(crate) fn string(&mut self) -> Result<Cow<'a, str>> {
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
    pub(crate) fn scan_number(&mut self) -> Num {
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

/// Bit 7 of each byte of `word` (little-endian) that may be `"`, `\\` or a control character: the
/// lowest set bit marks the first such byte exactly; bits above it may be false alarms.
#[inline]
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
