//! Instruction decoding: bytes to [`Instruction`], and its disassembly ([`fmt::Display`]).
//!
//! Only the instructions of the LX106 configuration decode; anything else (windowed
//! calls, loops, MAC16, FPU, booleans, MIN/MAX, ...) is a [`DecodeError`], which the
//! executor turns into an IllegalInstruction exception, as QEMU's lx106 core does.

use std::fmt;

use thiserror::Error;

use crate::config::{B4CONST, B4CONSTU};
use crate::registers::SpecialReg;

/// Why a word is not an LX106 instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The encoding is reserved or belongs to an option the LX106 does not have.
    #[error("unknown instruction {word:#08x} ({len} bytes)")]
    Unknown {
        /// The instruction's bytes, little-endian (2 or 3 of them).
        word: u32,
        /// Its length as the opcode's op0 field says.
        len: u8,
    },
}

/// Every operation the LX106 configuration has.
///
/// Which [`Instruction`] fields an operation uses is documented per group; `a` is the
/// register written (or stored, for stores), `b` and `c` the registers read.
#[allow(missing_docs)] // the variants are the ISA's mnemonics
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    // a = ar, b = as, c = at
    Add,
    AddN,
    Addx2,
    Addx4,
    Addx8,
    Sub,
    Subx2,
    Subx4,
    Subx8,
    And,
    Or,
    Xor,
    Mull,
    Mul16u,
    Mul16s,
    Src,
    Moveqz,
    Movnez,
    Movltz,
    Movgez,
    // a = ar, b = at
    Neg,
    Abs,
    Srl,
    Sra,
    // a = ar, b = as
    Sll,
    // a = ar, b = as (slli) or at (srli, srai), imm = shift amount
    Slli,
    Srli,
    Srai,
    // a = ar, b = at, imm = shift, k = mask width in bits
    Extui,
    // b = as
    Ssr,
    Ssl,
    Ssa8l,
    Ssa8b,
    // imm = shift amount
    Ssai,
    // a = at, b = as
    Nsa,
    Nsau,
    MovN,
    // a = at (or ar), b = as, imm = signed immediate
    Addi,
    AddiN,
    Addmi,
    // a = at, imm
    Movi,
    MoviN,
    // a = at (loaded or stored), b = as (base), imm = byte offset
    L8ui,
    L16ui,
    L16si,
    L32i,
    L32iN,
    S8i,
    S16i,
    S32i,
    S32iN,
    // a = at, imm = negative byte offset (relative to the literal base)
    L32r,
    // b = as, imm = target - (pc + 4)
    Beqz,
    Bnez,
    Bltz,
    Bgez,
    BeqzN,
    BnezN,
    // b = as, k = constant (B4CONST / B4CONSTU), imm = target - (pc + 4)
    Beqi,
    Bnei,
    Blti,
    Bgei,
    Bltui,
    Bgeui,
    // b = as, k = bit number, imm = target - (pc + 4)
    Bbci,
    Bbsi,
    // b = as, c = at, imm = target - (pc + 4)
    Beq,
    Bne,
    Blt,
    Bge,
    Bltu,
    Bgeu,
    Bany,
    Bnone,
    Ball,
    Bnall,
    Bbc,
    Bbs,
    // imm = target - (pc + 4)
    J,
    // imm = target - ((pc & !3) + 4)
    Call0,
    // b = as
    Callx0,
    Jx,
    Ret,
    RetN,
    // a = at, k = special register number
    Rsr,
    Wsr,
    Xsr,
    // a = at, k = level
    Rsil,
    // k = level
    Waiti,
    Rfi,
    Rfe,
    Rfde,
    Syscall,
    Simcall,
    // k = s, imm = t
    Break,
    // k = s
    BreakN,
    Ill,
    IllN,
    Nop,
    NopN,
    Isync,
    Rsync,
    Esync,
    Dsync,
    Excw,
    Memw,
    Extw,
    // a = at, b = as
    Rer,
    Wer,
    // region-protection TLB: a = at, b = as
    Ritlb0,
    Ritlb1,
    Rdtlb0,
    Rdtlb1,
    Witlb,
    Wdtlb,
    Pitlb,
    Pdtlb,
    // b = as
    Iitlb,
    Idtlb,
}

