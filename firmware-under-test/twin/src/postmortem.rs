//! The ESP8266 Arduino core's postmortem dump, as core 3.1.2 prints it for the
//! exception the crash knob causes (`core_esp8266_postmortem.cpp`): a load from
//! address 0 in the sketch's `session()`, exception 28 (LoadProhibited), on the
//! `cont` stack that runs `setup()` and `loop()`.
//!
//! The twin runs no Xtensa code, so the registers and stack are made up, but
//! every code address in the dump is real: it comes from the reference sketch's
//! ELF (`fixtures/firmware/reference-nodemcuv2.elf.xz`, core 3.1.2), so an
//! exception decoder given that ELF names the sketch's and the core's functions
//! exactly as it would for a board. `session()` and `crash()` are inlined into
//! `loop()` there, and the reference image (crash knob off) has no code for the
//! load itself, so `epc1` is the instruction of `session()` just before the
//! `if (knobs::kCrashAfterConnect) crash();` line.

/// `epc1`: `call0 hil::log::heap` in `loop()` (0x402020a8, 1267 bytes), which
/// decodes to `session()` at main.cpp:445 (`log::heap(ESP.getFreeHeap());`),
/// inlined into `loop()` at main.cpp:515. The line numbers are those of the
/// main.cpp the fixture ELF was last built from (the commit that rebuilt it with
/// BearSSL compiled without strict aliasing); rebuilding the ELF from a changed
/// sketch moves them.
pub const EPC1: u32 = 0x4020_243f;

/// The return address `loop()` saved: the instruction after `call0 loop` in
/// `loop_wrapper()` (0x40206a84, 83 bytes), core_esp8266_main.cpp:259.
pub const RETURN_INTO_LOOP_WRAPPER: u32 = 0x4020_6aab;

/// The return address `loop_wrapper()` saved: the instruction after
/// `callx0 a3` in `cont_wrapper` (0x40100e9c, 11 bytes), cont.S:81.
pub const RETURN_INTO_CONT_WRAPPER: u32 = 0x4010_0ea1;

/// Exception 28: LoadProhibited.
const CAUSE: u32 = 28;

/// Where the `cont` stack ends (core 3.x places it at the top of DRAM).
const CONT_STACK_END: u32 = 0x3fff_ffc0;

/// Stack the exception vector and the postmortem handler use below the
/// crashing function's own stack pointer; the core skips it when it prints
/// (its "offset", fixed at 0x190 for exceptions).
const EXCEPTION_OFFSET: u32 = 0x190;

/// `loop()`'s frame in the ELF: its prologue is `movi a9, 192; sub a1, a1, a9`,
/// and it saves a0 at sp+188, a12 at +184, a13 at +180, a14 at +176, a15 at +172.
const LOOP_FRAME: u32 = 192;

/// `loop_wrapper()`'s frame: `addi a1, a1, -16`, a12 at sp+8, a0 at sp+12.
const LOOP_WRAPPER_FRAME: u32 = 16;

/// What the core paints unused `cont` stack with (`CONT_STACKGUARD`), so it can
/// tell how deep the stack ever went.
const UNTOUCHED: u32 = 0xfeef_effe;

/// The words from `loop()`'s stack pointer to the end of the `cont` stack.
/// Data words are plausible DRAM values (the sketch's globals `settings` at
/// 0x3ffefca4, `mqtt` at 0x3ffefc10, `tls` at 0x3ffefc7c in the same ELF, the
/// broker's port 8883, 127.0.0.1); one word points 16 bytes above its own line,
/// which the core flags with `<`.
fn cont_stack() -> Vec<u32> {
    let mut words = vec![
        // loop()'s locals: 0x3ffffef0..
        0x0000_0000,
        0x0000_0000,
        0x3ffe_fca4,
        0x3ffe_fc10,
        0x0000_22b3,
        0x0100_007f,
        0x3ffe_fc7c,
        0x0000_0000,
        0x3fff_0a1c,
        0x0000_0010,
        0x3fff_ff20,
        0x0000_0000,
        0x3ffe_fca4,
        0x0000_0001,
        0x0000_03e8,
        0x0000_0000,
        0x3fff_13a4,
        0x0000_000f,
        0x0000_000f,
        0x3ffe_fc10,
        0x0000_0000,
        0x3ffe_fc7c,
        0x0000_0000,
        0x0000_0001,
        UNTOUCHED,
        UNTOUCHED,
        0x3ffe_fca4,
        0x0000_0000,
        0x0000_0000,
        0x3ffe_fc10,
        0x3fff_0a1c,
        0x0000_0000,
        UNTOUCHED,
        0x0000_0000,
        0x3ffe_fc04,
        0x3ffe_fbfc,
        0x0000_0000,
        0x0000_0000,
        0x3ffe_fc10,
        0x0000_0000,
        0x0000_0000,
        0x0000_0000,
        0x0000_0000,
        // Saved by loop()'s prologue: a15, a14, a13, a12, a0.
        0x0000_0000,
        0x3ffe_fca4,
        0x3ffe_fc10,
        0x3ffe_fc7c,
        RETURN_INTO_LOOP_WRAPPER,
    ];
    // loop_wrapper()'s frame: two words it never touches, a12, a0.
    words.extend([UNTOUCHED, UNTOUCHED, 0x3ffe_8648, RETURN_INTO_CONT_WRAPPER]);
    words
}

/// The line `cut_here()` prints before and after the dump.
pub const CUT_HERE: &str = "--------------- CUT HERE FOR EXCEPTION DECODER ---------------";

