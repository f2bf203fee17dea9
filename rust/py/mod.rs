//! The PyO3 binding layer: the only place that imports PyO3. Each domain registers its own classes.

use pyo3::prelude::*;

mod args;
mod audit;
mod audit_queue;
mod auth;
mod context;
mod errors;
mod gate;
mod json;
mod request_id;
mod text;

mod bearer;
mod jwt;
pub mod opaque;
mod outcome;
pub mod principal;
mod ratelimit;
mod rules;

/// `bastion._core`: the Rust extension module.
#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("ERROR_CODES", errors::error_codes())?;
    jwt::register(m)?;
    principal::register(m)?;
    opaque::register(m)?;
    ratelimit::register(m)?;
    bearer::register(m)?;
    rules::register(m)?;
    outcome::register(m)?;
    auth::register(m)?;
    audit::register(m)?;
    audit_queue::register(m)?;
    context::register(m)?;
    gate::register(m)?;
    request_id::register(m)?;
    Ok(())
}
