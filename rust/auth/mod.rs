//! The fused per-request path: the route rules and the one order every request goes through.

pub mod flow;
