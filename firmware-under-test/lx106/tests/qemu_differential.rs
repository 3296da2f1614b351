//! The proof: the emulator single-stepped beside QEMU's lx106 core (through its
//! gdbstub), comparing every address register, PC and special register after every
//! step, on directed programs covering every instruction class and on seeded random
//! instruction sequences.
//!
//! Needs `qemu-system-xtensa` (Debian: qemu-system-misc) and the lx106 binutils (Debian:
//! binutils-xtensa-lx106), which `ci/setup` installs; fails without them unless
//! `LX106_SKIP_QEMU=1`. `LX106_DIFF_ITERATIONS` sets the number of random instructions
//! (default 3000), `LX106_DIFF_SEED` the random seed.

mod common;

use common::asm::{assemble, Program, TEXT, VECTORS};
use common::pair::{reg_name, Pair, NUM_REGS};
use lx106::{decode, StepOutcome};

const TOOLS: &[&str] = &[
    "qemu-system-xtensa",
    "xtensa-lx106-elf-as",
    "xtensa-lx106-elf-ld",
    "xtensa-lx106-elf-objcopy",
    "xtensa-lx106-elf-nm",
];

/// QEMU's dataram0, where programs keep their data.
const DATA: u32 = 0x3FFC_0000;
const DATA_WINDOW: usize = 0x600;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.next() >> 33) as u32 % n
    }

    /// A register value, biased to the edges.
    fn value(&mut self) -> u32 {
        match self.below(10) {
            0 => 0,
            1 => 1,
            2 => u32::MAX,
            3 => 0x8000_0000,
            4 => 0x7FFF_FFFF,
            5 => self.below(64),
            6 => self.below(0x1_0000),
            7 => 0u32.wrapping_sub(self.below(300)),
            _ => self.next() as u32,
        }
    }
}

/// Registers for the start of a program: deterministic garbage in a2..a15, a sane PS.
fn start_registers(rng: &mut Rng, pc: u32, vecbase: u32) -> [u32; NUM_REGS] {
    let mut regs = [0u32; NUM_REGS];
    for r in regs.iter_mut().take(16) {
        *r = rng.value();
    }
    regs[16] = pc;
    regs[17] = rng.below(33); // SAR
    regs[21] = 0; // PS: kernel, level 0, EXCM clear
    for n in [24, 28, 29, 30, 31, 34, 35, 36, 48] {
        regs[n] = rng.value(); // DDR, EPCs, DEPC, EXCSAVEs, EXCVADDR
    }
    regs[32] = rng.below(16); // EPS2
    regs[33] = rng.below(16); // EPS3
    regs[41] = vecbase;
    regs[42] = rng.below(64); // EXCCAUSE
    regs
}

fn run_program(pair: &mut Pair, name: &str, program: &Program, rng: &mut Rng) {
    pair.load(VECTORS, &program.image);
    pair.load(DATA, &vec![0u8; DATA_WINDOW]);
    let regs = start_registers(rng, program.start, VECTORS);
    pair.set_registers(&regs);
    pair.compare(&|| format!("in {name} after setting registers"));
    let mut steps = 0;
    while pair.cpu.pc() != program.end {
        let pc = pair.cpu.pc();
        let word = pair.mem.dump(pc, 3);
        let word = u32::from_le_bytes([word[0], word[1], word[2], 0]);
        let text = match decode(word) {
            Ok(insn) => insn.at(pc).to_string(),
            Err(e) => e.to_string(),
        };
        let outcome = pair.step(&|| format!("in {name}, step {steps}, at {pc:#x}: {text}"));
        if matches!(outcome, StepOutcome::Waiting) {
            panic!("{name}: the CPU waits at {pc:#x}; the programs must not");
        }
        steps += 1;
        assert!(steps < 2000, "{name}: no `_done` after 2000 steps");
    }
    pair.compare_memory(DATA, DATA_WINDOW, &|| format!("at the end of {name}"));
}

