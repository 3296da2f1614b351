//! Instruction semantics. Where the ISA leaves a case undefined, QEMU's lx106 decides
//! (the differential test holds the two together):
//!
//! - SLLI with an encoded shift of 32 shifts by 0 (QEMU masks the amount to 5 bits).
//! - SLL shifts left by (32 - SAR) mod 64 as a 64-bit value: 0 for SAR = 0 and for
//!   SAR > 32; SRL, SRA and SRC shift by SAR (0..=63) as 64-bit values.
//! - 16- and 32-bit loads and stores at unaligned addresses raise LoadStoreAlignment
//!   (`XCHAL_UNALIGNED_LOAD_EXCEPTION`); L32R never does (its address is aligned).

use crate::bus::Bus;
use crate::config::DEBUG_LEVEL;
use crate::cpu::{bus_fault, Access, Cpu};
use crate::decode::{Instruction, Opcode};
use crate::exception::{ExceptionCause, Fault};
use crate::registers::{SpecialReg, DEBUGCAUSE_BI, DEBUGCAUSE_BN, PS_EXCM, PS_INTLEVEL};

type Exec = Result<(), Fault>;

impl Cpu {
    #[inline]
    fn r(&self, n: u8) -> u32 {
        self.ar[(n & 15) as usize]
    }

    #[inline]
    fn w(&mut self, n: u8, value: u32) {
        self.ar[(n & 15) as usize] = value;
    }

    #[inline]
    fn branch(&mut self, insn: &Instruction, taken: bool) -> Exec {
        self.pc = if taken {
            self.pc.wrapping_add(4).wrapping_add(insn.imm as u32)
        } else {
            self.pc.wrapping_add(insn.len as u32)
        };
        Ok(())
    }

    fn load(&mut self, bus: &mut impl Bus, insn: &Instruction, size: u32) -> Result<u32, Fault> {
        let addr = self.r(insn.b).wrapping_add(insn.imm as u32);
        if addr & (size - 1) != 0 {
            return Err(Fault::at(ExceptionCause::LoadStoreAlignment, addr));
        }
        let value = match size {
            1 => bus.read8(addr).map(u32::from),
            2 => bus.read16(addr).map(u32::from),
            _ => bus.read32(addr),
        };
        value.map_err(|fault| bus_fault(fault, Access::Load, addr))
    }

    fn store(&mut self, bus: &mut impl Bus, insn: &Instruction, size: u32) -> Exec {
        let addr = self.r(insn.b).wrapping_add(insn.imm as u32);
        if addr & (size - 1) != 0 {
            return Err(Fault::at(ExceptionCause::LoadStoreAlignment, addr));
        }
        let value = self.r(insn.a);
        let result = match size {
            1 => bus.write8(addr, value as u8),
            2 => bus.write16(addr, value as u16),
            _ => bus.write32(addr, value),
        };
        result.map_err(|fault| bus_fault(fault, Access::Store, addr))
    }

    /// The special register RSR (`usable` = readable), WSR (writable) or XSR
    /// (exchangeable) names, or IllegalInstruction.
    fn special(insn: &Instruction, usable: fn(SpecialReg) -> bool) -> Result<SpecialReg, Fault> {
        match SpecialReg::from_number(insn.k) {
            Some(sr) if usable(sr) => Ok(sr),
            _ => Err(Fault::exception(ExceptionCause::IllegalInstruction)),
        }
    }

