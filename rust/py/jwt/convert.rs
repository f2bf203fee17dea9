//! JSON → Python for the JWT bindings: the sink that builds claims dicts straight from the strict
//! parser, interned claim-name strings, and fresh copies of cached claims. Values that are already
//! parsed go through [`crate::py::json`].

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};
use std::sync::OnceLock;

use crate::error::{Error, ErrorKind, Result as CoreResult};
use crate::json::{Members, Sink};

fn lost(_: PyErr) -> Error {
    Error::new(
        ErrorKind::TokenMalformed,
        "the token's JSON could not be represented in Python",
    )
}

// ------------------------------------------------------------------------------------------------
// JSON → Python

/// Claim names that nearly every token has: their `str` objects are made once and reused.
const COMMON_KEYS: [&str; 20] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "scope",
    "scp",
    "roles",
    "role",
    "tier",
    "client_id",
    "azp",
    "typ",
    "sid",
    "name",
    "email",
    "alg",
    "kid",
];
static COMMON_KEY_OBJECTS: PyOnceLock<Vec<Py<PyString>>> = PyOnceLock::new();

fn common_key(key: &str) -> Option<usize> {
    Some(match key {
        "iss" => 0,
        "sub" => 1,
        "aud" => 2,
        "exp" => 3,
        "nbf" => 4,
        "iat" => 5,
        "jti" => 6,
        "scope" => 7,
        "scp" => 8,
        "roles" => 9,
        "role" => 10,
        "tier" => 11,
        "client_id" => 12,
        "azp" => 13,
        "typ" => 14,
        "sid" => 15,
        "name" => 16,
        "email" => 17,
        "alg" => 18,
        "kid" => 19,
        _ => return None,
    })
}

fn key_object<'py>(py: Python<'py>, key: &str) -> Bound<'py, PyString> {
    if let Some(i) = common_key(key) {
        let cached = COMMON_KEY_OBJECTS.get_or_init(py, || {
            COMMON_KEYS.iter().map(|k| PyString::intern(py, k).unbind()).collect()
        });
        return cached[i].bind(py).clone();
    }
    PyString::new(py, key)
}

/// How many top-level claim-name sequences a verifier remembers (one per kind of token it sees).
const SHAPES: usize = 4;

/// A top-level claim-name sequence seen in a verified token, with a template dict of those names
/// (values `None`): a payload with the same names in the same order is built by copying the
/// template (one allocation, no resizing, no hashing) and replacing the values in place.
struct Shape {
    names: Box<[Box<str>]>,
    keys: Box<[Py<PyString>]>,
    template: Py<PyDict>,
}

/// A verifier's claim shapes. Like the header memo, a shape is remembered only once a token that
/// has it fully verified, so only a key holder fills the slots; they are write-once and lock-free.
#[derive(Default)]
pub(super) struct Shapes {
    slots: [OnceLock<Shape>; SHAPES],
}

impl Shapes {
    fn has_room(&self) -> bool {
        self.slots[SHAPES - 1].get().is_none()
    }

    /// Remember the names of a verified payload that matched no shape.
    pub(super) fn remember(&self, py: Python<'_>, names: Vec<(Box<str>, Py<PyString>)>) -> PyResult<()> {
        let Some(slot) = self.slots.iter().find(|s| s.get().is_none()) else {
            return Ok(());
        };
        let template = PyDict::new(py);
        for (_, key) in &names {
            template.set_item(key.bind(py), py.None())?;
        }
        let (names, keys): (Vec<_>, Vec<_>) = names.into_iter().unzip();
        // Racing threads may both add the same shape: a harmless duplicate slot.
        let _ = slot.set(Shape {
            names: names.into(),
            keys: keys.into(),
            template: template.unbind(),
        });
        Ok(())
    }
}

/// Equality of two short claim names, inline (a libc `memcmp` call per name costs more than this).
#[inline]
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// Strings a verifier expects as the value of a registered claim (its issuers and audiences):
/// a claim equal to one of them gets the verifier's `str` object instead of a new one.
#[derive(Default)]
pub(super) struct Expected {
    strings: Vec<(usize, Box<str>, Py<PyString>)>,
}

impl Expected {
    /// `slot` is the claim's slot ([`crate::jwt::claims::slot`]).
    pub(super) fn add(&mut self, py: Python<'_>, slot: usize, text: &str) {
        self.strings
            .push((slot, Box::from(text), PyString::new(py, text).unbind()));
    }
}

static NO_EXPECTED: Expected = Expected { strings: Vec::new() };

/// Builds Python objects while the strict parser reads the payload.
pub(super) struct PySink<'py, 'v> {
    py: Python<'py>,
    shapes: Option<&'v Shapes>,
    expected: &'v Expected,
    /// The member names of a top-level object that matched no shape, for [`Shapes::remember`].
    pub(super) unseen: Option<Vec<(Box<str>, Py<PyString>)>>,
}

impl<'py> PySink<'py, 'static> {
    pub(super) fn new(py: Python<'py>) -> Self {
        PySink {
            py,
            shapes: None,
            expected: &NO_EXPECTED,
            unseen: None,
        }
    }
}

impl<'py, 'v> PySink<'py, 'v> {
    /// A sink for one verifier's payloads.
    pub(super) fn with_memo(py: Python<'py>, shapes: &'v Shapes, expected: &'v Expected) -> Self {
        PySink {
            py,
            shapes: Some(shapes),
            expected,
            unseen: None,
        }
    }
}

