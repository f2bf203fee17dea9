//! `_core.audit_lines` / `audit_values`: the audit line of `crate::audit` for the Python writer, and
//! the conversions the audit queue (`audit_queue/`) makes.
//!
//! Three shapes of record reach here. A request as the Python shell queues it — `(outcome, rule,
//! method, path, status, request_id, client_address, duration_ms, timestamp, reason)` — read into an
//! [`Entry`] (the middlewares' glue builds its entries directly); an `AuditRecord` built by hand,
//! given as `(timestamp, *values)` with the values in field order; and an `AuditRecord` object, read
//! through its `_line_item()`. This file only converts; the fields, the reasons and the line are
//! `crate::audit`'s.

use std::borrow::Cow;

use compact_str::CompactString;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt, PyList, PyString, PyTuple};

use super::args::config_err;
use super::outcome::PyOutcome;
use super::principal::PyPrincipal;
use super::ratelimit::PyDecision;
use crate::audit::{self, Entry, Field, Fields, Line, FIELDS, FIELD_NAMES};

/// Items in a request tuple.
const REQUEST_ITEMS: usize = 10;

/// `obj` as text (its `str` when it is not a str), `None` for None.
pub(crate) fn text(obj: &Bound<'_, PyAny>) -> PyResult<Option<CompactString>> {
    if obj.is_none() {
        Ok(None)
    } else if let Ok(s) = obj.cast::<PyString>() {
        Ok(Some(s.to_cow()?.as_ref().into()))
    } else {
        Ok(Some(obj.str()?.to_cow()?.as_ref().into()))
    }
}

