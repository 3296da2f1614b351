//! Exceptions and interrupts as XEA2 (and QEMU's lx106) takes them.
//!
//! - An exception with PS.EXCM clear saves PC in EPC1 and goes to the kernel vector
//!   (PS.UM = 0) or the user vector (PS.UM = 1); with PS.EXCM set it is a double
//!   exception: PC goes to DEPC and the double exception vector is taken. Either way
//!   EXCCAUSE is written and PS.EXCM set; loads, stores and fetches also set EXCVADDR.
//! - A level-1 interrupt is an exception with EXCCAUSE 4 (Level1Interrupt).
//! - Interrupts of level 2..3 save PC in EPCn and PS in EPSn, set PS.INTLEVEL to n and
//!   PS.EXCM, and go to that level's vector. Level 3 is the NMI's: it is taken whatever
//!   PS.INTLEVEL and INTENABLE say, and taking it clears it.
//! - Debug exceptions (BREAK, BREAK.N, IBREAKA0, ICOUNT) are level-2 interrupts that
//!   also write DEBUGCAUSE; they happen only while the current level is below 2, else
//!   BREAK is a no-op.

use crate::config::{
    DEBUG_LEVEL, DOUBLE_EXCEPTION_VECTOR_OFFSET, EXCM_LEVEL, INTTYPE_NMI, KERNEL_VECTOR_OFFSET,
    LEVEL2_VECTOR_OFFSET, LEVEL3_VECTOR_OFFSET, LEVEL_MASK, NMI_LEVEL, NUM_LEVELS,
    USER_VECTOR_OFFSET,
};
use crate::cpu::Cpu;
use crate::registers::{PS_EXCM, PS_INTLEVEL, PS_UM};

/// EXCCAUSE values (the Xtensa ISA's exception causes that the LX106 can raise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ExceptionCause {
    /// An unknown, reserved or unconfigured instruction, or ILL/ILL.N.
    IllegalInstruction = 0,
    /// SYSCALL.
    Syscall = 1,
    /// The bus reported an error fetching an instruction.
    InstructionFetchError = 2,
    /// The bus reported an error on a load or store.
    LoadStoreError = 3,
    /// A level-1 interrupt.
    Level1Interrupt = 4,
    /// A 16- or 32-bit load or store at an unaligned address.
    LoadStoreAlignment = 9,
    /// Instruction fetch from an address nothing answers.
    InstrPifAddrError = 14,
    /// Load or store at an address nothing answers.
    LoadStorePifAddrError = 15,
    /// Instruction fetch from a prohibited address.
    InstFetchProhibited = 20,
    /// Load from a prohibited address.
    LoadProhibited = 28,
    /// Store to a prohibited address.
    StoreProhibited = 29,
}

impl ExceptionCause {
    /// The EXCCAUSE value.
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// What stopped an instruction: an exception to take, or a debug exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// An exception; `vaddr` goes to EXCVADDR when present.
    Exception {
        cause: ExceptionCause,
        vaddr: Option<u32>,
    },
    /// A debug exception with this DEBUGCAUSE (if the current level allows it).
    Debug(u32),
    /// WAITI: PS.INTLEVEL is set, PC is past the WAITI; halt until an interrupt.
    Halt,
}

impl Fault {
    pub(crate) fn exception(cause: ExceptionCause) -> Fault {
        Fault::Exception { cause, vaddr: None }
    }

    pub(crate) fn at(cause: ExceptionCause, vaddr: u32) -> Fault {
        Fault::Exception {
            cause,
            vaddr: Some(vaddr),
        }
    }
}

impl Cpu {
    /// The current interrupt level: PS.INTLEVEL, raised to EXCM_LEVEL while PS.EXCM is set.
    pub fn current_interrupt_level(&self) -> u32 {
        let level = self.ps & PS_INTLEVEL;
        if self.ps & PS_EXCM != 0 && level < EXCM_LEVEL {
            EXCM_LEVEL
        } else {
            level
        }
    }

    /// The level of the interrupt the CPU would take before its next instruction, if any.
    pub fn pending_interrupt_level(&self) -> Option<u32> {
        let enabled = self.intset & (self.intenable | INTTYPE_NMI);
        if enabled == 0 {
            return None;
        }
        let min = self.current_interrupt_level().min(NMI_LEVEL - 1);
        (min + 1..=NUM_LEVELS)
            .rev()
            .find(|&level| LEVEL_MASK[level as usize] & enabled != 0)
    }

    fn vector(&self, offset: u32) -> u32 {
        self.vecbase.wrapping_add(offset)
    }

    /// Takes an exception for the instruction at the current PC.
    pub(crate) fn take_exception(&mut self, cause: ExceptionCause, vaddr: Option<u32>) {
        if let Some(vaddr) = vaddr {
            self.excvaddr = vaddr;
        }
        self.enter_general_vector(cause.code());
    }

    fn enter_general_vector(&mut self, cause: u32) {
        let vector = if self.ps & PS_EXCM != 0 {
            self.depc = self.pc;
            DOUBLE_EXCEPTION_VECTOR_OFFSET
        } else {
            self.epc[0] = self.pc;
            if self.ps & PS_UM != 0 {
                USER_VECTOR_OFFSET
            } else {
                KERNEL_VECTOR_OFFSET
            }
        };
        self.exccause = cause;
        self.ps |= PS_EXCM;
        self.pc = self.vector(vector);
    }

    /// Takes an interrupt of `level` (2 or 3: high priority; 1: the general vector).
    pub(crate) fn take_interrupt(&mut self, level: u32) {
        if level == 1 {
            self.enter_general_vector(ExceptionCause::Level1Interrupt.code());
            return;
        }
        self.enter_high_level(level);
        if level == NMI_LEVEL {
            self.intset &= !INTTYPE_NMI;
        }
    }

    fn enter_high_level(&mut self, level: u32) {
        let index = (level - 1) as usize;
        self.epc[index] = self.pc;
        self.eps[index - 1] = self.ps;
        self.ps = (self.ps & !PS_INTLEVEL) | level | PS_EXCM;
        self.pc = self.vector(if level == 2 {
            LEVEL2_VECTOR_OFFSET
        } else {
            LEVEL3_VECTOR_OFFSET
        });
    }

    /// Takes a debug exception if the current level allows it; returns whether it did.
    pub(crate) fn take_debug_exception(&mut self, cause: u32) -> bool {
        if self.current_interrupt_level() >= DEBUG_LEVEL {
            return false;
        }
        self.debugcause = cause;
        self.enter_high_level(DEBUG_LEVEL);
        true
    }
}
