//! The ESP8266's memory map: the RAMs, the ROM region and the flash behind the
//! instruction cache. Peripherals are elsewhere (see [`crate::board`]).
//!
//! | range | what |
//! |---|---|
//! | 0x3FFE8000..0x40000000 | DRAM, 96 KiB (the top 16 KiB is the ROM's data and stack) |
//! | 0x40000000..0x40010000 | mask ROM: no content here; its functions are native ([`crate::rom`]) |
//! | 0x40100000..0x40110000 | IRAM: 32 KiB, then 32 KiB that serve as the instruction cache's memory once the cache is on (the ROM loads eboot there, at 0x4010F000) |
//! | 0x40200000..0x40300000 | one MiB of SPI flash through the instruction cache |
//! | 0x60001000..0x60001400 | RTC memory (system area from 0x60001100, user from 0x60001200) |

/// Start of DRAM.
pub const DRAM_BASE: u32 = 0x3FFE_8000;
/// End of DRAM (exclusive).
pub const DRAM_END: u32 = 0x4000_0000;
/// Start of the mask ROM.
pub const ROM_BASE: u32 = 0x4000_0000;
/// Size of the mask ROM.
pub const ROM_SIZE: u32 = 0x1_0000;
/// Start of IRAM.
pub const IRAM_BASE: u32 = 0x4010_0000;
/// End of IRAM (exclusive): 32 KiB plus the 32 KiB the cache uses once it is on.
pub const IRAM_END: u32 = 0x4011_0000;
/// Start of the flash window the instruction cache maps.
pub const FLASH_WINDOW: u32 = 0x4020_0000;
/// Size of the flash window (one MiB at a time).
pub const FLASH_WINDOW_SIZE: u32 = 0x10_0000;
/// Start of RTC memory.
pub const RTC_MEM_BASE: u32 = 0x6000_1000;
/// End of RTC memory (exclusive).
pub const RTC_MEM_END: u32 = 0x6000_1400;
/// Size of the SPI flash chip.
pub const FLASH_SIZE: usize = 4 << 20;

/// A block of RAM at a base address.
#[derive(Debug, Clone)]
pub struct Ram {
    base: u32,
    bytes: Vec<u8>,
}

impl Ram {
    /// `len` zero bytes at `base`.
    pub fn new(base: u32, len: usize) -> Ram {
        Ram {
            base,
            bytes: vec![0; len],
        }
    }

    /// The offset of `addr` if `len` bytes from it are inside.
    #[inline]
    pub fn offset(&self, addr: u32, len: usize) -> Option<usize> {
        let off = addr.wrapping_sub(self.base) as usize;
        (off + len <= self.bytes.len()).then_some(off)
    }

    /// Whether `addr` is inside.
    #[inline]
    pub fn contains(&self, addr: u32) -> bool {
        self.offset(addr, 1).is_some()
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Reads `N` bytes at `addr`, if inside.
    #[inline]
    pub fn read<const N: usize>(&self, addr: u32) -> Option<[u8; N]> {
        let off = self.offset(addr, N)?;
        let mut out = [0; N];
        out.copy_from_slice(&self.bytes[off..off + N]);
        Some(out)
    }

    /// Writes bytes at `addr`; false if they do not fit.
    #[inline]
    pub fn write(&mut self, addr: u32, data: &[u8]) -> bool {
        match self.offset(addr, data.len()) {
            Some(off) => {
                self.bytes[off..off + data.len()].copy_from_slice(data);
                true
            }
            None => false,
        }
    }
}

/// The memories: DRAM, IRAM, RTC memory, the ROM region (for trampolines the
/// native ROM places there) and the flash behind the cache.
#[derive(Debug, Clone)]
pub struct Memory {
    /// DRAM, 0x3FFE8000..0x40000000.
    pub dram: Ram,
    /// IRAM, 0x40100000..0x40110000.
    pub iram: Ram,
    /// RTC memory, 0x60001000..0x60001400.
    pub rtc: Ram,
    /// The ROM region. Empty but for the few instructions the native ROM places
    /// there (its idle loop); executing anything else there is a native function.
    pub rom: Ram,
    /// The whole SPI flash chip.
    pub flash: Vec<u8>,
    /// The flash offset the cache window at 0x40200000 shows (set by
    /// `Cache_Read_Enable`), or `None` while the cache is off.
    pub flash_map: Option<u32>,
}

impl Memory {
    /// Zeroed RAMs and an erased 4 MiB flash with `image` written at offset 0.
    pub fn new(image: &[u8]) -> Memory {
        let mut flash = vec![0xFF; FLASH_SIZE];
        let n = image.len().min(FLASH_SIZE);
        flash[..n].copy_from_slice(&image[..n]);
        Memory {
            dram: Ram::new(DRAM_BASE, (DRAM_END - DRAM_BASE) as usize),
            iram: Ram::new(IRAM_BASE, (IRAM_END - IRAM_BASE) as usize),
            rtc: Ram::new(RTC_MEM_BASE, (RTC_MEM_END - RTC_MEM_BASE) as usize),
            rom: Ram::new(ROM_BASE, ROM_SIZE as usize),
            flash,
            flash_map: None,
        }
    }

