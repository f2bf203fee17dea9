//! The functions behind `bastion.dangerous`: decoding without verification, and signature-only checks.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::convert::PySink;
use super::keys::key_list;
use super::{alg_list, token_bytes};
use crate::json;
use crate::jwt::claims::Policy;
use crate::jwt::verify::{self, Verifier, DEFAULT_MAX_TOKEN_BYTES};
use crate::py::args::config_size;

/// Header and claims of a token, without verifying anything (strict structure and JSON still apply).
#[pyfunction]
#[pyo3(signature = (token, *, max_token_bytes=None))]
pub(super) fn _decode_unverified<'py>(
    py: Python<'py>,
    token: &Bound<'py, PyAny>,
    max_token_bytes: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let max_token_bytes = match max_token_bytes.filter(|m| !m.is_none()) {
        None => DEFAULT_MAX_TOKEN_BYTES,
        Some(m) => config_size(m, "max_token_bytes")?,
    };
    let token = token_bytes(token, max_token_bytes)?;
    let segments = verify::split(token, max_token_bytes)?;
    let header = json::parse_object(&segments.header, &mut PySink::new(py))?;
    let claims = json::parse_object(&segments.payload, &mut PySink::new(py))?;
    let out = PyDict::new(py);
    out.set_item("header", header)?;
    out.set_item("claims", claims)?;
    Ok(out)
}

/// Verify a compact JWS signature only and return its payload bytes (no claim checks).
#[pyfunction]
#[pyo3(signature = (token, keys, *, algorithms, max_token_bytes=None))]
pub(super) fn _verify_jws<'py>(
    py: Python<'py>,
    token: &Bound<'py, PyAny>,
    keys: &Bound<'py, PyAny>,
    algorithms: &Bound<'py, PyAny>,
    max_token_bytes: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let max_token_bytes = match max_token_bytes.filter(|m| !m.is_none()) {
        None => DEFAULT_MAX_TOKEN_BYTES,
        Some(m) => config_size(m, "max_token_bytes")?,
    };
    let verifier = Verifier::new(
        &key_list(keys)?,
        &alg_list(algorithms)?,
        Policy::default(),
        max_token_bytes,
    )?;
    let token = token_bytes(token, max_token_bytes)?;
    Ok(PyBytes::new(py, &verifier.verify_jws(token)?))
}