/// (name, source): each defines `_start` and `_done` in `.text`.
const PROGRAMS: &[(&str, &str)] = &[
    (
        "alu",
        r#"
_start:
    movi a2, -2048
    movi a3, 2047
    add a4, a2, a3
    sub a5, a2, a3
    addx2 a6, a3, a2
    addx4 a7, a3, a2
    addx8 a8, a3, a2
    subx2 a9, a3, a2
    subx4 a10, a3, a2
    subx8 a11, a3, a2
    and a12, a14, a15
    or a12, a14, a15
    xor a12, a14, a15
    neg a4, a2
    neg a4, a14
    abs a5, a2
    abs a5, a15
    l32r a6, min_int
    abs a7, a6
    neg a8, a6
    addi a9, a3, -128
    addi a9, a3, 127
    addmi a10, a3, -32768
    addmi a10, a3, 32512
    mull a11, a14, a15
    mull a11, a6, a6
    mul16u a12, a14, a15
    mul16s a12, a14, a15
    movi a2, -1
    mul16s a3, a2, a2
    mul16u a3, a2, a2
    mull a4, a2, a6
_done:
    .section .lits, "a"
    .align 4
min_int: .word 0x80000000
"#,
    ),
    (
        "shifts",
        r#"
_start:
    l32r a2, pattern
    l32r a3, pattern2
    ssai 0
    src a4, a2, a3
    srl a5, a2
    sra a6, a2
    sll a7, a2
    ssai 31
    src a4, a2, a3
    srl a5, a2
    sra a6, a2
    sll a7, a2
    movi a8, 37
    ssl a8
    sll a7, a2
    src a4, a2, a3
    ssr a8
    srl a5, a2
    sra a6, a2
    movi a8, 0
    ssl a8
    sll a7, a2
    srl a5, a2
    movi a8, 3
    ssa8l a8
    src a4, a2, a3
    ssa8b a8
    src a4, a2, a3
    sll a7, a2
    movi a8, 40
    wsr a8, sar
    sll a7, a2
    srl a5, a2
    sra a6, a2
    src a4, a2, a3
    movi a8, 63
    wsr a8, sar
    sll a7, a2
    sra a6, a2
    src a4, a2, a3
    movi a8, 32
    wsr a8, sar
    sll a7, a2
    srl a5, a2
    src a4, a2, a3
    slli a9, a2, 1
    slli a9, a2, 31
    srli a10, a2, 0
    srli a10, a2, 15
    srai a11, a2, 1
    srai a11, a2, 31
    srai a11, a2, 16
    extui a12, a2, 0, 1
    extui a12, a2, 31, 1
    extui a12, a2, 4, 16
    extui a12, a2, 17, 15
    extui a12, a2, 16, 16
_done:
    .section .lits, "a"
    .align 4
pattern: .word 0x89abcdef
pattern2: .word 0x01234567
"#,
    ),
    (
        "slli_encoded_32",
        // SLLI's field 0 means a shift of 32, which the ISA leaves undefined.
        r#"
_start:
    .byte 0x00, 0x32, 0x01
    nop
_done:
"#,
    ),
    (
        "narrow",
        r#"
_start:
    movi.n a2, -32
    movi.n a3, 95
    movi.n a4, 0
    mov.n a5, a3
    add.n a6, a2, a3
    addi.n a7, a3, -1
    addi.n a7, a3, 15
    addi.n a7, a3, 1
    l32r a8, data
    s32i.n a3, a8, 0
    s32i.n a2, a8, 60
    l32i.n a9, a8, 0
    l32i.n a10, a8, 60
    nop.n
    beqz.n a4, 1f
    movi.n a11, 1
1:  bnez.n a4, 2f
    bnez.n a3, 2f
    movi.n a11, 2
2:  beqz.n a3, 3f
    nop.n
3:  l32r a0, end_address
    ret.n
_done:
    .section .lits, "a"
    .align 4
data: .word 0x3ffc0100
end_address: .word _done
"#,
    ),
    (
        "loads_and_stores",
        r#"
_start:
    l32r a2, data
    l32r a3, pattern
    s32i a3, a2, 0
    s16i a3, a2, 4
    s16i a3, a2, 510
    s8i a3, a2, 8
    s8i a3, a2, 255
    l8ui a4, a2, 0
    l8ui a4, a2, 3
    l16ui a5, a2, 0
    l16ui a5, a2, 2
    l16si a6, a2, 2
    l16si a6, a2, 0
    l32i a7, a2, 0
    l32i a7, a2, 1020
    s32i a3, a2, 1020
    l32i a7, a2, 1020
    addi a2, a2, 1
    l8ui a4, a2, 0
    s8i a3, a2, 0
    addi a2, a2, -1
    l32i a7, a2, 0
_done:
    .section .lits, "a"
    .align 4
data: .word 0x3ffc0000
pattern: .word 0xfedc8a98
"#,
    ),
    (
        "l32r_and_litbase",
        r#"
_start:
    l32r a2, far
    l32r a3, near
    movi a4, 0x401
    slli a4, a4, 20
    addmi a4, a4, 0x1000
    addi a4, a4, 1
    wsr a4, litbase
    rsr a5, litbase
    .byte 0x61, 0xff, 0xff
    .byte 0x71, 0xfe, 0xff
    movi a4, 0
    wsr a4, litbase
    l32r a8, near
    movi a4, -1
    wsr a4, litbase
    rsr a5, litbase
    movi a4, 0
    wsr a4, litbase
_done:
    .section .lits, "a"
    .align 4
far: .word 0x11111111
    .org 0x7f8
    .word 0x22222222
near: .word 0x33333333
"#,
    ),
    (
        "branches",
        r#"
_start:
    movi a2, 0
    movi a3, -1
    movi a4, 256
    l32r a5, k32768
    movi a6, 0x20
    beqz a2, 1f
    ill
1:  bnez a2, 1f
    bnez a3, 1f
    ill
1:  bltz a3, 1f
    ill
1:  bltz a2, 1f
    bgez a2, 1f
    ill
1:  bgez a3, 1f
    beqi a3, -1, 1f
    ill
1:  beqi a4, 256, 1f
    ill
1:  bnei a4, 256, 1f
    bnei a4, 128, 1f
    ill
1:  blti a3, 1, 1f
    ill
1:  blti a4, 12, 1f
    bgei a4, 256, 1f
    ill
1:  bgei a3, 1, 1f
    bltui a4, 32768, 1f
    ill
1:  bltui a5, 32768, 1f
    bgeui a5, 32768, 1f
    ill
1:  bgeui a5, 65536, 1f
    bgeui a3, 65536, 1f
    ill
1:  bbci a6, 4, 1f
    ill
1:  bbci a6, 5, 1f
    bbsi a6, 5, 1f
    ill
1:  bbsi a3, 31, 1f
    ill
1:  bbsi a2, 0, 1f
    movi a7, 5
    bbs a6, a7, 1f
    ill
1:  bbc a6, a7, 1f
    movi a7, 37
    bbs a6, a7, 1f
    ill
1:  beq a2, a2, 1f
    ill
1:  bne a2, a3, 1f
    ill
1:  blt a3, a2, 1f
    ill
1:  bltu a2, a3, 1f
    ill
1:  bge a2, a3, 1f
    ill
1:  bgeu a3, a2, 1f
    ill
1:  ball a3, a6, 1f
    ill
1:  bnall a6, a3, 1f
    bnall a2, a6, 1f
    ill
1:  bany a6, a3, 1f
    ill
1:  bnone a6, a2, 1f
    ill
1:  bnone a6, a6, 1f
    j _done
1:  ill
_done:
    .section .lits, "a"
    .align 4
k32768: .word 32768
"#,
    ),
    (
        "calls_and_jumps",
        r#"
_start:
    call0 sub1
    l32r a2, sub2_address
    callx0 a2
    l32r a3, label1_address
    jx a3
    ill
1:  j 2f
    .align 4
sub1:
    movi a4, 7
    ret
    .align 4
sub2:
    movi a5, 9
    ret.n
2:  nop
_done:
    .section .lits, "a"
    .align 4
sub2_address: .word sub2
label1_address: .word 1b
"#,
    ),
    (
        "conditional_moves_and_nsa",
        r#"
_start:
    movi a2, 0
    movi a3, -5
    movi a4, 5
    movi a5, 100
    moveqz a5, a3, a2
    moveqz a5, a4, a3
    movnez a6, a3, a4
    movnez a6, a4, a2
    movltz a7, a4, a3
    movltz a7, a3, a4
    movgez a8, a3, a2
    movgez a8, a4, a3
    nsa a9, a2
    nsa a9, a3
    nsa a9, a4
    nsau a10, a2
    nsau a10, a3
    nsau a10, a4
    l32r a11, odd
    nsa a9, a11
    nsau a10, a11
    movi a11, -1
    nsa a9, a11
    nsau a10, a11
_done:
    .section .lits, "a"
    .align 4
odd: .word 0x00012345
"#,
    ),
    (
        "special_registers",
        r#"
_start:
    movi a2, -1
    wsr a2, sar
    rsr a3, sar
    xsr a2, sar
    wsr a2, epc1
    wsr a2, epc2
    wsr a2, epc3
    wsr a2, eps2
    wsr a2, eps3
    wsr a2, excsave1
    wsr a2, excsave2
    wsr a2, excsave3
    wsr a2, depc
    wsr a2, exccause
    wsr a2, excvaddr
    wsr a2, ddr
    wsr a2, icount
    rsr a4, icount
    rsr a4, epc1
    rsr a4, eps2
    rsr a4, exccause
    xsr a4, excvaddr
    rsr a5, prid
    rsr a5, 176
    rsr a5, 208
    rsr a5, debugcause
    rsr a5, interrupt
    rsr a5, intenable
    rsr a5, vecbase
    rsr a5, icountlevel
    rsr a5, ibreakenable
    rsr a5, ibreaka0
    rsr a5, dbreaka0
    rsr a5, dbreakc0
    rsr a5, ccompare0
    wsr a2, ibreaka0
    wsr a2, dbreaka0
    l32r a7, far_away
    wsr a7, ccompare0
    rsr a8, ccompare0
    movi a9, 0
    rsil a10, 5
    rsr a11, ps
    rsil a10, 0
    rsr a11, ps
    movi a12, 0x7f
    xsr a12, ps
    rsr a11, ps
    wsr a9, ps
    rsr a11, ps
    movi a12, 0x80
    wsr a12, intset
    rsr a5, interrupt
    wsr a12, intclear
    rsr a5, interrupt
    movi a12, 0x40
    wsr a12, intset
    rsr a5, interrupt
    wsr a2, intenable
    rsr a5, intenable
    wsr a9, intenable
    rsr a5, intenable
    wsr a2, ibreakenable
    rsr a5, ibreakenable
    wsr a9, ibreakenable
    movi a12, 0x13
    wsr a12, icountlevel
    rsr a5, icountlevel
    nop
    rsr a5, icount
    wsr a9, icountlevel
    rsr a5, icount
    isync
    rsync
    esync
    dsync
    excw
    memw
    extw
_done:
    .section .lits, "a"
    .align 4
far_away: .word 0x7fff0000
"#,
    ),
    (
        "exceptions",
        r#"
_start:
    ill
    syscall
    .byte 0x30, 0x32, 0x43
    .byte 0x30, 0x32, 0x23
    .byte 0x20, 0x63, 0x03
    .byte 0x20, 0x63, 0x13
    movi a2, 0
    l32i a3, a2, 0
    l32r a2, dram
    addi a6, a2, 2
    l32i a3, a6, 0
    addi a6, a2, 1
    l16ui a3, a6, 0
    addi a6, a2, 3
    l16si a3, a6, 0
    addi a6, a2, 1
    s32i a3, a6, 0
    addi a6, a2, 3
    s16i a3, a6, 0
    addi a6, a2, 2
    l32i.n a3, a6, 4
    .byte 0 # the handler resumes 3 bytes on
    s32i.n a3, a6, 0
    .byte 0
    l32i a3, a2, 0
    s8i a3, a2, 1
    l8ui a3, a2, 3
    l32r a4, unmapped
    l32i a5, a4, 0
    s32i a5, a4, 4
    l8ui a5, a4, 0
    movi a5, 0x20
    wsr a5, ps
    syscall
    ill
    movi a5, 0x10
    wsr a5, ps
    syscall
    movi a5, 0
    wsr a5, ps
    simcall
    .byte 0x00, 0x00, 0x00
_done:
    .section .lits, "a"
    .align 4
dram: .word 0x3ffc0010
unmapped: .word 0x70000000
"#,
    ),
    (
        "break_and_debug_level",
        r#"
_start:
    break 1, 2
    break.n 3
    nop
    rsil a2, 2
    break 1, 2
    break.n 3
    rsil a2, 1
    break 0, 0
    rsil a2, 0
    movi a3, 0x10
    wsr a3, ps
    break 0, 0
    movi a3, 0
    wsr a3, ps
_done:
"#,
    ),
    (
        "interrupts",
        r#"
_start:
    movi a2, 0x80
    wsr a2, intenable
    rsil a3, 1
    wsr a2, intset
    nop
    rsr a4, interrupt
    rsil a3, 0
    nop
    rsr a4, interrupt
    movi a5, 0x10
    wsr a5, ps
    wsr a2, intset
    nop
    movi a5, 0
    wsr a5, ps
    nop
    rsil a3, 2
    wsr a2, intset
    waiti 0
    nop
    movi a2, 0
    wsr a2, intenable
_done:
"#,
    ),
];

