//! The PyO3 binding layer: the only place that imports PyO3. Each domain registers its own classes.

use pyo3::prelude::*;

mod bearer;
mod errors;
mod rules;
// -- jwt (issue 2) --
mod jwt;
mod text;
// -- opaque (issue 3) --
pub mod opaque;
pub mod principal;
// -- ratelimit (issue 4) --
mod ratelimit;

/// `bastion._core`: the Rust extension module.
#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("ERROR_CODES", errors::error_codes())?;
    // -- jwt (issue 2) --
    jwt::register(m)?;
    // -- opaque (issue 3) --
    principal::register(m)?;
    opaque::register(m)?;
    // -- ratelimit (issue 4) --
    ratelimit::register(m)?;
    bearer::register(m)?;
    rules::register(m)?;
    Ok(())
}
