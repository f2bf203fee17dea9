//! Argument handling shared by every binding: token text (with its size cap before any copy), the
//! `now=` argument, configuration values, and the one configuration-error constructor. Each domain
//! maps a refused token to its own error; everything else here raises `bastion.ConfigurationError`.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyInt, PyString};

use crate::error::Error;

/// A configuration error (`bastion.ConfigurationError`) with `msg`.
pub(crate) fn config_err(msg: impl Into<Cow<'static, str>>) -> PyErr {
    Error::config(msg).into()
}

/// Why a token argument was refused; each domain turns it into its own error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenRefusal {
    /// A `str` that is not valid Unicode text (a lone surrogate).
    NotText,
    /// A `str` longer in code points than the byte cap.
    TooLong,
    /// Neither `str` nor `bytes`.
    WrongType,
}

/// The token as bytes: a `str` as UTF-8, or `bytes`. The size cap comes first: a `str` longer than
/// `max_len` in code points is refused before CPython encodes (and caches) a UTF-8 copy of it, so a
/// 100 MB non-ASCII `str` is never copied; one within it is encoded, and the caller checks the byte
/// length again.
pub(crate) fn token_bytes<'a>(token: &'a Bound<'_, PyAny>, max_len: usize) -> Result<&'a [u8], TokenRefusal> {
    if let Ok(s) = token.cast::<PyString>() {
        if super::text::code_points(s).map_err(|_| TokenRefusal::NotText)? > max_len {
            return Err(TokenRefusal::TooLong);
        }
        return s.to_str().map(str::as_bytes).map_err(|_| TokenRefusal::NotText);
    }
    if let Ok(b) = token.cast::<PyBytes>() {
        return Ok(b.as_bytes());
    }
    Err(TokenRefusal::WrongType)
}

/// The wall clock in seconds since the epoch.
pub(crate) fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `now=`: `None` (or absent) for the wall clock, else a finite number of seconds since the epoch.
/// `True`/`False` are ints to Python, never a time.
pub(crate) fn resolve_now(now: Option<&Bound<'_, PyAny>>) -> PyResult<f64> {
    let Some(v) = now.filter(|v| !v.is_none()) else {
        return Ok(wall_now());
    };
    let not_a_time = || config_err("now= must be a number of seconds since the epoch");
    if v.is_instance_of::<PyBool>() {
        return Err(not_a_time());
    }
    let f: f64 = v.extract().map_err(|_| not_a_time())?;
    if f.is_finite() {
        Ok(f)
    } else {
        Err(config_err("now= must be finite"))
    }
}

/// A Python `str` as Rust text; anything else (or a lone surrogate) is a configuration error.
pub(crate) fn config_text(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    let s = obj
        .cast::<PyString>()
        .map_err(|_| config_err(format!("{what} must be a string")))?;
    Ok(s.to_str()
        .map_err(|_| config_err(format!("{what} must be valid Unicode text")))?
        .to_owned())
}

/// `None` or a string (see [`config_text`]).
pub(crate) fn config_opt_text(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<String>> {
    obj.filter(|o| !o.is_none()).map(|o| config_text(o, what)).transpose()
}

/// `None`, one string, or a sequence of strings.
pub(crate) fn config_strings(obj: Option<&Bound<'_, PyAny>>, what: &'static str) -> PyResult<Option<Vec<String>>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Some(vec![config_text(s.as_any(), what)?]));
    }
    let err = || config_err(format!("{what} must be a string or a list of strings"));
    let mut out = Vec::new();
    for item in obj.try_iter().map_err(|_| err())? {
        let item = item.map_err(|_| err())?;
        item.cast::<PyString>().map_err(|_| err())?;
        out.push(config_text(&item, what)?);
    }
    Ok(Some(out))
}

/// A non-negative integer (not `bool`) that fits a `usize`; anything else is a configuration error
/// with `msg`.
pub(crate) fn config_usize(obj: &Bound<'_, PyAny>, msg: impl Into<Cow<'static, str>>) -> PyResult<usize> {
    let msg = msg.into();
    if obj.is_instance_of::<PyBool>() {
        return Err(config_err(msg));
    }
    obj.extract::<usize>().map_err(|_| config_err(msg))
}

/// [`config_usize`] with the message "`what` must be a non-negative integer".
pub(crate) fn config_size(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<usize> {
    config_usize(obj, format!("{what} must be a non-negative integer"))
}

/// A Python `int` (not `bool`) that fits a `u64`, or a configuration error naming `what`.
pub(crate) fn config_uint(value: &Bound<'_, PyAny>, what: &'static str) -> PyResult<u64> {
    if value.is_instance_of::<PyBool>() {
        return Err(config_err(format!("{what} must be an int, not a bool")));
    }
    if !value.is_instance_of::<PyInt>() {
        return Err(config_err(format!("{what} must be an int")));
    }
    value
        .extract::<u64>()
        .map_err(|_| config_err(format!("{what} must be between 0 and 2**64-1")))
}