impl Opcode {
    /// The assembler mnemonic.
    pub fn mnemonic(self) -> &'static str {
        use Opcode::*;
        match self {
            Add => "add",
            AddN => "add.n",
            Addx2 => "addx2",
            Addx4 => "addx4",
            Addx8 => "addx8",
            Sub => "sub",
            Subx2 => "subx2",
            Subx4 => "subx4",
            Subx8 => "subx8",
            And => "and",
            Or => "or",
            Xor => "xor",
            Mull => "mull",
            Mul16u => "mul16u",
            Mul16s => "mul16s",
            Src => "src",
            Moveqz => "moveqz",
            Movnez => "movnez",
            Movltz => "movltz",
            Movgez => "movgez",
            Neg => "neg",
            Abs => "abs",
            Srl => "srl",
            Sra => "sra",
            Sll => "sll",
            Slli => "slli",
            Srli => "srli",
            Srai => "srai",
            Extui => "extui",
            Ssr => "ssr",
            Ssl => "ssl",
            Ssa8l => "ssa8l",
            Ssa8b => "ssa8b",
            Ssai => "ssai",
            Nsa => "nsa",
            Nsau => "nsau",
            MovN => "mov.n",
            Addi => "addi",
            AddiN => "addi.n",
            Addmi => "addmi",
            Movi => "movi",
            MoviN => "movi.n",
            L8ui => "l8ui",
            L16ui => "l16ui",
            L16si => "l16si",
            L32i => "l32i",
            L32iN => "l32i.n",
            S8i => "s8i",
            S16i => "s16i",
            S32i => "s32i",
            S32iN => "s32i.n",
            L32r => "l32r",
            Beqz => "beqz",
            Bnez => "bnez",
            Bltz => "bltz",
            Bgez => "bgez",
            BeqzN => "beqz.n",
            BnezN => "bnez.n",
            Beqi => "beqi",
            Bnei => "bnei",
            Blti => "blti",
            Bgei => "bgei",
            Bltui => "bltui",
            Bgeui => "bgeui",
            Bbci => "bbci",
            Bbsi => "bbsi",
            Beq => "beq",
            Bne => "bne",
            Blt => "blt",
            Bge => "bge",
            Bltu => "bltu",
            Bgeu => "bgeu",
            Bany => "bany",
            Bnone => "bnone",
            Ball => "ball",
            Bnall => "bnall",
            Bbc => "bbc",
            Bbs => "bbs",
            J => "j",
            Call0 => "call0",
            Callx0 => "callx0",
            Jx => "jx",
            Ret => "ret",
            RetN => "ret.n",
            Rsr => "rsr",
            Wsr => "wsr",
            Xsr => "xsr",
            Rsil => "rsil",
            Waiti => "waiti",
            Rfi => "rfi",
            Rfe => "rfe",
            Rfde => "rfde",
            Syscall => "syscall",
            Simcall => "simcall",
            Break => "break",
            BreakN => "break.n",
            Ill => "ill",
            IllN => "ill.n",
            Nop => "nop",
            NopN => "nop.n",
            Isync => "isync",
            Rsync => "rsync",
            Esync => "esync",
            Dsync => "dsync",
            Excw => "excw",
            Memw => "memw",
            Extw => "extw",
            Rer => "rer",
            Wer => "wer",
            Ritlb0 => "ritlb0",
            Ritlb1 => "ritlb1",
            Rdtlb0 => "rdtlb0",
            Rdtlb1 => "rdtlb1",
            Witlb => "witlb",
            Wdtlb => "wdtlb",
            Pitlb => "pitlb",
            Pdtlb => "pdtlb",
            Iitlb => "iitlb",
            Idtlb => "idtlb",
        }
    }
}

