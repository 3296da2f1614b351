//! The ESP8266 ROM's application image format (v1, magic `E9`), as the ROM reads it
//! from flash offset 0: an 8-byte header, segments loaded into RAM, and a one-byte
//! checksum over the segment data.
//!
//! The parser never trusts the bytes it is given: a truncated image, a segment that
//! runs past the end, or a wrong magic is an [`ImageError`], never a panic.
//!
//! ```
//! use hil::image::{ImageV1, Segment};
//!
//! let image = ImageV1::new(0x4010_0004, vec![Segment::new(0x4010_0000, vec![1, 2, 3, 4])]);
//! let bytes = image.to_bytes();
//! let parsed = ImageV1::parse(&bytes)?;
//! assert!(parsed.checksum_ok());
//! assert_eq!(parsed.segments()[0].data(), &[1, 2, 3, 4]);
//! # Ok::<(), hil::image::ImageError>(())
//! ```

/// The first byte of every v1 image.
pub const MAGIC: u8 = hil_contract::esp8266::IMAGE_MAGIC;
/// The value the image checksum starts from.
pub const CHECKSUM_SEED: u8 = hil_contract::rom::CHECKSUM_SEED;
/// More segments than this is not an image the ROM would load (it has 16 slots).
const MAX_SEGMENTS: u8 = 16;

/// Why bytes are not a loadable v1 image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum ImageError {
    /// The first byte is not `E9` (erased flash reads `FF`).
    #[error("not an ESP8266 v1 image: first byte is {found:#04x}, expected 0xe9")]
    #[diagnostic(
        code(hil::image::magic),
        help("an image for offset 0 starts with 0xe9; erased flash reads 0xff")
    )]
    BadMagic {
        /// The byte found.
        found: u8,
    },
    /// The bytes end inside the header, a segment header, a segment or the checksum.
    #[error(
        "image truncated: {what} needs {needed} bytes at offset {offset}, only {available} left"
    )]
    #[diagnostic(
        code(hil::image::truncated),
        help("the file is shorter than its header says; rebuild or re-download the image")
    )]
    Truncated {
        /// Which part was cut off.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// How many bytes it needs.
        needed: usize,
        /// How many bytes remain.
        available: usize,
    },
    /// The header claims more segments than the ROM loads.
    #[error("image header claims {count} segments; the ROM loads at most {MAX_SEGMENTS}")]
    #[diagnostic(code(hil::image::segments), help("the header is corrupt"))]
    TooManySegments {
        /// The claimed count.
        count: u8,
    },
}

/// SPI flash mode from the header's third byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashMode {
    /// Quad I/O.
    Qio,
    /// Quad output.
    Qout,
    /// Dual I/O.
    Dio,
    /// Dual output.
    Dout,
    /// A value the ROM does not define.
    Unknown(u8),
}

impl FlashMode {
    fn from_byte(byte: u8) -> FlashMode {
        match byte {
            0 => FlashMode::Qio,
            1 => FlashMode::Qout,
            2 => FlashMode::Dio,
            3 => FlashMode::Dout,
            other => FlashMode::Unknown(other),
        }
    }

    fn to_byte(self) -> u8 {
        match self {
            FlashMode::Qio => 0,
            FlashMode::Qout => 1,
            FlashMode::Dio => 2,
            FlashMode::Dout => 3,
            FlashMode::Unknown(other) => other,
        }
    }
}

/// One segment: where the ROM copies it, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    addr: u32,
    data: Vec<u8>,
}

impl Segment {
    /// A segment loaded at `addr`.
    pub fn new(addr: u32, data: Vec<u8>) -> Segment {
        Segment { addr, data }
    }

    /// The load address.
    pub fn addr(&self) -> u32 {
        self.addr
    }

    /// The bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
}

/// A parsed (or built) v1 image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageV1 {
    flash_mode: FlashMode,
    size_freq: u8,
    entry: u32,
    segments: Vec<Segment>,
    stored_checksum: u8,
    length: usize,
}

/// The checksum the ROM computes over segment data.
pub fn checksum<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> u8 {
    chunks
        .into_iter()
        .flat_map(|chunk| chunk.iter())
        .fold(CHECKSUM_SEED, |acc, byte| acc ^ byte)
}

fn take<'a>(
    bytes: &'a [u8],
    offset: usize,
    needed: usize,
    what: &'static str,
) -> Result<&'a [u8], ImageError> {
    let available = bytes.len().saturating_sub(offset);
    if available < needed {
        return Err(ImageError::Truncated {
            what,
            offset,
            needed,
            available,
        });
    }
    Ok(&bytes[offset..offset + needed])
}

fn le32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(word)
}

