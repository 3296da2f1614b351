//! Special registers: which exist in the LX106, their numbers, names and write masks.

/// PS.INTLEVEL (bits 3..0).
pub const PS_INTLEVEL: u32 = 0xF;
/// PS.EXCM (bit 4): exception mode.
pub const PS_EXCM: u32 = 1 << 4;
/// PS.UM (bit 5): user vector mode.
pub const PS_UM: u32 = 1 << 5;
/// The PS bits WSR.PS keeps (QEMU's `translate_wsr_ps` without the MMU's RING):
/// INTLEVEL, EXCM, UM, OWB, CALLINC and WOE.
pub const PS_WRITE_MASK: u32 = 0x0007_0F3F;
/// PS after reset: INTLEVEL 15, EXCM set.
pub const PS_RESET: u32 = 0x1F;

/// DEBUGCAUSE.IC: ICOUNT reached zero.
pub const DEBUGCAUSE_IC: u32 = 1 << 0;
/// DEBUGCAUSE.IB: instruction breakpoint (IBREAKA).
pub const DEBUGCAUSE_IB: u32 = 1 << 1;
/// DEBUGCAUSE.BI: BREAK instruction.
pub const DEBUGCAUSE_BI: u32 = 1 << 3;
/// DEBUGCAUSE.BN: BREAK.N instruction.
pub const DEBUGCAUSE_BN: u32 = 1 << 4;

macro_rules! special_registers {
    ($($(#[$doc:meta])* $variant:ident = $number:literal, $name:literal;)*) => {
        /// A special register the LX106 has (RSR/WSR/XSR's operand).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum SpecialReg {
            $($(#[$doc])* $variant = $number,)*
        }

        impl SpecialReg {
            /// Every special register of the configuration.
            pub const ALL: &'static [SpecialReg] = &[$(SpecialReg::$variant,)*];

            /// The register with this number, if the LX106 has it.
            pub fn from_number(number: u32) -> Option<SpecialReg> {
                match number {
                    $($number => Some(SpecialReg::$variant),)*
                    _ => None,
                }
            }

            /// The assembler's name (`ps`, `epc1`, ...).
            pub fn name(self) -> &'static str {
                match self {
                    $(SpecialReg::$variant => $name,)*
                }
            }
        }
    };
}

special_registers! {
    /// Shift amount (6 bits).
    Sar = 3, "sar";
    /// L32R literal base; bit 0 enables it.
    Litbase = 5, "litbase";
    /// Instruction breakpoint enables (one breakpoint).
    Ibreakenable = 96, "ibreakenable";
    /// Debug data register.
    Ddr = 104, "ddr";
    /// Instruction breakpoint address 0.
    Ibreaka0 = 128, "ibreaka0";
    /// Data breakpoint address 0.
    Dbreaka0 = 144, "dbreaka0";
    /// Data breakpoint control 0.
    Dbreakc0 = 160, "dbreakc0";
    /// Configuration ID, high word (read-only).
    Configid0 = 176, "configid0";
    /// Exception PC (level 1).
    Epc1 = 177, "epc1";
    /// Level-2 (debug) interrupt PC.
    Epc2 = 178, "epc2";
    /// Level-3 (NMI) interrupt PC.
    Epc3 = 179, "epc3";
    /// Double exception PC.
    Depc = 192, "depc";
    /// Level-2 (debug) saved PS.
    Eps2 = 194, "eps2";
    /// Level-3 (NMI) saved PS.
    Eps3 = 195, "eps3";
    /// Configuration ID, low word (read-only).
    Configid1 = 208, "configid1";
    /// Exception save register (level 1).
    Excsave1 = 209, "excsave1";
    /// Exception save register (level 2).
    Excsave2 = 210, "excsave2";
    /// Exception save register (level 3).
    Excsave3 = 211, "excsave3";
    /// Pending interrupts (RSR: INTERRUPT; WSR: INTSET sets software interrupts).
    Interrupt = 226, "interrupt";
    /// Clears edge-triggered and software interrupts (write-only).
    Intclear = 227, "intclear";
    /// Enabled interrupts.
    Intenable = 228, "intenable";
    /// Processor state.
    Ps = 230, "ps";
    /// Vector base.
    Vecbase = 231, "vecbase";
    /// Exception cause.
    Exccause = 232, "exccause";
    /// Debug cause (read-only).
    Debugcause = 233, "debugcause";
    /// Cycle counter.
    Ccount = 234, "ccount";
    /// Processor ID (read-only).
    Prid = 235, "prid";
    /// Instruction counter (debug).
    Icount = 236, "icount";
    /// Level below which ICOUNT counts.
    Icountlevel = 237, "icountlevel";
    /// Exception virtual address.
    Excvaddr = 238, "excvaddr";
    /// Timer 0 compare value.
    Ccompare0 = 240, "ccompare0";
}

impl SpecialReg {
    /// Whether RSR can read it.
    pub fn readable(self) -> bool {
        !matches!(self, SpecialReg::Intclear)
    }

    /// Whether XSR can exchange it: readable and writable, and not INTERRUPT, which
    /// reads pending interrupts but writes INTSET (QEMU's lx106 has no xsr.interrupt).
    pub fn exchangeable(self) -> bool {
        self.readable() && self.writable() && self != SpecialReg::Interrupt
    }

    /// Whether WSR can write it.
    pub fn writable(self) -> bool {
        !matches!(
            self,
            SpecialReg::Configid0
                | SpecialReg::Configid1
                | SpecialReg::Debugcause
                | SpecialReg::Prid
        )
    }
}
