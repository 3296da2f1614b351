//! The CPU's state and its step loop.

use crate::bus::{Bus, BusFault};
use crate::config::{
    CONFIGID0, CONFIGID1, INTTYPE_EDGE, INTTYPE_LEVEL, INTTYPE_NMI, INTTYPE_SOFTWARE,
    INTTYPE_TIMER, NUM_AREGS, NUM_IBREAK, NUM_INTERRUPTS, RESET_VECTOR0, VECBASE_RESET,
};
use crate::decode::decode;
use crate::exception::{ExceptionCause, Fault};
use crate::registers::{SpecialReg, DEBUGCAUSE_IB, DEBUGCAUSE_IC, PS_RESET, PS_WRITE_MASK};

/// What one [`Cpu::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// An instruction executed (BREAK below the debug level is a no-op and counts here).
    Executed,
    /// An instruction raised an exception; PC is now the exception vector.
    Exception(ExceptionCause),
    /// An interrupt of this level was taken before any instruction; PC is now its
    /// vector (the general vector for level 1).
    Interrupt {
        /// The interrupt level (1..=3; 3 is the NMI).
        level: u32,
    },
    /// A debug exception (BREAK, BREAK.N, IBREAKA0, ICOUNT) was taken; PC is now the
    /// debug (level-2) vector. A machine without a debugger may want to stop here.
    Debug {
        /// The DEBUGCAUSE bits.
        cause: u32,
    },
    /// The CPU is halted in WAITI until an enabled interrupt is pending; no instruction
    /// executed. See [`Cpu::cycles_until_timer`] to skip the idle time.
    Waiting,
}

/// An LX106 core: address registers, PC, special registers, interrupt inputs.
///
/// Time: CCOUNT advances by one per [`step`](Cpu::step), whatever the instruction (the
/// real core needs more cycles for loads, taken branches and multiplies; this model is
/// cycle-approximate). When it reaches CCOMPARE0, interrupt 6 (the timer) is raised.
///
/// ```
/// use lx106::{Bus, BusFault, Cpu, StepOutcome};
///
/// struct Ram(Vec<u8>);
/// impl Bus for Ram {
///     fn read8(&mut self, addr: u32) -> Result<u8, BusFault> {
///         self.0.get(addr as usize).copied().ok_or(BusFault::Unmapped)
///     }
///     fn write8(&mut self, addr: u32, value: u8) -> Result<(), BusFault> {
///         *self.0.get_mut(addr as usize).ok_or(BusFault::Unmapped)? = value;
///         Ok(())
///     }
/// }
///
/// // movi.n a2, 5; addi a2, a2, 37
/// let mut ram = Ram(vec![0x0c, 0x52, 0x22, 0xc2, 0x25, 0, 0, 0]);
/// let mut cpu = Cpu::new();
/// cpu.set_pc(0);
/// assert_eq!(cpu.step(&mut ram), StepOutcome::Executed);
/// assert_eq!(cpu.step(&mut ram), StepOutcome::Executed);
/// assert_eq!(cpu.ar(2), 42);
/// assert_eq!(cpu.pc(), 5);
/// ```
#[derive(Debug, Clone)]
pub struct Cpu {
    pub(crate) ar: [u32; NUM_AREGS],
    pub(crate) pc: u32,
    pub(crate) sar: u32,
    pub(crate) litbase: u32,
    pub(crate) ps: u32,
    /// EPC1..EPC3.
    pub(crate) epc: [u32; 3],
    /// EPS2..EPS3.
    pub(crate) eps: [u32; 2],
    /// EXCSAVE1..EXCSAVE3.
    pub(crate) excsave: [u32; 3],
    pub(crate) depc: u32,
    pub(crate) exccause: u32,
    pub(crate) excvaddr: u32,
    /// INTERRUPT (INTSET): pending interrupts.
    pub(crate) intset: u32,
    pub(crate) intenable: u32,
    pub(crate) vecbase: u32,
    pub(crate) ccount: u32,
    pub(crate) ccompare0: u32,
    pub(crate) debugcause: u32,
    pub(crate) prid: u32,
    pub(crate) icount: u32,
    pub(crate) icountlevel: u32,
    pub(crate) ibreakenable: u32,
    pub(crate) ibreaka0: u32,
    pub(crate) dbreaka0: u32,
    pub(crate) dbreakc0: u32,
    pub(crate) ddr: u32,
    /// Region-protection attributes of the eight 512 MiB regions (instruction, data).
    pub(crate) itlb: [u32; 8],
    pub(crate) dtlb: [u32; 8],
    /// Levels of the interrupt input lines (for edge detection and level interrupts).
    lines: u32,
    halted: bool,
    /// Whether the instruction being executed wrote ICOUNT (which then stands, rather
    /// than the count).
    icount_written: bool,
}