/// One decoded instruction: its operation and operands (see [`Opcode`] for which field
/// means what) and its length in bytes (2 for the density option's narrow forms, else 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Instruction {
    /// The operation.
    pub op: Opcode,
    /// The register written (or stored).
    pub a: u8,
    /// The first register read.
    pub b: u8,
    /// The second register read.
    pub c: u8,
    /// Signed immediate: offset, shift amount, constant.
    pub imm: i32,
    /// Unsigned immediate: special register number, level, branch constant, mask width.
    pub k: u32,
    /// Length in bytes: 2 or 3.
    pub len: u8,
}

impl Instruction {
    fn new(op: Opcode, len: u8) -> Self {
        Instruction {
            op,
            a: 0,
            b: 0,
            c: 0,
            imm: 0,
            k: 0,
            len,
        }
    }

    fn abc(op: Opcode, a: u32, b: u32, c: u32) -> Self {
        Instruction {
            a: a as u8,
            b: b as u8,
            c: c as u8,
            ..Self::new(op, 3)
        }
    }

    fn ab_imm(op: Opcode, a: u32, b: u32, imm: i32, len: u8) -> Self {
        Instruction {
            a: a as u8,
            b: b as u8,
            imm,
            ..Self::new(op, len)
        }
    }

    fn b_imm(op: Opcode, b: u32, imm: i32, len: u8) -> Self {
        Instruction {
            b: b as u8,
            imm,
            ..Self::new(op, len)
        }
    }

    /// Where a branch, jump or call goes if taken, for an instruction at `pc`; `None`
    /// for instructions without a PC-relative target.
    pub fn target(&self, pc: u32) -> Option<u32> {
        use Opcode::*;
        match self.op {
            Beqz | Bnez | Bltz | Bgez | BeqzN | BnezN | Beqi | Bnei | Blti | Bgei | Bltui
            | Bgeui | Bbci | Bbsi | Beq | Bne | Blt | Bge | Bltu | Bgeu | Bany | Bnone | Ball
            | Bnall | Bbc | Bbs | J => Some(pc.wrapping_add(4).wrapping_add(self.imm as u32)),
            Call0 => Some((pc & !3).wrapping_add(4).wrapping_add(self.imm as u32)),
            _ => None,
        }
    }

    /// The address L32R loads from when LITBASE is disabled, for an instruction at `pc`.
    pub fn l32r_pc_relative_address(&self, pc: u32) -> u32 {
        (pc.wrapping_add(3) & !3).wrapping_add(self.imm as u32)
    }

    /// A [`fmt::Display`] of this instruction with absolute branch targets, as if it
    /// were at `pc` (the plain `Display` prints targets relative to the instruction).
    pub fn at(&self, pc: u32) -> impl fmt::Display + '_ {
        Disasm {
            insn: self,
            pc: Some(pc),
        }
    }
}

/// Length in bytes of the instruction whose first byte is `byte0` (from op0 alone).
#[inline]
pub fn length(byte0: u8) -> u8 {
    if byte0 & 0x08 != 0 {
        2
    } else {
        3
    }
}

#[inline]
fn sext(value: u32, bits: u32) -> i32 {
    let shift = 32 - bits;
    ((value << shift) as i32) >> shift
}

