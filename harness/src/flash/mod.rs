//! Flashing a board through espflash 2.1 (the last release that supports the
//! ESP8266), used as a library over any serial link.
//!
//! espflash writes; this module adds what it lacks for the ESP8266: a check that
//! skips writing when flash already holds the same bytes, and a verification of
//! what was written. Both ask the flasher stub (which espflash uploads) for the MD5
//! of the region with SPI_FLASH_MD5, through [`stub_md5`], a minimal loader client.
//!
//! Progress is reported as [`FlashEvent`] values; drawing it is the caller's job.

mod counting;
mod stub_client;

use std::path::Path;

use espflash::flasher::{Flasher, ProgressCallbacks};
use espflash::interface::Interface;
use md5::{Digest, Md5};
use serialport::UsbPortInfo;

use crate::serial::{PortSpec, SerialError};
use crate::vboard::FLASH_SIZE;

pub use counting::WireCount;
pub use stub_client::stub_md5;

/// What can go wrong while flashing.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum FlashError {
    /// The image file could not be read.
    #[error("cannot read {path}")]
    #[diagnostic(code(hil::flash::read_image), help("check the path"))]
    ReadImage {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The image does not fit at the offset.
    #[error("{len} bytes at offset {offset:#x} run past the end of the 4 MB flash")]
    #[diagnostic(code(hil::flash::too_big), help("check --offset and the image"))]
    TooBig {
        /// The offset.
        offset: u32,
        /// The image length.
        len: usize,
    },
    /// An empty image.
    #[error("the image is empty")]
    #[diagnostic(code(hil::flash::empty), help("pass a .bin or an .elf with content"))]
    Empty,
    /// The serial link failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Serial(#[from] SerialError),
    /// espflash reported an error (connection, protocol, ELF conversion).
    #[error("espflash: {message}")]
    #[diagnostic(
        code(hil::flash::espflash),
        help("is the board connected, powered, and wired for auto-reset (DTR/RTS)?")
    )]
    Espflash {
        /// espflash's message.
        message: String,
    },
    /// The stub did not answer SPI_FLASH_MD5 properly.
    #[error("the flasher stub's MD5 answer was unusable: {what}")]
    #[diagnostic(
        code(hil::flash::stub_protocol),
        help("the link dropped bytes or the board reset; try again")
    )]
    StubProtocol {
        /// What went wrong.
        what: String,
    },
    /// What flash holds after writing is not the image.
    #[error("verification failed at {offset:#x}: flash MD5 {found}, image MD5 {expected}")]
    #[diagnostic(
        code(hil::flash::verify),
        help("the write did not take; check the power supply and cable, then flash again")
    )]
    VerifyFailed {
        /// Region start.
        offset: u32,
        /// MD5 of the image.
        expected: String,
        /// MD5 the stub computed over flash.
        found: String,
    },
}

fn espflash_error(error: impl std::fmt::Display) -> FlashError {
    FlashError::Espflash {
        message: error.to_string(),
    }
}

/// What to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlashInput {
    /// Raw bytes at an offset (an image for offset 0, or any binary).
    Bin {
        /// The bytes.
        data: Vec<u8>,
        /// Where they go.
        offset: u32,
    },
    /// An ELF file, converted by espflash into the ESP8266 image layout.
    Elf(Vec<u8>),
}

impl FlashInput {
    /// Reads a file: ELF when it starts with the ELF magic, otherwise a binary for
    /// `offset` (default 0).
    pub fn from_file(path: &Path, offset: Option<u32>) -> Result<FlashInput, FlashError> {
        let data = std::fs::read(path).map_err(|source| FlashError::ReadImage {
            path: path.display().to_string(),
            source,
        })?;
        if data.is_empty() {
            return Err(FlashError::Empty);
        }
        if data.starts_with(b"\x7fELF") {
            return Ok(FlashInput::Elf(data));
        }
        let offset = offset.unwrap_or(0);
        if offset as u64 + data.len() as u64 > FLASH_SIZE as u64 {
            return Err(FlashError::TooBig {
                offset,
                len: data.len(),
            });
        }
        Ok(FlashInput::Bin { data, offset })
    }
}

/// The board, as espflash reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSummary {
    /// e.g. "esp8266".
    pub chip: String,
    /// Station MAC, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// Detected flash size in bytes.
    pub flash_size: u32,
    /// Crystal in MHz.
    pub crystal_mhz: u32,
}

