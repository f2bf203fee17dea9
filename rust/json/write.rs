//! Compact JSON output: string literals and [`Value`] trees.

use std::fmt::Write as _;

use super::Value;

/// Append `s` as a JSON string literal (RFC 8259 escapes; non-ASCII is written as UTF-8). Runs of
/// characters that need no escape are copied whole: every audit line and claim goes through here.
pub fn write_str(s: &str, out: &mut String) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push('"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // eight bytes at a time while none needs an escape (the common case: names, paths, ids)
        if let Some(word) = bytes.get(i..i + 8) {
            let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
            if !needs_escape(word) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => {
                i += 1;
                continue;
            }
        };
        // `b` is ASCII, so `i` is a char boundary
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        i += 1;
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Whether any of the eight bytes of `word` is a control character, `"` or `\\` (the classic
/// has-a-byte-below and has-a-zero-byte tests: true exactly when the word holds one).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |n: u64| word.wrapping_sub(ONES * n) & !word & HIGH;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    (below(0x20) | zero(word ^ (ONES * u64::from(b'"'))) | zero(word ^ (ONES * u64::from(b'\\')))) != 0
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
        Value::Object(members) => write_members(members, out),
    }
}

/// Append an object's members as a compact JSON object.
pub fn write_members(members: &[(String, Value)], out: &mut String) {
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

#[cfg(test)]
mod tests {
    use super::write_str;

    /// Every ASCII byte, and a non-ASCII character, at every offset of a string longer than two words:
    /// what is written reads back (serde_json) as the string, and a byte that needs no escape is copied.
    #[test]
    fn strings_read_back_whatever_the_byte_and_its_offset() {
        for b in (0u8..0x80).map(char::from).chain(['é', '€', '😀']) {
            for at in 0..20 {
                let mut s: String = "abcdefghijklmnopqrst".chars().take(at).collect();
                s.push(b);
                s.push_str("uvwxyz0123456789");
                let mut out = String::new();
                write_str(&s, &mut out);
                let back: String = serde_json::from_str(&out).expect("valid JSON");
                assert_eq!(back, s, "{out}");
                let escaped = b < ' ' || b == '"' || b == '\\';
                assert_eq!(out.len() == s.len() + 2, !escaped, "{out}");
            }
        }
    }
}
