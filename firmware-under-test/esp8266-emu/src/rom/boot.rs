//! The ROM's boot path, natively: the banner, the check of the v1 image at flash
//! offset 0 with the lines the ROM prints while it loads it, the copy of its
//! segments to RAM, and the registers the ROM leaves for the image's entry point.
//!
//! The `room`/`tail`/`ho` figures follow the ROM's 16-byte read buffer as
//! `harness/src/vboard/boot.rs` reproduces them from real boot logs.

use thiserror::Error;

/// Magic byte of a v1 image.
pub const MAGIC: u8 = 0xE9;
/// Seed of the image checksum (XOR of every segment byte).
pub const CHECKSUM_SEED: u8 = hil_contract::rom::CHECKSUM_SEED;
/// The ROM has sixteen segment slots.
const MAX_SEGMENTS: u8 = 16;
/// The rate the ROM prints at: 115200 as a 26 MHz crystal turns it.
pub const ROM_BAUD: u32 = 74_880;

/// Why flash does not hold a bootable v1 image.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ImageError {
    /// The first byte is not 0xE9 (erased flash reads 0xFF).
    #[error("bad magic byte {0:#04x}")]
    BadMagic(u8),
    /// More than sixteen segments.
    #[error("{0} segments")]
    TooManySegments(u8),
    /// The image runs past the end of flash.
    #[error("truncated image")]
    Truncated,
}

/// One segment of an image: where it loads and its bytes' place in flash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Load address.
    pub addr: u32,
    /// Offset of its data in flash.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
}

/// A v1 image header and its segments as found in flash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Entry point.
    pub entry: u32,
    /// Flash mode byte.
    pub flash_mode: u8,
    /// Size and frequency byte.
    pub size_freq: u8,
    /// The segments in order.
    pub segments: Vec<Segment>,
    /// The checksum byte stored after them.
    pub stored_checksum: u8,
}

impl Image {
    /// Parses the image at `at` in `flash`.
    pub fn parse(flash: &[u8], at: usize) -> Result<Image, ImageError> {
        let take = |off: usize, n: usize| flash.get(off..off + n).ok_or(ImageError::Truncated);
        let header = take(at, 8)?;
        if header[0] != MAGIC {
            return Err(ImageError::BadMagic(header[0]));
        }
        if header[1] > MAX_SEGMENTS {
            return Err(ImageError::TooManySegments(header[1]));
        }
        let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let entry = word(&header[4..]);
        let (flash_mode, size_freq, count) = (header[2], header[3], header[1]);
        let mut offset = at + 8;
        let mut segments = Vec::new();
        for _ in 0..count {
            let sh = take(offset, 8)?;
            let (addr, len) = (word(sh), word(&sh[4..]) as usize);
            take(offset + 8, len)?;
            segments.push(Segment {
                addr,
                offset: offset + 8,
                len,
            });
            offset += 8 + len;
        }
        let stored_checksum = take(offset | 0xF, 1)?[0];
        Ok(Image {
            entry,
            flash_mode,
            size_freq,
            segments,
            stored_checksum,
        })
    }

    /// The checksum the ROM computes over the segments' bytes.
    pub fn computed_checksum(&self, flash: &[u8]) -> u8 {
        self.segments.iter().fold(CHECKSUM_SEED, |acc, s| {
            flash[s.offset..s.offset + s.len]
                .iter()
                .fold(acc, |a, b| a ^ b)
        })
    }
}

/// The banner: ` ets Jan  8 2013,rst cause:2, boot mode:(3,6)` between blank lines.
pub fn banner(cause: u32, boot_mode: u8) -> String {
    format!("\r\n ets Jan  8 2013,rst cause:{cause}, boot mode:({boot_mode},6)\r\n\r\n")
}

/// What the ROM's image check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The image loads and starts.
    Valid(Image),
    /// Nothing bootable: the ROM stops after `ets_main.c`.
    Unbootable(ImageError),
    /// The checksum does not match: `csum err`, then it stops.
    ChecksumError(Image),
}

/// Runs the ROM's check of the image at flash offset 0 and renders what it prints.
pub fn check_image(flash: &[u8]) -> (Check, String) {
    let mut text = String::new();
    let image = match Image::parse(flash, 0) {
        Ok(image) => image,
        Err(error) => {
            text.push_str("ets_main.c \r\n");
            return (Check::Unbootable(error), text);
        }
    };
    // The same lines the virtual board's ROM model prints (hil_contract::rom).
    let segments: Vec<(u32, &[u8])> = image
        .segments
        .iter()
        .map(|seg| (seg.addr, &flash[seg.offset..seg.offset + seg.len]))
        .collect();
    text.push_str(&hil_contract::rom::load_lines(&segments, image.stored_checksum).0);
    if image.computed_checksum(flash) == image.stored_checksum {
        (Check::Valid(image), text)
    } else {
        text.push_str("csum err\r\nets_main.c \r\n");
        (Check::ChecksumError(image), text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(segments: &[(u32, Vec<u8>)], checksum: Option<u8>) -> Vec<u8> {
        let mut out = vec![MAGIC, segments.len() as u8, 2, 0x40, 0x80, 0xF4, 0x10, 0x40];
        let mut sum = CHECKSUM_SEED;
        for (addr, data) in segments {
            out.extend_from_slice(&addr.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
            sum = data.iter().fold(sum, |a, b| a ^ b);
        }
        out.resize(out.len() | 0xF, 0);
        out.push(checksum.unwrap_or(sum));
        out
    }

    #[test]
    fn room_and_tail_as_in_real_logs() {
        let flash = image(
            &[(0x4010_f000, vec![1; 3424]), (0x3fff_20b8, vec![2; 40])],
            None,
        );
        let (check, text) = check_image(&flash);
        assert!(matches!(check, Check::Valid(ref i) if i.entry == 0x4010_F480));
        assert!(
            text.starts_with("load 0x4010f000, len 3424, room 16 \r\ntail 0\r\nchksum 0xef\r\n"),
            "{text}"
        );
        assert!(
            text.contains("load 0x3fff20b8, len 40, room 8 \r\ntail 0\r\n"),
            "{text}"
        );
        let flash = image(
            &[
                (0x4010_0000, vec![1; 25700]),
                (0x3ffe_8000, vec![2; 848]),
                (0x3ffe_8350, vec![3; 184]),
            ],
            None,
        );
        let (_, text) = check_image(&flash);
        assert!(text.contains("len 848, room 4 \r\ntail 12"), "{text}");
        assert!(text.contains("ho 0 tail 12 room 4"), "{text}");
        assert!(text.contains("len 184, room 12 \r\ntail 12"), "{text}");
    }

    #[test]
    fn erased_and_corrupt() {
        let (check, text) = check_image(&[0xFF; 64]);
        assert_eq!(check, Check::Unbootable(ImageError::BadMagic(0xFF)));
        assert_eq!(text, "ets_main.c \r\n");
        let (check, text) = check_image(&image(&[(0, vec![7; 16])], Some(1)));
        assert!(matches!(check, Check::ChecksumError(_)));
        assert!(
            text.ends_with("csum 0x01\r\ncsum err\r\nets_main.c \r\n"),
            "{text}"
        );
    }

    #[test]
    fn banner_has_two_spaces_in_the_date() {
        assert_eq!(
            banner(2, 3),
            "\r\n ets Jan  8 2013,rst cause:2, boot mode:(3,6)\r\n\r\n"
        );
    }
}
