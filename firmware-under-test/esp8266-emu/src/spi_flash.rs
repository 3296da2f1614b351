//! The SPI flash controller (SPI0 at 0x60000200; SPI1 at 0x60000100 has the same
//! layout): the commands eboot, the ROM and the SDK issue through CMD, ADDR and the
//! data words W0..W15, on the 4 MiB flash kept in a `Vec<u8>`.
//!
//! A command completes at once: CMD reads back 0 right after it is written.

/// Command register: one bit per command; the bit clears when it is done.
pub const CMD: u32 = 0x00;
/// Address register: flash address in bits 0..24, byte count in bits 24..32.
pub const ADDR: u32 = 0x04;
/// Control register (read modes, the cache's enable bits).
pub const CTRL: u32 = 0x08;
/// Control register 1.
pub const CTRL1: u32 = 0x0C;
/// Status register: the flash's status after RDSR, written by WRSR.
pub const RD_STATUS: u32 = 0x10;
/// Control register 2.
pub const CTRL2: u32 = 0x14;
/// Clock register.
pub const CLOCK: u32 = 0x18;
/// User command configuration.
pub const USER: u32 = 0x1C;
/// User command lengths.
pub const USER1: u32 = 0x20;
/// User command opcode (bits 0..16) and its bit length (bits 28..32).
pub const USER2: u32 = 0x24;
/// Write-status value.
pub const WR_STATUS: u32 = 0x28;
/// Pin configuration.
pub const PIN: u32 = 0x2C;
/// Slave configuration.
pub const SLAVE: u32 = 0x30;
/// First data word (W0); W15 is at 0x7C.
pub const W0: u32 = 0x40;
/// Extension registers 0..3 (0xF0..0xFC); EXT2 (0xF8) is the controller's state, 0 when idle.
pub const EXT0: u32 = 0xF0;

/// CMD bit: read ADDR's count of bytes into W0.. .
pub const CMD_READ: u32 = 1 << 31;
/// CMD bit: write enable.
pub const CMD_WREN: u32 = 1 << 30;
/// CMD bit: write disable.
pub const CMD_WRDI: u32 = 1 << 29;
/// CMD bit: read the JEDEC id into W0.
pub const CMD_RDID: u32 = 1 << 28;
/// CMD bit: read the status register into RD_STATUS.
pub const CMD_RDSR: u32 = 1 << 27;
/// CMD bit: write RD_STATUS into the status register.
pub const CMD_WRSR: u32 = 1 << 26;
/// CMD bit: page program from W0.. .
pub const CMD_PP: u32 = 1 << 25;
/// CMD bit: erase the 4 KiB sector at ADDR.
pub const CMD_SE: u32 = 1 << 24;
/// CMD bit: erase the 64 KiB block at ADDR.
pub const CMD_BE: u32 = 1 << 23;
/// CMD bit: erase the chip.
pub const CMD_CE: u32 = 1 << 22;
/// CMD bit: run the user command in USER/USER1/USER2.
pub const CMD_USR: u32 = 1 << 18;

/// A Winbond W25Q32 (4 MiB): what NodeMCU boards carry.
pub const JEDEC_ID: u32 = 0x0016_40EF;

/// What a command did, for the caller that keeps statistics or logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashOp {
    /// Read `len` bytes at `addr`.
    Read {
        /// Flash address.
        addr: u32,
        /// Byte count.
        len: u32,
    },
    /// Programmed `len` bytes at `addr`.
    Program {
        /// Flash address.
        addr: u32,
        /// Byte count.
        len: u32,
    },
    /// Erased `len` bytes at `addr`.
    Erase {
        /// Flash address.
        addr: u32,
        /// Byte count.
        len: u32,
    },
    /// Anything else the controller did (status, id, enable).
    Other,
    /// A user command the model does not know (its opcode).
    UnknownUser(u16),
}

/// One SPI controller's registers.
#[derive(Debug, Clone)]
pub struct SpiFlash {
    regs: [u32; 64],
    /// The flash chip's status register (bit 1: write enable latch).
    status: u32,
}

impl Default for SpiFlash {
    fn default() -> Self {
        SpiFlash::new()
    }
}

impl SpiFlash {
    /// Idle, status 0.
    pub fn new() -> SpiFlash {
        SpiFlash {
            regs: [0; 64],
            status: 0,
        }
    }

    fn modelled(offset: u32) -> bool {
        offset.is_multiple_of(4)
            && matches!(offset, CMD | ADDR | CTRL | CTRL1 | RD_STATUS | CTRL2 | CLOCK | USER
                | USER1 | USER2 | WR_STATUS | PIN | SLAVE | 0x34 | 0x38 | 0x3C | W0..=0x7C | EXT0..=0xFC)
    }

    /// Reads a register; `None` if not modelled.
    pub fn read(&self, offset: u32) -> Option<u32> {
        Self::modelled(offset).then(|| self.regs[(offset / 4) as usize])
    }

    /// The data words as bytes.
    fn data_bytes(&self) -> [u8; 64] {
        let mut out = [0; 64];
        for i in 0..16 {
            out[i * 4..i * 4 + 4].copy_from_slice(&self.regs[16 + i].to_le_bytes());
        }
        out
    }