/// Decodes the instruction in the low bytes of `word` (little-endian: the first byte is
/// bits 7..0). Bytes past the instruction's length are ignored.
///
/// ```
/// use lx106::{decode, Opcode};
///
/// // add a2, a3, a4 assembles to 0x802340: bytes 40 23 80
/// let insn = decode(0x80_23_40).unwrap();
/// assert_eq!(insn.op, Opcode::Add);
/// assert_eq!(insn.len, 3);
/// assert_eq!(insn.to_string(), "add a2, a3, a4");
/// ```
#[inline]
pub fn decode(word: u32) -> Result<Instruction, DecodeError> {
    let op0 = word & 0xF;
    let t = (word >> 4) & 0xF;
    let s = (word >> 8) & 0xF;
    let r = (word >> 12) & 0xF;
    if op0 >= 8 {
        return decode_narrow(word & 0xFFFF, op0, t, s, r);
    }
    let word = word & 0xFF_FFFF;
    let op1 = (word >> 16) & 0xF;
    let op2 = (word >> 20) & 0xF;
    let imm8 = (word >> 16) & 0xFF;
    let unknown = Err(DecodeError::Unknown { word, len: 3 });
    use Opcode::*;
    let insn = match op0 {
        0 => match op1 {
            0 => match op2 {
                0 => return decode_st0(word, t, s, r),
                1 => Instruction::abc(And, r, s, t),
                2 => Instruction::abc(Or, r, s, t),
                3 => Instruction::abc(Xor, r, s, t),
                4 => match r {
                    0 if t == 0 => Instruction::b_imm(Ssr, s, 0, 3),
                    1 if t == 0 => Instruction::b_imm(Ssl, s, 0, 3),
                    2 if t == 0 => Instruction::b_imm(Ssa8l, s, 0, 3),
                    3 if t == 0 => Instruction::b_imm(Ssa8b, s, 0, 3),
                    4 if t & 0xE == 0 => {
                        Instruction::b_imm(Ssai, 0, (s | ((t & 1) << 4)) as i32, 3)
                    }
                    6 => Instruction::abc(Rer, t, s, 0),
                    7 => Instruction::abc(Wer, t, s, 0),
                    14 => Instruction::abc(Nsa, t, s, 0),
                    15 => Instruction::abc(Nsau, t, s, 0),
                    _ => return unknown,
                },
                5 => match r {
                    3 => Instruction::abc(Ritlb0, t, s, 0),
                    4 if t == 0 => Instruction::abc(Iitlb, 0, s, 0),
                    5 => Instruction::abc(Pitlb, t, s, 0),
                    6 => Instruction::abc(Witlb, t, s, 0),
                    7 => Instruction::abc(Ritlb1, t, s, 0),
                    11 => Instruction::abc(Rdtlb0, t, s, 0),
                    12 if t == 0 => Instruction::abc(Idtlb, 0, s, 0),
                    13 => Instruction::abc(Pdtlb, t, s, 0),
                    14 => Instruction::abc(Wdtlb, t, s, 0),
                    15 => Instruction::abc(Rdtlb1, t, s, 0),
                    _ => return unknown,
                },
                6 => match s {
                    0 => Instruction::abc(Neg, r, t, 0),
                    1 => Instruction::abc(Abs, r, t, 0),
                    _ => return unknown,
                },
                8 => Instruction::abc(Add, r, s, t),
                9 => Instruction::abc(Addx2, r, s, t),
                10 => Instruction::abc(Addx4, r, s, t),
                11 => Instruction::abc(Addx8, r, s, t),
                12 => Instruction::abc(Sub, r, s, t),
                13 => Instruction::abc(Subx2, r, s, t),
                14 => Instruction::abc(Subx4, r, s, t),
                15 => Instruction::abc(Subx8, r, s, t),
                _ => return unknown,
            },
            1 => match op2 {
                0 | 1 => {
                    // The field holds 32 - shift; QEMU shifts by (32 - field) & 31.
                    let field = t | ((op2 & 1) << 4);
                    Instruction::ab_imm(Slli, r, s, ((32 - field) & 31) as i32, 3)
                }
                2 | 3 => Instruction::ab_imm(Srai, r, t, (s | ((op2 & 1) << 4)) as i32, 3),
                4 => Instruction::ab_imm(Srli, r, t, s as i32, 3),
                6 => Instruction {
                    k: (r << 4) | s,
                    ..Instruction::abc(Xsr, t, 0, 0)
                },
                8 => Instruction::abc(Src, r, s, t),
                9 if s == 0 => Instruction::abc(Srl, r, t, 0),
                10 if t == 0 => Instruction::abc(Sll, r, s, 0),
                11 if s == 0 => Instruction::abc(Sra, r, t, 0),
                12 => Instruction::abc(Mul16u, r, s, t),
                13 => Instruction::abc(Mul16s, r, s, t),
                _ => return unknown,
            },
            2 => match op2 {
                8 => Instruction::abc(Mull, r, s, t),
                _ => return unknown,
            },
            3 => match op2 {
                0 => Instruction {
                    k: (r << 4) | s,
                    ..Instruction::abc(Rsr, t, 0, 0)
                },
                1 => Instruction {
                    k: (r << 4) | s,
                    ..Instruction::abc(Wsr, t, 0, 0)
                },
                8 => Instruction::abc(Moveqz, r, s, t),
                9 => Instruction::abc(Movnez, r, s, t),
                10 => Instruction::abc(Movltz, r, s, t),
                11 => Instruction::abc(Movgez, r, s, t),
                _ => return unknown,
            },
            4 | 5 => Instruction {
                k: op2 + 1,
                ..Instruction::ab_imm(Extui, r, t, (s | ((op1 & 1) << 4)) as i32, 3)
            },
            _ => return unknown,
        },
        1 => Instruction::ab_imm(L32r, t, 0, ((word >> 8) << 2 | 0xFFFC_0000) as i32, 3),
        2 => match r {
            0 => Instruction::ab_imm(L8ui, t, s, imm8 as i32, 3),
            1 => Instruction::ab_imm(L16ui, t, s, (imm8 << 1) as i32, 3),
            2 => Instruction::ab_imm(L32i, t, s, (imm8 << 2) as i32, 3),
            4 => Instruction::ab_imm(S8i, t, s, imm8 as i32, 3),
            5 => Instruction::ab_imm(S16i, t, s, (imm8 << 1) as i32, 3),
            6 => Instruction::ab_imm(S32i, t, s, (imm8 << 2) as i32, 3),
            9 => Instruction::ab_imm(L16si, t, s, (imm8 << 1) as i32, 3),
            10 => Instruction::ab_imm(Movi, t, 0, sext((s << 8) | imm8, 12), 3),
            12 => Instruction::ab_imm(Addi, t, s, sext(imm8, 8), 3),
            13 => Instruction::ab_imm(Addmi, t, s, sext(imm8, 8) << 8, 3),
            _ => return unknown,
        },
        5 => match t & 3 {
            0 => Instruction::b_imm(Call0, 0, sext(word >> 6, 18) << 2, 3),
            _ => return unknown,
        },
        6 => {
            let n = t & 3;
            let m = t >> 2;
            match n {
                0 => Instruction::b_imm(J, 0, sext(word >> 6, 18), 3),
                1 => {
                    let op = [Beqz, Bnez, Bltz, Bgez][m as usize];
                    Instruction::b_imm(op, s, sext(word >> 12, 12), 3)
                }
                2 => {
                    let op = [Beqi, Bnei, Blti, Bgei][m as usize];
                    Instruction {
                        k: B4CONST[r as usize] as u32,
                        ..Instruction::b_imm(op, s, sext(imm8, 8), 3)
                    }
                }
                _ => match m {
                    2 | 3 => Instruction {
                        k: B4CONSTU[r as usize],
                        ..Instruction::b_imm(
                            if m == 2 { Bltui } else { Bgeui },
                            s,
                            sext(imm8, 8),
                            3,
                        )
                    },
                    _ => return unknown,
                },
            }
        }
        7 => {
            let imm = sext(imm8, 8);
            let op = match r {
                0 => Bnone,
                1 => Beq,
                2 => Blt,
                3 => Bltu,
                4 => Ball,
                5 => Bbc,
                6 | 7 => Bbci,
                8 => Bany,
                9 => Bne,
                10 => Bge,
                11 => Bgeu,
                12 => Bnall,
                13 => Bbs,
                _ => Bbsi,
            };
            if matches!(op, Bbci | Bbsi) {
                Instruction {
                    k: t | ((r & 1) << 4),
                    ..Instruction::b_imm(op, s, imm, 3)
                }
            } else {
                Instruction {
                    c: t as u8,
                    ..Instruction::b_imm(op, s, imm, 3)
                }
            }
        }
        _ => return unknown,
    };
    Ok(insn)
}

