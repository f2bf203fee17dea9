//! The JWS algorithms bastion implements (RFC 7518 §3, RFC 8037, RFC 9864's `Ed25519`). Never `none`.

use crate::error::{Error, Result};

/// A JWS `alg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    /// Ed25519 under the RFC 8037 name.
    EdDSA,
    /// Ed25519 under the RFC 9864 name.
    Ed25519,
}

/// What kind of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Hmac,
    Rsa,
    /// ECDSA on one curve.
    Ec(Curve),
    Ed25519,
}

/// The NIST curves of JWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    /// The JWK `crv` name.
    pub const fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    /// Bytes in one coordinate (and in each of r and s of a signature).
    pub const fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// The group order n, big-endian, `coordinate_len` bytes.
    pub const fn order(self) -> &'static [u8] {
        match self {
            Curve::P256 => &P256_N,
            Curve::P384 => &P384_N,
            Curve::P521 => &P521_N,
        }
    }

    /// The ECDSA algorithm that goes with this curve.
    pub const fn alg(self) -> Alg {
        match self {
            Curve::P256 => Alg::ES256,
            Curve::P384 => Alg::ES384,
            Curve::P521 => Alg::ES512,
        }
    }

    /// By JWK `crv` name.
    pub fn from_name(name: &str) -> Option<Curve> {
        match name {
            "P-256" => Some(Curve::P256),
            "P-384" => Some(Curve::P384),
            "P-521" => Some(Curve::P521),
            _ => None,
        }
    }
}

const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa,
    0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
const P384_N: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf, 0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0,
    0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];
const P521_N: [u8; 66] = [
    0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfa, 0x51, 0x86, 0x87, 0x83,
    0xbf, 0x2f, 0x96, 0x6b, 0x7f, 0xcc, 0x01, 0x48, 0xf7, 0x09, 0xa5, 0xd0, 0x3b, 0xb5, 0xc9, 0xb8, 0x89, 0x9c, 0x47,
    0xae, 0xbb, 0x6f, 0xb7, 0x1e, 0x91, 0x38, 0x64, 0x09,
];

impl Alg {
    /// Every algorithm, in a fixed order (the index of an algorithm is its position here).
    pub const ALL: [Alg; 14] = [
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::ES512,
        Alg::EdDSA,
        Alg::Ed25519,
    ];

    /// The position in [`Alg::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The `alg` header value.
    pub const fn name(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::ES512 => "ES512",
            Alg::EdDSA => "EdDSA",
            Alg::Ed25519 => "Ed25519",
        }
    }

    /// By exact `alg` name (case-sensitive, as RFC 7515 requires).
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// Parse a configured algorithm name: `none` and unknown names are configuration errors.
    pub fn parse_config(name: &str) -> Result<Alg> {
        Alg::from_name(name).ok_or_else(|| {
            Error::config(if name.eq_ignore_ascii_case("none") {
                "the 'none' algorithm is never allowed".to_owned()
            } else {
                format!("unknown JWS algorithm {name:?}")
            })
        })
    }

    /// The kind of key this algorithm needs.
    pub const fn family(self) -> Family {
        match self {
            Alg::HS256 | Alg::HS384 | Alg::HS512 => Family::Hmac,
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => Family::Rsa,
            Alg::ES256 => Family::Ec(Curve::P256),
            Alg::ES384 => Family::Ec(Curve::P384),
            Alg::ES512 => Family::Ec(Curve::P521),
            Alg::EdDSA | Alg::Ed25519 => Family::Ed25519,
        }
    }

    /// For HMAC: the hash output size, which is also the minimum secret length (RFC 7518 §3.2).
    pub const fn hmac_min_secret(self) -> usize {
        match self {
            Alg::HS384 => 48,
            Alg::HS512 => 64,
            _ => 32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_none_is_refused() {
        for (i, a) in Alg::ALL.iter().enumerate() {
            assert_eq!(a.index(), i);
            assert_eq!(Alg::from_name(a.name()), Some(*a));
        }
        assert_eq!(Alg::from_name("hs256"), None);
        for none in ["none", "None", "NONE", "nOnE"] {
            assert_eq!(Alg::parse_config(none).unwrap_err().code(), "invalid_configuration");
        }
        assert_eq!(Curve::P521.order().len(), Curve::P521.coordinate_len());
    }
}
