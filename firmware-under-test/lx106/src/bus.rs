//! The CPU's view of memory: a [`Bus`] the machine implements.

use thiserror::Error;

/// Why an access failed; the CPU turns it into the matching exception, with EXCVADDR
/// set to the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BusFault {
    /// Nothing answers at this address (EXCCAUSE 14 InstrPIFAddrError on fetch, 15
    /// LoadStorePIFAddrError on a load or store). What QEMU's lx106 raises for an
    /// address outside its memories.
    #[error("no memory or device at this address")]
    Unmapped,
    /// The address is mapped but the access is not allowed (EXCCAUSE 20
    /// InstFetchProhibited, 28 LoadProhibited, 29 StoreProhibited). What an ESP8266
    /// raises for a null pointer.
    #[error("access prohibited at this address")]
    Prohibited,
    /// The device reported an error (EXCCAUSE 2 InstructionFetchError, 3 LoadStoreError).
    #[error("the device reported an error")]
    Error,
}

/// Memory and devices as the CPU sees them. Addresses are byte addresses; multi-byte
/// accesses are little-endian and, for 16- and 32-bit loads and stores, aligned (the
/// CPU raises LoadStoreAlignment before asking the bus).
///
/// ```
/// use lx106::{Bus, BusFault};
///
/// /// 64 KiB of RAM at 0x4010_0000, nothing else.
/// struct Ram(Vec<u8>);
///
/// impl Bus for Ram {
///     fn read8(&mut self, addr: u32) -> Result<u8, BusFault> {
///         let offset = addr.wrapping_sub(0x4010_0000) as usize;
///         self.0.get(offset).copied().ok_or(BusFault::Unmapped)
///     }
///     fn write8(&mut self, addr: u32, value: u8) -> Result<(), BusFault> {
///         let offset = addr.wrapping_sub(0x4010_0000) as usize;
///         *self.0.get_mut(offset).ok_or(BusFault::Unmapped)? = value;
///         Ok(())
///     }
/// }
///
/// let mut ram = Ram(vec![0; 0x1_0000]);
/// ram.write32(0x4010_0000, 0x1234_5678).unwrap();
/// assert_eq!(ram.read16(0x4010_0002), Ok(0x1234));
/// assert_eq!(ram.read8(0), Err(BusFault::Unmapped));
/// ```
pub trait Bus {
    /// Reads one byte.
    fn read8(&mut self, addr: u32) -> Result<u8, BusFault>;

    /// Writes one byte.
    fn write8(&mut self, addr: u32, value: u8) -> Result<(), BusFault>;

    /// Reads a 16-bit value at an even address.
    fn read16(&mut self, addr: u32) -> Result<u16, BusFault> {
        let lo = self.read8(addr)?;
        let hi = self.read8(addr.wrapping_add(1))?;
        Ok(u16::from_le_bytes([lo, hi]))
    }

    /// Reads a 32-bit value at an address that is a multiple of 4.
    fn read32(&mut self, addr: u32) -> Result<u32, BusFault> {
        let mut bytes = [0; 4];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = self.read8(addr.wrapping_add(i as u32))?;
        }
        Ok(u32::from_le_bytes(bytes))
    }

    /// Writes a 16-bit value at an even address.
    fn write16(&mut self, addr: u32, value: u16) -> Result<(), BusFault> {
        let [lo, hi] = value.to_le_bytes();
        self.write8(addr, lo)?;
        self.write8(addr.wrapping_add(1), hi)
    }

    /// Writes a 32-bit value at an address that is a multiple of 4.
    fn write32(&mut self, addr: u32, value: u32) -> Result<(), BusFault> {
        for (i, byte) in value.to_le_bytes().into_iter().enumerate() {
            self.write8(addr.wrapping_add(i as u32), byte)?;
        }
        Ok(())
    }

    /// Fetches the instruction at `pc` (any alignment): its bytes in the low bits,
    /// little-endian. It must return at least the instruction's length, 2 bytes when
    /// the first byte's bit 3 is set, else 3; bytes beyond may be anything.
    ///
    /// The default reads byte by byte and never reads past the instruction; a machine
    /// whose instruction memory is a slice can override it for speed.
    fn fetch(&mut self, pc: u32) -> Result<u32, BusFault> {
        let b0 = self.read8(pc)? as u32;
        let b1 = self.read8(pc.wrapping_add(1))? as u32;
        if b0 & 0x08 != 0 {
            return Ok(b0 | (b1 << 8));
        }
        let b2 = self.read8(pc.wrapping_add(2))? as u32;
        Ok(b0 | (b1 << 8) | (b2 << 16))
    }
}
