//! The certificate catalogue: every profile of CATALOGUE.md, generated with rcgen
//! relative to an explicit lab clock.
//!
//! One [`Authorities`] per run holds the keys and CA certificates ("HIL Root" ->
//! "HIL Intermediate A", and the others profiles need); the [`Catalogue`] builds
//! every [`Profile`] from it. A profile knows what the device should trust, what the
//! broker serves (in order), the host name the device connects to, and what the
//! reference firmware is expected to report ([`ProfileId::expectation`]).
//!
//! Time is never read implicitly: an `expired` profile is expired *for the clock it
//! was generated with*.

mod authority;
mod catalogue;
mod cert;
mod der;
mod files;
mod keys;
mod profile;
mod verify;

use std::path::PathBuf;

pub use authority::Authorities;
pub use catalogue::{Catalogue, ClientAuth, Profile};
pub use cert::{pem_bundle, Certificate, CertificateInfo, PrivateKeyPem};
pub use files::{file, ExpectedJson, LeafPins, Manifest};
pub use profile::{Expectation, Outcome, ProfileId, UnknownProfile};
pub use verify::{verify_web_pki, WebPkiVerdict};

/// The broker's name in the lab.
pub const BROKER_HOST: &str = "broker.hil.test";
/// The NTP server's name in the lab.
pub const NTP_HOST: &str = "ntp.hil.test";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What can go wrong while generating or writing the catalogue.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum PkiError {
    /// An id that is not in the catalogue.
    #[error(transparent)]
    #[diagnostic(transparent)]
    UnknownProfile(#[from] UnknownProfile),
    /// Key generation failed in OpenSSL or rcgen.
    #[error("could not generate a {kind} key")]
    #[diagnostic(code(hil::pki::key_generation))]
    KeyGeneration {
        /// Which kind of key.
        kind: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// A key-generation thread panicked.
    #[error("a key-generation thread panicked")]
    #[diagnostic(code(hil::pki::key_generation))]
    KeyGenerationPanicked,
    /// rcgen refused to sign a certificate.
    #[error("could not sign the {what}")]
    #[diagnostic(code(hil::pki::sign))]
    Sign {
        /// Which certificate.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// A generated certificate could not be read back.
    #[error("could not inspect a generated certificate")]
    #[diagnostic(code(hil::pki::inspect))]
    Inspect {
        /// OpenSSL's error.
        #[source]
        source: openssl::error::ErrorStack,
    },
    /// A certificate was not the DER the catalogue expected to rewrite.
    #[error("unexpected DER structure at byte {offset}")]
    #[diagnostic(code(hil::pki::der))]
    Der {
        /// Where.
        offset: usize,
    },
    /// A validity date does not fit.
    #[error("a certificate date is out of range")]
    #[diagnostic(
        code(hil::pki::time_range),
        help("use a lab clock between 1980 and 9000")
    )]
    TimeOutOfRange,
    /// A profile was asked for that this catalogue does not hold.
    #[error("profile `{id}` was not generated")]
    #[diagnostic(code(hil::pki::not_generated))]
    NotGenerated {
        /// Which profile.
        id: ProfileId,
    },
    /// A profile serves no certificate at all.
    #[error("profile `{id}` serves an empty chain")]
    #[diagnostic(code(hil::pki::empty_chain))]
    EmptyChain {
        /// Which profile.
        id: ProfileId,
    },
    /// Writing a file failed.
    #[error("could not write {}", path.display())]
    #[diagnostic(
        code(hil::pki::write),
        help("check that the directory is writable and the disk not full")
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl PkiError {
    pub(crate) fn sign<E: std::error::Error + Send + Sync + 'static>(
        what: &'static str,
    ) -> impl FnOnce(E) -> PkiError {
        move |source| PkiError::Sign {
            what,
            source: Box::new(source),
        }
    }
}
