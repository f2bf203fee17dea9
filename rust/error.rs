//! The one error type of the core. Every failure the core can report is an [`ErrorKind`]; the binding
//! layer (`rust/py/errors.rs`) maps each kind, once, to the Python class of the same code in
//! `python/bastion/errors.py`. Messages are static or built from public facts only: never a token,
//! a secret, key material, a kid or an unverified claim value.

use std::borrow::Cow;
use std::fmt;

/// What went wrong, by the stable snake_case code clients see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    // request-time errors (bastion.AuthError subclasses)
    MissingToken,
    InvalidRequest,
    TokenMalformed,
    TokenTooLarge,
    UnsupportedAlgorithm,
    UnsupportedHeader,
    UnknownKey,
    InvalidSignature,
    TokenExpired,
    TokenNotYetValid,
    InvalidIssuer,
    InvalidAudience,
    InvalidType,
    MissingClaim,
    InvalidClaim,
    UnknownToken,
    TokenRevoked,
    InsufficientScope,
    Forbidden,
    RateLimited,
    AuthUnavailable,
    // construction-time errors (bastion.ConfigurationError subclasses)
    InvalidConfiguration,
    WeakKey,
    InvalidKey,
}

impl ErrorKind {
    /// Every kind, in table order. A Python test checks this list against `bastion.errors`.
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::MissingToken,
        ErrorKind::InvalidRequest,
        ErrorKind::TokenMalformed,
        ErrorKind::TokenTooLarge,
        ErrorKind::UnsupportedAlgorithm,
        ErrorKind::UnsupportedHeader,
        ErrorKind::UnknownKey,
        ErrorKind::InvalidSignature,
        ErrorKind::TokenExpired,
        ErrorKind::TokenNotYetValid,
        ErrorKind::InvalidIssuer,
        ErrorKind::InvalidAudience,
        ErrorKind::InvalidType,
        ErrorKind::MissingClaim,
        ErrorKind::InvalidClaim,
        ErrorKind::UnknownToken,
        ErrorKind::TokenRevoked,
        ErrorKind::InsufficientScope,
        ErrorKind::Forbidden,
        ErrorKind::RateLimited,
        ErrorKind::AuthUnavailable,
        ErrorKind::InvalidConfiguration,
        ErrorKind::WeakKey,
        ErrorKind::InvalidKey,
    ];

    /// The stable code, as in the `"error"` member of a response body.
    pub const fn code(self) -> &'static str {
        match self {
            ErrorKind::MissingToken => "missing_token",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::TokenMalformed => "token_malformed",
            ErrorKind::TokenTooLarge => "token_too_large",
            ErrorKind::UnsupportedAlgorithm => "unsupported_algorithm",
            ErrorKind::UnsupportedHeader => "unsupported_header",
            ErrorKind::UnknownKey => "unknown_key",
            ErrorKind::InvalidSignature => "invalid_signature",
            ErrorKind::TokenExpired => "token_expired",
            ErrorKind::TokenNotYetValid => "token_not_yet_valid",
            ErrorKind::InvalidIssuer => "invalid_issuer",
            ErrorKind::InvalidAudience => "invalid_audience",
            ErrorKind::InvalidType => "invalid_type",
            ErrorKind::MissingClaim => "missing_claim",
            ErrorKind::InvalidClaim => "invalid_claim",
            ErrorKind::UnknownToken => "unknown_token",
            ErrorKind::TokenRevoked => "token_revoked",
            ErrorKind::InsufficientScope => "insufficient_scope",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::AuthUnavailable => "auth_unavailable",
            ErrorKind::InvalidConfiguration => "invalid_configuration",
            ErrorKind::WeakKey => "weak_key",
            ErrorKind::InvalidKey => "invalid_key",
        }
    }

    /// True for errors raised while building objects (keys, verifiers, limiters), not per request.
    pub const fn is_configuration(self) -> bool {
        matches!(
            self,
            ErrorKind::InvalidConfiguration | ErrorKind::WeakKey | ErrorKind::InvalidKey
        )
    }
}

/// A core error: a kind, a human message, and the optional details some kinds carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// A message safe to show a client: no token, secret, key material or unverified claim value.
    pub message: Cow<'static, str>,
    /// The claim concerned (`missing_claim`, `invalid_claim`, …).
    pub claim: Option<&'static str>,
    /// Seconds after which a retry may succeed (`rate_limited`, `auth_unavailable`).
    pub retry_after: Option<f64>,
}

impl Error {
    /// An error with a message.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            kind,
            message: message.into(),
            claim: None,
            retry_after: None,
        }
    }

    /// A configuration error (`invalid_configuration`): bad arguments to a constructor or call,
    /// raised as `bastion.ConfigurationError`. The one constructor every module uses.
    pub fn config(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::InvalidConfiguration, message)
    }

    /// A key that cannot be used (`invalid_key`): malformed, of the wrong type, or unusable for the alg.
    pub fn invalid_key(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::InvalidKey, message)
    }

    /// A key too weak to be used (`weak_key`): a short HMAC secret, a small RSA modulus or exponent.
    pub fn weak_key(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::WeakKey, message)
    }

    /// An error about one claim.
    pub fn claim(kind: ErrorKind, claim: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            kind,
            message: message.into(),
            claim: Some(claim),
            retry_after: None,
        }
    }

    /// Attach a retry delay in seconds.
    #[must_use]
    pub fn with_retry_after(mut self, seconds: f64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.message)
    }
}

impl std::error::Error for Error {}

/// The core's result type.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for kind in ErrorKind::ALL {
            let code = kind.code();
            assert!(seen.insert(code), "duplicate code {code}");
            assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{code}");
        }
        assert_eq!(seen.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn display_has_code_and_message() {
        let e = Error::claim(ErrorKind::MissingClaim, "exp", "the token has no exp claim");
        assert_eq!(e.to_string(), "missing_claim: the token has no exp claim");
        assert_eq!(e.claim, Some("exp"));
        assert!(ErrorKind::WeakKey.is_configuration());
        assert!(!ErrorKind::TokenExpired.is_configuration());
    }
}