#[test]
fn directed_programs_match_qemu() {
    if !common::require_tools("qemu_differential", TOOLS) {
        return;
    }
    let dir = common::scratch_dir("directed");
    let programs: Vec<(&str, Program)> = PROGRAMS
        .iter()
        .map(|(name, source)| (*name, assemble(&dir, name, source)))
        .collect();
    let mut pair = Pair::new();
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    for (name, program) in &programs {
        run_program(&mut pair, name, program, &mut rng);
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "{} directed programs: {} steps compared with QEMU",
        programs.len(),
        pair.steps
    );
}

#[test]
fn every_special_register_number_is_legal_exactly_when_qemu_says() {
    if !common::require_tools("qemu_differential", TOOLS) {
        return;
    }
    let mut pair = Pair::new();
    let mut rng = Rng(0x5EED_5EED_0000_0002);
    let mut divergences = Vec::new();
    for sr in 0..256u32 {
        // rsr, wsr, xsr a2, sr
        for op2 in [0u32, 1, 6] {
            let op1 = if op2 == 6 { 1 } else { 3 };
            let word = (op2 << 20) | (op1 << 16) | (sr << 8) | (2 << 4);
            pair.load(TEXT, &word.to_le_bytes()[..3]);
            let mut regs = start_registers(&mut rng, TEXT, 0x4000_0000);
            // A value that arms no breakpoint, watchpoint or instruction counter.
            regs[2] = 0x0000_0A50;
            regs[28] = 0;
            pair.set_registers(&regs);
            let text = decode(word).map(|i| i.to_string()).unwrap_or_default();
            // CCOUNT's value is QEMU's virtual time: compare only that it reads.
            pair.ignore = if sr == 234 && op2 != 1 {
                vec![2]
            } else {
                vec![]
            };
            // Collect every divergence rather than stop at the first.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pair.step(&|| format!("executing {word:06x} ({text}) for special register {sr}"));
            }));
            if let Err(panic) = result {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "?".to_string());
                divergences.push(message);
            }
        }
    }
    eprintln!(
        "{} special register accesses compared with QEMU",
        pair.steps
    );
    assert!(
        divergences.is_empty(),
        "{} divergences:\n{}",
        divergences.len(),
        divergences.join("\n")
    );
}