/// RST0/ST0: calls, returns, jumps, syncs, exceptions' returns, RSIL, WAITI, BREAK.
fn decode_st0(word: u32, t: u32, s: u32, r: u32) -> Result<Instruction, DecodeError> {
    use Opcode::*;
    let unknown = Err(DecodeError::Unknown { word, len: 3 });
    let insn = match r {
        0 => match t {
            0 if s == 0 => Instruction::new(Ill, 3),
            // binutils (and so QEMU's lx106 decoder) ignore RET's s field.
            8 => Instruction::new(Ret, 3),
            10 => Instruction::b_imm(Jx, s, 0, 3),
            12 => Instruction::b_imm(Callx0, s, 0, 3),
            _ => return unknown,
        },
        2 if s == 0 => Instruction::new(
            match t {
                0 => Isync,
                1 => Rsync,
                2 => Esync,
                3 => Dsync,
                8 => Excw,
                12 => Memw,
                13 => Extw,
                15 => Nop,
                _ => return unknown,
            },
            3,
        ),
        3 => match (t, s) {
            (0, 0) => Instruction::new(Rfe, 3),
            (0, 2) => Instruction::new(Rfde, 3),
            (1, level) => Instruction {
                k: level,
                ..Instruction::new(Rfi, 3)
            },
            _ => return unknown,
        },
        4 => Instruction {
            k: s,
            imm: t as i32,
            ..Instruction::new(Break, 3)
        },
        5 if t == 0 && s == 0 => Instruction::new(Syscall, 3),
        5 if t == 0 && s == 1 => Instruction::new(Simcall, 3),
        6 => Instruction {
            a: t as u8,
            k: s,
            ..Instruction::new(Rsil, 3)
        },
        7 if t == 0 => Instruction {
            k: s,
            ..Instruction::new(Waiti, 3)
        },
        _ => return unknown,
    };
    Ok(insn)
}

