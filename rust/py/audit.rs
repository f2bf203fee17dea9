//! `_core.audit_lines` / `audit_values`: the audit line of `crate::audit` for the Python writer.
//!
//! Two shapes of queued record reach here. A request, as the middleware queues it —
//! `(outcome, rule, method, path, status, request_id, client_address, duration_ms, timestamp,
//! reason)` — whose fields are derived here from the `Outcome`, its `Principal` and `Decision`
//! and the matched `Rule`; and an `AuditRecord` built by hand, given as `(timestamp, *values)`
//! with the values in field order. This file only converts; the names, the reasons and the line
//! are `crate::audit`'s.

use std::borrow::Cow;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt, PyList, PyString, PyTuple};

use super::args::config_err;
use super::outcome::PyOutcome;
use super::principal::PyPrincipal;
use crate::audit::{self, at, Field, Fields, FIELDS, FIELD_NAMES};

/// Items in a request tuple.
const REQUEST_ITEMS: usize = 10;

fn absent() -> Fields<'static> {
    std::array::from_fn(|_| Field::Absent)
}

fn text<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Field<'a>> {
    if obj.is_none() {
        Ok(Field::Absent)
    } else if obj.is_exact_instance_of::<PyString>() {
        Ok(Field::Str(obj.cast::<PyString>()?.to_cow()?))
    } else {
        Ok(Field::Str(Cow::Owned(obj.str()?.to_cow()?.into_owned())))
    }
}

/// Any field value a hand-built record may hold: None, a str, an int, a float or a collection of
/// str (anything else is written as its `str`, as Python's encoder with `default=str` would).
fn value<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Field<'a>> {
    if obj.is_none() {
        Ok(Field::Absent)
    } else if obj.is_exact_instance_of::<PyString>() {
        Ok(Field::Str(obj.cast::<PyString>()?.to_cow()?))
    } else if obj.is_exact_instance_of::<PyFloat>() {
        Ok(Field::Float(obj.extract()?))
    } else if obj.is_instance_of::<pyo3::types::PyBool>() {
        Ok(Field::Str(Cow::Borrowed(if obj.is_truthy()? {
            "true"
        } else {
            "false"
        })))
    } else if obj.is_instance_of::<PyInt>() {
        match obj.extract::<i64>() {
            Ok(n) => Ok(Field::Int(n)),
            Err(_) => text(obj),
        }
    } else if obj.is_instance_of::<PyFloat>() {
        Ok(Field::Float(obj.extract()?))
    } else if let Ok(items) = obj.try_iter() {
        let mut names = Vec::new();
        for item in items {
            names.push(Cow::Owned(item?.str()?.to_cow()?.into_owned()));
        }
        Ok(Field::Names(names))
    } else {
        text(obj)
    }
}

/// The parts of a request tuple the fields borrow from, held while the line is written.
struct Request<'py> {
    items: Vec<Bound<'py, PyAny>>,
    principal: Option<Bound<'py, PyPrincipal>>,
    error_code: Option<Bound<'py, PyAny>>,
    tier: Option<Bound<'py, PyAny>>,
    remaining: Option<i64>,
    route: Option<Bound<'py, PyAny>>,
    exempt: bool,
}

impl<'py> Request<'py> {
    fn read(tuple: &Bound<'py, PyTuple>) -> PyResult<Self> {
        let items: Vec<_> = tuple.iter().collect();
        let py = tuple.py();
        let (mut principal, mut error_code, mut tier, mut remaining) = (None, None, None, None);
        if !items[0].is_none() {
            let outcome = items[0]
                .cast::<PyOutcome>()
                .map_err(|_| config_err("an audit request's first item is an Outcome or None"))?
                .get();
            if let Some(p) = &outcome.principal {
                principal = Some(p.bind(py).cast::<PyPrincipal>()?.clone());
            }
            if let Some(e) = &outcome.error {
                error_code = Some(e.bind(py).getattr(intern!(py, "code"))?);
            }
            if let Some(d) = &outcome.decision {
                let d = d.bind(py);
                tier = Some(d.getattr(intern!(py, "tier"))?);
                // an unlimited tier has no quota: "0 remaining" would read as used up, so none is written
                let limit: u64 = d.getattr(intern!(py, "limit"))?.extract().unwrap_or(0);
                if limit > 0 {
                    remaining = d.getattr(intern!(py, "remaining"))?.extract().ok();
                }
            }
        }
        let (mut route, mut exempt) = (None, false);
        if !items[1].is_none() {
            route = Some(items[1].getattr(intern!(py, "path"))?);
            let auth = items[1].getattr(intern!(py, "auth"))?;
            exempt = auth
                .cast::<PyString>()
                .is_ok_and(|a| a.to_cow().is_ok_and(|a| a == "none"));
        }
        Ok(Request {
            items,
            principal,
            error_code,
            tier,
            remaining,
            route,
            exempt,
        })
    }

