//! Measures how many instructions per second the emulator executes: a tight loop of
//! ALU work, loads and stores, and a taken branch, in RAM behind a slice-backed bus.
//!
//! `cargo run --release -p lx106 --example mips [-- instructions]`

use std::time::Instant;

use lx106::{Bus, BusFault, Cpu, SpecialReg, StepOutcome};

const BASE: u32 = 0x4010_0000;

/// 64 KiB of RAM at [`BASE`], with a fetch that reads three bytes at once.
struct Ram(Vec<u8>);

impl Ram {
    #[inline]
    fn index(&self, addr: u32, len: usize) -> Result<usize, BusFault> {
        let i = addr.wrapping_sub(BASE) as usize;
        if i + len <= self.0.len() {
            Ok(i)
        } else {
            Err(BusFault::Unmapped)
        }
    }
}

impl Bus for Ram {
    #[inline]
    fn read8(&mut self, addr: u32) -> Result<u8, BusFault> {
        Ok(self.0[self.index(addr, 1)?])
    }
    #[inline]
    fn write8(&mut self, addr: u32, value: u8) -> Result<(), BusFault> {
        let i = self.index(addr, 1)?;
        self.0[i] = value;
        Ok(())
    }
    #[inline]
    fn read32(&mut self, addr: u32) -> Result<u32, BusFault> {
        let i = self.index(addr, 4)?;
        Ok(u32::from_le_bytes([
            self.0[i],
            self.0[i + 1],
            self.0[i + 2],
            self.0[i + 3],
        ]))
    }
    #[inline]
    fn write32(&mut self, addr: u32, value: u32) -> Result<(), BusFault> {
        let i = self.index(addr, 4)?;
        self.0[i..i + 4].copy_from_slice(&value.to_le_bytes());
        Ok(())
    }
    #[inline]
    fn fetch(&mut self, pc: u32) -> Result<u32, BusFault> {
        let i = self.index(pc, 3)?;
        Ok(u32::from_le_bytes([
            self.0[i],
            self.0[i + 1],
            self.0[i + 2],
            0,
        ]))
    }
}

fn main() {
    let instructions: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000_000);
    // loop: l32i.n a4, a3, 0 ; add.n a4, a4, a2 ; s32i.n a4, a3, 0 ; addi a2, a2, 1 ;
    //       xor a5, a4, a2 ; slli a6, a5, 3 ; bnez a2, loop
    let code: [u8; 17] = [
        0x48, 0x03, // l32i.n a4, a3, 0
        0x2a, 0x44, // add.n a4, a4, a2
        0x49, 0x03, // s32i.n a4, a3, 0
        0x22, 0xc2, 0x01, // addi a2, a2, 1
        0x20, 0x54, 0x30, // xor a5, a4, a2
        0xd0, 0x65, 0x11, // slli a6, a5, 3
        0xcc, 0xe2, // placeholder, replaced below by bnez
    ];
    let mut ram = Ram(vec![0; 0x1_0000]);
    ram.0[..code.len()].copy_from_slice(&code);
    // bnez a2, loop: op0 = 6, n = 1, m = 1, s = 2, imm12 = -(15 + 4) relative to pc + 4
    let bnez: u32 = ((-19i32 as u32 & 0xFFF) << 12) | (2 << 8) | (0x5 << 4) | 6;
    ram.0[15..18].copy_from_slice(&bnez.to_le_bytes()[..3]);
    let mut cpu = Cpu::new();
    cpu.set_special_register(SpecialReg::Ps, 0);
    cpu.set_pc(BASE);
    cpu.set_ar(2, 1);
    cpu.set_ar(3, BASE + 0x8000);
    let start = Instant::now();
    for _ in 0..instructions {
        if cpu.step(&mut ram) != StepOutcome::Executed {
            eprintln!("unexpected outcome at {:#x}", cpu.pc());
            std::process::exit(1);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "{instructions} instructions in {elapsed:.2} s: {:.1} million instructions per second",
        instructions as f64 / elapsed / 1e6
    );
}
