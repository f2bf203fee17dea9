//! The opaque token format: `<prefix><type>_<body><crc>`.
//!
//! - `prefix`: a short vendor prefix (default `bst`), 2–10 lowercase ASCII letters or digits, starting
//!   with a letter, so secret scanners can recognise the tokens.
//! - `type`: one letter: `k` API key, `a` access, `r` refresh, `c` client secret.
//! - `body`: 32 CSPRNG bytes as a fixed-width 43-character base62 number (62^43 > 2^256).
//! - `crc`: the CRC32 of everything before it (`<prefix><type>_<body>`), as 6 base62 characters.
//!
//! The checksum is unkeyed on purpose: it lets the verifier and secret scanners reject typos and
//! garbage before any lookup. It is not a security control; the keyed digest is.
//!
//! Base62 here is a fixed-width big-number encoding of a byte array. The base62 crates on crates.io
//! encode integers up to `u128` or use variable width (leading zeros dropped, like base58), neither of
//! which gives the fixed-width, canonical 256-bit encoding this format needs, so the few lines below do
//! it over `u8` arrays.

use crate::error::{Error, ErrorKind, Result};

/// The base62 alphabet: digits, upper case, lower case (the ordering GitHub's tokens use).
pub const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Random bytes in a token body.
pub const BODY_BYTES: usize = 32;
/// Base62 characters of the body: the fewest with 62^n ≥ 2^256.
pub const BODY_CHARS: usize = 43;
/// Base62 characters of the CRC32 checksum (62^6 ≥ 2^32).
pub const CRC_CHARS: usize = 6;
/// The shortest and longest accepted prefixes.
pub const PREFIX_MIN: usize = 2;
/// The longest accepted prefix.
pub const PREFIX_MAX: usize = 10;
/// The token kinds, by their type letter.
pub const KINDS: &[u8] = b"karc";

const INVALID: u8 = 0xff;
static DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 62 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Encode `bytes` (big-endian) as exactly `N` base62 characters; `None` if the value needs more.
pub fn encode_fixed<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    let mut num: Vec<u8> = bytes.to_vec();
    let mut out = [b'0'; N];
    for slot in out.iter_mut().rev() {
        // one long division of the big-endian number by 62
        let mut rem: u32 = 0;
        for byte in &mut num {
            let cur = (rem << 8) | u32::from(*byte);
            *byte = (cur / 62) as u8;
            rem = cur % 62;
        }
        *slot = ALPHABET[rem as usize];
    }
    num.iter().all(|&b| b == 0).then_some(out)
}

/// Decode exactly-`N`-byte big-endian value from base62 text; `None` on a bad character or overflow.
pub fn decode_fixed<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    for &c in text {
        let digit = DECODE[c as usize];
        if digit == INVALID {
            return None;
        }
        // out = out * 62 + digit
        let mut carry = u32::from(digit);
        for byte in out.iter_mut().rev() {
            let cur = u32::from(*byte) * 62 + carry;
            *byte = cur as u8;
            carry = cur >> 8;
        }
        if carry != 0 {
            return None;
        }
    }
    Some(out)
}

/// The body of the largest 256-bit value, 2^256 - 1.
static MAX_BODY: std::sync::LazyLock<[u8; BODY_CHARS]> =
    std::sync::LazyLock::new(|| encode_fixed::<BODY_CHARS>(&[0xff; BODY_BYTES]).expect("62^43 > 2^256"));

fn crc_chars(data: &[u8]) -> [u8; CRC_CHARS] {
    let crc = crc32fast::hash(data);
    encode_fixed::<CRC_CHARS>(&crc.to_be_bytes()).expect("62^6 > 2^32")
}

/// Check a prefix: 2–10 lowercase ASCII letters or digits, starting with a letter.
pub fn check_prefix(prefix: &str) -> Result<()> {
    let b = prefix.as_bytes();
    let ok = (PREFIX_MIN..=PREFIX_MAX).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidConfiguration,
            "the token prefix must be 2-10 lowercase ASCII letters or digits, starting with a letter",
        ))
    }
}

/// Check a type letter (`k`, `a`, `r` or `c`).
pub fn check_kind(kind: u8) -> Result<()> {
    if KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidConfiguration,
            "the token kind must be one of 'k' (API key), 'a' (access), 'r' (refresh), 'c' (client secret)",
        ))
    }
}

/// The full length of a token with this prefix.
pub const fn token_len(prefix_len: usize) -> usize {
    prefix_len + 2 + BODY_CHARS + CRC_CHARS
}

/// Build a token from a prefix, a type letter and 32 random bytes.
pub fn encode(prefix: &str, kind: u8, body: &[u8; BODY_BYTES]) -> String {
    let mut out = Vec::with_capacity(token_len(prefix.len()));
    out.extend_from_slice(prefix.as_bytes());
    out.push(kind);
    out.push(b'_');
    out.extend_from_slice(&encode_fixed::<BODY_CHARS>(body).expect("62^43 > 2^256"));
    let crc = crc_chars(&out);
    out.extend_from_slice(&crc);
    String::from_utf8(out).expect("ASCII")
}

