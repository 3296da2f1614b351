//! The emulator's side of the differential test: memory laid out as QEMU's `sim`
//! machine lays out the lx106's (`info mtree`), zero-filled, allocated on first touch.

use std::collections::HashMap;

use lx106::{Bus, BusFault};

/// QEMU's sim machine with `-cpu lx106`: the core's local memories, system ROM and RAM.
pub const REGIONS: &[(u32, u32)] = &[
    (0x3FF4_0000, 0x4_0000),   // datarom0
    (0x3FF8_0000, 0x4_0000),   // dataram1
    (0x3FFC_0000, 0x4_0000),   // dataram0
    (0x4000_0000, 0x10_0000),  // instram0
    (0x4010_0000, 0x10_0000),  // instram1
    (0x4020_0000, 0x10_0000),  // instrom0
    (0x5000_0000, 0x400_0000), // sysrom0
    (0x6000_0000, 0x800_0000), // sysram0
];

const PAGE: u32 = 4096;

/// Sparse memory over [`REGIONS`]; anything else is [`BusFault::Unmapped`].
#[derive(Default)]
pub struct SimMemory {
    pages: HashMap<u32, Box<[u8; PAGE as usize]>>,
}

impl SimMemory {
    pub fn mapped(addr: u32) -> bool {
        REGIONS
            .iter()
            .any(|&(base, size)| addr.wrapping_sub(base) < size)
    }

    fn byte(&mut self, addr: u32) -> Result<&mut u8, BusFault> {
        if !Self::mapped(addr) {
            return Err(BusFault::Unmapped);
        }
        let page = self
            .pages
            .entry(addr / PAGE)
            .or_insert_with(|| Box::new([0; PAGE as usize]));
        Ok(&mut page[(addr % PAGE) as usize])
    }

    pub fn load(&mut self, addr: u32, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            if let Ok(slot) = self.byte(addr + i as u32) {
                *slot = *b;
            }
        }
    }

    pub fn dump(&mut self, addr: u32, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| self.read8(addr + i as u32).unwrap_or(0))
            .collect()
    }
}

impl Bus for SimMemory {
    fn read8(&mut self, addr: u32) -> Result<u8, BusFault> {
        self.byte(addr).map(|b| *b)
    }

    fn write8(&mut self, addr: u32, value: u8) -> Result<(), BusFault> {
        *self.byte(addr)? = value;
        Ok(())
    }
}