impl ImageV1 {
    /// An image with DIO mode, 4 MB / 40 MHz in the header (what NodeMCU builds use)
    /// and the correct checksum.
    pub fn new(entry: u32, segments: Vec<Segment>) -> ImageV1 {
        let stored_checksum = checksum(segments.iter().map(|s| s.data()));
        let mut image = ImageV1 {
            flash_mode: FlashMode::Dio,
            size_freq: 0x40,
            entry,
            segments,
            stored_checksum,
            length: 0,
        };
        image.length = image.to_bytes().len();
        image
    }

    /// Parses the image at the start of `bytes` (trailing bytes are ignored: flash
    /// holds more than the image).
    pub fn parse(bytes: &[u8]) -> Result<ImageV1, ImageError> {
        let header = take(bytes, 0, 8, "header")?;
        if header[0] != MAGIC {
            return Err(ImageError::BadMagic { found: header[0] });
        }
        let count = header[1];
        if count > MAX_SEGMENTS {
            return Err(ImageError::TooManySegments { count });
        }
        let mut offset = 8;
        let mut segments = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let seg_header = take(bytes, offset, 8, "segment header")?;
            let addr = le32(seg_header);
            let len = le32(&seg_header[4..]) as usize;
            offset += 8;
            let data = take(bytes, offset, len, "segment data")?;
            segments.push(Segment::new(addr, data.to_vec()));
            offset += len;
        }
        // Zero padding up to 15 mod 16, then the checksum byte.
        let checksum_at = offset | 0xF;
        let stored = take(bytes, checksum_at, 1, "checksum")?[0];
        Ok(ImageV1 {
            flash_mode: FlashMode::from_byte(header[2]),
            size_freq: header[3],
            entry: le32(&header[4..]),
            segments,
            stored_checksum: stored,
            length: checksum_at + 1,
        })
    }

    /// The image as bytes, padded and with its stored checksum.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![
            MAGIC,
            self.segments.len() as u8,
            self.flash_mode.to_byte(),
            self.size_freq,
        ];
        out.extend_from_slice(&self.entry.to_le_bytes());
        for segment in &self.segments {
            out.extend_from_slice(&segment.addr.to_le_bytes());
            out.extend_from_slice(&(segment.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&segment.data);
        }
        out.resize(out.len() | 0xF, 0);
        out.push(self.stored_checksum);
        out
    }

    /// The flash mode in the header.
    pub fn flash_mode(&self) -> FlashMode {
        self.flash_mode
    }

    /// The flash size and frequency byte in the header.
    pub fn size_freq(&self) -> u8 {
        self.size_freq
    }

    /// The entry point.
    pub fn entry(&self) -> u32 {
        self.entry
    }

    /// The segments, in load order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The checksum byte stored after the segments.
    pub fn stored_checksum(&self) -> u8 {
        self.stored_checksum
    }

    /// The checksum the ROM computes.
    pub fn computed_checksum(&self) -> u8 {
        checksum(self.segments.iter().map(|s| s.data()))
    }

    /// Whether the ROM would start this image.
    pub fn checksum_ok(&self) -> bool {
        self.stored_checksum == self.computed_checksum()
    }

    /// Bytes from the magic to the checksum byte inclusive.
    pub fn len(&self) -> usize {
        self.length
    }

    /// Whether the image has no bytes (never true for a parsed one).
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Replaces the stored checksum (to build deliberately corrupt images).
    pub fn with_stored_checksum(mut self, stored: u8) -> ImageV1 {
        self.stored_checksum = stored;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_padding() {
        let image = ImageV1::new(
            0x4010_0004,
            vec![
                Segment::new(0x4010_0000, vec![0xAA; 5]),
                Segment::new(0x3FFE_8000, vec![0x55; 3]),
            ],
        );
        let bytes = image.to_bytes();
        // 8 + 8+5 + 8+3 = 32 -> padded to 47, checksum at 47.
        assert_eq!(bytes.len(), 48);
        assert_eq!(bytes.len() % 16, 0);
        let parsed = ImageV1::parse(&bytes).unwrap();
        assert_eq!(parsed, image);
        assert!(parsed.checksum_ok());
        assert_eq!(parsed.computed_checksum(), 0xEF ^ 0xAA ^ 0x55);
    }

    #[test]
    fn corrupt_inputs_are_errors() {
        assert_eq!(
            ImageV1::parse(&[0xFF; 64]),
            Err(ImageError::BadMagic { found: 0xFF })
        );
        assert!(matches!(
            ImageV1::parse(&[0xE9, 1, 0, 0]),
            Err(ImageError::Truncated { what: "header", .. })
        ));
        let mut huge = vec![0xE9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            ImageV1::parse(&huge),
            Err(ImageError::Truncated {
                what: "segment data",
                ..
            })
        ));
        assert_eq!(
            ImageV1::parse(&[0xE9, 200, 0, 0, 0, 0, 0, 0]),
            Err(ImageError::TooManySegments { count: 200 })
        );
        let bad = ImageV1::new(0, vec![Segment::new(0, vec![1])]).with_stored_checksum(0);
        assert!(!ImageV1::parse(&bad.to_bytes()).unwrap().checksum_ok());
    }
}