/// The parts of a well-formed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// The type letter.
    pub kind: u8,
}

fn malformed() -> Error {
    Error::new(ErrorKind::TokenMalformed, "the token is not a well-formed opaque token")
}

/// Check shape, prefix, type letter, alphabet, canonical body and checksum; no lookup happens before
/// this passes. A token with another prefix is malformed here: it is not one of ours.
pub fn parse(token: &[u8], prefix: &str) -> Result<Parsed> {
    let p = prefix.len();
    if token.len() != token_len(p) || !token.starts_with(prefix.as_bytes()) || token[p + 1] != b'_' {
        return Err(malformed());
    }
    let kind = token[p];
    if !KINDS.contains(&kind) {
        return Err(malformed());
    }
    let body = &token[p + 2..p + 2 + BODY_CHARS];
    let crc = &token[p + 2 + BODY_CHARS..];
    // branch-free alphabet check: digits are < 64, INVALID has the top bit set
    if token[p + 2..].iter().fold(0u8, |acc, &c| acc | DECODE[c as usize]) & 0x80 != 0 {
        return Err(malformed());
    }
    // compare numbers, not text: no encoding on the hot path (the alphabet was checked above)
    let stated = crc
        .iter()
        .fold(0u64, |acc, &c| acc * 62 + u64::from(DECODE[c as usize]));
    if stated != u64::from(crc32fast::hash(&token[..p + 2 + BODY_CHARS])) {
        return Err(malformed());
    }
    // canonical: the body is a value below 2^256 (43 base62 digits can hold slightly more). The alphabet is
    // in ASCII order and the width is fixed, so comparing the text compares the numbers: no big-number decode.
    if body > &MAX_BODY[..] {
        return Err(malformed());
    }
    Ok(Parsed { kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_fixed_width() {
        for fill in [0u8, 1, 0x7f, 0xff] {
            let body = [fill; BODY_BYTES];
            let text = encode_fixed::<BODY_CHARS>(&body).unwrap();
            assert_eq!(decode_fixed::<BODY_BYTES>(&text).unwrap(), body);
        }
        assert_eq!(encode_fixed::<BODY_CHARS>(&[0; 32]).unwrap(), [b'0'; BODY_CHARS]);
        // the largest 43-digit value overflows 256 bits: not canonical
        assert!(decode_fixed::<BODY_BYTES>(&[b'z'; BODY_CHARS]).is_none());
        // the text comparison agrees with the decode at the boundary
        let max = *MAX_BODY;
        assert_eq!(decode_fixed::<BODY_BYTES>(&max).unwrap(), [0xff; 32]);
        let mut over = max;
        let last = over.iter().rposition(|&c| c != b'z').unwrap();
        over[last] = ALPHABET[ALPHABET.iter().position(|&c| c == over[last]).unwrap() + 1];
        assert!(decode_fixed::<BODY_BYTES>(&over).is_none());
        let body = std::str::from_utf8(&over).unwrap();
        let mut tok = format!("bstk_{body}").into_bytes();
        let crc = crc_chars(&tok);
        tok.extend_from_slice(&crc);
        assert!(parse(&tok, "bst").is_err(), "a body over 2^256 - 1 is not canonical");
        assert!(encode_fixed::<2>(&[1, 0, 0]).is_none());
    }

    #[test]
    fn tokens_parse_and_typos_do_not() {
        let body = [7u8; 32];
        let token = encode("bst", b'k', &body);
        assert_eq!(token.len(), 3 + 2 + 43 + 6);
        assert!(token.starts_with("bstk_"));
        assert_eq!(parse(token.as_bytes(), "bst").unwrap().kind, b'k');
        let mut bad = token.clone().into_bytes();
        for i in 5..bad.len() {
            let orig = bad[i];
            bad[i] = if orig == b'a' { b'b' } else { b'a' };
            assert_eq!(
                parse(&bad, "bst").unwrap_err().kind,
                ErrorKind::TokenMalformed,
                "pos {i}"
            );
            bad[i] = orig;
        }
        assert!(parse(token.as_bytes(), "xyz").is_err());
        assert!(parse(&token.as_bytes()[1..], "bst").is_err());
        assert!(parse(b"", "bst").is_err());
        let other_type = encode("bst", b'x', &body);
        assert!(parse(other_type.as_bytes(), "bst").is_err());
    }

    #[test]
    fn prefixes_and_kinds() {
        assert!(check_prefix("bst").is_ok());
        assert!(check_prefix("ab12").is_ok());
        for bad in ["", "b", "Bst", "1bs", "bs_t", "abcdefghijk", "bst-"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
        assert!(check_kind(b'k').is_ok());
        assert!(check_kind(b'z').is_err());
    }
}
