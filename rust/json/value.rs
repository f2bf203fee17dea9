//! The plain Rust JSON value and the sinks that build it.

use super::{malformed, Sink};
use crate::error::Result;

/// Most members of one object read by [`ValueSink`] (headers and JWKs, read before any signature
/// check: the cap keeps its linear duplicate scan from turning quadratic).
pub const MAX_VALUE_MEMBERS: usize = 128;

/// Members up to which [`DocumentSink`] finds duplicates by a linear scan as they arrive; a larger
/// object is checked once, sorted, when it is finished.
const LINEAR_MEMBERS: usize = 16;

/// An object's members, in document order.
pub type Object = Vec<(String, Value)>;

/// A plain Rust JSON value: headers, JWKs, verified claims and opaque metadata. Objects keep member
/// order; integers beyond `i64` keep their exact digits.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    BigInt(String),
    Float(f64),
    String(String),
    Array(Vec<Value>),
    Object(Object),
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
    type Object = Object;
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

/// Builds [`Value`]s from documents of any size (claims, opaque metadata): no member cap, and
/// duplicate names are found in `O(n log n)` whatever the object's size.
#[derive(Debug, Default)]
pub struct DocumentSink;

impl Sink for DocumentSink {
    type Value = Value;
    type Object = Object;
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
    fn object_new(&mut self) -> Result<Object> {
        Ok(Vec::new())
    }
    fn object_insert(&mut self, obj: &mut Object, key: &str, value: Value) -> Result<bool> {
        if obj.len() < LINEAR_MEMBERS && obj.iter().any(|(k, _)| k == key) {
            return Ok(false);
        }
        obj.push((key.to_owned(), value));
        Ok(true)
    }
    fn object_finish(&mut self, obj: Object) -> Result<Value> {
        if obj.len() > LINEAR_MEMBERS {
            let mut names: Vec<&str> = obj.iter().map(|(k, _)| k.as_str()).collect();
            names.sort_unstable();
            if names.windows(2).any(|w| w[0] == w[1]) {
                return Err(malformed("the JSON object has a duplicate member"));
            }
        }
        Ok(Value::Object(obj))
    }
    fn array_new(&mut self) -> Result<Vec<Value>> {
        Ok(Vec::new())
    }
    fn array_push(&mut self, arr: &mut Vec<Value>, value: Value) -> Result<()> {
        arr.push(value);
        Ok(())
    }
    fn array_finish(&mut self, arr: Vec<Value>) -> Result<Value> {
        Ok(Value::Array(arr))
    }
}
