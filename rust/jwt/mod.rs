//! JSON Web Tokens: strict parsing, keys, verification, signing and the verified-token cache.
//! No `PyO3` here; `rust/py/jwt/` binds it. JSON itself is [`crate::json`].

pub mod alg;
pub mod b64;
pub mod cache;
pub mod claims;
pub mod crypto;
pub mod header;
pub mod hygiene;
pub mod identity;
pub mod issuers;
pub mod jwk;
pub mod keys;
pub mod sign;
pub mod verify;
pub mod watched;

pub use alg::Alg;
pub use claims::{Policy, Times};
pub use jwk::KeySet;
pub use keys::Key;
pub use sign::Signer;
pub use verify::Verifier;
