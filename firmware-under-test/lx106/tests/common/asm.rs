//! Assembling test programs with binutils' lx106 assembler and linker.

use std::path::Path;
use std::process::Command;

/// Where the vector table (VECBASE) and its handlers go.
pub const VECTORS: u32 = 0x4010_0000;
/// Where the `.lits` section (L32R literals) goes.
pub const LITS: u32 = 0x4010_0800;
/// Where `.text` goes.
pub const TEXT: u32 = 0x4010_1000;

/// A linked program: its bytes from [`VECTORS`] on, its entry and end.
pub struct Program {
    pub image: Vec<u8>,
    pub start: u32,
    pub end: u32,
}

/// Vectors that resume after the faulting instruction (3 bytes, or 2 for BREAK.N),
/// acknowledge software and edge interrupts, and return.
const PRELUDE: &str = r#"
    .section .vectors, "ax"
    .org 0x10
    j debug_handler
    .org 0x20
    rfi 3
    .org 0x30
    j kernel_handler
    .org 0x50
    j kernel_handler
    .org 0x70
    j double_handler
    .org 0x80
kernel_handler:
    wsr a13, excsave1
    rsr a13, exccause
    beqi a13, 4, 1f
    rsr a13, epc1
    addi a13, a13, 3
    wsr a13, epc1
1:  movi a13, -1
    wsr a13, intclear
    rsr a13, excsave1
    rfe
double_handler:
    wsr a13, excsave3
    rsr a13, depc
    addi a13, a13, 3
    wsr a13, depc
    rsr a13, excsave3
    rfde
debug_handler:
    wsr a13, excsave2
    rsr a13, debugcause
    bbsi a13, 4, 2f
    rsr a13, epc2
    addi a13, a13, 3
    j 3f
2:  rsr a13, epc2
    addi a13, a13, 2
3:  wsr a13, epc2
    rsr a13, excsave2
    rfi 2
    .text
    .global _start
    .global _done
"#;

fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Assembles `body` (which defines `_start` and `_done` in `.text`, and may put words in
/// `.lits`) after the shared vectors, links and returns the program.
pub fn assemble(dir: &Path, name: &str, body: &str) -> Program {
    let source = format!("{PRELUDE}\n{body}\n");
    std::fs::write(dir.join(format!("{name}.S")), source)
        .unwrap_or_else(|e| panic!("writing {name}.S: {e}"));
    let obj = format!("{name}.o");
    let elf = format!("{name}.elf");
    let bin = format!("{name}.bin");
    run(
        dir,
        "xtensa-lx106-elf-as",
        &["--no-transform", "-o", &obj, &format!("{name}.S")],
    );
    run(
        dir,
        "xtensa-lx106-elf-ld",
        &[
            &format!("--section-start=.vectors={VECTORS:#x}"),
            &format!("--section-start=.lits={LITS:#x}"),
            &format!("-Ttext={TEXT:#x}"),
            "-e",
            "_start",
            "-o",
            &elf,
            &obj,
        ],
    );
    run(
        dir,
        "xtensa-lx106-elf-objcopy",
        &["-O", "binary", &elf, &bin],
    );
    let symbols = run(dir, "xtensa-lx106-elf-nm", &[&elf]);
    let symbol = |wanted: &str| {
        symbols
            .lines()
            .find_map(|line| {
                let mut parts = line.split_whitespace();
                let addr = parts.next()?;
                let _kind = parts.next()?;
                (parts.next()? == wanted).then(|| u32::from_str_radix(addr, 16).ok())?
            })
            .unwrap_or_else(|| panic!("{name}: no symbol {wanted}"))
    };
    let image = std::fs::read(dir.join(&bin)).unwrap_or_else(|e| panic!("reading {bin}: {e}"));
    Program {
        image,
        start: symbol("_start"),
        end: symbol("_done"),
    }
}