/// The density option's 16-bit instructions (op0 = 8..=13).
fn decode_narrow(word: u32, op0: u32, t: u32, s: u32, r: u32) -> Result<Instruction, DecodeError> {
    use Opcode::*;
    let unknown = Err(DecodeError::Unknown { word, len: 2 });
    let insn = match op0 {
        8 => Instruction::ab_imm(L32iN, t, s, (r << 2) as i32, 2),
        9 => Instruction::ab_imm(S32iN, t, s, (r << 2) as i32, 2),
        10 => Instruction {
            c: t as u8,
            ..Instruction::ab_imm(AddN, r, s, 0, 2)
        },
        11 => Instruction::ab_imm(AddiN, r, s, if t == 0 { -1 } else { t as i32 }, 2),
        12 => {
            if t & 8 == 0 {
                let imm7 = r | ((t & 7) << 4);
                let value = if imm7 >= 96 {
                    imm7 as i32 - 128
                } else {
                    imm7 as i32
                };
                Instruction::ab_imm(MoviN, s, 0, value, 2)
            } else {
                let imm6 = r | ((t & 3) << 4);
                let op = if t & 4 == 0 { BeqzN } else { BnezN };
                Instruction::b_imm(op, s, imm6 as i32, 2)
            }
        }
        13 => match r {
            0 => Instruction::ab_imm(MovN, t, s, 0, 2),
            15 => match t {
                // Like RET, RET.N decodes whatever its s field holds.
                0 => Instruction::new(RetN, 2),
                2 => Instruction {
                    k: s,
                    ..Instruction::new(BreakN, 2)
                },
                3 if s == 0 => Instruction::new(NopN, 2),
                6 if s == 0 => Instruction::new(IllN, 2),
                _ => return unknown,
            },
            _ => return unknown,
        },
        _ => return unknown,
    };
    Ok(insn)
}

