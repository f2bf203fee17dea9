//! Token text from Python: how long a `str` is, without encoding it.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// The length of `s` in code points, in O(1) and without making CPython build (and cache) its UTF-8
/// form. UTF-8 never has fewer bytes than code points, so a `str` longer than a byte cap is over the cap.
/// A `str` subclass may override `__len__`: it is asked `str`'s own.
pub(crate) fn code_points(s: &Bound<'_, PyString>) -> PyResult<usize> {
    if s.is_exact_instance_of::<PyString>() {
        return s.len();
    }
    let py = s.py();
    py.get_type::<PyString>()
        .getattr(intern!(py, "__len__"))?
        .call1((s,))?
        .extract()
}
