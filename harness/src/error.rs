use crate::duration::DurationError;
use crate::flash::FlashError;
use crate::image::ImageError;
use crate::lab::{LabError, UnknownPolicy};
use crate::pki::PkiError;
use crate::serial::SerialError;
#[cfg(feature = "virtual")]
use crate::vboard::VboardError;

/// Every error the library can report, one variant per part.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum Error {
    /// The certificate catalogue failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Pki(#[from] PkiError),
    /// Flashing failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Flash(#[from] FlashError),
    /// An image could not be parsed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Image(#[from] ImageError),
    /// A serial link failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Serial(#[from] SerialError),
    /// A board farm (labgrid) failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Farm(#[from] crate::farm::FarmError),
    /// A virtual board failed.
    #[cfg(feature = "virtual")]
    #[error(transparent)]
    #[diagnostic(transparent)]
    Vboard(#[from] VboardError),
    /// The lab failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lab(#[from] LabError),
    /// A broker policy name that is not in the catalogue.
    #[error(transparent)]
    #[diagnostic(transparent)]
    UnknownPolicy(#[from] UnknownPolicy),
    /// The scenario runner could not go on.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Runner(#[from] crate::runner::RunnerError),
    /// Feature files with problems.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Suite(#[from] crate::runner::SuiteError),
    /// A duration that could not be read.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Duration(#[from] DurationError),
}
