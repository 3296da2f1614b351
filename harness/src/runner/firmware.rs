//! What firmware a run or a scenario puts on a board: an image file, or a twin
//! variant with any knobs changed (`no-ntp`, `reference+trust=insecure+clock=uptime`).

use std::fmt;
use std::path::{Path, PathBuf};

use hil_twin::descriptor::{Descriptor, DescriptorError, Variant};

use crate::flash::{FlashError, FlashInput};

/// A firmware to flash, as a user names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirmwareSource {
    /// An image file (`.bin`, or an ELF espflash converts).
    Image(PathBuf),
    /// A virtual firmware built from a variant and knob assignments.
    Twin {
        /// The text as given, for reports.
        spec: String,
        /// The descriptor it builds.
        descriptor: Box<Descriptor>,
    },
}

/// A firmware name that is neither an existing file nor a variant.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("`{given}` is neither an image file nor a firmware variant: {source}")]
#[diagnostic(
    code(hil::runner::unknown_firmware),
    help("name an image file, or a variant from `hil vfirmware list` with optional knobs: `no-ntp`, `reference+trust=insecure`")
)]
pub struct UnknownFirmware {
    /// What was given.
    pub given: String,
    /// Why it is not a variant.
    pub source: DescriptorError,
}

impl FirmwareSource {
    /// An existing file is an image; anything else must be `variant[+knob=value...]`.
    pub fn parse(given: &str) -> Result<FirmwareSource, UnknownFirmware> {
        if Path::new(given).is_file() {
            return Ok(FirmwareSource::Image(PathBuf::from(given)));
        }
        let unknown = |source| UnknownFirmware {
            given: given.to_owned(),
            source,
        };
        let mut parts = given.split('+');
        let variant = Variant::parse(parts.next().unwrap_or_default().trim()).map_err(unknown)?;
        let mut descriptor = variant.descriptor();
        let mut changed = false;
        for assignment in parts {
            descriptor.apply(assignment).map_err(unknown)?;
            changed = true;
        }
        if changed {
            descriptor.variant = given.to_owned();
        }
        Ok(FirmwareSource::Twin {
            spec: given.to_owned(),
            descriptor: Box::new(descriptor),
        })
    }

    /// The reference twin.
    pub fn reference() -> FirmwareSource {
        FirmwareSource::Twin {
            spec: Variant::Reference.as_str().into(),
            descriptor: Box::new(Variant::Reference.descriptor()),
        }
    }

    /// The log profile this firmware speaks, when the harness can know it (twins
    /// say so in their descriptor; an image file does not).
    pub fn log_profile(&self) -> Option<&'static str> {
        match self {
            FirmwareSource::Twin { descriptor, .. } => Some(match descriptor.knobs.log {
                hil_twin::descriptor::LogStyle::Reference => "reference",
                hil_twin::descriptor::LogStyle::Seed => "seed-style",
            }),
            FirmwareSource::Image(_) => None,
        }
    }

    /// What to flash.
    pub fn flash_input(&self) -> Result<FlashInput, FlashError> {
        match self {
            FirmwareSource::Image(path) => FlashInput::from_file(path, None),
            FirmwareSource::Twin { descriptor, .. } => Ok(FlashInput::Bin {
                data: crate::vfirmware::build(descriptor).to_bytes(),
                offset: 0,
            }),
        }
    }
}

impl fmt::Display for FirmwareSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FirmwareSource::Image(path) => write!(f, "{}", path.display()),
            FirmwareSource::Twin { spec, .. } => f.write_str(spec),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_compose_with_knobs() {
        let FirmwareSource::Twin { descriptor, .. } =
            FirmwareSource::parse("no-ntp+trust=insecure").unwrap()
        else {
            panic!("expected a twin");
        };
        let entries = descriptor.entries();
        assert!(entries.contains(&("trust", "insecure".into())));
        assert!(entries.contains(&("clock", "uptime".into())));
        assert!(FirmwareSource::parse("no-such-variant").is_err());
        assert!(FirmwareSource::parse("reference+warp=9").is_err());
        assert_eq!(
            FirmwareSource::parse("seed-style-logs")
                .unwrap()
                .log_profile(),
            Some("seed-style")
        );
    }
}
