//! JSON ⇄ Python, written once for every binding: the crate's [`Value`] to Python objects (plain, or
//! frozen for values shared between requests), and Python values to JSON text under the same strict
//! rules as the parser (finite numbers, string keys, bounded depth).

use std::fmt::Write as _;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyMappingProxy, PyString, PyTuple};

use crate::error::{Error, Result as CoreResult};
use crate::json::{self, Value};

/// What containers become in Python.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Objects → `dict`, arrays → `list`: values the caller owns and may change.
    Mutable,
    /// Objects → read-only mappings, arrays → tuples: values shared by every request that
    /// presents the same token.
    Frozen,
}

/// A JSON value as Python: `null` → `None`, integers of any size → `int` (exact), floats → `float`
/// (the same `f64`), strings → `str`; containers as `shape` says.
pub(crate) fn to_py<'py>(py: Python<'py>, v: &Value, shape: Shape) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => PyInt::new(py, *i).into_any(),
        Value::BigInt(digits) => py.get_type::<PyInt>().call1((digits.as_str(),))?,
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let items = items
                .iter()
                .map(|i| to_py(py, i, shape))
                .collect::<PyResult<Vec<_>>>()?;
            match shape {
                Shape::Mutable => PyList::new(py, items)?.into_any(),
                Shape::Frozen => PyTuple::new(py, items)?.into_any(),
            }
        }
        Value::Object(members) => {
            let dict = members_to_dict(py, members, shape)?;
            match shape {
                Shape::Mutable => dict.into_any(),
                Shape::Frozen => PyMappingProxy::new(py, dict.cast::<PyMapping>()?).into_any(),
            }
        }
    })
}

/// An object's members as a new `dict` (its nested containers as `shape` says).
pub(crate) fn members_to_dict<'py>(
    py: Python<'py>,
    members: &[(String, Value)],
    shape: Shape,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, item) in members {
        dict.set_item(k, to_py(py, item, shape)?)?;
    }
    Ok(dict)
}

/// `obj` as JSON text appended to `out`; `enclosing` is the number of arrays and objects the text
/// sits in (0 for a document, 1 for a claim of a payload), so that the nesting bound is the parser's
/// ([`json::nesting_allowed`]).
pub(crate) fn write_json(obj: &Bound<'_, PyAny>, out: &mut String, enclosing: usize) -> CoreResult<()> {
    let bad = |m: &'static str| Error::config(m);
    let container = obj.is_instance_of::<PyDict>() || obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>();
    if container && !json::nesting_allowed(enclosing) {
        return Err(bad("the value is nested too deeply"));
    }
    if obj.is_none() {
        out.push_str("null");
    } else if let Ok(b) = obj.cast::<PyBool>() {
        out.push_str(if b.is_true() { "true" } else { "false" });
    } else if let Ok(s) = obj.cast::<PyString>() {
        json::write_str(s.to_str().map_err(|_| bad("strings must be valid Unicode"))?, out);
    } else if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            out.push_str(&i.to_string());
        } else {
            let digits = obj.str().map_err(|_| bad("an integer could not be written"))?;
            out.push_str(digits.to_str().map_err(|_| bad("an integer could not be written"))?);
        }
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        let f = f.value();
        if !f.is_finite() {
            return Err(bad("NaN and infinite numbers are not JSON"));
        }
        let _ = write!(out, "{f:?}");
    } else if let Ok(d) = obj.cast::<PyDict>() {
        out.push('{');
        for (i, (k, v)) in d.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let k = k.cast::<PyString>().map_err(|_| bad("object keys must be strings"))?;
            json::write_str(k.to_str().map_err(|_| bad("strings must be valid Unicode"))?, out);
            out.push(':');
            write_json(&v, out, enclosing + 1)?;
        }
        out.push('}');
    } else if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        out.push('[');
        for (i, v) in obj.try_iter().map_err(|_| bad("not a list"))?.enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json(&v.map_err(|_| bad("not a list"))?, out, enclosing + 1)?;
        }
        out.push(']');
    } else {
        return Err(bad(
            "values must be JSON types: dict, list, tuple, str, int, float, bool or None",
        ));
    }
    Ok(())
}

/// `obj` as a [`Value`], to be placed inside `enclosing` arrays and objects (see [`write_json`]).
pub(crate) fn py_to_value(obj: &Bound<'_, PyAny>, enclosing: usize) -> CoreResult<Value> {
    let mut text = String::new();
    write_json(obj, &mut text, enclosing)?;
    json::parse_value(text.as_bytes()).map_err(|_| Error::config("not a JSON value"))
}