/// The dump, one string per line (without line ends; the core's UART writer
/// turns each `\n` into CRLF), from the blank line `cut_here()` starts with to
/// the closing cut-here line. The chip restarts right after it.
pub fn exception_dump() -> Vec<String> {
    let words = cont_stack();
    let stack_start = CONT_STACK_END - LOOP_WRAPPER_FRAME - LOOP_FRAME;
    let sp = stack_start - EXCEPTION_OFFSET;
    let mut lines = vec![
        String::new(),
        CUT_HERE.to_owned(),
        String::new(),
        format!("Exception ({CAUSE}):"),
        format!(
            "epc1=0x{EPC1:08x} epc2=0x{:08x} epc3=0x{:08x} excvaddr=0x{:08x} depc=0x{:08x}",
            0, 0, 0, 0
        ),
        String::new(),
        ">>>stack>>>".to_owned(),
        String::new(),
        "ctx: cont".to_owned(),
        format!("sp: {sp:08x} end: {CONT_STACK_END:08x} offset: {EXCEPTION_OFFSET:04x}"),
    ];
    for (i, row) in words.chunks(4).enumerate() {
        let at = stack_start + 16 * i as u32;
        // The core's rough guess: a frame saves the stack pointer above it in its
        // third word.
        let marker = if row.get(2) == Some(&(at + 0x10)) {
            '<'
        } else {
            ' '
        };
        let [a, b, c, d] = [0, 1, 2, 3].map(|k| row.get(k).copied().unwrap_or(0));
        lines.push(format!(
            "{at:08x}:  {a:08x} {b:08x} {c:08x} {d:08x} {marker}"
        ));
    }
    lines.push("<<<stack<<<".to_owned());
    lines.push(String::new());
    lines.push(CUT_HERE.to_owned());
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the code addresses' functions sit in the reference ELF (`readelf -sW`).
    const LOOP: (u32, u32) = (0x4020_20a8, 1267);
    const LOOP_WRAPPER: (u32, u32) = (0x4020_6a84, 83);
    const CONT_WRAPPER: (u32, u32) = (0x4010_0e9c, 11);

    fn inside(address: u32, (start, size): (u32, u32)) -> bool {
        (start..start + size).contains(&address)
    }

    #[test]
    fn the_code_addresses_lie_in_the_functions_they_name() {
        assert!(inside(EPC1, LOOP));
        assert!(inside(RETURN_INTO_LOOP_WRAPPER, LOOP_WRAPPER));
        assert!(inside(RETURN_INTO_CONT_WRAPPER, CONT_WRAPPER));
    }

    #[test]
    fn the_dump_has_the_cores_layout() {
        let dump = exception_dump();
        let head: Vec<&str> = dump[..10].iter().map(String::as_str).collect();
        assert_eq!(
            head,
            [
                "",
                CUT_HERE,
                "",
                "Exception (28):",
                "epc1=0x4020243f epc2=0x00000000 epc3=0x00000000 excvaddr=0x00000000 depc=0x00000000",
                "",
                ">>>stack>>>",
                "",
                "ctx: cont",
                "sp: 3ffffd60 end: 3fffffc0 offset: 0190",
            ]
        );
        let tail: Vec<&str> = dump[dump.len() - 3..].iter().map(String::as_str).collect();
        assert_eq!(tail, ["<<<stack<<<", "", CUT_HERE]);
        assert_eq!(CUT_HERE.matches('-').count(), 30);
    }

    #[test]
    fn stack_lines_run_from_sp_plus_offset_to_the_end_in_the_cores_format() {
        let dump = exception_dump();
        let stack = &dump[10..dump.len() - 3];
        let line = regex::Regex::new(r"^([0-9a-f]{8}):  (?:[0-9a-f]{8} ){4}[ <]$").unwrap();
        let mut expected = 0x3ffffd60 + 0x190;
        for text in stack {
            let c = line.captures(text).unwrap_or_else(|| panic!("{text:?}"));
            assert_eq!(u32::from_str_radix(&c[1], 16).unwrap(), expected, "{text}");
            expected += 0x10;
        }
        assert_eq!(expected, CONT_STACK_END);
        assert_eq!(stack.len(), 13);
    }

    #[test]
    fn return_addresses_sit_where_the_prologues_saved_them() {
        let dump = exception_dump();
        let word = |address: u32| -> String {
            let line = address & !0xf;
            let text = dump
                .iter()
                .find(|l| l.starts_with(&format!("{line:08x}:")))
                .unwrap();
            let index = ((address - line) / 4) as usize;
            text[11..].split(' ').nth(index).unwrap().to_owned()
        };
        // loop()'s sp + 188, loop_wrapper()'s sp + 12.
        assert_eq!(
            word(0x3ffffef0 + 188),
            format!("{RETURN_INTO_LOOP_WRAPPER:08x}")
        );
        assert_eq!(
            word(0x3fffffb0 + 12),
            format!("{RETURN_INTO_CONT_WRAPPER:08x}")
        );
    }

    #[test]
    fn a_word_pointing_16_bytes_up_is_flagged_like_the_core_does() {
        let dump = exception_dump();
        let flagged: Vec<&String> = dump.iter().filter(|l| l.ends_with(" <")).collect();
        assert_eq!(flagged.len(), 1, "{flagged:?}");
        assert!(flagged[0].starts_with("3fffff10:  "), "{flagged:?}");
        assert!(flagged[0].contains(" 3fffff20 "), "{flagged:?}");
    }
}
