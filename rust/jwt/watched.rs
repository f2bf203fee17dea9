//! The registered claims as the verifier sees them, read on the side while the payload goes to
//! the caller's sink: one pass over the payload serves both the claims object and the checks.

use std::borrow::Cow;

use crate::error::Result;
use crate::json::parse::{Num, Parser};
use crate::json::{malformed, Members, Sink};

/// Members room reserved up front for a payload (an access token has about ten claims).
const MEMBERS_CAPACITY: usize = 16;

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
    sink.document(input);
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
                    let claim = claim(&mut p)?;
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

/// The claim view of the value at the cursor. Strings and numbers are read (strictly) and
/// consumed; for anything else the caller rewinds and parses the value through its sink.
fn claim<'a>(p: &mut Parser<'a>) -> Result<Claim<'a>> {
    match p.peek() {
        Some(b'"') => Ok(Claim::Str(match p.plain_string() {
            Some(s) => Cow::Borrowed(s),
            None => p.string()?,
        })),
        Some(b'-' | b'0'..=b'9') => match p.scan_number() {
            Num::Int(i) => Ok(Claim::Int(i)),
            Num::Float(f) => Ok(Claim::Number(f)),
            Num::Big(start) => Ok(p.slice(start, p.pos).parse::<f64>().map_or(Claim::Other, Claim::BigInt)),
            Num::Malformed => Err(malformed("the JSON number is malformed")),
            Num::OutOfRange => Err(malformed("the JSON number is out of range")),
        },
        Some(b'[') => {
            p.pos += 1;
            let mut items = Vec::new();
            p.skip_ws();
            if p.eat(b']') {
                return Ok(Claim::StrList(items));
            }
            loop {
                p.skip_ws();
                if p.peek() != Some(b'"') {
                    return Ok(Claim::Other);
                }
                items.push(p.string()?);
                p.skip_ws();
                if p.eat(b',') {
                    continue;
                }
                return Ok(if p.eat(b']') {
                    Claim::StrList(items)
                } else {
                    Claim::Other
                });
            }
        }
        _ => Ok(Claim::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{Value, ValueSink};

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