/// Encodings for the random generator.
fn rrr(op2: u32, op1: u32, r: u32, s: u32, t: u32) -> u32 {
    (op2 << 20) | (op1 << 16) | (r << 12) | (s << 8) | (t << 4)
}

fn rri8(op0: u32, r: u32, s: u32, t: u32, imm8: u32) -> u32 {
    ((imm8 & 0xFF) << 16) | (r << 12) | (s << 8) | (t << 4) | op0
}

fn narrow(op0: u32, r: u32, s: u32, t: u32) -> u32 {
    (r << 12) | (s << 8) | (t << 4) | op0
}

/// Special registers the random generator may write: no timers, breakpoints,
/// watchpoints, instruction counting, vectors or literal base (directed tests cover
/// those), so random code cannot trap into QEMU's debugger machinery.
const RANDOM_WSR: &[u32] = &[
    3, 104, 128, 144, 177, 178, 179, 192, 194, 195, 209, 210, 211, 226, 227, 230, 232, 236, 238,
];
/// Special registers the random generator may read (all but CCOUNT).
const RANDOM_RSR: &[u32] = &[
    3, 5, 96, 104, 128, 144, 160, 176, 177, 178, 179, 192, 194, 195, 208, 209, 210, 211, 226, 228,
    230, 231, 232, 233, 235, 236, 237, 238, 240,
];