/// Any field value a hand-built record may hold: None, a str, an int, a float or a collection of
/// str (anything else is written as its `str`, as Python's encoder with `default=str` would).
fn value(obj: &Bound<'_, PyAny>) -> PyResult<Field<'static>> {
    let as_text = |obj: &Bound<'_, PyAny>| -> PyResult<Field<'static>> {
        Ok(text(obj)?.map_or(Field::Absent, |s| Field::Str(Cow::Owned(s.into()))))
    };
    Ok(if obj.is_none() {
        Field::Absent
    } else if obj.is_exact_instance_of::<PyString>() {
        as_text(obj)?
    } else if obj.is_exact_instance_of::<PyFloat>() {
        Field::Float(obj.extract()?)
    } else if obj.is_instance_of::<pyo3::types::PyBool>() {
        Field::Str(Cow::Borrowed(if obj.is_truthy()? { "true" } else { "false" }))
    } else if obj.is_instance_of::<PyInt>() {
        match obj.extract::<i64>() {
            Ok(n) => Field::Int(n),
            Err(_) => as_text(obj)?,
        }
    } else if obj.is_instance_of::<PyFloat>() {
        Field::Float(obj.extract()?)
    } else if let Ok(items) = obj.try_iter() {
        let mut names = Vec::new();
        for item in items {
            names.push(Cow::Owned(item?.str()?.to_cow()?.into_owned()));
        }
        Field::Names(names)
    } else {
        as_text(obj)?
    })
}

/// The entry of a request tuple.
pub(crate) fn entry_of(tuple: &Bound<'_, PyTuple>) -> PyResult<Entry> {
    if tuple.len() != REQUEST_ITEMS {
        return Err(config_err("an audit request has 10 items"));
    }
    let py = tuple.py();
    let it: Vec<_> = tuple.iter().collect();
    let mut entry = Entry {
        timestamp: it[8].extract()?,
        method: text(&it[2])?.unwrap_or_default(),
        path: text(&it[3])?.unwrap_or_default(),
        status: it[4].extract().ok(),
        request_id: text(&it[5])?.unwrap_or_default(),
        client_address: text(&it[6])?,
        duration_ms: it[7].extract().unwrap_or(f64::NAN),
        refused_after: text(&it[9])?,
        ..Entry::default()
    };
    if !it[0].is_none() {
        let outcome = it[0]
            .cast::<PyOutcome>()
            .map_err(|_| config_err("an audit request's first item is an Outcome or None"))?;
        outcome_into(&mut entry, outcome.get(), py)?;
    }
    if !it[1].is_none() {
        entry.route = text(&it[1].getattr(intern!(py, "path"))?)?.map(|r| r.as_str().into());
        let auth = it[1].getattr(intern!(py, "auth"))?;
        entry.exempt = auth
            .cast::<PyString>()
            .is_ok_and(|a| a.to_cow().is_ok_and(|a| a == "none"));
    }
    Ok(entry)
}

/// What an entry keeps of the core's outcome: decided, the principal, the refusal's code, the tier.
pub(crate) fn outcome_into(entry: &mut Entry, outcome: &PyOutcome, py: Python<'_>) -> PyResult<()> {
    entry.decided = true;
    if let Some(p) = &outcome.principal {
        entry.principal = Some(p.bind(py).cast::<PyPrincipal>()?.get().source());
    }
    if let Some(e) = &outcome.error {
        entry.error_code = text(&e.bind(py).getattr(intern!(py, "code"))?)?;
    }
    if let Some(d) = &outcome.decision {
        let (tier, remaining) = d.bind(py).cast::<PyDecision>()?.get().audit_fields(py)?;
        entry.tier = Some(tier);
        entry.remaining = remaining;
    }
    Ok(())
}

/// The line of a request tuple, a `(timestamp, *values)` tuple or an object with `_line_item()`.
pub(crate) fn line_of(item: &Bound<'_, PyAny>) -> PyResult<Line> {
    let tuple = match item.cast::<PyTuple>() {
        Ok(t) => t.clone(),
        Err(_) => item
            .call_method0(intern!(item.py(), "_line_item"))?
            .cast_into::<PyTuple>()
            .map_err(|_| config_err("an audit record is a tuple"))?,
    };
    if tuple.len() == REQUEST_ITEMS {
        return Ok(Line::Entry(entry_of(&tuple)?));
    }
    if tuple.len() != FIELDS + 1 {
        return Err(config_err("an audit record has 10 items (a request) or 17 (a record)"));
    }
    let timestamp: f64 = tuple.get_item(0)?.extract()?;
    let mut fields: Fields<'static> = std::array::from_fn(|_| Field::Absent);
    for (field, item) in fields.iter_mut().zip(tuple.iter().skip(1)) {
        *field = value(&item)?;
    }
    Ok(Line::Fields(timestamp, Box::new(fields)))
}

/// `(timestamp, *values)` of an entry: the values in field order (names and roles as sorted tuples,
/// absent fields as None), what `AuditRecord` stores.
pub(crate) fn values<'py>(py: Python<'py>, entry: &Entry, timestamp: bool) -> PyResult<Bound<'py, PyTuple>> {
    let mut out: Vec<Bound<'py, PyAny>> = Vec::with_capacity(FIELDS + 1);
    if timestamp {
        out.push(PyFloat::new(py, entry.timestamp).into_any());
    }
    for field in entry.fields() {
        out.push(match field {
            Field::Absent => py.None().into_bound(py),
            Field::Str(s) => PyString::new(py, &s).into_any(),
            Field::Int(n) => n.into_pyobject(py)?.into_any(),
            Field::Float(f) => PyFloat::new(py, f).into_any(),
            Field::Names(mut names) => {
                names.sort_unstable();
                PyTuple::new(py, names.iter().map(|n| &**n))?.into_any()
            }
        });
    }
    PyTuple::new(py, out)
}

/// The JSON lines of `records` (request tuples or `(timestamp, *values)` tuples), each followed
/// by a newline: one `write` for a whole batch.
#[pyfunction]
fn audit_lines(records: &Bound<'_, PyList>, level: &str, logger: &str) -> PyResult<String> {
    let mut out = String::with_capacity(records.len() * 400);
    for record in records.iter() {
        if !record.is_instance_of::<PyTuple>() {
            return Err(config_err("an audit record is a tuple"));
        }
        line_of(&record)?.write(level, logger, &mut out);
    }
    Ok(out)
}

/// The field values of one request tuple, in field order: what `AuditRecord.of_request` stores.
#[pyfunction]
fn audit_values<'py>(py: Python<'py>, request: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyTuple>> {
    values(py, &entry_of(request)?, false)
}

/// Epoch seconds as the lines write them: `2026-12-02T05:40:01.123Z` (UTC, milliseconds truncated).
#[pyfunction]
fn audit_timestamp(epoch: f64) -> String {
    let mut out = String::with_capacity(24);
    audit::write_timestamp(epoch, &mut out);
    out
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(audit_lines, m)?)?;
    m.add_function(wrap_pyfunction!(audit_values, m)?)?;
    m.add_function(wrap_pyfunction!(audit_timestamp, m)?)?;
    m.add("AUDIT_FIELD_NAMES", PyTuple::new(m.py(), FIELD_NAMES)?)?;
    Ok(())
}
