//! Python bindings for the JWT core: `Key`, `KeySet`, `JWTVerifier`, `JWTSigner` and the
//! functions behind `bastion.dangerous`, one file each; `convert` holds the JSON ⇄ Python glue.
//!
//! The claims dict is built straight from the token's bytes by a [`convert::PySink`] that makes Python
//! objects (no intermediate tree). GIL rule: HMAC verify/sign stays attached (well under a
//! microsecond); RSA, ECDSA and `EdDSA` run detached, on inputs copied into owned buffers first.

use pyo3::prelude::*;

use super::args::{self, config_strings, TokenRefusal};
use crate::error::{Error, ErrorKind};
use crate::jwt::verify;
use crate::jwt::Alg;

mod convert;
mod dangerous;
mod keys;
mod signer;
pub(crate) mod verifier;

/// The token as bytes for the JWT calls (see [`args::token_bytes`]): a `str` over `max_token_bytes`
/// code points is `token_too_large`, anything else that is not text is `token_malformed`.
fn token_bytes<'a>(token: &'a Bound<'_, PyAny>, max_token_bytes: usize) -> PyResult<&'a [u8]> {
    args::token_bytes(token, max_token_bytes).map_err(|refusal| {
        match refusal {
            TokenRefusal::TooLong => verify::too_large(),
            TokenRefusal::NotText => Error::new(ErrorKind::TokenMalformed, "the token is not valid text"),
            TokenRefusal::WrongType => Error::new(ErrorKind::TokenMalformed, "the token must be str or bytes"),
        }
        .into()
    })
}

/// `algorithms=`: one name or a list of names, each a supported JWS algorithm.
fn alg_list(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Alg>> {
    let names = config_strings(Some(obj), "algorithms")?.unwrap_or_default();
    names
        .iter()
        .map(|n| Alg::parse_config(n).map_err(PyErr::from))
        .collect()
}

/// Register the JWT classes and functions on `bastion._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<keys::PyKey>()?;
    m.add_class::<keys::PyKeySet>()?;
    m.add_class::<verifier::PyJWTVerifier>()?;
    m.add_class::<signer::PyJWTSigner>()?;
    m.add_function(wrap_pyfunction!(dangerous::_decode_unverified, m)?)?;
    m.add_function(wrap_pyfunction!(dangerous::_verify_jws, m)?)?;
    m.add("JWT_ALGORITHMS", Alg::ALL.iter().map(|a| a.name()).collect::<Vec<_>>())?;
    Ok(())
}
