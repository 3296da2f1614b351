//! A crash on the emulated chip goes the way it goes on a board: the SDK's fatal
//! exception handler runs as compiled (through the ROM's C exception wrapper), the
//! core prints its postmortem dump, and the chip restarts through the ROM.

mod common;

use common::{reference_machine, run_until};
use esp8266_emu::Stop;
use lx106::SpecialReg;

/// Unused IRAM past the image's `.text` (it ends at 0x40106f65).
const SCRATCH: u32 = 0x4010_7000;
/// `movi.n a2, 0; l32i.n a3, a2, 0`: a load through a null pointer.
const NULL_LOAD: [u8; 4] = [0x0c, 0x02, 0x38, 0x02];

/// The debugger's way in: a hardware breakpoint on `esp_delay` (the sketch's
/// `delay(1)` while it waits for a PROV line, so the sketch's own stack), then,
/// as GDB's `jump` would, on to a load through a null pointer put in unused IRAM.
fn crash_in_the_sketch(m: &mut esp8266_emu::Machine) {
    let esp_delay = m
        .symbols
        .addr_of("esp_delay")
        .expect("esp_delay in the ELF");
    m.cpu.set_special_register(SpecialReg::Ibreaka0, esp_delay);
    m.cpu.set_special_register(SpecialReg::Ibreakenable, 1);
    let stop = m
        .run(esp8266_emu::machine::CPU_HZ / 10)
        .expect_err("the breakpoint stops the machine");
    assert!(
        matches!(stop, Stop::Debug { pc, .. } if pc == esp_delay),
        "{stop}"
    );
    // Back out of the debug exception as the debugger's resume would, elsewhere.
    m.cpu.set_special_register(SpecialReg::Ibreakenable, 0);
    let eps2 = m.cpu.special_register(SpecialReg::Eps2);
    m.cpu.set_special_register(SpecialReg::Ps, eps2);
    assert!(m.board.mem.write_bytes(SCRATCH, &NULL_LOAD));
    m.cpu.set_pc(SCRATCH);
}

#[test]
fn a_null_pointer_load_prints_the_core_dump_and_restarts_the_chip() {
    let mut m = reference_machine();
    m.reset().expect("the ROM finds the image");
    run_until(&mut m, "[prov] ready", 1.0);
    crash_in_the_sketch(&mut m);
    let until = m.seconds() + 1.0;
    let out = run_until(&mut m, "reset=", until);
    // EPC2 still holds where the breakpoint stopped, as it would on a chip.
    let dump = "\nException (28):\nepc1=0x40107002 epc2=0x40206914 epc3=0x00000000 \
                excvaddr=0x00000000 depc=0x00000000\n";
    assert!(out.replace('\r', "").contains(dump), "{out}");
    let stack = out.find(">>>stack>>>").expect("the stack dump starts");
    let end = out.find("<<<stack<<<").expect("the stack dump ends");
    assert!(stack < end, "{out}");
    assert!(
        out[stack..end].contains("ctx: cont"),
        "the sketch's stack: {out}"
    );
    let banner = out
        .find("ets Jan  8 2013,rst cause:2, boot mode:(3,6)")
        .expect("the ROM starts again");
    assert!(end < banner, "{out}");
    assert_eq!(m.restarts, 1);
    assert!(
        out[banner..].contains("[boot] fw=hil-reference version=1.0.0 reset=Exception"),
        "the sketch sees why it restarted: {out}"
    );
}
