//! `_core.RuleSet`: route rules from Python tuples to the core [`RuleSet`], and `match` per request.
//!
//! `bastion.rules.Rule` builds the tuples; this layer only checks their shape, so that a wrong type is
//! a `ConfigurationError` naming the rule's field rather than a `TypeError`.

use std::borrow::Cow;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::auth::rules::{AuthMode, Rule, RuleSet};
use crate::error::{Error, ErrorKind};

/// The fields of one rule tuple, in order; `bastion.Rule`'s fields must read the same.
const FIELDS: [&str; 5] = ["path", "methods", "scopes", "roles", "auth"];

fn config(message: String) -> PyErr {
    Error::new(ErrorKind::InvalidConfiguration, message).into()
}

fn text(value: &Bound<'_, PyAny>, what: &dyn Fn() -> String) -> PyResult<String> {
    let s = value
        .cast::<PyString>()
        .map_err(|_| config(format!("{} must be a str", what())))?;
    Ok(s.to_str()
        .map_err(|_| config(format!("{} must be valid Unicode text", what())))?
        .to_owned())
}

fn texts(value: &Bound<'_, PyAny>, what: &dyn Fn() -> String) -> PyResult<Vec<String>> {
    let items: Vec<Bound<'_, PyAny>> = if let Ok(list) = value.cast::<PyList>() {
        list.iter().collect()
    } else if let Ok(tuple) = value.cast::<PyTuple>() {
        tuple.iter().collect()
    } else {
        return Err(config(format!("{} must be a list or tuple of str", what())));
    };
    let item_what = || format!("every item of {}", what());
    items.iter().map(|item| text(item, &item_what)).collect()
}

fn rule_from_py(i: usize, item: &Bound<'_, PyAny>) -> PyResult<Rule> {
    let shape = || config(format!("rules[{i}] must be a ({}) tuple", FIELDS.join(", ")));
    let tuple = item.cast::<PyTuple>().map_err(|_| shape())?;
    if tuple.len() != FIELDS.len() {
        return Err(shape());
    }
    let field = |k: usize| move || format!("rules[{i}].{}", FIELDS[k]);
    let path = text(&tuple.get_item(0)?, &field(0))?;
    let methods_obj = tuple.get_item(1)?;
    let methods = if methods_obj.is_none() {
        None
    } else {
        Some(texts(&methods_obj, &field(1))?)
    };
    let scopes = texts(&tuple.get_item(2)?, &field(2))?;
    let roles = texts(&tuple.get_item(3)?, &field(3))?;
    let auth = AuthMode::from_name(&text(&tuple.get_item(4)?, &field(4))?)?;
    Ok(Rule::new(&path, methods.as_deref(), &scopes, &roles, auth)?)
}

/// A request's method or path as bytes: a `str` as UTF-8 (lone surrogates, as WSGI shells make with
/// `surrogateescape`, kept as their `surrogatepass` bytes so they never equal a pattern's text), or `bytes`.
fn request_bytes<'a>(value: &'a Bound<'_, PyAny>, what: &'static str) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(s) = value.cast::<PyString>() {
        if let Ok(utf8) = s.to_str() {
            return Ok(Cow::Borrowed(utf8.as_bytes()));
        }
        let encoded = s.call_method1(pyo3::intern!(s.py(), "encode"), ("utf-8", "surrogatepass"))?;
        return Ok(Cow::Owned(encoded.cast_into::<PyBytes>()?.as_bytes().to_vec()));
    }
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    Err(Error::new(ErrorKind::InvalidRequest, what).into())
}

/// Compiled route rules; `match` names the first rule that applies to a request.
#[pyclass(frozen, module = "bastion._core", name = "RuleSet")]
pub struct PyRuleSet {
    pub(crate) core: RuleSet,
}

#[pymethods]
impl PyRuleSet {
    #[new]
    #[pyo3(signature = (rules, default = None))]
    fn new(rules: &Bound<'_, PyAny>, default: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let items: Vec<Bound<'_, PyAny>> = if let Ok(list) = rules.cast::<PyList>() {
            list.iter().collect()
        } else if let Ok(tuple) = rules.cast::<PyTuple>() {
            tuple.iter().collect()
        } else {
            return Err(config("rules must be a list of rule tuples".into()));
        };
        let compiled = items
            .iter()
            .enumerate()
            .map(|(i, item)| rule_from_py(i, item))
            .collect::<PyResult<Vec<_>>>()?;
        let default = match default.filter(|d| !d.is_none()) {
            None => AuthMode::Required,
            Some(d) => AuthMode::from_name(&text(d, &|| "default".to_owned())?)?,
        };
        Ok(PyRuleSet {
            core: RuleSet::new(compiled, default),
        })
    }

    /// The index of the first rule matching `method` and `path`, or `None` (the default applies).
    #[pyo3(name = "match")]
    fn find(&self, method: &Bound<'_, PyAny>, path: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        let method = request_bytes(method, "the method must be str or bytes")?;
        let path = request_bytes(path, "the path must be str or bytes")?;
        Ok(self.core.find(&method, &path)?.map(|(i, _)| i))
    }

    /// The mode for paths no rule matches.
    #[getter]
    fn default(&self) -> &'static str {
        self.core.default_mode().name()
    }

    #[classattr]
    #[pyo3(name = "FIELDS")]
    fn fields() -> (&'static str, &'static str, &'static str, &'static str, &'static str) {
        FIELDS.into()
    }

    fn __len__(&self) -> usize {
        self.core.rules().len()
    }

    /// Rule `i` as compiled: `(path, methods | None, scopes, roles, auth)`, methods upper-case and every
    /// list without duplicates.
    fn __getitem__<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyTuple>> {
        let rules = self.core.rules();
        let at = if i < 0 { i + rules.len() as isize } else { i };
        let rule = usize::try_from(at)
            .ok()
            .and_then(|at| rules.get(at))
            .ok_or_else(|| pyo3::exceptions::PyIndexError::new_err("rule index out of range"))?;
        let names = |list: &[Box<str>]| PyTuple::new(py, list.iter().map(|s| &**s));
        let methods = match rule.methods() {
            None => py.None().into_bound(py),
            Some(ms) => names(ms)?.into_any(),
        };
        PyTuple::new(
            py,
            [
                PyString::new(py, rule.path()).into_any(),
                methods,
                names(rule.scopes())?.into_any(),
                names(rule.roles())?.into_any(),
                PyString::new(py, rule.auth().name()).into_any(),
            ],
        )
    }

    fn __repr__(&self) -> String {
        format!(
            "<RuleSet: {} rules, default={:?}>",
            self.core.rules().len(),
            self.core.default_mode().name()
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRuleSet>()?;
    m.add("AUTH_MODES", AuthMode::ALL.map(AuthMode::name).to_vec())?;
    Ok(())
}