    fn fields(&self) -> PyResult<(f64, Fields<'_>)> {
        let it = &self.items;
        let mut f = absent();
        f[at::METHOD] = text(&it[2])?;
        f[at::PATH] = text(&it[3])?;
        f[at::STATUS] = value(&it[4])?;
        f[at::REQUEST_ID] = text(&it[5])?;
        f[at::CLIENT_ADDRESS] = text(&it[6])?;
        f[at::DURATION_MS] = value(&it[7])?;
        let timestamp: f64 = it[8].extract()?;
        let override_reason = text(&it[9])?;
        if it[0].is_none() {
            // a CORS preflight bastion let through undecided
            f[at::REASON] = match override_reason {
                Field::Absent => Field::Str(Cow::Borrowed("preflight")),
                other => other,
            };
            return Ok((timestamp, f));
        }
        if let Some(route) = &self.route {
            f[at::ROUTE] = text(route)?;
        }
        if let Some(principal) = &self.principal {
            let p = principal.get().p();
            f[at::ENDUSER_ID] = Field::Str(Cow::Borrowed(p.subject.as_str()));
            f[at::ROLES] = Field::Names(p.roles.iter().map(|n| Cow::Borrowed(&**n)).collect());
            f[at::SCOPES] = Field::Names(p.scopes.iter().map(|n| Cow::Borrowed(&**n)).collect());
            f[at::TOKEN_TYPE] = Field::Str(Cow::Borrowed(p.token_type.name()));
            if let Some(id) = &p.token_id {
                f[at::TOKEN_ID] = Field::Str(Cow::Borrowed(id.as_str()));
            }
        }
        if let Some(tier) = &self.tier {
            f[at::TIER] = text(tier)?;
        }
        if let Some(n) = self.remaining {
            f[at::REMAINING] = Field::Int(n);
        }
        let code = match &self.error_code {
            Some(code) => Some(code.cast::<PyString>()?.to_cow()?),
            None => None,
        };
        let reason = audit::reason(code.as_deref(), self.principal.is_some(), self.exempt);
        f[at::REASON] = Field::Str(Cow::Owned(reason.to_owned()));
        if let Some(code) = code {
            f[at::ERROR_TYPE] = Field::Str(code);
        }
        if !matches!(override_reason, Field::Absent) {
            // refused after admission (an endpoint's own check): that refusal is the request's outcome
            f[at::REASON] = override_reason.clone();
            f[at::ERROR_TYPE] = override_reason;
        }
        Ok((timestamp, f))
    }
}

/// The JSON lines of `records` (request tuples or `(timestamp, *values)` tuples), each followed
/// by a newline: one `write` for a whole batch.
#[pyfunction]
fn audit_lines(records: &Bound<'_, PyList>, level: &str, logger: &str) -> PyResult<String> {
    let mut out = String::with_capacity(records.len() * 400);
    for record in records.iter() {
        let tuple = record
            .cast::<PyTuple>()
            .map_err(|_| config_err("an audit record is a tuple"))?;
        if tuple.len() == REQUEST_ITEMS {
            let request = Request::read(tuple)?;
            let (timestamp, mut fields) = request.fields()?;
            audit::write_line(timestamp, level, logger, &mut fields, &mut out);
        } else if tuple.len() == FIELDS + 1 {
            let items: Vec<_> = tuple.iter().collect();
            let timestamp: f64 = items[0].extract()?;
            let mut fields = absent();
            for (field, item) in fields.iter_mut().zip(&items[1..]) {
                *field = value(item)?;
            }
            audit::write_line(timestamp, level, logger, &mut fields, &mut out);
        } else {
            return Err(config_err("an audit record has 10 items (a request) or 17 (a record)"));
        }
        out.push('\n');
    }
    Ok(out)
}

/// The field values of one request tuple, in field order (names and roles as sorted tuples, absent
/// fields as None): what `AuditRecord.of_request` stores.
#[pyfunction]
fn audit_values<'py>(py: Python<'py>, request: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyTuple>> {
    if request.len() != REQUEST_ITEMS {
        return Err(config_err("an audit request has 10 items"));
    }
    let request = Request::read(request)?;
    let (_, fields) = request.fields()?;
    let mut out: Vec<Bound<'py, PyAny>> = Vec::with_capacity(FIELDS);
    for field in fields {
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