impl Default for Cpu {
    fn default() -> Self {
        Cpu::new()
    }
}

/// Exception for a failed fetch, load or store.
fn bus_exception(fault: BusFault, kind: Access) -> ExceptionCause {
    use ExceptionCause::*;
    match (fault, kind) {
        (BusFault::Unmapped, Access::Fetch) => InstrPifAddrError,
        (BusFault::Unmapped, _) => LoadStorePifAddrError,
        (BusFault::Prohibited, Access::Fetch) => InstFetchProhibited,
        (BusFault::Prohibited, Access::Load) => LoadProhibited,
        (BusFault::Prohibited, Access::Store) => StoreProhibited,
        (BusFault::Error, Access::Fetch) => InstructionFetchError,
        (BusFault::Error, _) => LoadStoreError,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Fetch,
    Load,
    Store,
}

pub(crate) fn bus_fault(fault: BusFault, kind: Access, addr: u32) -> Fault {
    Fault::at(bus_exception(fault, kind), addr)
}

impl Cpu {
    /// A CPU in its reset state: PC at the reset vector 0x5000_0000 (as QEMU's lx106
    /// starts; the ESP8266's ROM starts at [`RESET_VECTOR1`](crate::config::RESET_VECTOR1)),
    /// PS = 0x1F (level 15, EXCM), VECBASE = 0x4000_0000, everything else zero.
    pub fn new() -> Cpu {
        Cpu {
            ar: [0; NUM_AREGS],
            pc: RESET_VECTOR0,
            sar: 0,
            litbase: 0,
            ps: PS_RESET,
            epc: [0; 3],
            eps: [0; 2],
            excsave: [0; 3],
            depc: 0,
            exccause: 0,
            excvaddr: 0,
            intset: 0,
            intenable: 0,
            vecbase: VECBASE_RESET,
            ccount: 0,
            ccompare0: 0,
            debugcause: 0,
            prid: 0,
            icount: 0,
            icountlevel: 0,
            ibreakenable: 0,
            ibreaka0: 0,
            dbreaka0: 0,
            dbreakc0: 0,
            ddr: 0,
            itlb: [2; 8],
            dtlb: [2; 8],
            lines: 0,
            halted: false,
            icount_written: false,
        }
    }

    /// Address register `n` (0..=15; taken modulo 16).
    #[inline]
    pub fn ar(&self, n: usize) -> u32 {
        self.ar[n & 15]
    }

    /// Sets address register `n` (0..=15; taken modulo 16).
    #[inline]
    pub fn set_ar(&mut self, n: usize, value: u32) {
        self.ar[n & 15] = value;
    }

    /// The program counter: the next instruction's address.
    #[inline]
    pub fn pc(&self) -> u32 {
        self.pc
    }

    /// Sets the program counter (and wakes a CPU halted in WAITI).
    pub fn set_pc(&mut self, pc: u32) {
        self.pc = pc;
        self.halted = false;
    }

    /// Whether the CPU is halted in WAITI.
    pub fn is_waiting(&self) -> bool {
        self.halted
    }

    /// Sets PRID, the processor ID RSR.PRID reads (zero by default).
    pub fn set_prid(&mut self, prid: u32) {
        self.prid = prid;
    }

    /// Reads a special register as RSR does (INTCLEAR, write-only, reads 0).
    pub fn special_register(&self, sr: SpecialReg) -> u32 {
        use SpecialReg::*;
        match sr {
            Sar => self.sar,
            Litbase => self.litbase,
            Ibreakenable => self.ibreakenable,
            Ddr => self.ddr,
            Ibreaka0 => self.ibreaka0,
            Dbreaka0 => self.dbreaka0,
            Dbreakc0 => self.dbreakc0,
            Configid0 => CONFIGID0,
            Epc1 => self.epc[0],
            Epc2 => self.epc[1],
            Epc3 => self.epc[2],
            Depc => self.depc,
            Eps2 => self.eps[0],
            Eps3 => self.eps[1],
            Configid1 => CONFIGID1,
            Excsave1 => self.excsave[0],
            Excsave2 => self.excsave[1],
            Excsave3 => self.excsave[2],
            Interrupt => self.intset,
            Intclear => 0,
            Intenable => self.intenable,
            Ps => self.ps,
            Vecbase => self.vecbase,
            Exccause => self.exccause,
            Debugcause => self.debugcause,
            Ccount => self.ccount,
            Prid => self.prid,
            Icount => self.icount,
            Icountlevel => self.icountlevel,
            Excvaddr => self.excvaddr,
            Ccompare0 => self.ccompare0,
        }
    }

    /// Writes a special register as WSR does: with its write mask and side effects
    /// (INTERRUPT sets software interrupts, INTCLEAR clears edge and software ones,
    /// CCOMPARE0 clears the timer interrupt). Read-only registers (PRID, DEBUGCAUSE,
    /// CONFIGID0/1) are left unchanged; use [`set_prid`](Cpu::set_prid) for PRID.
    pub fn set_special_register(&mut self, sr: SpecialReg, value: u32) {
        use SpecialReg::*;
        match sr {
            Sar => self.sar = value & 0x3F,
            Litbase => self.litbase = value & 0xFFFF_F001,
            Ibreakenable => self.ibreakenable = value & ((1 << NUM_IBREAK) - 1),
            Ddr => self.ddr = value,
            Ibreaka0 => self.ibreaka0 = value,
            Dbreaka0 => self.dbreaka0 = value,
            Dbreakc0 => self.dbreakc0 = value,
            Configid0 | Configid1 | Debugcause | Prid => {}
            Epc1 => self.epc[0] = value,
            Epc2 => self.epc[1] = value,
            Epc3 => self.epc[2] = value,
            Depc => self.depc = value,
            Eps2 => self.eps[0] = value,
            Eps3 => self.eps[1] = value,
            Excsave1 => self.excsave[0] = value,
            Excsave2 => self.excsave[1] = value,
            Excsave3 => self.excsave[2] = value,
            Interrupt => self.intset |= value & INTTYPE_SOFTWARE,
            Intclear => self.intset &= !(value & (INTTYPE_SOFTWARE | INTTYPE_EDGE)),
            Intenable => self.intenable = value,
            Ps => self.ps = value & PS_WRITE_MASK,
            Vecbase => self.vecbase = value,
            Exccause => self.exccause = value,
            Ccount => self.ccount = value,
            Icount => {
                self.icount = value;
                self.icount_written = true;
            }
            Icountlevel => self.icountlevel = value & 0xF,
            Excvaddr => self.excvaddr = value,
            Ccompare0 => {
                self.ccompare0 = value;
                self.intset &= !INTTYPE_TIMER;
            }
        }
    }

    /// Drives interrupt input `n` high. Level-triggered interrupts (0..=5) stay pending
    /// while the line is high; edge-triggered ones (8..=13) and the NMI (14) latch the
    /// rising edge until INTCLEAR (or, for the NMI, until taken). For the timer (6) and
    /// software (7) interrupts, which have no line, this sets them pending.
    pub fn raise_interrupt(&mut self, n: u32) {
        if n >= NUM_INTERRUPTS {
            return;
        }
        let bit = 1 << n;
        if bit & (INTTYPE_EDGE | INTTYPE_NMI) != 0 {
            if self.lines & bit == 0 {
                self.intset |= bit;
            }
        } else {
            self.intset |= bit;
        }
        self.lines |= bit;
    }

    /// Drives interrupt input `n` low: a level-triggered interrupt stops being pending;
    /// an edge-triggered one stays latched. For the timer and software interrupts this
    /// clears them.
    pub fn clear_interrupt(&mut self, n: u32) {
        if n >= NUM_INTERRUPTS {
            return;
        }
        let bit = 1 << n;
        self.lines &= !bit;
        if bit & (INTTYPE_LEVEL | INTTYPE_TIMER | INTTYPE_SOFTWARE) != 0 {
            self.intset &= !bit;
        }
    }

    /// Cycles until CCOUNT next equals CCOMPARE0 (1..=2^32), i.e. until the timer
    /// interrupt is raised: what a machine can skip with
    /// [`advance_cycles`](Cpu::advance_cycles) while the CPU waits.
    pub fn cycles_until_timer(&self) -> u64 {
        match self.ccompare0.wrapping_sub(self.ccount) {
            0 => 1 << 32,
            d => d as u64,
        }
    }

    /// Advances CCOUNT by `cycles` without executing, raising the timer interrupt if
    /// CCOUNT passes CCOMPARE0 (for a machine skipping idle time in WAITI).
    pub fn advance_cycles(&mut self, cycles: u64) {
        if cycles >= self.cycles_until_timer() {
            self.intset |= INTTYPE_TIMER;
        }
        self.ccount = self.ccount.wrapping_add(cycles as u32);
    }

    #[inline]
    fn tick(&mut self) {
        self.ccount = self.ccount.wrapping_add(1);
        if self.ccount == self.ccompare0 {
            self.intset |= INTTYPE_TIMER;
        }
    }

    /// Executes one instruction, or takes a pending interrupt instead, or waits (WAITI).
    #[inline]
    pub fn step(&mut self, bus: &mut impl Bus) -> StepOutcome {
        if self.intset != 0 {
            if let Some(level) = self.pending_interrupt_level() {
                self.halted = false;
                self.take_interrupt(level);
                self.tick();
                return StepOutcome::Interrupt { level };
            }
        }
        if self.halted {
            self.tick();
            return StepOutcome::Waiting;
        }
        let outcome = self.execute_one(bus);
        self.tick();
        outcome
    }

    #[inline]
    fn execute_one(&mut self, bus: &mut impl Bus) -> StepOutcome {
        let mut next_icount = None;
        if self.ibreakenable != 0 || self.icountlevel != 0 {
            match self.debug_checks() {
                Ok(next) => next_icount = next,
                Err(outcome) => return outcome,
            }
        }
        let result = match bus.fetch(self.pc) {
            Err(fault) => Err(bus_fault(fault, Access::Fetch, self.pc)),
            Ok(word) => match decode(word) {
                Ok(insn) => {
                    self.icount_written = false;
                    self.execute(&insn, bus)
                }
                Err(_) => Err(Fault::exception(ExceptionCause::IllegalInstruction)),
            },
        };
        match result {
            Ok(()) => {
                // As QEMU: ICOUNT counts an instruction once it completes, unless the
                // instruction wrote ICOUNT itself.
                if let Some(next) = next_icount {
                    if !self.icount_written {
                        self.icount = next;
                    }
                }
                StepOutcome::Executed
            }
            Err(fault) => self.fault(fault),
        }
    }

    fn fault(&mut self, fault: Fault) -> StepOutcome {
        match fault {
            Fault::Exception { cause, vaddr } => {
                self.take_exception(cause, vaddr);
                StepOutcome::Exception(cause)
            }
            Fault::Debug(cause) => {
                if self.take_debug_exception(cause) {
                    StepOutcome::Debug { cause }
                } else {
                    StepOutcome::Executed
                }
            }
            // WAITI with an interrupt already pending takes it at once, in the same
            // step (as QEMU's waiti helper does), with EPC past the WAITI.
            Fault::Halt => match self.pending_interrupt_level() {
                Some(level) => {
                    self.take_interrupt(level);
                    StepOutcome::Interrupt { level }
                }
                None => {
                    self.halted = true;
                    StepOutcome::Executed
                }
            },
        }
    }

    /// ICOUNT and IBREAKA0, checked before the instruction at PC: a debug exception,
    /// or the value ICOUNT takes if the instruction completes.
    fn debug_checks(&mut self) -> Result<Option<u32>, StepOutcome> {
        let mut next_icount = None;
        if self.icountlevel > self.current_interrupt_level() {
            if self.icount == u32::MAX {
                if self.take_debug_exception(DEBUGCAUSE_IC) {
                    return Err(StepOutcome::Debug {
                        cause: DEBUGCAUSE_IC,
                    });
                }
                next_icount = Some(u32::MAX);
            } else {
                next_icount = Some(self.icount + 1);
            }
        }
        if self.ibreakenable & 1 != 0
            && self.ibreaka0 == self.pc
            && self.take_debug_exception(DEBUGCAUSE_IB)
        {
            return Err(StepOutcome::Debug {
                cause: DEBUGCAUSE_IB,
            });
        }
        Ok(next_icount)
    }
}