impl<'py> Sink for PySink<'py, '_> {
    type Value = Bound<'py, PyAny>;
    type Object = Bound<'py, PyDict>;
    type Array = Vec<Bound<'py, PyAny>>;

    fn null(&mut self) -> CoreResult<Self::Value> {
        Ok(self.py.None().into_bound(self.py))
    }
    fn boolean(&mut self, b: bool) -> CoreResult<Self::Value> {
        Ok(PyBool::new(self.py, b).to_owned().into_any())
    }
    fn int(&mut self, i: i64) -> CoreResult<Self::Value> {
        Ok(PyInt::new(self.py, i).into_any())
    }
    fn big_int(&mut self, digits: &str) -> CoreResult<Self::Value> {
        self.py.get_type::<PyInt>().call1((digits,)).map_err(lost)
    }
    fn float(&mut self, f: f64) -> CoreResult<Self::Value> {
        Ok(PyFloat::new(self.py, f).into_any())
    }
    fn string(&mut self, s: &str) -> CoreResult<Self::Value> {
        Ok(PyString::new(self.py, s).into_any())
    }
    fn object_new(&mut self) -> CoreResult<Self::Object> {
        Ok(PyDict::new(self.py))
    }
    fn object_insert(&mut self, obj: &mut Self::Object, key: &str, value: Self::Value) -> CoreResult<bool> {
        let before = obj.len();
        obj.set_item(key_object(self.py, key), value).map_err(lost)?;
        Ok(obj.len() > before)
    }
    fn object_finish(&mut self, obj: Self::Object) -> CoreResult<Self::Value> {
        Ok(obj.into_any())
    }
    fn array_new(&mut self) -> CoreResult<Self::Array> {
        Ok(Vec::new())
    }
    fn array_push(&mut self, arr: &mut Self::Array, value: Self::Value) -> CoreResult<()> {
        arr.push(value);
        Ok(())
    }
    fn array_finish(&mut self, arr: Self::Array) -> CoreResult<Self::Value> {
        Ok(PyList::new(self.py, arr).map_err(lost)?.into_any())
    }
    fn claim_string(&mut self, slot: usize, s: &str) -> CoreResult<Self::Value> {
        for (at, text, obj) in &self.expected.strings {
            if *at == slot && **text == *s {
                return Ok(obj.bind(self.py).clone().into_any());
            }
        }
        self.string(s)
    }
    fn object_from_members(&mut self, members: Members<'_, Self::Value>) -> CoreResult<Option<Self::Value>> {
        let py = self.py;
        let Some(shapes) = self.shapes else {
            let mut obj = self.object_new()?;
            for (key, value) in members {
                if !self.object_insert(&mut obj, &key, value)? {
                    return Ok(None);
                }
            }
            return Ok(Some(obj.into_any()));
        };
        for slot in &shapes.slots {
            let Some(shape) = slot.get() else { break };
            if shape.names.len() == members.len() && shape.names.iter().zip(&members).all(|(n, (k, _))| same(n, k)) {
                // The template's names are distinct, so these members are too.
                let obj = shape.template.bind(py).copy().map_err(lost)?;
                for (key, (_, value)) in shape.keys.iter().zip(members) {
                    obj.set_item(key.bind(py), value).map_err(lost)?;
                }
                return Ok(Some(obj.into_any()));
            }
        }
        let obj = PyDict::new(py);
        let mut names = shapes.has_room().then(|| Vec::with_capacity(members.len()));
        for (i, (name, value)) in members.into_iter().enumerate() {
            let key = key_object(py, &name);
            obj.set_item(&key, value).map_err(lost)?;
            if obj.len() != i + 1 {
                return Ok(None);
            }
            if let Some(names) = &mut names {
                names.push((Box::from(&*name), key.unbind()));
            }
        }
        self.unseen = names;
        Ok(Some(obj.into_any()))
    }
}

/// A cached claims dict and the top-level keys whose values are containers (copied on every hit).
pub(super) struct Cached {
    claims: Py<PyDict>,
    nested: Vec<Py<PyAny>>,
}

impl Cached {
    pub(super) fn new(claims: &Bound<'_, PyAny>) -> PyResult<Cached> {
        let copy = fresh_copy(claims)?.cast_into::<PyDict>()?;
        let nested = copy
            .iter()
            .filter(|(_, v)| v.is_instance_of::<PyDict>() || v.is_instance_of::<PyList>())
            .map(|(k, _)| k.unbind())
            .collect();
        Ok(Cached {
            claims: copy.unbind(),
            nested,
        })
    }

    /// A dict the caller owns: a shallow copy, with fresh copies of the nested containers.
    pub(super) fn fresh<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let out = self.claims.bind(py).copy()?;
        for k in &self.nested {
            let k = k.bind(py);
            if let Some(v) = out.get_item(k)? {
                out.set_item(k, fresh_copy(&v)?)?;
            }
        }
        Ok(out.into_any())
    }
}

/// A fresh copy of a claims value: new dicts and lists all the way down, so callers may mutate
/// what they get; strings and numbers are immutable and shared.
fn fresh_copy<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(d) = obj.cast::<PyDict>() {
        let out = d.copy()?;
        for (k, v) in d.iter() {
            if v.is_instance_of::<PyDict>() || v.is_instance_of::<PyList>() {
                out.set_item(k, fresh_copy(&v)?)?;
            }
        }
        return Ok(out.into_any());
    }
    if let Ok(l) = obj.cast::<PyList>() {
        let items = l.iter().map(|v| fresh_copy(&v)).collect::<PyResult<Vec<_>>>()?;
        return Ok(PyList::new(obj.py(), items)?.into_any());
    }
    Ok(obj.clone())
}
