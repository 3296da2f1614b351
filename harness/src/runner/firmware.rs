//! What firmware a run or a scenario puts on a board: an image file, or a twin
//! variant with any knobs changed (`no-ntp`, `reference+trust=insecure+clock=uptime`).

use std::fmt;
use std::path::{Path, PathBuf};

use hil_contract::descriptor::{Descriptor, DescriptorError, Variant};
use hil_contract::esp8266::MAX_FLASH_SIZE as MAX_IMAGE;

use crate::flash::{FlashError, FlashInput};

/// What a run or a scenario says of its firmware when none was given: the
/// board runs whatever it holds. One spelling everywhere (console, reports, matrix).
pub const FIRMWARE_AS_FOUND: &str = "as found on the board";

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
#[error("`{given}` is neither an image file nor a firmware variant: {problem}")]
#[diagnostic(
    code(hil::runner::unknown_firmware),
    help("name an image file, or a variant from `hil vfirmware list` with optional knobs: `no-ntp`, `reference+trust=insecure`")
)]
pub struct UnknownFirmware {
    /// What was given.
    pub given: String,
    /// Why it is not a variant.
    pub problem: DescriptorError,
}

/// A file that cannot be the firmware a board boots.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{} is not firmware an ESP8266 boots: {reason}", path.display())]
#[diagnostic(
    code(hil::runner::bad_image),
    help("give an ESP8266 image (a .bin that starts with 0xe9, as PlatformIO or elf2bin write it) or its ELF; `--force` flashes the file as raw data anyway")
)]
pub struct BadImage {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// Why a file cannot be flashed even as raw data: unreadable, empty, or larger
/// than any ESP8266's flash.
pub(crate) fn raw_problem(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Err(e) => Some(format!("cannot read it ({e})")),
        Ok(m) if m.len() == 0 => Some("it is empty".into()),
        Ok(m) if m.len() > MAX_IMAGE as u64 => Some(format!(
            "it is {} bytes, more than the 16 MB an ESP8266 can map",
            m.len()
        )),
        Ok(_) => None,
    }
}

impl FirmwareSource {
    /// Checks, before anything is flashed, that an image file is firmware the
    /// ROM boots: not empty, at most 16 MB, and an ELF or a v1 image (magic
    /// 0xe9, a sound segment table, a matching checksum). A twin variant always is.
    pub fn check(&self) -> Result<(), BadImage> {
        let FirmwareSource::Image(path) = self else {
            return Ok(());
        };
        let bad = |reason: String| BadImage {
            path: path.clone(),
            reason,
        };
        if let Some(reason) = raw_problem(path) {
            return Err(bad(reason));
        }
        let data = std::fs::read(path).map_err(|e| bad(format!("cannot read it ({e})")))?;
        if data.starts_with(b"\x7fELF") {
            return Ok(());
        }
        let image = crate::image::ImageV1::parse(&data).map_err(|e| bad(e.to_string()))?;
        if !image.checksum_ok() {
            return Err(bad(format!(
                "its checksum byte is {:#04x} but its segments sum to {:#04x} (the ROM stops with `csum err`)",
                image.stored_checksum(),
                image.computed_checksum()
            )));
        }
        Ok(())
    }

    /// An existing file is an image; anything else must be `variant[+knob=value...]`.
    pub fn parse(given: &str) -> Result<FirmwareSource, UnknownFirmware> {
        if Path::new(given).is_file() {
            return Ok(FirmwareSource::Image(PathBuf::from(given)));
        }
        let unknown = |problem| UnknownFirmware {
            given: given.to_owned(),
            problem,
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
                hil_contract::descriptor::LogStyle::Reference => "reference",
                hil_contract::descriptor::LogStyle::Seed => "seed-style",
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
    fn files_that_are_not_firmware_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let check = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            FirmwareSource::Image(path)
                .check()
                .map_err(|e| e.to_string())
        };
        let empty = check("empty.bin", b"").unwrap_err();
        assert!(empty.contains("empty"), "{empty}");
        let text = check("passwd", b"root:x:0:0:root:/root:/bin/bash\n").unwrap_err();
        assert!(text.contains("0xe9"), "{text}");
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
        let corrupt = FirmwareSource::Image(fixtures.join("images/corrupt.bin"))
            .check()
            .unwrap_err()
            .to_string();
        assert!(corrupt.contains("csum err"), "{corrupt}");
        assert!(FirmwareSource::Image(fixtures.join("images/reference.bin"))
            .check()
            .is_ok());
        assert!(
            FirmwareSource::Image(fixtures.join("firmware/reference-nodemcuv2.bin"))
                .check()
                .is_ok(),
            "a real Arduino image (eboot first) is firmware"
        );
    }

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
        assert!(FirmwareSource::reference().check().is_ok());
        assert_eq!(
            FirmwareSource::parse("seed-style-logs")
                .unwrap()
                .log_profile(),
            Some("seed-style")
        );
    }
}
