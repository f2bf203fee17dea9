//! The request path: which rule applies to a request, the one order every request goes through, and
//! the revocation of single JWTs.

pub mod denylist;
pub mod flow;
pub mod rules;

pub use rules::{authorize, AuthMode, Rule, RuleSet, Verdict};
