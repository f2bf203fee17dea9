//! Compact JSON output: string literals and [`Value`] trees.

use std::fmt::Write as _;

use super::Value;

/// Append `s` as a JSON string literal (RFC 8259 escapes; non-ASCII is written as UTF-8). Runs of
/// characters that need no escape are copied whole: every audit line and claim goes through here.
pub fn write_str(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        // `b` is ASCII, so `i` is a char boundary
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
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
