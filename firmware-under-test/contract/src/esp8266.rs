//! Facts about the ESP8266 (ESP8266EX) that the harness, the virtual board and
//! the firmware all rely on.

/// The rate of the mask ROM's boot messages (`ets Jan  8 2013,rst cause:...`):
/// 115200 scaled by the 26 MHz crystal the boards carry over the 40 MHz the ROM
/// assumes.
pub const ROM_LOG_BAUD: u32 = 74_880;

/// The rate the ROM's serial loader is first synced at, as esptool and espflash
/// do; the flasher stub may move to a faster one afterwards.
pub const LOADER_BAUD: u32 = 115_200;

/// The firmware's console once `Serial.begin(115200)` ran, as the reference
/// sketch (and most Arduino sketches) set it.
pub const APP_BAUD: u32 = 115_200;

/// The flash of the boards the reference firmware targets (NodeMCU v2, Wemos D1
/// mini): 4 MB, and the virtual board's.
pub const FLASH_SIZE: usize = 4 * 1024 * 1024;

/// The most flash an ESP8266 can map: 16 MB.
pub const MAX_FLASH_SIZE: usize = 16 * 1024 * 1024;

/// The flash's erase unit: one 4 KB sector.
pub const SECTOR_SIZE: usize = 4096;

/// Where the chip keeps its magic number, which tools read to tell an ESP8266.
pub const CHIP_MAGIC_REG: u32 = 0x4000_1000;

/// The magic number an ESP8266 holds at [`CHIP_MAGIC_REG`].
pub const CHIP_MAGIC: u32 = 0xFFF0_C101;

/// The first of the four efuse words that hold the chip's MAC and flags.
pub const EFUSE_BASE: u32 = 0x3FF0_0050;

/// The first byte of a v1 application image (and of the eboot image before it).
pub const IMAGE_MAGIC: u8 = 0xE9;

// The ROM logs at the standard rate scaled by the 26 MHz crystal it assumes 40
// MHz for; a flash size is whole sectors and within what the chip addresses.
// Checked when the crate compiles, so a wrong edit here cannot build.
const _: () = {
    assert!(ROM_LOG_BAUD as u64 * 40 == APP_BAUD as u64 * 26);
    assert!(FLASH_SIZE.is_multiple_of(SECTOR_SIZE));
    assert!(FLASH_SIZE <= MAX_FLASH_SIZE);
};