/// One random instruction, as (word, length); loads and stores use `base`, which the
/// caller points at data first.
fn random_instruction(rng: &mut Rng, base: u32) -> (u32, usize) {
    let r = rng.below(16);
    let s = rng.below(16);
    let t = rng.below(16);
    let pick = |rng: &mut Rng, list: &[u32]| list[rng.below(list.len() as u32) as usize];
    match rng.below(22) {
        0 => (
            rrr(
                pick(rng, &[1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15]),
                0,
                r,
                s,
                t,
            ),
            3,
        ),
        1 => (rrr(6, 0, r, rng.below(2), t), 3),
        2 => (rrr(rng.below(2), 1, r, s, t), 3),     // slli
        3 => (rrr(2 + rng.below(2), 1, r, s, t), 3), // srai
        4 => (rrr(4, 1, r, s, t), 3),                // srli
        5 => match rng.below(4) {
            0 => (rrr(8, 1, r, s, t), 3),  // src
            1 => (rrr(9, 1, r, 0, t), 3),  // srl
            2 => (rrr(10, 1, r, s, 0), 3), // sll
            _ => (rrr(11, 1, r, 0, t), 3), // sra
        },
        6 => (rrr(12 + rng.below(2), 1, r, s, t), 3), // mul16u/s
        7 => (rrr(8, 2, r, s, t), 3),                 // mull
        8 => (rrr(8 + rng.below(4), 3, r, s, t), 3),  // movXXz
        9 => (rrr(rng.below(16), 4 + rng.below(2), r, s, t), 3), // extui
        10 => match rng.below(3) {
            0 => (rrr(4, 0, rng.below(4), s, 0), 3), // ssr/ssl/ssa8l/ssa8b
            1 => (rrr(4, 0, 4, s, rng.below(2)), 3), // ssai
            _ => (rrr(4, 0, 14 + rng.below(2), s, t), 3), // nsa/nsau
        },
        11 => (rri8(2, pick(rng, &[10, 12, 13]), s, t, rng.below(256)), 3), // movi/addi/addmi
        12 => match rng.below(5) {
            0 => (narrow(0xA, r, s, t), 2),     // add.n
            1 => (narrow(0xB, r, s, t), 2),     // addi.n
            2 => (narrow(0xC, r, s, t & 7), 2), // movi.n
            3 => (narrow(0xD, 0, s, t), 2),     // mov.n
            _ => (0xF03D, 2),                   // nop.n
        },
        13..=15 => {
            // A load or store off `base`.
            let kind = pick(rng, &[0, 1, 2, 4, 5, 6, 9, 100, 101]);
            match kind {
                100 => (narrow(8, rng.below(16), base, t), 2),
                101 => (narrow(9, rng.below(16), base, t), 2),
                _ => (rri8(2, kind, base, t, rng.below(16)), 3),
            }
        }
        16 => {
            let sr = pick(rng, RANDOM_WSR);
            let op2 = if rng.below(2) == 0 { 1 } else { 6 };
            let op1 = if op2 == 6 { 1 } else { 3 };
            (rrr(op2, op1, sr >> 4, sr & 15, t), 3)
        }
        17 => {
            let sr = pick(rng, RANDOM_RSR);
            (rrr(0, 3, sr >> 4, sr & 15, t), 3)
        }
        18 => (rrr(0, 0, 6, s, t), 3), // rsil
        19 => match rng.below(3) {
            0 => (0, 3),        // ill
            1 => (0x005000, 3), // syscall
            _ => (0xF06D, 2),   // ill.n
        },
        _ => {
            // Random bits that are no control flow (a fuzz of the decoder's edges).
            loop {
                let word = rng.next() as u32 & 0xFF_FFFF;
                let len = lx106::decode::length(word as u8) as usize;
                if let Ok(insn) = decode(word) {
                    use lx106::Opcode::*;
                    if insn.target(0).is_some()
                        || matches!(
                            insn.op,
                            Callx0
                                | Jx
                                | Ret
                                | RetN
                                | Rfe
                                | Rfde
                                | Rfi
                                | Waiti
                                | Break
                                | BreakN
                                | Wsr
                                | Xsr
                                | Ritlb0
                                | Ritlb1
                                | Rdtlb0
                                | Rdtlb1
                                | Witlb
                                | Wdtlb
                                | Pitlb
                                | Pdtlb
                                | Iitlb
                                | Idtlb
                                | Rer
                                | Wer
                        )
                        || insn.op.mnemonic().starts_with('l')
                        || insn.op.mnemonic().starts_with('s') && insn.op.mnemonic().ends_with('i')
                    {
                        continue;
                    }
                }
                return (word, len);
            }
        }
    }
}