struct Disasm<'a> {
    insn: &'a Instruction,
    pc: Option<u32>,
}

impl fmt::Display for Instruction {
    /// Disassembles in the assembler's syntax; branch, jump and call targets print as
    /// offsets (`. + 8`) since the instruction does not know its address (see
    /// [`Instruction::at`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Disasm {
            insn: self,
            pc: None,
        }
        .fmt(f)
    }
}

impl fmt::Display for Disasm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Opcode::*;
        let i = self.insn;
        let m = i.op.mnemonic();
        let target = |f: &mut fmt::Formatter<'_>| -> fmt::Result {
            match (self.pc, i.target(0)) {
                (Some(pc), _) => write!(f, "{:#x}", i.target(pc).unwrap_or(pc)),
                (None, Some(rel)) => {
                    let rel = rel as i32;
                    if rel < 0 {
                        write!(f, ". - {}", -(rel as i64))
                    } else {
                        write!(f, ". + {rel}")
                    }
                }
                (None, None) => Ok(()),
            }
        };
        match i.op {
            Add | AddN | Addx2 | Addx4 | Addx8 | Sub | Subx2 | Subx4 | Subx8 | And | Or | Xor
            | Mull | Mul16u | Mul16s | Src | Moveqz | Movnez | Movltz | Movgez => {
                write!(f, "{m} a{}, a{}, a{}", i.a, i.b, i.c)
            }
            Neg | Abs | Srl | Sra | Sll | Nsa | Nsau | MovN | Rer | Ritlb0 | Ritlb1 | Rdtlb0
            | Rdtlb1 | Pitlb | Pdtlb => write!(f, "{m} a{}, a{}", i.a, i.b),
            Wer | Witlb | Wdtlb => write!(f, "{m} a{}, a{}", i.a, i.b),
            Slli | Srli | Srai => {
                let shift = if i.op == Slli && i.imm == 0 {
                    32
                } else {
                    i.imm
                };
                write!(f, "{m} a{}, a{}, {shift}", i.a, i.b)
            }
            Extui => write!(f, "{m} a{}, a{}, {}, {}", i.a, i.b, i.imm, i.k),
            Ssr | Ssl | Ssa8l | Ssa8b | Callx0 | Jx | Iitlb | Idtlb => write!(f, "{m} a{}", i.b),
            Ssai => write!(f, "{m} {}", i.imm),
            Addi | AddiN | Addmi | L8ui | L16ui | L16si | L32i | L32iN | S8i | S16i | S32i
            | S32iN => write!(f, "{m} a{}, a{}, {}", i.a, i.b, i.imm),
            Movi | MoviN => write!(f, "{m} a{}, {}", i.a, i.imm),
            L32r => match self.pc {
                Some(pc) => write!(f, "{m} a{}, {:#x}", i.a, i.l32r_pc_relative_address(pc)),
                None => write!(f, "{m} a{}, . {}", i.a, i.imm),
            },
            Beqz | Bnez | Bltz | Bgez | BeqzN | BnezN => {
                write!(f, "{m} a{}, ", i.b)?;
                target(f)
            }
            Beqi | Bnei | Blti | Bgei => {
                write!(f, "{m} a{}, {}, ", i.b, i.k as i32)?;
                target(f)
            }
            Bltui | Bgeui | Bbci | Bbsi => {
                write!(f, "{m} a{}, {}, ", i.b, i.k)?;
                target(f)
            }
            Beq | Bne | Blt | Bge | Bltu | Bgeu | Bany | Bnone | Ball | Bnall | Bbc | Bbs => {
                write!(f, "{m} a{}, a{}, ", i.b, i.c)?;
                target(f)
            }
            J | Call0 => {
                write!(f, "{m} ")?;
                target(f)
            }
            Rsr | Wsr | Xsr => match SpecialReg::from_number(i.k) {
                // Register 226 reads as INTERRUPT and is written as INTSET.
                Some(SpecialReg::Interrupt) if i.op != Rsr => write!(f, "{m} a{}, intset", i.a),
                Some(sr) => write!(f, "{m} a{}, {}", i.a, sr.name()),
                None => write!(f, "{m} a{}, {}", i.a, i.k),
            },
            Rsil => write!(f, "{m} a{}, {}", i.a, i.k),
            Waiti | Rfi | BreakN => write!(f, "{m} {}", i.k),
            Break => write!(f, "{m} {}, {}", i.k, i.imm),
            Ret | RetN | Rfe | Rfde | Syscall | Simcall | Ill | IllN | Nop | NopN | Isync
            | Rsync | Esync | Dsync | Excw | Memw | Extw => f.write_str(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dis(word: u32) -> String {
        match decode(word) {
            Ok(insn) => insn.to_string(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn narrow_instructions_are_two_bytes() {
        assert_eq!(length(0x0d), 2);
        assert_eq!(length(0x80), 3);
        // mov.n a3, a2 = 0x023d (t = 3 is written, s = 2 is read)
        let insn = decode(0x023d).unwrap();
        assert_eq!((insn.op, insn.a, insn.b, insn.len), (Opcode::MovN, 3, 2, 2));
    }

    #[test]
    fn movi_n_immediate_range_is_minus_32_to_95() {
        // movi.n a2, -32: imm7 = 0x60 -> t = 6, r = 0, s = 2
        assert_eq!(dis(0x026c), "movi.n a2, -32");
        // movi.n a2, 95: imm7 = 0x5f -> t = 5, r = 15
        assert_eq!(dis(0xf25c), "movi.n a2, 95");
    }

    #[test]
    fn addi_n_zero_field_means_minus_one() {
        // addi.n a3, a4, -1: op0 = b, t = 0, s = 4, r = 3
        assert_eq!(dis(0x340b), "addi.n a3, a4, -1");
    }

    #[test]
    fn l32r_offset_is_negative() {
        // l32r a2, imm16 = 0xffff -> offset -4
        let insn = decode(0xffff21).unwrap();
        assert_eq!(insn.imm, -4);
        assert_eq!(insn.l32r_pc_relative_address(0x4010_0001), 0x4010_0000);
    }

    #[test]
    fn branch_targets_are_relative_to_pc_plus_4() {
        // beqz a2, . + 4 + 16: op0=6, n=1, m=0, s=2, imm12 = 16
        let insn = decode(0x010216).unwrap();
        assert_eq!(insn.target(0x100), Some(0x114));
        // call0 with offset 1 (<<2): target = (pc & !3) + 4 + 4
        let call = decode(0x000045 | (1 << 6)).unwrap();
        assert_eq!(call.op, Opcode::Call0);
        assert_eq!(call.target(0x102), Some(0x108));
    }

    #[test]
    fn options_the_lx106_lacks_do_not_decode() {
        // entry a1, 32 (windowed), min, sext, loop, quou, mul.aa.ll
        for word in [
            0x004136u32,
            0x433230,
            0x233230,
            0x008276,
            0xc23230,
            0x740304,
        ] {
            assert!(
                decode(word).is_err(),
                "{word:#x} decoded as {:?}",
                decode(word)
            );
        }
    }

    #[test]
    fn special_registers_disassemble_by_name() {
        // rsr a2, ps: op2 = 0, op1 = 3, sr = 230 (0xe6), t = 2
        assert_eq!(dis(0x03e620), "rsr a2, ps");
        assert_eq!(dis(0x130320), "wsr a2, sar");
    }
}
