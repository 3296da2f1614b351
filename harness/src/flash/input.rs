//! What to flash, checked before the board is touched: an ELF is converted by
//! espflash into the regions it writes; a binary read as firmware must be an
//! ESP8266 v1 image (magic 0xE9, segments that fit, the checksum the ROM checks),
//! one read as raw data may hold anything.

use std::path::Path;

use espflash::elf::{ElfFirmwareImage, FirmwareImage};
use espflash::flasher::FlashSize;
use espflash::targets::Chip;

use super::plan::Span;
use super::FlashError;
use crate::image::{ImageError, ImageV1, MAGIC};

/// The largest flash an ESP8266 addresses (16 MB); the board's own size is
/// checked once it is known.
pub const MAX_FLASH: u32 = hil_contract::esp8266::MAX_FLASH_SIZE as u32;

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

/// A piece of the input and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Flash address.
    pub offset: u32,
    /// The bytes.
    pub data: Vec<u8>,
}

impl Region {
    /// Where it lies in flash.
    pub fn span(&self) -> Span {
        Span {
            offset: self.offset,
            len: self.data.len() as u32,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, FlashError> {
    let data = std::fs::read(path).map_err(|source| FlashError::ReadImage {
        path: path.display().to_string(),
        source,
    })?;
    if data.is_empty() {
        return Err(FlashError::Empty);
    }
    Ok(data)
}

fn fits(offset: u32, len: usize, flash: u32) -> Result<(), FlashError> {
    if u64::from(offset) + len as u64 > u64::from(flash) {
        return Err(FlashError::TooBig {
            offset,
            len,
            flash_size: flash,
        });
    }
    Ok(())
}

/// Checks that `data` is an image the ROM would load: magic, segments, checksum.
pub fn check_image(path: &str, data: &[u8]) -> Result<(), FlashError> {
    // The magic first: it is what tells firmware from anything else.
    if let Some(&found) = data.first().filter(|b| **b != MAGIC) {
        return Err(FlashError::NotAnImage {
            path: path.to_string(),
            reason: ImageError::BadMagic { found },
        });
    }
    let image = ImageV1::parse(data).map_err(|reason| FlashError::NotAnImage {
        path: path.to_string(),
        reason,
    })?;
    if !image.checksum_ok() {
        return Err(FlashError::ImageChecksum {
            path: path.to_string(),
            stored: image.stored_checksum(),
            computed: image.computed_checksum(),
        });
    }
    Ok(())
}

impl FlashInput {
    /// Reads a file: an ELF when it starts with the ELF magic (converted here, so
    /// a broken one is refused before a board is touched), otherwise raw bytes for
    /// `offset` (default 0), whatever they hold: a file system, calibration data,
    /// or an image a scenario flashes broken on purpose.
    pub fn from_file(path: &Path, offset: Option<u32>) -> Result<FlashInput, FlashError> {
        let data = read(path)?;
        if data.starts_with(b"\x7fELF") {
            let input = FlashInput::Elf(data);
            input.regions(None)?;
            return Ok(input);
        }
        let offset = offset.unwrap_or(0);
        fits(offset, data.len(), MAX_FLASH)?;
        Ok(FlashInput::Bin { data, offset })
    }

    /// Reads firmware: an ELF, or a binary that must be an ESP8266 image the ROM
    /// would load (magic 0xE9, segments, checksum); anything else is refused here,
    /// before a board is touched.
    pub fn from_image_file(path: &Path, offset: Option<u32>) -> Result<FlashInput, FlashError> {
        let input = FlashInput::from_file(path, offset)?;
        if let FlashInput::Bin { data, .. } = &input {
            check_image(&path.display().to_string(), data)?;
        }
        Ok(input)
    }

    /// The regions to write on a board with `flash_size` bytes of flash (an
    /// ELF's image header records the size; `None`: espflash's default).
    pub fn regions(&self, flash_size: Option<u32>) -> Result<Vec<Region>, FlashError> {
        let regions = match self {
            FlashInput::Bin { data, offset } => {
                if data.is_empty() {
                    return Err(FlashError::Empty);
                }
                vec![Region {
                    offset: *offset,
                    data: data.clone(),
                }]
            }
            FlashInput::Elf(elf) => elf_regions(elf, flash_size)?,
        };
        for region in &regions {
            fits(
                region.offset,
                region.data.len(),
                flash_size.unwrap_or(MAX_FLASH),
            )?;
        }
        Ok(regions)
    }
}

fn elf_error(what: impl std::fmt::Display) -> FlashError {
    FlashError::Elf {
        what: what.to_string(),
    }
}

fn size_for(bytes: u32) -> Option<FlashSize> {
    Some(match bytes {
        0x4_0000 => FlashSize::_256Kb,
        0x8_0000 => FlashSize::_512Kb,
        0x10_0000 => FlashSize::_1Mb,
        0x20_0000 => FlashSize::_2Mb,
        0x40_0000 => FlashSize::_4Mb,
        0x80_0000 => FlashSize::_8Mb,
        0x100_0000 => FlashSize::_16Mb,
        _ => return None,
    })
}

/// espflash's conversion of an ESP8266 ELF: the image at 0, and the code that
/// runs from flash as a plain binary where the flash mapping puts it.
fn elf_regions(elf: &[u8], flash_size: Option<u32>) -> Result<Vec<Region>, FlashError> {
    let image = ElfFirmwareImage::try_from(elf).map_err(elf_error)?;
    // espflash joins the flash-mapped sections by subtracting addresses, which
    // only works in address order; check that here rather than let it underflow.
    let mut end = 0u64;
    for segment in image.rom_segments(Chip::Esp8266) {
        if u64::from(segment.addr) < end {
            return Err(elf_error(format!(
                "the flash-mapped section at {:#x} overlaps or precedes the one before it",
                segment.addr
            )));
        }
        end = u64::from(segment.addr) + segment.size() as u64;
    }
    let target = Chip::Esp8266.into_target();
    let converted = target
        .get_flash_image(
            &image,
            None,
            None,
            None,
            None,
            None,
            flash_size.and_then(size_for),
            None,
        )
        .map_err(elf_error)?;
    let mut regions: Vec<Region> = converted
        .flash_segments()
        .map(|segment| Region {
            offset: segment.addr,
            data: segment.data.to_vec(),
        })
        .filter(|region| !region.data.is_empty())
        .collect();
    regions.sort_by_key(|r| r.offset);
    for pair in regions.windows(2) {
        if pair[0].span().end() > pair[1].offset {
            return Err(elf_error(format!(
                "its image ({:#x}..{:#x}) and its flash-mapped code ({:#x}..) overlap: \
                 the ELF is not linked for the layout espflash writes (image at 0, code at 0x10000)",
                pair[0].offset,
                pair[0].span().end(),
                pair[1].offset
            )));
        }
    }
    if regions.is_empty() {
        return Err(FlashError::Empty);
    }
    Ok(regions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Segment;

    #[test]
    fn binaries_are_checked_unless_raw() {
        let dir = tempfile::tempdir().unwrap();
        let image = ImageV1::new(0x4010_0004, vec![Segment::new(0x4010_0000, vec![7; 64])]);
        let good = dir.path().join("good.bin");
        std::fs::write(&good, image.to_bytes()).unwrap();
        assert!(matches!(
            FlashInput::from_image_file(&good, None).unwrap(),
            FlashInput::Bin { offset: 0, .. }
        ));

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, b"hello").unwrap();
        let err = FlashInput::from_image_file(&text, None).unwrap_err();
        assert!(err.to_string().contains("first byte is 0x68"), "{err}");
        assert!(FlashInput::from_file(&text, Some(0x8000)).is_ok());

        let spoiled = dir.path().join("spoiled.bin");
        std::fs::write(&spoiled, image.with_stored_checksum(0).to_bytes()).unwrap();
        assert!(matches!(
            FlashInput::from_image_file(&spoiled, None),
            Err(FlashError::ImageChecksum { stored: 0, .. })
        ));

        let empty = dir.path().join("empty.bin");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(
            FlashInput::from_file(&empty, None),
            Err(FlashError::Empty)
        ));
        assert!(matches!(
            FlashInput::from_file(&text, Some(MAX_FLASH - 2)),
            Err(FlashError::TooBig { .. })
        ));
        let input = FlashInput::from_file(&text, Some(0x3F_FFFC)).unwrap();
        assert!(matches!(
            input.regions(Some(0x40_0000)),
            Err(FlashError::TooBig {
                flash_size: 0x40_0000,
                ..
            })
        ));
    }

    #[test]
    fn a_broken_elf_is_refused() {
        let mut elf = b"\x7fELF".to_vec();
        elf.extend([0u8; 40]);
        assert!(matches!(
            FlashInput::Elf(elf).regions(None),
            Err(FlashError::Elf { .. })
        ));
    }
}
