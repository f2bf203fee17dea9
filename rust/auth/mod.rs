//! The request path: which rule applies to a request, and whether a principal satisfies it.

pub mod rules;

pub use rules::{authorize, AuthMode, Rule, RuleSet, Verdict};
