//! Compact JSON output: string literals and [`Value`] trees.

use std::fmt::Write as _;

use super::Value;

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
