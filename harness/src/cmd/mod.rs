//! One module per verb.

#[cfg(feature = "virtual")]
pub mod demo;
pub mod doctor;
pub mod farm;
pub mod flash;
pub mod lab;
pub mod logprofile;
pub mod monitor;
pub mod pki;
pub mod reset;
pub mod run;
pub mod steps;
pub mod stop;
#[cfg(feature = "virtual")]
pub mod vboard;
#[cfg(feature = "virtual")]
pub mod vboard_bench;
pub mod vfirmware;
#[cfg(feature = "virtual")]
pub mod vfirmware_bench;

/// Every scenario (or check) passed.
pub const EXIT_OK: u8 = 0;
/// Some scenario (or check) failed.
pub const EXIT_FAILED: u8 = 1;
/// Bad input or an infrastructure error.
pub const EXIT_USAGE: u8 = 2;

/// Parses an RFC 3339 timestamp given on the command line.
pub fn parse_rfc3339(text: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(|e| {
        format!("`{text}` is not an RFC 3339 timestamp ({e}); example: 2026-01-31T12:00:00Z")
    })
}

/// The wall clock, read once at the CLI edge: the library never reads it itself.
pub fn now() -> time::OffsetDateTime {
    // Whole seconds keep generated certificates and manifests free of sub-second noise.
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// A timestamp as RFC 3339, for humans and machines alike.
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}