    /// Executes `insn`, at PC, updating PC; on a fault PC still holds the instruction's
    /// address and no register has been written.
    #[inline]
    pub(crate) fn execute(&mut self, insn: &Instruction, bus: &mut impl Bus) -> Exec {
        use Opcode::*;
        let next = self.pc.wrapping_add(insn.len as u32);
        let (a, b, c) = (insn.a, insn.b, insn.c);
        match insn.op {
            Add | AddN => self.w(a, self.r(b).wrapping_add(self.r(c))),
            Addx2 => self.w(a, (self.r(b) << 1).wrapping_add(self.r(c))),
            Addx4 => self.w(a, (self.r(b) << 2).wrapping_add(self.r(c))),
            Addx8 => self.w(a, (self.r(b) << 3).wrapping_add(self.r(c))),
            Sub => self.w(a, self.r(b).wrapping_sub(self.r(c))),
            Subx2 => self.w(a, (self.r(b) << 1).wrapping_sub(self.r(c))),
            Subx4 => self.w(a, (self.r(b) << 2).wrapping_sub(self.r(c))),
            Subx8 => self.w(a, (self.r(b) << 3).wrapping_sub(self.r(c))),
            And => self.w(a, self.r(b) & self.r(c)),
            Or => self.w(a, self.r(b) | self.r(c)),
            Xor => self.w(a, self.r(b) ^ self.r(c)),
            Mull => self.w(a, self.r(b).wrapping_mul(self.r(c))),
            Mul16u => self.w(a, (self.r(b) & 0xFFFF) * (self.r(c) & 0xFFFF)),
            Mul16s => {
                let x = self.r(b) as i16 as i32;
                let y = self.r(c) as i16 as i32;
                self.w(a, x.wrapping_mul(y) as u32)
            }
            Src => {
                let wide = ((self.r(b) as u64) << 32) | self.r(c) as u64;
                self.w(a, (wide >> self.sar) as u32)
            }
            Moveqz => {
                if self.r(c) == 0 {
                    self.w(a, self.r(b))
                }
            }
            Movnez => {
                if self.r(c) != 0 {
                    self.w(a, self.r(b))
                }
            }
            Movltz => {
                if (self.r(c) as i32) < 0 {
                    self.w(a, self.r(b))
                }
            }
            Movgez => {
                if (self.r(c) as i32) >= 0 {
                    self.w(a, self.r(b))
                }
            }
            Neg => self.w(a, self.r(b).wrapping_neg()),
            Abs => self.w(a, (self.r(b) as i32).wrapping_abs() as u32),
            Srl => self.w(a, ((self.r(b) as u64) >> self.sar) as u32),
            Sra => self.w(a, ((self.r(b) as i32 as i64) >> self.sar) as u32),
            Sll => {
                let shift = 32u32.wrapping_sub(self.sar) & 0x3F;
                self.w(a, ((self.r(b) as u64) << shift) as u32)
            }
            Slli => self.w(a, self.r(b) << insn.imm),
            Srli => self.w(a, self.r(b) >> insn.imm),
            Srai => self.w(a, ((self.r(b) as i32) >> insn.imm) as u32),
            Extui => {
                let mask = ((1u64 << insn.k) - 1) as u32;
                self.w(a, (self.r(b) >> insn.imm) & mask)
            }
            Ssr => self.sar = self.r(b) & 31,
            Ssl => self.sar = 32 - (self.r(b) & 31),
            Ssa8l => self.sar = (self.r(b) << 3) & 31,
            Ssa8b => self.sar = 32 - ((self.r(b) << 3) & 31),
            Ssai => self.sar = insn.imm as u32,
            Nsa => {
                let v = self.r(b) as i32;
                let normalized = if v < 0 { !v } else { v };
                self.w(a, normalized.leading_zeros().saturating_sub(1).min(31))
            }
            Nsau => self.w(a, self.r(b).leading_zeros()),
            MovN => self.w(a, self.r(b)),
            Addi | AddiN | Addmi => self.w(a, self.r(b).wrapping_add(insn.imm as u32)),
            Movi | MoviN => self.w(a, insn.imm as u32),
            L8ui => {
                let v = self.load(bus, insn, 1)?;
                self.w(a, v)
            }
            L16ui => {
                let v = self.load(bus, insn, 2)?;
                self.w(a, v)
            }
            L16si => {
                let v = self.load(bus, insn, 2)?;
                self.w(a, v as i16 as i32 as u32)
            }
            L32i | L32iN => {
                let v = self.load(bus, insn, 4)?;
                self.w(a, v)
            }
            S8i => self.store(bus, insn, 1)?,
            S16i => self.store(bus, insn, 2)?,
            S32i | S32iN => self.store(bus, insn, 4)?,
            L32r => {
                let addr = if self.litbase & 1 != 0 {
                    (self.litbase & 0xFFFF_F000).wrapping_add(insn.imm as u32)
                } else {
                    insn.l32r_pc_relative_address(self.pc)
                };
                let v = bus
                    .read32(addr)
                    .map_err(|fault| bus_fault(fault, Access::Load, addr))?;
                self.w(a, v)
            }
            Beqz | BeqzN => return self.branch(insn, self.r(b) == 0),
            Bnez | BnezN => return self.branch(insn, self.r(b) != 0),
            Bltz => return self.branch(insn, (self.r(b) as i32) < 0),
            Bgez => return self.branch(insn, (self.r(b) as i32) >= 0),
            Beqi => return self.branch(insn, self.r(b) == insn.k),
            Bnei => return self.branch(insn, self.r(b) != insn.k),
            Blti => return self.branch(insn, (self.r(b) as i32) < insn.k as i32),
            Bgei => return self.branch(insn, (self.r(b) as i32) >= insn.k as i32),
            Bltui => return self.branch(insn, self.r(b) < insn.k),
            Bgeui => return self.branch(insn, self.r(b) >= insn.k),
            Bbci => return self.branch(insn, self.r(b) & (1 << insn.k) == 0),
            Bbsi => return self.branch(insn, self.r(b) & (1 << insn.k) != 0),
            Beq => return self.branch(insn, self.r(b) == self.r(c)),
            Bne => return self.branch(insn, self.r(b) != self.r(c)),
            Blt => return self.branch(insn, (self.r(b) as i32) < self.r(c) as i32),
            Bge => return self.branch(insn, (self.r(b) as i32) >= self.r(c) as i32),
            Bltu => return self.branch(insn, self.r(b) < self.r(c)),
            Bgeu => return self.branch(insn, self.r(b) >= self.r(c)),
            Bany => return self.branch(insn, self.r(b) & self.r(c) != 0),
            Bnone => return self.branch(insn, self.r(b) & self.r(c) == 0),
            Ball => return self.branch(insn, !self.r(b) & self.r(c) == 0),
            Bnall => return self.branch(insn, !self.r(b) & self.r(c) != 0),
            Bbc => return self.branch(insn, self.r(b) & (1 << (self.r(c) & 31)) == 0),
            Bbs => return self.branch(insn, self.r(b) & (1 << (self.r(c) & 31)) != 0),
            J => {
                self.pc = self.pc.wrapping_add(4).wrapping_add(insn.imm as u32);
                return Ok(());
            }
            Call0 => {
                self.ar[0] = next;
                self.pc = (self.pc & !3).wrapping_add(4).wrapping_add(insn.imm as u32);
                return Ok(());
            }
            Callx0 => {
                let target = self.r(b);
                self.ar[0] = next;
                self.pc = target;
                return Ok(());
            }
            Jx => {
                self.pc = self.r(b);
                return Ok(());
            }
            Ret | RetN => {
                self.pc = self.ar[0];
                return Ok(());
            }
            Rsr => {
                let sr = Self::special(insn, SpecialReg::readable)?;
                self.w(a, self.special_register(sr))
            }
            Wsr => {
                let sr = Self::special(insn, SpecialReg::writable)?;
                self.set_special_register(sr, self.r(a))
            }
            Xsr => {
                let sr = Self::special(insn, SpecialReg::exchangeable)?;
                let old = self.special_register(sr);
                self.set_special_register(sr, self.r(a));
                self.w(a, old)
            }
            Rsil => {
                let old = self.ps;
                self.ps = (self.ps & !PS_INTLEVEL) | insn.k;
                self.w(a, old)
            }
            Waiti => {
                self.ps = (self.ps & !PS_INTLEVEL) | insn.k;
                self.pc = next;
                return Err(Fault::Halt);
            }
            Rfe => {
                self.ps &= !PS_EXCM;
                self.pc = self.epc[0];
                return Ok(());
            }
            Rfde => {
                self.pc = self.depc;
                return Ok(());
            }
            Rfi => {
                if !(2..=3).contains(&insn.k) {
                    return Err(Fault::exception(ExceptionCause::IllegalInstruction));
                }
                let index = insn.k as usize - 1;
                self.ps = self.eps[index - 1];
                self.pc = self.epc[index];
                return Ok(());
            }
            Syscall => return Err(Fault::exception(ExceptionCause::Syscall)),
            Ill | IllN | Simcall => {
                return Err(Fault::exception(ExceptionCause::IllegalInstruction))
            }
            // Below the debug level BREAK is a debug exception, at or above it a no-op.
            Break | BreakN if self.current_interrupt_level() < DEBUG_LEVEL => {
                let cause = if insn.op == Break {
                    DEBUGCAUSE_BI
                } else {
                    DEBUGCAUSE_BN
                };
                return Err(Fault::Debug(cause));
            }
            Break | BreakN => {}
            Nop | NopN | Isync | Rsync | Esync | Dsync | Excw | Memw | Extw => {}
            // No external registers are modelled: RER reads 0, WER is ignored.
            Rer => self.w(a, 0),
            Wer => {}
            Witlb => self.itlb[(self.r(b) >> 29) as usize] = self.r(a) & 0xF,
            Wdtlb => self.dtlb[(self.r(b) >> 29) as usize] = self.r(a) & 0xF,
            Ritlb0 | Rdtlb0 => self.w(a, self.r(b) & 0xE000_0000),
            Ritlb1 => self.w(a, self.itlb[(self.r(b) >> 29) as usize]),
            Rdtlb1 => self.w(a, self.dtlb[(self.r(b) >> 29) as usize]),
            Pitlb | Pdtlb => self.w(a, (self.r(b) & 0xE000_0000) | 1),
            Iitlb | Idtlb => {}
        }
        self.pc = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::bus::{Bus, BusFault};
    use crate::cpu::{Cpu, StepOutcome};
    use crate::exception::ExceptionCause;
    use crate::registers::SpecialReg;

    /// 4 KiB of RAM at 0x4010_0000 and 4 KiB at 0x3FFE_8000.
    struct Ram {
        iram: Vec<u8>,
        dram: Vec<u8>,
    }

    impl Ram {
        fn new(code: &[u8]) -> Ram {
            let mut iram = vec![0; 4096];
            iram[..code.len()].copy_from_slice(code);
            Ram {
                iram,
                dram: vec![0; 4096],
            }
        }

        fn slot(&mut self, addr: u32) -> Result<&mut u8, BusFault> {
            let (mem, base) = if addr >= 0x4010_0000 {
                (&mut self.iram, 0x4010_0000)
            } else {
                (&mut self.dram, 0x3FFE_8000)
            };
            mem.get_mut(addr.wrapping_sub(base) as usize)
                .ok_or(BusFault::Unmapped)
        }
    }

    impl Bus for Ram {
        fn read8(&mut self, addr: u32) -> Result<u8, BusFault> {
            self.slot(addr).map(|b| *b)
        }
        fn write8(&mut self, addr: u32, value: u8) -> Result<(), BusFault> {
            *self.slot(addr)? = value;
            Ok(())
        }
    }

    const CODE: u32 = 0x4010_0000;
    const DATA: u32 = 0x3FFE_8000;

    fn word(bytes: &mut Vec<u8>, insn: u32, len: usize) {
        bytes.extend_from_slice(&insn.to_le_bytes()[..len]);
    }

    fn cpu_at_code() -> Cpu {
        let mut cpu = Cpu::new();
        cpu.set_pc(CODE);
        cpu.set_special_register(SpecialReg::Ps, 0);
        cpu
    }

    #[test]
    fn arithmetic_wraps() {
        let mut code = vec![];
        word(&mut code, 0x802340, 3); // add a2, a3, a4
        word(&mut code, 0xc05340, 3); // sub a5, a3, a4
        let mut ram = Ram::new(&code);
        let mut cpu = cpu_at_code();
        cpu.set_ar(3, u32::MAX);
        cpu.set_ar(4, 2);
        cpu.step(&mut ram);
        cpu.step(&mut ram);
        assert_eq!(cpu.ar(2), 1);
        assert_eq!(cpu.ar(5), u32::MAX - 2);
        assert_eq!(cpu.pc(), CODE + 6);
    }

    #[test]
    fn unaligned_l32i_raises_alignment_with_excvaddr() {
        let mut code = vec![];
        word(&mut code, 0x002322, 3); // l32i a2, a3, 0
        let mut ram = Ram::new(&code);
        let mut cpu = cpu_at_code();
        cpu.set_ar(3, DATA + 2);
        let outcome = cpu.step(&mut ram);
        assert_eq!(
            outcome,
            StepOutcome::Exception(ExceptionCause::LoadStoreAlignment)
        );
        assert_eq!(cpu.special_register(SpecialReg::Excvaddr), DATA + 2);
        assert_eq!(cpu.special_register(SpecialReg::Epc1), CODE);
        assert_eq!(cpu.special_register(SpecialReg::Exccause), 9);
        assert_eq!(cpu.pc(), 0x4000_0030, "kernel vector");
        assert_ne!(cpu.special_register(SpecialReg::Ps) & 0x10, 0, "PS.EXCM");
    }

    #[test]
    fn exception_while_in_exception_mode_is_a_double_exception() {
        let mut ram = Ram::new(&[0, 0, 0]); // ill
        let mut cpu = cpu_at_code();
        cpu.set_special_register(SpecialReg::Ps, 0x10);
        cpu.set_special_register(SpecialReg::Epc1, 0x1234);
        cpu.step(&mut ram);
        assert_eq!(cpu.pc(), 0x4000_0070);
        assert_eq!(cpu.special_register(SpecialReg::Depc), CODE);
        assert_eq!(cpu.special_register(SpecialReg::Epc1), 0x1234);
    }

    #[test]
    fn store_to_nowhere_is_a_pif_address_error() {
        let mut code = vec![];
        word(&mut code, 0x006322, 3); // s32i a2, a3, 0
        let mut ram = Ram::new(&code);
        let mut cpu = cpu_at_code();
        cpu.set_ar(3, 0x6000_0000);
        assert_eq!(
            cpu.step(&mut ram),
            StepOutcome::Exception(ExceptionCause::LoadStorePifAddrError)
        );
        assert_eq!(cpu.special_register(SpecialReg::Excvaddr), 0x6000_0000);
    }

    #[test]
    fn call0_and_ret_n() {
        let mut code = vec![];
        word(&mut code, 0x000045, 3); // call0 . + 8 (to CODE + 8)
        word(&mut code, 0, 3);
        word(&mut code, 0, 2);
        word(&mut code, 0xf00d, 2); // ret.n at CODE + 8
        let mut ram = Ram::new(&code);
        let mut cpu = cpu_at_code();
        cpu.step(&mut ram);
        assert_eq!(cpu.pc(), CODE + 8);
        assert_eq!(cpu.ar(0), CODE + 3);
        cpu.step(&mut ram);
        assert_eq!(cpu.pc(), CODE + 3);
    }

    #[test]
    fn l32r_uses_litbase_when_enabled() {
        let mut code = vec![];
        word(&mut code, 0xffff21, 3); // l32r a2, [base - 4]
        word(&mut code, 0xffff21, 3);
        let mut ram = Ram::new(&code);
        ram.write32(DATA + 0x1000 - 4, 0xCAFE_F00D)
            .unwrap_or_default();
        ram.write32(DATA + 0xFFC, 0x1234_5678).unwrap_or_default();
        let mut cpu = cpu_at_code();
        cpu.set_special_register(SpecialReg::Litbase, DATA + 0x1000 + 1);
        cpu.step(&mut ram);
        assert_eq!(cpu.ar(2), 0x1234_5678);
    }

    #[test]
    fn timer_interrupt_at_level_one_goes_through_the_kernel_vector() {
        let mut ram = Ram::new(&[0xf0, 0x20, 0x00, 0xf0, 0x20, 0x00]); // nop; nop
        let mut cpu = cpu_at_code();
        cpu.set_special_register(SpecialReg::Intenable, 1 << 6);
        cpu.set_special_register(SpecialReg::Ccompare0, 1);
        assert_eq!(cpu.step(&mut ram), StepOutcome::Executed);
        assert_eq!(cpu.step(&mut ram), StepOutcome::Interrupt { level: 1 });
        assert_eq!(cpu.special_register(SpecialReg::Exccause), 4);
        assert_eq!(cpu.special_register(SpecialReg::Epc1), CODE + 3);
        assert_eq!(cpu.pc(), 0x4000_0030);
    }

    #[test]
    fn waiti_halts_until_an_enabled_interrupt() {
        let mut ram = Ram::new(&[0x00, 0x70, 0x00]); // waiti 0
        let mut cpu = cpu_at_code();
        cpu.set_special_register(SpecialReg::Ps, 0x5);
        cpu.set_special_register(SpecialReg::Intenable, 1 << 6);
        cpu.set_special_register(SpecialReg::Ccompare0, 1000);
        assert_eq!(cpu.step(&mut ram), StepOutcome::Executed);
        assert_eq!(cpu.special_register(SpecialReg::Ps) & 0xF, 0);
        assert_eq!(cpu.step(&mut ram), StepOutcome::Waiting);
        let skip = cpu.cycles_until_timer();
        assert_eq!(skip, 998);
        cpu.advance_cycles(skip);
        assert_eq!(cpu.step(&mut ram), StepOutcome::Interrupt { level: 1 });
        assert_eq!(cpu.special_register(SpecialReg::Epc1), CODE + 3);
    }

    #[test]
    fn nmi_is_taken_at_any_level_and_cleared() {
        let mut ram = Ram::new(&[0xf0, 0x20, 0x00]);
        let mut cpu = cpu_at_code();
        cpu.set_special_register(SpecialReg::Ps, 0x1F);
        cpu.raise_interrupt(14);
        assert_eq!(cpu.step(&mut ram), StepOutcome::Interrupt { level: 3 });
        assert_eq!(cpu.pc(), 0x4000_0020);
        assert_eq!(cpu.special_register(SpecialReg::Eps3), 0x1F);
        assert_eq!(cpu.special_register(SpecialReg::Epc3), CODE);
        assert_eq!(cpu.special_register(SpecialReg::Interrupt), 0);
        assert_eq!(cpu.special_register(SpecialReg::Ps), 0x13);
    }

    #[test]
    fn level_interrupt_follows_its_line_and_edge_interrupt_latches() {
        let mut cpu = cpu_at_code();
        cpu.raise_interrupt(2);
        cpu.raise_interrupt(9);
        cpu.clear_interrupt(2);
        cpu.clear_interrupt(9);
        assert_eq!(cpu.special_register(SpecialReg::Interrupt), 1 << 9);
        cpu.set_special_register(SpecialReg::Intclear, 1 << 9);
        assert_eq!(cpu.special_register(SpecialReg::Interrupt), 0);
    }

    #[test]
    fn break_below_debug_level_enters_the_debug_vector() {
        let mut ram = Ram::new(&[0x00, 0x41, 0x00, 0x2d, 0xf0]); // break 1, 0; break.n 0
        let mut cpu = cpu_at_code();
        assert_eq!(cpu.step(&mut ram), StepOutcome::Debug { cause: 8 });
        assert_eq!(cpu.pc(), 0x4000_0010);
        assert_eq!(cpu.special_register(SpecialReg::Epc2), CODE);
        // At level 2 BREAK.N is a no-op.
        cpu.set_pc(CODE + 3);
        assert_eq!(cpu.step(&mut ram), StepOutcome::Executed);
        assert_eq!(cpu.pc(), CODE + 5);
    }

    #[test]
    fn nsa_and_nsau() {
        let mut code = vec![];
        word(&mut code, 0x40e320, 3); // nsa a2, a3
        word(&mut code, 0x40f340, 3); // nsau a4, a3
        let mut ram = Ram::new(&code);
        for (value, nsa, nsau) in [
            (0u32, 31, 32),
            (1, 30, 31),
            (u32::MAX, 31, 0),
            (0x8000_0000, 0, 0),
            (0x4000_0000, 0, 1),
        ] {
            let mut cpu = cpu_at_code();
            cpu.set_ar(3, value);
            cpu.step(&mut ram);
            cpu.step(&mut ram);
            assert_eq!((cpu.ar(2), cpu.ar(4)), (nsa, nsau), "{value:#x}");
        }
    }
}
