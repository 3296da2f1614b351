//! The emulator and QEMU side by side: same memory, same registers, one step each,
//! compare everything.

use lx106::{Cpu, SpecialReg, StepOutcome};

use super::gdb::{regnum, Qemu};
use super::machine::SimMemory;

/// Registers in QEMU's `g` packet (GDB numbers 0..50).
pub const NUM_REGS: usize = 50;

/// Registers not compared: CCOUNT (QEMU derives it from virtual time, not from
/// instructions), MMID (write-only) and INTCLEAR (write-only).
const NOT_COMPARED: [u32; 3] = [44, 22, 39];

/// GDB register names, for messages.
pub fn reg_name(n: usize) -> String {
    const NAMES: [&str; NUM_REGS - 16] = [
        "pc",
        "sar",
        "litbase",
        "configid0",
        "configid1",
        "ps",
        "mmid",
        "ibreakenable",
        "ddr",
        "ibreaka0",
        "dbreaka0",
        "dbreakc0",
        "epc1",
        "epc2",
        "epc3",
        "depc",
        "eps2",
        "eps3",
        "excsave1",
        "excsave2",
        "excsave3",
        "interrupt",
        "intset",
        "intclear",
        "intenable",
        "vecbase",
        "exccause",
        "debugcause",
        "ccount",
        "prid",
        "icount",
        "icountlevel",
        "excvaddr",
        "ccompare0",
    ];
    if n < 16 {
        format!("a{n}")
    } else {
        NAMES.get(n - 16).copied().unwrap_or("?").to_string()
    }
}

/// The special register behind each GDB number from 17 on (None for PC).
fn special(n: usize) -> Option<SpecialReg> {
    use SpecialReg::*;
    Some(match n {
        17 => Sar,
        18 => Litbase,
        19 => Configid0,
        20 => Configid1,
        21 => Ps,
        23 => Ibreakenable,
        24 => Ddr,
        25 => Ibreaka0,
        26 => Dbreaka0,
        27 => Dbreakc0,
        28 => Epc1,
        29 => Epc2,
        30 => Epc3,
        31 => Depc,
        32 => Eps2,
        33 => Eps3,
        34 => Excsave1,
        35 => Excsave2,
        36 => Excsave3,
        37 | 38 => Interrupt,
        39 => Intclear,
        40 => Intenable,
        41 => Vecbase,
        42 => Exccause,
        43 => Debugcause,
        44 => Ccount,
        45 => Prid,
        46 => Icount,
        47 => Icountlevel,
        48 => Excvaddr,
        49 => Ccompare0,
        _ => return None,
    })
}

/// The emulator's registers in GDB order.
pub fn snapshot(cpu: &Cpu) -> [u32; NUM_REGS] {
    let mut regs = [0; NUM_REGS];
    for (n, reg) in regs.iter_mut().enumerate() {
        *reg = match n {
            0..=15 => cpu.ar(n),
            16 => cpu.pc(),
            _ => special(n).map(|sr| cpu.special_register(sr)).unwrap_or(0),
        };
    }
    regs
}

/// QEMU and the emulator with the same memory.
pub struct Pair {
    pub qemu: Qemu,
    pub cpu: Cpu,
    pub mem: SimMemory,
    /// Steps compared so far.
    pub steps: usize,
    /// GDB registers to leave out of the comparisons, besides those never compared.
    pub ignore: Vec<usize>,
}

impl Pair {
    pub fn new() -> Pair {
        Pair {
            qemu: Qemu::start(),
            cpu: Cpu::new(),
            mem: SimMemory::default(),
            steps: 0,
            ignore: Vec::new(),
        }
    }

    /// Writes `data` at `addr` in both.
    pub fn load(&mut self, addr: u32, data: &[u8]) {
        self.qemu.write_memory(addr, data);
        self.mem.load(addr, data);
    }

    /// Sets every register of both from `regs` (GDB order) with a fresh emulator CPU.
    /// INTERRUPT, DEBUGCAUSE and CCOUNT start at zero; read-only ones keep their values.
    pub fn set_registers(&mut self, regs: &[u32; NUM_REGS]) {
        let mut cpu = Cpu::new();
        for (n, &value) in regs.iter().enumerate() {
            match n {
                0..=15 => cpu.set_ar(n, value),
                16 => cpu.set_pc(value),
                _ => {
                    if let Some(sr) = special(n) {
                        if !matches!(
                            sr,
                            SpecialReg::Interrupt | SpecialReg::Intclear | SpecialReg::Ccount
                        ) {
                            cpu.set_special_register(sr, value);
                        }
                    }
                }
            }
        }
        let mut qemu_regs = snapshot(&cpu);
        qemu_regs[regnum::CCOUNT as usize] = 0;
        self.qemu.set_regs(&qemu_regs);
        self.cpu = cpu;
    }

    /// Compares all registers; `context` describes where we are for the message.
    pub fn compare(&mut self, context: &dyn Fn() -> String) {
        let theirs = self.qemu.regs();
        let ours = snapshot(&self.cpu);
        let mut diffs = Vec::new();
        for (n, &ours) in ours.iter().enumerate() {
            if NOT_COMPARED.contains(&(n as u32)) || self.ignore.contains(&n) {
                continue;
            }
            let qemu = theirs.get(n).copied().unwrap_or(0);
            if qemu != ours {
                diffs.push(format!(
                    "  {:<12} qemu {qemu:#010x}  ours {ours:#010x}",
                    reg_name(n)
                ));
            }
        }
        assert!(
            diffs.is_empty(),
            "divergence from QEMU {}:\n{}",
            context(),
            diffs.join("\n")
        );
    }

    /// Compares `len` bytes of memory at `addr`.
    pub fn compare_memory(&mut self, addr: u32, len: usize, context: &dyn Fn() -> String) {
        let theirs = self.qemu.read_memory(addr, len);
        let ours = self.mem.dump(addr, len);
        if let Some(i) = (0..len).find(|&i| theirs[i] != ours[i]) {
            panic!(
                "memory diverges from QEMU at {:#x} {}: qemu {:02x?}, ours {:02x?}",
                addr + i as u32,
                context(),
                &theirs[i..(i + 16).min(len)],
                &ours[i..(i + 16).min(len)]
            );
        }
    }

    /// One step in each, then compares; returns the emulator's outcome.
    pub fn step(&mut self, context: &dyn Fn() -> String) -> StepOutcome {
        let outcome = self.cpu.step(&mut self.mem);
        self.qemu.step();
        self.steps += 1;
        self.compare(&|| format!("{} (outcome {outcome:?})", context()));
        outcome
    }
}
