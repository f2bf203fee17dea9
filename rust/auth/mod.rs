//! The fused per-request path: the route rules, the one order every request goes through, and the
//! revocation of single JWTs.

pub mod denylist;
pub mod flow;