    fn set_data_bytes(&mut self, bytes: &[u8]) {
        let mut all = self.data_bytes();
        all[..bytes.len()].copy_from_slice(bytes);
        for i in 0..16 {
            self.regs[16 + i] =
                u32::from_le_bytes([all[i * 4], all[i * 4 + 1], all[i * 4 + 2], all[i * 4 + 3]]);
        }
    }

    /// Writes a register; a write to CMD runs the command on `flash`. `None` if the
    /// register is not modelled.
    pub fn write(&mut self, offset: u32, value: u32, flash: &mut [u8]) -> Option<FlashOp> {
        if !Self::modelled(offset) {
            return None;
        }
        if offset != CMD {
            self.regs[(offset / 4) as usize] = value;
            return Some(FlashOp::Other);
        }
        let addr_reg = self.regs[(ADDR / 4) as usize];
        let addr = addr_reg & 0xFF_FFFF;
        let len = (addr_reg >> 24).min(64);
        let size = flash.len();
        let op = if value & CMD_READ != 0 {
            let mut buf = [0xFF; 64];
            for (i, b) in buf.iter_mut().take(len as usize).enumerate() {
                *b = flash[(addr as usize + i) % size];
            }
            self.set_data_bytes(&buf);
            FlashOp::Read { addr, len }
        } else if value & CMD_WREN != 0 {
            self.status |= 2;
            FlashOp::Other
        } else if value & CMD_WRDI != 0 {
            self.status &= !2;
            FlashOp::Other
        } else if value & CMD_RDID != 0 {
            self.regs[(W0 / 4) as usize] = JEDEC_ID;
            FlashOp::Other
        } else if value & CMD_RDSR != 0 {
            self.regs[(RD_STATUS / 4) as usize] = self.status & !1;
            FlashOp::Other
        } else if value & CMD_WRSR != 0 {
            self.status = self.regs[(RD_STATUS / 4) as usize] & !3;
            FlashOp::Other
        } else if value & CMD_PP != 0 {
            let data = self.data_bytes();
            if self.status & 2 != 0 {
                // Programming only clears bits; a page program wraps within its page.
                let page = addr as usize & !0xFF;
                for (i, b) in data.iter().take(len as usize).enumerate() {
                    let at = page + ((addr as usize + i) & 0xFF);
                    flash[at % size] &= b;
                }
            }
            self.status &= !2;
            FlashOp::Program { addr, len }
        } else if value & (CMD_SE | CMD_BE | CMD_CE) != 0 {
            let (start, n) = if value & CMD_SE != 0 {
                (addr as usize & !0xFFF, 0x1000)
            } else if value & CMD_BE != 0 {
                (addr as usize & !0xFFFF, 0x1_0000)
            } else {
                (0, size)
            };
            if self.status & 2 != 0 && start < size {
                let end = (start + n).min(size);
                flash[start..end].fill(0xFF);
            }
            self.status &= !2;
            FlashOp::Erase {
                addr: start as u32,
                len: n as u32,
            }
        } else if value & CMD_USR != 0 {
            let opcode = (self.regs[(USER2 / 4) as usize] & 0xFFFF) as u16;
            match opcode {
                0x9F => {
                    self.regs[(W0 / 4) as usize] = JEDEC_ID;
                    FlashOp::Other
                }
                0x05 | 0x35 => {
                    self.regs[(W0 / 4) as usize] = 0;
                    FlashOp::Other
                }
                0x06 => {
                    self.status |= 2;
                    FlashOp::Other
                }
                0x04 => {
                    self.status &= !2;
                    FlashOp::Other
                }
                other => FlashOp::UnknownUser(other),
            }
        } else {
            FlashOp::Other
        };
        self.regs[0] = 0;
        Some(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_program_erase_and_id() {
        let mut flash = vec![0xFF; 0x2000];
        flash[0x10..0x14].copy_from_slice(&[1, 2, 3, 4]);
        let mut spi = SpiFlash::new();
        spi.write(ADDR, 4 << 24 | 0x10, &mut flash);
        assert_eq!(
            spi.write(CMD, CMD_READ, &mut flash),
            Some(FlashOp::Read { addr: 0x10, len: 4 })
        );
        assert_eq!(spi.read(W0), Some(0x0403_0201));
        assert_eq!(spi.read(CMD), Some(0));
        // Programming without write enable does nothing.
        spi.write(W0, 0, &mut flash);
        spi.write(CMD, CMD_PP, &mut flash);
        assert_eq!(flash[0x10], 1);
        spi.write(CMD, CMD_WREN, &mut flash);
        spi.write(CMD, CMD_PP, &mut flash);
        assert_eq!(&flash[0x10..0x14], &[0, 0, 0, 0]);
        spi.write(CMD, CMD_WREN, &mut flash);
        spi.write(ADDR, 0x1234, &mut flash);
        spi.write(CMD, CMD_SE, &mut flash);
        assert_eq!(flash[0x10], 0, "erase hits the sector of ADDR only");
        spi.write(ADDR, 0x10, &mut flash);
        spi.write(CMD, CMD_WREN, &mut flash);
        spi.write(CMD, CMD_SE, &mut flash);
        assert_eq!(flash[0x10], 0xFF);
        spi.write(CMD, CMD_RDID, &mut flash);
        assert_eq!(spi.read(W0), Some(JEDEC_ID));
        assert_eq!(spi.read(0x80), None);
    }
}
