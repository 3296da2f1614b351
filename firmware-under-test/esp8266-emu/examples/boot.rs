//! Boots an image on the emulated ESP8266 and prints what UART0 sends as it comes,
//! the registers nothing models (with the function that touched them), and at the
//! end: instructions, emulated seconds, wall seconds, instructions per second.
//!
//! ```text
//! cargo run --release -p esp8266-emu --example boot -- \
//!     fixtures/firmware/reference-nodemcuv2.bin --elf fixtures/firmware/reference-nodemcuv2.elf.xz
//! ```
//! Options: `--seconds S` (emulated time, default 5), `--trace-rom` (every ROM
//! call on stderr), `--history N` (the last N PCs when it stops).

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use esp8266_emu::{BoardConfig, Machine, Symbols};

fn read_elf(path: &str) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if path.ends_with(".xz") {
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut bytes.as_slice(), &mut out)
            .map_err(|e| format!("{path}: {e}"))?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut image_path = None;
    let mut elf_path = None;
    let mut seconds = 5.0f64;
    let mut trace = false;
    let mut history = 0usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--elf" => elf_path = it.next().cloned(),
            "--seconds" => seconds = it.next().and_then(|s| s.parse().ok()).unwrap_or(seconds),
            "--trace-rom" => trace = true,
            "--history" => history = it.next().and_then(|s| s.parse().ok()).unwrap_or(64),
            other => image_path = Some(other.to_string()),
        }
    }
    let Some(image_path) = image_path else {
        eprintln!("usage: boot IMAGE.bin [--elf FIRMWARE.elf[.xz]] [--seconds S] [--trace-rom] [--history N]");
        return ExitCode::from(2);
    };
    let image = match std::fs::read(&image_path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{image_path}: {e}");
            return ExitCode::from(2);
        }
    };
    let symbols = match elf_path.as_deref().map(read_elf) {
        None => Symbols::empty(),
        Some(Ok(elf)) => match Symbols::from_elf(&elf) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("ELF: {e}");
                return ExitCode::from(2);
            }
        },
        Some(Err(e)) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut m = Machine::new(&image, &BoardConfig::default(), symbols);
    m.rom.trace = trace;
    m.keep_history(history);
    for name in &m.intercepts.unresolved {
        eprintln!("[emu] interception of {name}: not in the ELF");
    }
    let started = Instant::now();
    let mut result = m.reset();
    let budget = (seconds * esp8266_emu::machine::CPU_HZ as f64) as u64;
    let slice = esp8266_emu::machine::CPU_HZ / 100;
    let mut out = std::io::stdout();
    let mut last_baud = 0;
    while result.is_ok() && m.board.now < budget {
        result = m.run(slice.min(budget - m.board.now));
        for b in m.take_uart0() {
            if b.baud != last_baud {
                let _ = out.flush();
                eprintln!("\n[emu] UART0 at {} baud", b.baud);
                last_baud = b.baud;
            }
            let _ = out.write_all(&[b.byte]);
        }
        let _ = out.flush();
        for u in m.board.unmodelled.take_new() {
            eprintln!(
                "[emu] unmodelled {} {:#010x} ({}-byte{}) at {}",
                if u.write { "write" } else { "read" },
                u.addr,
                u.width,
                if u.write {
                    format!(", value {:#x}", u.value)
                } else {
                    String::new()
                },
                m.symbols.describe(u.pc)
            );
        }
    }
    let wall = started.elapsed().as_secs_f64();
    eprintln!();
    if let Err(e) = &result {
        let pc = m.cpu.pc();
        eprintln!("[emu] stopped: {e}");
        eprintln!(
            "[emu] PC {pc:#010x} ({}), a0 {:#010x} ({}), a1 {:#010x}",
            m.symbols.describe(pc),
            m.cpu.ar(0),
            m.symbols.describe(m.cpu.ar(0)),
            m.cpu.ar(1)
        );
    }
    if history > 0 {
        eprintln!("[emu] the last {history} instructions:");
        for pc in m.history() {
            eprintln!("[emu]   {pc:#010x} {}", m.symbols.describe(pc));
        }
    }
    {
        use lx106::SpecialReg::*;
        let c = &m.cpu;
        eprintln!(
            "[emu] PC {:#010x} ({}) waiting={} PS {:#x} INTENABLE {:#x} INTERRUPT {:#x} CCOUNT {:#x} CCOMPARE0 {:#x}; next peripheral event {:?}, now {}",
            c.pc(),
            m.symbols.describe(c.pc()),
            c.is_waiting(),
            c.special_register(Ps),
            c.special_register(Intenable),
            c.special_register(Interrupt),
            c.special_register(Ccount),
            c.special_register(Ccompare0),
            m.board.next_event(),
            m.board.now
        );
    }
    eprintln!(
        "[emu] unmodelled registers: {}",
        m.board.unmodelled.entries().len()
    );
    for u in m.board.unmodelled.entries() {
        eprintln!(
            "[emu]   {} {:#010x} x{} first at {}",
            if u.write { "W" } else { "R" },
            u.addr,
            u.count,
            m.symbols.describe(u.pc)
        );
    }
    for (name, n) in m.intercept_hits() {
        eprintln!("[emu] intercepted {name}: {n} calls");
    }
    if trace {
        for (name, n) in m.rom.call_counts() {
            eprintln!("[emu] ROM {name}: {n}");
        }
    }
    eprintln!(
        "[emu] {} instructions, {:.3} emulated s, {:.3} wall s, {:.1} M instructions/s",
        m.instructions,
        m.seconds(),
        wall,
        m.instructions as f64 / wall / 1e6
    );
    if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
