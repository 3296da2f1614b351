//! The LX106 configuration, as QEMU's `target/xtensa/core-lx106/core-isa.h` states it.
//!
//! Options present: code density, MUL16, MUL32 (MULL only: no MULUH/MULSH), NSA/NSAU,
//! ABS, ADDX/SUBX, L32R with LITBASE (absolute literals), exceptions (XEA2), interrupts
//! with high-priority levels and an NMI, one timer (CCOMPARE0), relocatable vectors
//! (VECBASE), PRID, debug (one IBREAK, one DBREAK), external registers (RER/WER).
//!
//! Options absent (their instructions raise IllegalInstruction): windowed registers,
//! zero-overhead loops, MIN/MAX, SEXT, CLAMPS, MULUH/MULSH, QUOS/QUOU/REMS/REMU, MAC16,
//! booleans, FPU, S32C1I, L32AI/S32RI, THREADPTR, CONST16, coprocessors.

/// Number of address registers (no windowing: a0..a15).
pub const NUM_AREGS: usize = 16;

/// `XCHAL_VECBASE_RESET_VADDR`: VECBASE after reset.
pub const VECBASE_RESET: u32 = 0x4000_0000;
/// `XCHAL_RESET_VECTOR0_VADDR`: where QEMU's lx106 starts (the core's default vector).
pub const RESET_VECTOR0: u32 = 0x5000_0000;
/// `XCHAL_RESET_VECTOR1_VADDR`: the alternative reset vector (the ESP8266's mask ROM).
pub const RESET_VECTOR1: u32 = 0x4000_0080;

/// Offset from VECBASE of the kernel exception vector (PS.UM = 0).
pub const KERNEL_VECTOR_OFFSET: u32 = 0x30;
/// Offset from VECBASE of the user exception vector (PS.UM = 1).
pub const USER_VECTOR_OFFSET: u32 = 0x50;
/// Offset from VECBASE of the double exception vector (exception while PS.EXCM = 1).
pub const DOUBLE_EXCEPTION_VECTOR_OFFSET: u32 = 0x70;
/// Offset from VECBASE of the level-2 interrupt vector, which is the debug vector.
pub const LEVEL2_VECTOR_OFFSET: u32 = 0x10;
/// Offset from VECBASE of the level-3 interrupt vector, which is the NMI vector.
pub const LEVEL3_VECTOR_OFFSET: u32 = 0x20;

/// `XCHAL_NUM_INTERRUPTS`.
pub const NUM_INTERRUPTS: u32 = 15;
/// Highest interrupt level (`XCHAL_NUM_INTLEVELS` + the NMI level).
pub const NUM_LEVELS: u32 = 3;
/// `XCHAL_EXCM_LEVEL`: the level PS.EXCM masks.
pub const EXCM_LEVEL: u32 = 1;
/// `XCHAL_DEBUGLEVEL`: debug exceptions (BREAK, IBREAK, ICOUNT) use this level.
pub const DEBUG_LEVEL: u32 = 2;
/// `XCHAL_NMILEVEL`.
pub const NMI_LEVEL: u32 = 3;

/// Interrupts at each level 0..=3 (`XCHAL_INTLEVELn_MASK`).
pub const LEVEL_MASK: [u32; 4] = [0, 0x0000_3FFF, 0, 0x0000_4000];

/// `XCHAL_INTTYPE_MASK_EXTERN_LEVEL`: interrupts 0..5 follow their input line.
pub const INTTYPE_LEVEL: u32 = 0x0000_003F;
/// `XCHAL_INTTYPE_MASK_TIMER`: interrupt 6 is CCOMPARE0's.
pub const INTTYPE_TIMER: u32 = 0x0000_0040;
/// `XCHAL_INTTYPE_MASK_SOFTWARE`: interrupt 7 is set by software (WSR.INTSET).
pub const INTTYPE_SOFTWARE: u32 = 0x0000_0080;
/// `XCHAL_INTTYPE_MASK_EXTERN_EDGE`: interrupts 8..13 latch a rising edge.
pub const INTTYPE_EDGE: u32 = 0x0000_3F00;
/// `XCHAL_INTTYPE_MASK_NMI`: interrupt 14 is the non-maskable interrupt (edge).
pub const INTTYPE_NMI: u32 = 0x0000_4000;

/// `XCHAL_TIMER0_INTERRUPT`: the interrupt CCOMPARE0 raises.
pub const TIMER0_INTERRUPT: u32 = 6;
/// `XCHAL_NMI_INTERRUPT`.
pub const NMI_INTERRUPT: u32 = 14;

/// `XCHAL_HW_CONFIGID0`: what RSR.CONFIGID0 reads.
pub const CONFIGID0: u32 = 0xC28C_DAFA;
/// `XCHAL_HW_CONFIGID1`: what RSR.CONFIGID1 reads.
pub const CONFIGID1: u32 = 0x1082_B6F6;

/// `XCHAL_NUM_IBREAK`.
pub const NUM_IBREAK: u32 = 1;

/// The `B4CONST` table: the constants of BEQI, BNEI, BLTI, BGEI (indexed by field r).
pub const B4CONST: [i32; 16] = [-1, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 32, 64, 128, 256];
/// The `B4CONSTU` table: the constants of BLTUI, BGEUI (indexed by field r).
pub const B4CONSTU: [u32; 16] = [
    32768, 65536, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 32, 64, 128, 256,
];
