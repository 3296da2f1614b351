//! What the integration tests share: the reference machine and waiting for lines.

#![allow(dead_code)]

pub mod lab;

use esp8266_emu::{BoardConfig, Machine, Symbols};

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../fixtures/firmware/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn reference_machine() -> Machine {
    reference_machine_with(&BoardConfig::default())
}

/// The reference image on a board built with `config`.
pub fn reference_machine_with(config: &BoardConfig) -> Machine {
    let image = fixture("reference-nodemcuv2.bin");
    let mut elf = Vec::new();
    lzma_rs::xz_decompress(
        &mut fixture("reference-nodemcuv2.elf.xz").as_slice(),
        &mut elf,
    )
    .expect("the ELF fixture unpacks");
    let symbols = Symbols::from_elf(&elf).expect("the ELF parses");
    Machine::new(&image, config, symbols)
}

/// Runs in 10 ms slices until `needle` is on UART0 or `seconds` of emulated time pass;
/// returns everything UART0 sent.
pub fn run_until(m: &mut Machine, needle: &str, seconds: f64) -> String {
    let mut text = Vec::new();
    while m.seconds() < seconds {
        m.run(800_000).unwrap_or_else(|e| {
            panic!(
                "stopped at {:#010x}: {e}\n{}",
                m.cpu.pc(),
                String::from_utf8_lossy(&text)
            )
        });
        text.extend(m.take_uart0().iter().map(|b| b.byte));
        if String::from_utf8_lossy(&text).contains(needle) {
            break;
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// The emulated second at which `line` started on UART0 in `sent`.
pub fn line_at(sent: &[esp8266_emu::uart::TxByte], line: &str) -> Option<f64> {
    let bytes: Vec<u8> = sent.iter().map(|b| b.byte).collect();
    let i = bytes
        .windows(line.len())
        .position(|w| w == line.as_bytes())?;
    Some(sent[i].cycle as f64 / esp8266_emu::machine::CPU_HZ as f64)
}
