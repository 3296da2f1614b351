//! Virtual firmware: genuine ESP8266 v1 images whose data segment carries the
//! twin's descriptor, and (with the `virtual` feature) the runner that boots
//! them on the virtual board.
//!
//! The board checks such an image exactly as the ROM would (segments, checksum);
//! it never executes Xtensa code. When the image carries a descriptor, the
//! firmware twin runs with those knobs; any other valid image runs nothing, as a
//! real chip would look to us if we could not see inside it.
//!
//! ```
//! use hil::vfirmware;
//! use hil_contract::descriptor::Variant;
//!
//! let image = vfirmware::build(&Variant::NoNtp.descriptor());
//! let bytes = image.to_bytes();
//! let (parsed, descriptor) = vfirmware::inspect(&bytes)?;
//! assert!(parsed.checksum_ok());
//! assert_eq!(descriptor.variant, "no-ntp");
//! # Ok::<(), hil::vfirmware::VfirmwareError>(())
//! ```

use hil_contract::descriptor::{Descriptor, DescriptorError};

use crate::image::{ImageError, ImageV1, Segment};

#[cfg(feature = "virtual")]
mod twin;
#[cfg(feature = "virtual")]
pub use twin::{DetachedTwin, TwinNetwork, TwinRunner};

/// Where the ROM would load the (placeholder) code segment: IRAM.
const IRAM: u32 = 0x4010_0000;
/// Where the descriptor segment loads: DRAM.
const DRAM: u32 = 0x3FFE_8000;
/// The entry point written in the header.
const ENTRY: u32 = IRAM + 4;

/// What a virtual firmware image can be wrong about.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum VfirmwareError {
    /// Not a valid v1 image.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Image(#[from] ImageError),
    /// A valid image without a usable descriptor (its words in the message, once).
    #[error("{0}")]
    #[diagnostic(
        code(hil::vfirmware::descriptor),
        help("build virtual firmware with `hil vfirmware build --variant <name>`")
    )]
    Descriptor(DescriptorError),
}

impl From<DescriptorError> for VfirmwareError {
    fn from(e: DescriptorError) -> Self {
        VfirmwareError::Descriptor(e)
    }
}

fn padded(mut bytes: Vec<u8>) -> Vec<u8> {
    // The ROM copies segments in 32-bit words.
    while !bytes.len().is_multiple_of(4) {
        bytes.push(0);
    }
    bytes
}

/// Builds the image for `descriptor`.
pub fn build(descriptor: &Descriptor) -> ImageV1 {
    let code =
        padded(b"hil virtual firmware: no Xtensa code inside; the board runs its twin\0".to_vec());
    let data = padded(descriptor.encode());
    ImageV1::new(
        ENTRY,
        vec![Segment::new(IRAM, code), Segment::new(DRAM, data)],
    )
}

/// The descriptor an image carries.
pub fn descriptor_of(image: &ImageV1) -> Result<Descriptor, DescriptorError> {
    let data: Vec<u8> = image
        .segments()
        .iter()
        .flat_map(|s| s.data().iter().copied())
        .collect();
    Descriptor::decode(&data)
}

/// Parses an image file's bytes and reads its descriptor.
pub fn inspect(bytes: &[u8]) -> Result<(ImageV1, Descriptor), VfirmwareError> {
    let image = ImageV1::parse(bytes)?;
    let descriptor = descriptor_of(&image)?;
    Ok((image, descriptor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hil_contract::descriptor::Variant;

    #[test]
    fn every_variant_builds_a_valid_image_that_carries_it() {
        for variant in Variant::ALL {
            let descriptor = variant.descriptor();
            let bytes = build(&descriptor).to_bytes();
            let (image, back) = inspect(&bytes).unwrap();
            assert!(image.checksum_ok(), "{variant}");
            assert_eq!(back, descriptor);
        }
    }

    #[test]
    fn an_image_without_a_descriptor_is_named_as_such() {
        let image = ImageV1::new(ENTRY, vec![Segment::new(IRAM, vec![0; 16])]);
        let err = inspect(&image.to_bytes()).unwrap_err();
        assert!(matches!(
            err,
            VfirmwareError::Descriptor(DescriptorError::Missing)
        ));
    }
}