    /// The flash offset behind a cache-window address, while the cache is on.
    #[inline]
    pub fn flash_offset(&self, addr: u32) -> Option<usize> {
        let off = addr.wrapping_sub(FLASH_WINDOW);
        if off >= FLASH_WINDOW_SIZE {
            return None;
        }
        let base = self.flash_map?;
        let at = (base + off) as usize;
        (at < self.flash.len()).then_some(at)
    }

    /// The RAM holding `addr`, if any.
    #[inline]
    pub fn ram(&self, addr: u32) -> Option<&Ram> {
        if self.dram.contains(addr) {
            Some(&self.dram)
        } else if self.iram.contains(addr) {
            Some(&self.iram)
        } else if self.rtc.contains(addr) {
            Some(&self.rtc)
        } else {
            None
        }
    }

    /// The RAM holding `addr`, writable.
    #[inline]
    pub fn ram_mut(&mut self, addr: u32) -> Option<&mut Ram> {
        if self.dram.contains(addr) {
            Some(&mut self.dram)
        } else if self.iram.contains(addr) {
            Some(&mut self.iram)
        } else if self.rtc.contains(addr) {
            Some(&mut self.rtc)
        } else {
            None
        }
    }

    /// Reads bytes from RAM or the flash window (what native ROM functions use to
    /// read their arguments); `None` if any byte is elsewhere.
    pub fn read_bytes(&self, addr: u32, len: usize) -> Option<Vec<u8>> {
        if let Some(ram) = self.ram(addr) {
            let off = ram.offset(addr, len)?;
            return Some(ram.bytes()[off..off + len].to_vec());
        }
        let at = self.flash_offset(addr)?;
        self.flash.get(at..at + len).map(<[u8]>::to_vec)
    }

    /// Writes bytes into RAM; false if any byte is outside one RAM.
    pub fn write_bytes(&mut self, addr: u32, data: &[u8]) -> bool {
        match self.ram_mut(addr) {
            Some(ram) => ram.write(addr, data),
            None => false,
        }
    }

    /// A NUL-terminated string from RAM or flash (at most `max` bytes).
    pub fn read_cstr(&self, addr: u32, max: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for i in 0..max as u32 {
            let b = self.read_bytes(addr.wrapping_add(i), 1)?[0];
            if b == 0 {
                return Some(out);
            }
            out.push(b);
        }
        Some(out)
    }

    /// A little-endian word from RAM or flash.
    pub fn read_u32(&self, addr: u32) -> Option<u32> {
        let b = self.read_bytes(addr, 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_and_the_flash_window() {
        let mut mem = Memory::new(&[0xE9, 1, 2, 3, 4, 5, 6, 7]);
        assert!(mem.write_bytes(0x3FFE_8000, &[1, 2, 3, 4]));
        assert_eq!(mem.read_u32(0x3FFE_8000), Some(0x0403_0201));
        assert!(mem.write_bytes(0x4010_FFFC, &[9; 4]));
        assert!(!mem.write_bytes(0x4010_FFFE, &[9; 4]));
        // The window shows nothing until the cache maps it.
        assert_eq!(mem.read_u32(0x4020_0000), None);
        mem.flash_map = Some(0);
        assert_eq!(mem.read_u32(0x4020_0004), Some(0x0706_0504));
        assert_eq!(mem.read_bytes(0x4020_0008, 1), Some(vec![0xFF]));
        mem.flash_map = Some(0x10_0000);
        assert_eq!(mem.read_u32(0x4020_0000), Some(0xFFFF_FFFF));
        assert!(mem.write_bytes(0x6000_1200, b"rtc\0"));
        assert_eq!(mem.read_cstr(0x6000_1200, 16), Some(b"rtc".to_vec()));
    }
}