/// Progress, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlashEvent {
    /// Connected and identified.
    Connected(DeviceSummary),
    /// Flash already holds the image: nothing written.
    AlreadyFlashed,
    /// Writing a segment of `blocks` blocks at `addr`.
    Writing {
        /// Flash address.
        addr: u32,
        /// Number of 1 KB blocks.
        blocks: usize,
    },
    /// `done` blocks of the current segment written.
    Block {
        /// Blocks done.
        done: usize,
    },
    /// Reading back the MD5 of what was written.
    Verifying,
    /// Flash matches the image.
    Verified {
        /// The MD5, hex.
        md5: String,
    },
}

/// How a flash run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlashOutcome {
    /// Flash already held the image.
    Skipped,
    /// Written, and verified by MD5 when the input was a binary.
    Written {
        /// Whether flash was read back and matched (ELF inputs are not verified).
        verified: bool,
    },
}

/// The result of [`flash`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashReport {
    /// The board.
    pub device: DeviceSummary,
    /// What happened.
    pub outcome: FlashOutcome,
    /// Bytes the harness sent and received on the serial link.
    pub wire: WireCount,
}

struct Progress<'a>(&'a mut dyn FnMut(FlashEvent));

impl ProgressCallbacks for Progress<'_> {
    fn init(&mut self, addr: u32, total: usize) {
        (self.0)(FlashEvent::Writing {
            addr,
            blocks: total,
        });
    }

    fn update(&mut self, current: usize) {
        (self.0)(FlashEvent::Block { done: current });
    }

    fn finish(&mut self) {}
}

fn hex_md5(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

fn connect(interface: Interface) -> Result<Flasher, FlashError> {
    let info = UsbPortInfo {
        vid: 0,
        pid: 0,
        serial_number: None,
        manufacturer: None,
        product: None,
        location: None,
    };
    Flasher::connect(interface, info, None, true).map_err(espflash_error)
}

fn release(mut interface: Interface) -> Result<(), FlashError> {
    // Hard reset: the board boots what flash now holds.
    espflash::connection::reset_after_flash(&mut interface, 0).map_err(espflash_error)
}

/// Flashes `input` onto the board on `spec`: connects (reset into the ROM loader,
/// espflash's stub), skips when flash already holds a binary input, writes,
/// verifies a binary by MD5, and resets the board into its firmware.
pub fn flash(
    spec: &PortSpec,
    input: &FlashInput,
    on_event: &mut dyn FnMut(FlashEvent),
) -> Result<FlashReport, FlashError> {
    let (port, wire) = counting::CountingPort::wrap(spec.open(115_200)?);
    let mut flasher = connect(Interface {
        serial_port: Box::new(port),
    })?;
    let info = flasher.device_info().map_err(espflash_error)?;
    let device = DeviceSummary {
        chip: info.chip.to_string(),
        mac: info.mac_address.clone(),
        flash_size: info.flash_size.size(),
        crystal_mhz: info.crystal_frequency,
    };
    on_event(FlashEvent::Connected(device.clone()));

    let outcome = match input {
        FlashInput::Bin { data, offset } => {
            let expected = hex_md5(data);
            let mut interface = flasher.into_interface();
            let found = stub_md5(&mut interface.serial_port, *offset, data.len() as u32)?;
            if found == expected {
                on_event(FlashEvent::AlreadyFlashed);
                release(interface)?;
                FlashOutcome::Skipped
            } else {
                let mut flasher = connect(interface)?;
                flasher
                    .write_bin_to_flash(*offset, data, Some(&mut Progress(on_event)))
                    .map_err(espflash_error)?;
                on_event(FlashEvent::Verifying);
                let flasher = connect(flasher.into_interface())?;
                let mut interface = flasher.into_interface();
                let found = stub_md5(&mut interface.serial_port, *offset, data.len() as u32)?;
                if found != expected {
                    return Err(FlashError::VerifyFailed {
                        offset: *offset,
                        expected,
                        found,
                    });
                }
                on_event(FlashEvent::Verified { md5: found });
                release(interface)?;
                FlashOutcome::Written { verified: true }
            }
        }
        FlashInput::Elf(elf) => {
            flasher
                .load_elf_to_flash(
                    elf,
                    None,
                    None,
                    None,
                    None,
                    None,
                    Some(&mut Progress(on_event)),
                )
                .map_err(espflash_error)?;
            FlashOutcome::Written { verified: false }
        }
    };
    Ok(FlashReport {
        device,
        outcome,
        wire: wire.get(),
    })
}