#[test]
fn random_instruction_sequences_match_qemu() {
    if !common::require_tools("qemu_differential", TOOLS) {
        return;
    }
    let iterations: usize = std::env::var("LX106_DIFF_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let seed: u64 = std::env::var("LX106_DIFF_SEED")
        .ok()
        .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0x1106_D1FF_0000_0001);
    eprintln!(
        "random differential test: seed {seed:#x} (LX106_DIFF_SEED), {iterations} instructions"
    );
    let mut rng = Rng(seed);
    let mut pair = Pair::new();
    const POOL: u32 = 0x4010_1000; // literals, below the code
    const CODE: u32 = 0x4010_2000;
    let mut executed = 0;
    let mut sequence = 0;
    while executed < iterations {
        sequence += 1;
        // Each load or store is preceded by an L32R of a pointer into data (sometimes
        // misaligned, sometimes unmapped) into its base register.
        let mut code = Vec::new();
        let mut pool = Vec::new();
        let mut listing = Vec::new();
        for _ in 0..40 {
            let base = rng.below(16);
            let (word, len) = random_instruction(&mut rng, base);
            let is_memory =
                len == 3 && word & 0xF == 2 && !matches!((word >> 12) & 0xF, 10 | 12 | 13)
                    || len == 2 && matches!(word & 0xF, 8 | 9);
            if is_memory {
                let pointer = match rng.below(12) {
                    0 => 0x7000_0000,
                    1 => DATA + rng.below(0x400),
                    _ => DATA + (rng.below(0x100) << 2),
                };
                let pc = CODE + code.len() as u32;
                let literal = POOL + 4 * pool.len() as u32;
                pool.extend_from_slice(&pointer.to_le_bytes());
                let offset = literal.wrapping_sub((pc + 3) & !3) >> 2;
                let l32r = ((offset & 0xFFFF) << 8) | (base << 4) | 1;
                code.extend_from_slice(&l32r.to_le_bytes()[..3]);
                listing.push(l32r);
            }
            code.extend_from_slice(&word.to_le_bytes()[..len]);
            listing.push(word);
        }
        pair.load(POOL, &pool);
        pair.load(CODE, &code);
        pair.load(DATA, &vec![0u8; DATA_WINDOW]);
        let mut regs = start_registers(&mut rng, CODE, 0x4000_0000);
        regs[21] = [0, 0x20, 0x10, 0x23, 0x0F][rng.below(5) as usize]; // PS
        regs[17] = rng.below(64); // SAR: all of 0..63
        pair.set_registers(&regs);
        let end = CODE + code.len() as u32;
        while pair.cpu.pc() != end && executed < iterations {
            let pc = pair.cpu.pc();
            let bytes = pair.mem.dump(pc, 3);
            let word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], 0]);
            let text = decode(word)
                .map(|i| i.at(pc).to_string())
                .unwrap_or_else(|e| e.to_string());
            let outcome = pair.step(&|| {
                format!(
                    "(seed {seed:#x}, sequence {sequence}) at {pc:#x}: {word:06x} {text}; start registers:\n{}",
                    (0..NUM_REGS)
                        .map(|n| format!("{}={:#x}", reg_name(n), regs[n]))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            });
            executed += 1;
            if !matches!(outcome, StepOutcome::Executed) {
                break; // an exception: the vector holds no code; next sequence
            }
        }
        pair.compare_memory(DATA, DATA_WINDOW, &|| {
            format!("(seed {seed:#x}) after sequence {sequence}")
        });
    }
    eprintln!(
        "{executed} random instructions in {sequence} sequences compared with QEMU (seed {seed:#x})"
    );
}
