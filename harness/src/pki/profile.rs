//! The profile ids of the catalogue and what each one is expected to do.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::bearssl::ErrorCode;

/// What a TLS client does with a presented chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The handshake completes.
    Connects,
    /// The client rejects the chain and the handshake never completes.
    Refuses,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Connects => "connects",
            Outcome::Refuses => "refuses",
        })
    }
}

/// What the reference firmware (root as the only trust anchor, correct clock) is
/// expected to report against a profile.
///
/// Every BearSSL code here was measured with the twin's real BearSSL against the
/// profile served by OpenSSL (test `bearssl_profiles`), which fails if one drifts.
/// Where that measurement differed from the starting list, the measurement won:
/// `reversed-chain` is 56 and `md5-signature` 49, as expected; `intermediate-not-ca`
/// is 58 only when the intermediate keeps a CA's key usage (BearSSL checks key
/// usage first and says 59 otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Expectation {
    /// Whether the reference firmware connects.
    pub outcome: Outcome,
    /// The BearSSL error the device reports (0 when it connects).
    pub bearssl_code: ErrorCode,
    /// What web PKI rules (RFC 5280/6125 as rustls-webpki applies them) decide.
    /// Differs from `outcome` only where BearSSL knowingly diverges.
    pub web_pki: Outcome,
}

macro_rules! profiles {
    ($( $variant:ident => $id:literal, $desc:literal,
        $outcome:ident, $code:literal, $web:ident, $catches:literal; )*) => {
        /// A certificate profile of the catalogue: what the lab's broker presents.
        ///
        /// The ids are fixed (features, the CLI and reports use them as written).
        ///
        /// ```
        /// use hil::pki::ProfileId;
        ///
        /// let id: ProfileId = "wrong-san".parse()?;
        /// assert_eq!(id, ProfileId::WrongSan);
        /// assert_eq!(id.expectation().bearssl_code.get(), 56);
        /// assert!("no-such-profile".parse::<ProfileId>().is_err());
        /// # Ok::<(), hil::pki::UnknownProfile>(())
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ProfileId {
            $(
                #[doc = $desc]
                $variant,
            )*
        }

        impl ProfileId {
            /// Every profile, in catalogue order.
            pub const ALL: &'static [ProfileId] = &[$(ProfileId::$variant,)*];

            /// The fixed id, as features and the CLI spell it.
            pub const fn as_str(self) -> &'static str {
                match self { $(ProfileId::$variant => $id,)* }
            }

            /// One line saying what the broker presents.
            pub const fn description(self) -> &'static str {
                match self { $(ProfileId::$variant => $desc,)* }
            }

            /// What the reference firmware is expected to report.
            pub const fn expectation(self) -> Expectation {
                match self {
                    $(ProfileId::$variant => Expectation {
                        outcome: Outcome::$outcome,
                        bearssl_code: ErrorCode::new($code),
                        web_pki: Outcome::$web,
                    },)*
                }
            }

            /// Which firmware mistakes this profile exposes.
            pub const fn catches(self) -> &'static str {
                match self { $(ProfileId::$variant => $catches,)* }
            }
        }
    };
}

