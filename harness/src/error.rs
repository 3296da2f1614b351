use crate::pki::PkiError;

/// Every error the library can report, one variant per part.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum Error {
    /// The certificate catalogue failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Pki(#[from] PkiError),
}
