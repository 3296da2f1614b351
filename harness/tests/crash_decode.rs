//! Crash dumps decoded against the real ESP8266 ELF of the reference sketch
//! (`fixtures/firmware/reference-nodemcuv2.elf.xz`, built with Debian's
//! gcc-xtensa-lx106 and the ESP8266 Arduino core 3.1.2).

use std::io::BufReader;
use std::path::{Path, PathBuf};

use hil::crash::{Crash, CrashKind, Symbols};

fn fixture_elf(dir: &Path) -> PathBuf {
    let packed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/firmware/reference-nodemcuv2.elf.xz");
    let file = std::fs::File::open(&packed).expect("the committed ELF fixture");
    let mut elf = Vec::new();
    lzma_rs::xz_decompress(&mut BufReader::new(file), &mut elf).expect("valid xz");
    let path = dir.join("reference-nodemcuv2.elf");
    std::fs::write(&path, elf).expect("a writable temporary directory");
    path
}

#[test]
fn setup_decodes_to_the_sketch_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let symbols = Symbols::open(&fixture_elf(dir.path())).unwrap();
    // What xtensa-lx106-elf-addr2line -pfiaC prints for this address (lx106/README).
    let frames = symbols.frames(0x4020_1ad8);
    let outer = frames.last().expect("setup is in the ELF");
    assert_eq!(outer.function.as_deref(), Some("setup"), "{frames:?}");
    assert_eq!(
        outer.file.as_deref(),
        Some("./firmware-under-test/esp8266/src/main.cpp")
    );
    assert_eq!(outer.line, Some(488), "{frames:?}");
}

#[test]
fn a_recorded_exception_dump_decodes_to_the_sketch() {
    let dir = tempfile::tempdir().unwrap();
    let symbols = Symbols::open(&fixture_elf(dir.path())).unwrap();
    // A dump in core 3.1.2's format, with epc1 in loop() and a return address
    // into setup() on the stack; ROM and RAM words are not code to decode.
    let dump = [
        "Exception (28):",
        "epc1=0x402020b0 epc2=0x00000000 epc3=0x00000000 excvaddr=0x00000000 depc=0x00000000",
        "",
        ">>>stack>>>",
        "",
        "ctx: cont",
        "sp: 3ffffe00 end: 3fffffd0 offset: 0190",
        "3fffff90:  3fffdad0 00000000 3ffee7c8 40201ae0  ",
        "3fffffa0:  40000f49 3fffdab0 3ffee7f4 4000050c <",
        "<<<stack<<<",
    ];
    let crash = Crash::parse(&dump).unwrap();
    assert_eq!(crash.kind, CrashKind::Exception { cause: 28 });
    let backtrace = symbols.backtrace(&crash);
    let functions: Vec<&str> = backtrace
        .iter()
        .filter(|f| !f.inlined)
        .filter_map(|f| f.function.as_deref())
        .collect();
    assert_eq!(functions, ["loop", "setup"], "{backtrace:#?}");
    let lines: Vec<String> = backtrace.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "0x402020b0: loop at ./firmware-under-test/esp8266/src/main.cpp:510",
            "0x40201ae0: setup at ./firmware-under-test/esp8266/src/main.cpp:488",
        ]
    );
}
