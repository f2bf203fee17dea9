//! `_core.parse_authorization`, `_core.parse_api_key` and `_core.bearer_challenge`: header values from
//! Python to the core parser (`rust/bearer.rs`), the challenge text back.
//!
//! A header value is `bytes` (ASGI) or a `str` holding one byte per code point (WSGI's latin-1
//! "bytes-as-str", PEP 3333); a `str` code point above U+00FF cannot have come from a server.

use std::borrow::Cow;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyList, PyString, PyTuple};

use crate::bearer::{self, DEFAULT_MAX_HEADER_BYTES};
use crate::error::{Error, ErrorKind};

/// `max_bytes=`: a non-negative int; anything else is a configuration error, not a `TypeError`.
#[derive(Clone, Copy)]
struct Cap(usize);

impl<'a, 'py> FromPyObject<'a, 'py> for Cap {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let err = || {
            Error::new(
                ErrorKind::InvalidConfiguration,
                "max_bytes must be a non-negative integer",
            )
            .into()
        };
        if obj.is_instance_of::<PyBool>() {
            return Err(err());
        }
        obj.extract::<usize>().map(Cap).map_err(|_| err())
    }
}

/// One header value as bytes: `bytes` borrowed; a `str` borrowed when ASCII, else turned back into
/// its latin-1 bytes. A `str` longer than the cap is not encoded at all: its bytes would be over it too.
/// What cannot be a header value is the request's fault (`invalid_request`), never a `TypeError`.
pub(crate) fn value_bytes<'a>(value: &'a Bound<'_, PyAny>, max_bytes: usize) -> crate::error::Result<Cow<'a, [u8]>> {
    let invalid = |message: &'static str| Error::new(ErrorKind::InvalidRequest, message);
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    let Ok(s) = value.cast::<PyString>() else {
        return Err(invalid("header values must be bytes or str"));
    };
    if super::text::code_points(s).map_err(|_| invalid("the header is not valid text"))? > max_bytes {
        return Err(bearer::header_too_large());
    }
    let text = s.to_str().map_err(|_| invalid("the header is not valid text"))?;
    if text.is_ascii() {
        return Ok(Cow::Borrowed(text.as_bytes()));
    }
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).map_err(|_| invalid("a str header value must hold latin-1 bytes")))
        .collect::<crate::error::Result<Vec<u8>>>()
        .map(Cow::Owned)
}

/// A core parser: [`bearer::parse_authorization`] or [`bearer::parse_api_key`].
type Parser = for<'a> fn(&[&'a [u8]], usize) -> crate::error::Result<&'a [u8]>;

/// Parse every value of the header: `None` (absent), one `bytes`/`str`, or a list or tuple of them.
fn parse_with<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    max_bytes: usize,
    parse: Parser,
) -> PyResult<Bound<'py, PyBytes>> {
    if let Ok(b) = values.cast::<PyBytes>() {
        return Ok(PyBytes::new(py, parse(&[b.as_bytes()], max_bytes)?));
    }
    let items: Vec<Bound<'py, PyAny>> = if values.is_none() {
        Vec::new()
    } else if let Ok(list) = values.cast::<PyList>() {
        list.iter().collect()
    } else if let Ok(tuple) = values.cast::<PyTuple>() {
        tuple.iter().collect()
    } else {
        vec![values.clone()]
    };
    let bytes = items
        .iter()
        .map(|v| value_bytes(v, max_bytes))
        .collect::<crate::error::Result<Vec<_>>>()?;
    let slices: Vec<&[u8]> = bytes.iter().map(AsRef::as_ref).collect();
    Ok(PyBytes::new(py, parse(&slices, max_bytes)?))
}

/// The bearer token of a request's `Authorization` header values (RFC 6750 §2.1).
#[pyfunction]
#[pyo3(signature = (values, *, max_bytes = Cap(DEFAULT_MAX_HEADER_BYTES)))]
fn parse_authorization<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    max_bytes: Cap,
) -> PyResult<Bound<'py, PyBytes>> {
    parse_with(py, values, max_bytes.0, bearer::parse_authorization)
}

/// The bare token of an API-key header's values (same token grammar, no scheme).
#[pyfunction]
#[pyo3(signature = (values, *, max_bytes = Cap(DEFAULT_MAX_HEADER_BYTES)))]
fn parse_api_key<'py>(py: Python<'py>, values: &Bound<'py, PyAny>, max_bytes: Cap) -> PyResult<Bound<'py, PyBytes>> {
    parse_with(py, values, max_bytes.0, bearer::parse_api_key)
}

/// A `str` argument (lone surrogates become `?` through the core's filtering); anything else is a
/// configuration error naming the argument.
fn text_arg<'a>(value: &'a Bound<'_, PyAny>, what: &str) -> PyResult<Cow<'a, str>> {
    value
        .cast::<PyString>()
        .map(PyStringMethods::to_string_lossy)
        .map_err(|_| Error::new(ErrorKind::InvalidConfiguration, format!("{what} must be a str")).into())
}

/// `None` or a `str` (see [`text_arg`]).
fn opt_text_arg<'a>(value: Option<&'a Bound<'_, PyAny>>, what: &str) -> PyResult<Option<Cow<'a, str>>> {
    value.filter(|v| !v.is_none()).map(|v| text_arg(v, what)).transpose()
}

/// The RFC 6750 §3 `WWW-Authenticate` value.
#[pyfunction]
#[pyo3(signature = (realm, error = None, description = None, scope = None))]
fn bearer_challenge(
    realm: &Bound<'_, PyAny>,
    error: Option<&Bound<'_, PyAny>>,
    description: Option<&Bound<'_, PyAny>>,
    scope: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    let realm = text_arg(realm, "realm")?;
    let error = opt_text_arg(error, "error")?;
    let description = opt_text_arg(description, "description")?;
    let scope = opt_text_arg(scope, "scope")?;
    Ok(bearer::challenge(
        &realm,
        error.as_deref(),
        description.as_deref(),
        scope.as_deref(),
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parse_authorization, m)?)?;
    m.add_function(wrap_pyfunction!(parse_api_key, m)?)?;
    m.add_function(wrap_pyfunction!(bearer_challenge, m)?)?;
    m.add("DEFAULT_MAX_HEADER_BYTES", DEFAULT_MAX_HEADER_BYTES)?;
    Ok(())
}