profiles! {
    Valid => "valid", "leaf (SAN broker.hil.test) + HIL Intermediate A",
        Connects, 0, Connects, "no-ntp, stale-clock, malformed-ca";
    RenewedLeaf => "renewed-leaf", "new leaf key and serial under the same intermediate",
        Connects, 0, Connects, "fingerprint, known-key";
    NewIntermediate => "new-intermediate", "leaf under HIL Intermediate B, same root",
        Connects, 0, Connects, "intermediate-anchor, fingerprint";
    FullChain => "full-chain", "leaf + intermediate + root",
        Connects, 0, Connects, "-";
    Ecdsa => "ecdsa", "P-256 leaf and intermediate under the RSA root",
        Connects, 0, Connects, "RSA-only cipher lists";
    LargeChain => "large-chain", "RSA-4096 leaf and intermediate, many SANs",
        Connects, 0, Connects, "small-buffers (with a broker that ignores MFLN: 6)";
    WrongSan => "wrong-san", "SAN other.hil.test, CN broker.hil.test",
        Refuses, 56, Refuses, "insecure, connect-by-ip, known-key";
    WildcardMismatch => "wildcard-mismatch", "SAN *.hil.test presented for mqtt.broker.hil.test (two labels deeper)",
        Refuses, 56, Refuses, "insecure, connect-by-ip";
    Expired => "expired", "leaf expired one day before the lab clock",
        Refuses, 54, Refuses, "insecure, fingerprint, known-key";
    NotYetValid => "not-yet-valid", "leaf valid from one day after the lab clock",
        Refuses, 54, Refuses, "insecure, known-key";
    ExpiredIntermediate => "expired-intermediate", "intermediate expired (same name and key), leaf valid",
        Refuses, 54, Refuses, "insecure, fingerprint (intermediate-anchor accepts: documented)";
    UntrustedRoot => "untrusted-root", "good names and dates, chain to Evil Root",
        Refuses, 62, Refuses, "insecure";
    SelfSigned => "self-signed", "self-signed leaf with the right SAN",
        Refuses, 62, Refuses, "insecure, self-signed-ok";
    MissingIntermediate => "missing-intermediate", "leaf only, intermediate not sent",
        Refuses, 62, Refuses, "insecure";
    ReversedChain => "reversed-chain", "intermediate sent before the leaf",
        Refuses, 56, Refuses, "insecure";
    IntermediateNotCa => "intermediate-not-ca", "issuing intermediate without CA:TRUE",
        Refuses, 58, Refuses, "insecure";
    CriticalExtension => "critical-extension", "leaf with an unknown critical extension",
        Refuses, 57, Refuses, "insecure";
    BadSignature => "bad-signature", "leaf signature corrupted",
        Refuses, 52, Refuses, "insecure";
    Md5Signature => "md5-signature", "leaf signed with MD5",
        Refuses, 49, Refuses, "insecure";
    CnOnly => "cn-only", "CN broker.hil.test and no SAN (BearSSL falls back to the CN)",
        Connects, 0, Refuses, "- (divergence from web PKI rules, documented)";
    ClientauthEku => "clientauth-eku", "leaf whose non-critical EKU is clientAuth only",
        Connects, 0, Refuses, "- (divergence from web PKI rules, documented)";
}

impl ProfileId {
    /// Why BearSSL's verdict differs from web PKI rules, for the profiles where it
    /// knowingly does.
    pub const fn divergence(self) -> Option<&'static str> {
        match self {
            ProfileId::CnOnly => Some(
                "BearSSL matches the subject CN when the certificate has no SAN extension; \
                 web PKI rules require a SAN",
            ),
            ProfileId::ClientauthEku => Some(
                "BearSSL's minimal X.509 engine ignores a non-critical EKU; web PKI rules \
                 require serverAuth when an EKU is present",
            ),
            _ => None,
        }
    }
}

impl fmt::Display for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A profile id that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("unknown certificate profile `{given}`")]
#[diagnostic(
    code(hil::pki::unknown_profile),
    help("valid profiles: {}", valid_ids())
)]
pub struct UnknownProfile {
    /// What was asked for.
    pub given: String,
}

fn valid_ids() -> String {
    ProfileId::ALL
        .iter()
        .map(|id| id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for ProfileId {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProfileId::ALL
            .iter()
            .copied()
            .find(|id| id.as_str() == s)
            .ok_or_else(|| UnknownProfile {
                given: s.to_owned(),
            })
    }
}

impl Serialize for ProfileId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProfileId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        for id in ProfileId::ALL {
            assert_eq!(id.as_str().parse::<ProfileId>(), Ok(*id));
        }
        assert_eq!(ProfileId::ALL.len(), 21);
    }

    #[test]
    fn unknown_profile_lists_the_valid_ids() {
        let err = "nope".parse::<ProfileId>().unwrap_err();
        let help = miette::Diagnostic::help(&err).map(|h| h.to_string());
        assert!(
            help.is_some_and(|h| h.contains("valid, renewed-leaf") && h.contains("clientauth-eku"))
        );
    }

    #[test]
    fn refusals_carry_a_nonzero_code_and_connections_zero() {
        for id in ProfileId::ALL {
            let e = id.expectation();
            assert_eq!(
                e.outcome == Outcome::Connects,
                e.bearssl_code.get() == 0,
                "{id}"
            );
            assert_eq!(e.outcome != e.web_pki, id.divergence().is_some(), "{id}");
        }
    }
}
