//! The mask ROM, without Espressif's ROM: no dump is read. When the CPU's PC
//! reaches the address of a ROM function (as `eagle.rom.addr.v6.ld` places them),
//! the machine performs the function natively on the CPU state, with the call0
//! ABI: arguments in a2..a7 then on the stack at a1, the result in a2, return to a0.
//!
//! A native function that must run firmware code (the scheduler calling a task,
//! `ets_printf` calling the installed character function, the interrupt dispatcher
//! calling a handler) sets up a call0 into it whose return address is a trampoline
//! address in the ROM's unused top page; reaching it resumes the native function.
//!
//! The parts: [`boot`] (reset, banner, image load), `libc` (memory, string and
//! arithmetic helpers), `printf` (the ROM's formatter), `sched` (tasks, idle,
//! interrupts and exception handlers), `flash` (SPI flash and cache functions),
//! [`names`] (every ROM function's name, for reports).

pub mod boot;
mod flash;
mod libc;
pub mod names;
mod printf;
mod sched;

use std::collections::{BTreeMap, VecDeque};

use lx106::{Bus, Cpu};
use thiserror::Error;

use crate::board::Board;
use crate::uart::TxByte;

/// Return address of a call to the installed character output function.
pub const RET_PUTC: u32 = 0x4000_FF00;
/// Return address of a task the scheduler called.
pub const RET_TASK: u32 = 0x4000_FF04;
/// Return address of an interrupt handler the dispatcher called.
pub const RET_ISR: u32 = 0x4000_FF08;
/// Return address of the idle callback.
pub const RET_IDLE: u32 = 0x4000_FF0C;
/// The scheduler's wait: real code (`waiti 0`) the CPU executes.
pub const IDLE_WAITI: u32 = 0x4000_FF10;
/// After the wait: back into the scheduler.
pub const IDLE_AFTER: u32 = 0x4000_FF13;
/// Return address of a C exception handler the wrapper called.
pub const RET_EXC: u32 = 0x4000_FF18;

/// The PHY function table `phy_get_romfuncs` returns: 64 pointers to the stubs.
pub const PHY_STUB_TABLE: u32 = 0x4000_FC00;
/// The PHY stubs (one word each): native functions that do nothing and return 0.
/// They stand for the ROM's radio helpers (rom_i2c_writeReg and friends, the RF
/// calibration steps) that the PHY library calls through the table.
pub const PHY_STUBS: u32 = 0x4000_FD00;

/// The ROM's data: the exception handler table (64 entries, by EXCCAUSE).
pub const EXC_HANDLER_TABLE: u32 = 0x3FFF_C000;
/// The ROM's data: the C exception handlers `_xtos_set_exception_handler` records.
pub const C_HANDLER_TABLE: u32 = 0x3FFF_C100;
/// The ROM's data: `flashchip`, a pointer to the flash chip description.
pub const FLASHCHIP: u32 = 0x3FFF_C714;
/// Where `flashchip` points: the `SpiFlashChip` struct (id, size, block, sector,
/// page, status mask).
pub const FLASHCHIP_STRUCT: u32 = 0x3FFF_C718;
/// Top of the stack the ROM runs on and leaves to the image it boots.
pub const ROM_STACK_TOP: u32 = 0x3FFF_FFF0;

/// Why the ROM stopped the machine.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RomStop {
    /// The firmware called a ROM function the machine does not implement.
    #[error("ROM function {name} ({addr:#010x}) is not implemented (called from {caller:#010x})")]
    Unimplemented {
        /// Its address.
        addr: u32,
        /// Its name from the linker script, or "?".
        name: &'static str,
        /// The return address (a0) the firmware called it with.
        caller: u32,
    },
    /// An exception reached the ROM's unhandled-exception handler.
    #[error("unhandled exception {cause} at {epc:#010x} (EXCVADDR {excvaddr:#010x})")]
    UnhandledException {
        /// EXCCAUSE.
        cause: u32,
        /// EPC1.
        epc: u32,
        /// EXCVADDR.
        excvaddr: u32,
    },
    /// A native function was handed memory it cannot reach.
    #[error("ROM function {name} got an address it cannot access: {addr:#010x}")]
    BadPointer {
        /// The function.
        name: &'static str,
        /// The address.
        addr: u32,
    },
    /// The ROM found nothing to boot (erased flash, bad checksum).
    #[error("the ROM found no bootable image")]
    NoImage,
    /// The firmware asked for a reset (software reset, eboot failure).
    #[error("the firmware reset the chip")]
    Reset,
}

/// A task the scheduler runs (`ets_task`).
#[derive(Debug, Clone)]
struct Task {
    func: u32,
    queue: u32,
    len: u32,
    /// Pending (sig, par) events.
    events: VecDeque<(u32, u32)>,
    /// The next queue slot to hand out.
    slot: u32,
}

/// A character function call in progress: the bytes left and where to return.
#[derive(Debug, Clone)]
struct PutcFrame {
    func: u32,
    rest: VecDeque<u8>,
    ret: u32,
    result: u32,
    sp: u32,
}

/// An interrupt dispatch in progress: the interrupted context and the handlers left.
#[derive(Debug, Clone)]
struct IsrFrame {
    regs: [u32; 16],
    sar: u32,
    ps: u32,
    epc1: u32,
    pending: u32,
}

/// The ROM's state: what its data in RAM would hold on a chip.
#[derive(Debug, Clone)]
pub struct Rom {
    putc1: Option<u32>,
    tasks: Vec<Option<Task>>,
    idle_cb: Option<(u32, u32)>,
    isr: [(u32, u32); 16],
    putc_frames: Vec<PutcFrame>,
    isr_frames: Vec<IsrFrame>,
    /// The exception frames of C exception handlers running (their addresses).
    exc_frames: Vec<u32>,
    cpu_mhz: u32,
    /// The ROM's own output goes to UART1 (`uart_buff_switch(1)`).
    console_uart1: bool,
    /// Calls per ROM function address.
    pub calls: BTreeMap<u32, u64>,
    /// Print each ROM call as it happens (for tracing).
    pub trace: bool,
}

impl Default for Rom {
    fn default() -> Self {
        Rom::new()
    }
}

/// What a native function did.
pub(crate) enum Flow {
    /// Return to a0 with this value in a2 (or a2 untouched).
    Return(Option<u32>),
    /// PC and registers are already set (a call into firmware, a jump).
    Jumped,
}

/// The machine parts a native function works on.
pub(crate) struct Ctx<'a> {
    pub cpu: &'a mut Cpu,
    pub board: &'a mut Board,
    pub rom: &'a mut Rom,
}

impl Ctx<'_> {
    /// Argument `i` of a call0 call (a2.. then the stack).
    pub fn arg(&self, i: usize) -> u32 {
        if i < 6 {
            self.cpu.ar(2 + i)
        } else {
            let at = self.cpu.ar(1).wrapping_add(4 * (i as u32 - 6));
            self.board.mem.read_u32(at).unwrap_or(0)
        }
    }

    /// Bytes from firmware memory (RAM and flash directly; anything else, registers
    /// included, through the bus as the ROM's own loads would go).
    pub fn read(&mut self, name: &'static str, addr: u32, len: usize) -> Result<Vec<u8>, RomStop> {
        if len == 0 {
            return Ok(Vec::new());
        }
        if let Some(bytes) = self.board.mem.read_bytes(addr, len) {
            return Ok(bytes);
        }
        (0..len as u32)
            .map(|i| {
                let at = addr.wrapping_add(i);
                self.board
                    .read8(at)
                    .map_err(|_| RomStop::BadPointer { name, addr: at })
            })
            .collect()
    }

    /// Bytes into firmware RAM (or, elsewhere, through the bus).
    pub fn write(&mut self, name: &'static str, addr: u32, data: &[u8]) -> Result<(), RomStop> {
        if data.is_empty() || self.board.mem.write_bytes(addr, data) {
            return Ok(());
        }
        for (i, &b) in data.iter().enumerate() {
            let at = addr.wrapping_add(i as u32);
            self.board
                .write8(at, b)
                .map_err(|_| RomStop::BadPointer { name, addr: at })?;
        }
        Ok(())
    }

    /// A C string from firmware memory.
    pub fn cstr(&self, name: &'static str, addr: u32) -> Result<Vec<u8>, RomStop> {
        self.board
            .mem
            .read_cstr(addr, 4096)
            .ok_or(RomStop::BadPointer { name, addr })
    }

    /// Starts a call0 call into firmware at `func` that returns to `ret`.
    pub fn call(&mut self, func: u32, args: &[u32], ret: u32) {
        for (i, a) in args.iter().enumerate() {
            self.cpu.set_ar(2 + i, *a);
        }
        self.cpu.set_ar(0, ret);
        self.cpu.set_pc(func);
    }

    /// Lets `cycles` CPU cycles pass without executing (a busy wait done natively).
    pub fn spend(&mut self, cycles: u64) {
        self.cpu.advance_cycles(cycles);
        self.board.now += cycles;
    }

    /// Sends bytes on UART0 at the ROM's rate, as the ROM's own UART output does.
    pub fn uart0_raw(&mut self, bytes: &[u8]) {
        let baud = self.board.uart0.baud(self.board.apb_hz);
        let cycle = self.board.now;
        self.board
            .uart0
            .tx
            .extend(bytes.iter().map(|&byte| TxByte { byte, baud, cycle }));
    }
}

impl Rom {
    /// The ROM's state at reset.
    pub fn new() -> Rom {
        Rom {
            putc1: None,
            tasks: vec![None; 32],
            idle_cb: None,
            isr: [(0, 0); 16],
            putc_frames: Vec::new(),
            isr_frames: Vec::new(),
            exc_frames: Vec::new(),
            cpu_mhz: 80,
            console_uart1: false,
            calls: BTreeMap::new(),
            trace: false,
        }
    }

    /// Whether the CPU at `pc` is in a native ROM function (rather than executing).
    #[inline]
    pub fn is_native(pc: u32) -> bool {
        pc >> 16 == 0x4000 && pc != IDLE_WAITI
    }

    /// Performs the ROM function at the CPU's PC.
    pub fn dispatch(&mut self, cpu: &mut Cpu, board: &mut Board) -> Result<(), RomStop> {
        let pc = cpu.pc();
        if self.trace && pc < PHY_STUB_TABLE {
            eprintln!(
                "rom: {} ({:#x}, {:#x}, {:#x}) from {:#010x}",
                names::rom_name(pc).unwrap_or("?"),
                cpu.ar(2),
                cpu.ar(3),
                cpu.ar(4),
                cpu.ar(0)
            );
        }
        *self.calls.entry(pc).or_insert(0) += 1;
        let mut ctx = Ctx {
            cpu,
            board,
            rom: self,
        };
        let flow = match pc {
            PHY_STUBS..=0x4000_FDFF => Flow::Return(Some(0)),
            // phy_get_romfuncs
            0x4000_6b08 => Flow::Return(Some(PHY_STUB_TABLE)),
            RET_PUTC => printf::putc_next(&mut ctx)?,
            RET_TASK | RET_IDLE | IDLE_AFTER => sched::ets_run(&mut ctx)?,
            RET_ISR => sched::isr_next(&mut ctx)?,
            RET_EXC => sched::exc_return(&mut ctx)?,
            _ => match libc::call(&mut ctx, pc)? {
                Some(flow) => flow,
                None => match printf::call(&mut ctx, pc)? {
                    Some(flow) => flow,
                    None => match sched::call(&mut ctx, pc)? {
                        Some(flow) => flow,
                        None => match flash::call(&mut ctx, pc)? {
                            Some(flow) => flow,
                            None => {
                                return Err(RomStop::Unimplemented {
                                    addr: pc,
                                    name: names::rom_name(pc).unwrap_or("?"),
                                    caller: ctx.cpu.ar(0),
                                })
                            }
                        },
                    },
                },
            },
        };
        if let Flow::Return(value) = flow {
            if let Some(v) = value {
                ctx.cpu.set_ar(2, v);
            }
            let ret = ctx.cpu.ar(0);
            ctx.cpu.set_pc(ret);
        }
        Ok(())
    }

    /// Prepares the ROM's data in RAM and its trampolines: the exception handler
    /// table (every cause to the unhandled handler, level-1 interrupts to the
    /// dispatcher), the flash chip description, and the idle loop's `waiti 0`.
    pub fn init_ram(&mut self, cpu: &mut Cpu, board: &mut Board) {
        for cause in 0..64u32 {
            let handler = if cause == 4 {
                sched::XTOS_L1INT_HANDLER
            } else {
                sched::XTOS_UNHANDLED_EXCEPTION
            };
            board
                .mem
                .write_bytes(EXC_HANDLER_TABLE + 4 * cause, &handler.to_le_bytes());
        }
        // SpiFlashChip { deviceId, chip_size, block_size, sector_size, page_size, status_mask }
        let chip = [
            crate::spi_flash::JEDEC_ID,
            4 << 20,
            0x1_0000,
            0x1000,
            0x100,
            0xFFFF,
        ];
        for (i, w) in chip.iter().enumerate() {
            board
                .mem
                .write_bytes(FLASHCHIP_STRUCT + 4 * i as u32, &w.to_le_bytes());
        }
        board
            .mem
            .write_bytes(FLASHCHIP, &FLASHCHIP_STRUCT.to_le_bytes());
        for i in 0..64u32 {
            board
                .mem
                .rom
                .write(PHY_STUB_TABLE + 4 * i, &(PHY_STUBS + 4 * i).to_le_bytes());
        }
        // waiti 0 (then IDLE_AFTER is native).
        board.mem.rom.write(IDLE_WAITI, &[0x00, 0x70, 0x00]);
        let _ = cpu;
    }

    /// Number of the ROM's calls so far, by function name.
    pub fn call_counts(&self) -> Vec<(String, u64)> {
        self.calls
            .iter()
            .map(|(&a, &n)| {
                let name = names::rom_name(a).map_or_else(|| format!("{a:#010x}"), str::to_string);
                (name, n)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::BoardConfig;
    use lx106::SpecialReg;

    const RET: u32 = 0x4010_0100;

    fn setup() -> (Cpu, Board, Rom) {
        let mut cpu = Cpu::new();
        let mut board = Board::new(&[0xAA; 0x2000], &BoardConfig::default());
        let mut rom = Rom::new();
        rom.init_ram(&mut cpu, &mut board);
        cpu.set_ar(1, 0x3FFF_E000);
        (cpu, board, rom)
    }

    fn call(cpu: &mut Cpu, board: &mut Board, rom: &mut Rom, func: u32, args: &[u32]) -> u32 {
        for (i, a) in args.iter().enumerate() {
            cpu.set_ar(2 + i, *a);
        }
        cpu.set_ar(0, RET);
        cpu.set_pc(func);
        rom.dispatch(cpu, board).expect("the ROM function runs");
        assert_eq!(cpu.pc(), RET, "returns to a0");
        cpu.ar(2)
    }

    #[test]
    fn memory_and_string_functions() {
        let (mut cpu, mut board, mut rom) = setup();
        board.mem.write_bytes(0x3FFE_9000, b"hello\0");
        // memcpy, strlen, strcmp, memset
        assert_eq!(
            call(
                &mut cpu,
                &mut board,
                &mut rom,
                0x4000_df48,
                &[0x3FFE_9100, 0x3FFE_9000, 6]
            ),
            0x3FFE_9100
        );
        assert_eq!(
            call(&mut cpu, &mut board, &mut rom, 0x4000_bf4c, &[0x3FFE_9100]),
            5
        );
        assert_eq!(
            call(
                &mut cpu,
                &mut board,
                &mut rom,
                0x4000_bdc8,
                &[0x3FFE_9000, 0x3FFE_9100]
            ),
            0
        );
        call(
            &mut cpu,
            &mut board,
            &mut rom,
            0x4000_e190,
            &[0x3FFE_9100, b'x'.into(), 2],
        );
        assert_eq!(
            board.mem.read_cstr(0x3FFE_9100, 16),
            Some(b"xxllo".to_vec())
        );
        // __udivdi3: 10^12 / 7, in a2/a3 and a4/a5.
        let n = 1_000_000_000_000u64;
        let lo = call(
            &mut cpu,
            &mut board,
            &mut rom,
            0x4000_d310,
            &[n as u32, (n >> 32) as u32, 7, 0],
        );
        assert_eq!(u64::from(cpu.ar(3)) << 32 | u64::from(lo), n / 7);
    }

    #[test]
    fn flash_read_and_cache_mapping() {
        let (mut cpu, mut board, mut rom) = setup();
        assert_eq!(
            call(
                &mut cpu,
                &mut board,
                &mut rom,
                0x4000_4b1c,
                &[0x10, 0x3FFE_9000, 8]
            ),
            0
        );
        assert_eq!(board.mem.read_u32(0x3FFE_9000), Some(0xAAAA_AAAA));
        assert_eq!(board.mem.read_u32(0x4020_0000), None);
        call(&mut cpu, &mut board, &mut rom, 0x4000_4678, &[0, 0, 1]);
        assert_eq!(board.mem.read_u32(0x4020_0000), Some(0xAAAA_AAAA));
        // Out of the chip: an error, not a crash.
        assert_eq!(
            call(
                &mut cpu,
                &mut board,
                &mut rom,
                0x4000_4b1c,
                &[0x3F_FFFC, 0x3FFE_9000, 8]
            ),
            1
        );
    }

    #[test]
    fn printf_goes_to_the_rom_uart_with_crlf() {
        let (mut cpu, mut board, mut rom) = setup();
        board.mem.write_bytes(0x3FFE_9000, b"n=%d %s\n\0");
        board.mem.write_bytes(0x3FFE_9100, b"ok\0");
        let n = call(
            &mut cpu,
            &mut board,
            &mut rom,
            printf::ETS_PRINTF,
            &[0x3FFE_9000, (-4i32) as u32, 0x3FFE_9100],
        );
        assert_eq!(n, 8, "the count of formatted bytes, before CR insertion");
        let text: Vec<u8> = board.uart0.tx.iter().map(|b| b.byte).collect();
        assert_eq!(text, b"n=-4 ok\r\n");
    }

    #[test]
    fn printf_calls_an_installed_character_function_per_byte() {
        let (mut cpu, mut board, mut rom) = setup();
        call(&mut cpu, &mut board, &mut rom, 0x4000_242c, &[0x4010_0200]);
        board.mem.write_bytes(0x3FFE_9000, b"ab\0");
        cpu.set_ar(2, 0x3FFE_9000);
        cpu.set_ar(0, RET);
        cpu.set_pc(printf::ETS_PRINTF);
        rom.dispatch(&mut cpu, &mut board).unwrap();
        assert_eq!(
            (cpu.pc(), cpu.ar(2), cpu.ar(0)),
            (0x4010_0200, u32::from(b'a'), RET_PUTC)
        );
        cpu.set_pc(RET_PUTC);
        rom.dispatch(&mut cpu, &mut board).unwrap();
        assert_eq!((cpu.pc(), cpu.ar(2)), (0x4010_0200, u32::from(b'b')));
        cpu.set_pc(RET_PUTC);
        rom.dispatch(&mut cpu, &mut board).unwrap();
        assert_eq!((cpu.pc(), cpu.ar(2)), (RET, 2));
        assert!(board.uart0.tx.is_empty());
    }

    #[test]
    fn tasks_run_by_priority_and_the_scheduler_waits_when_idle() {
        let (mut cpu, mut board, mut rom) = setup();
        call(
            &mut cpu,
            &mut board,
            &mut rom,
            0x4000_0dd0,
            &[0x4010_1000, 1, 0x3FFE_A000, 4],
        );
        call(
            &mut cpu,
            &mut board,
            &mut rom,
            0x4000_0dd0,
            &[0x4010_2000, 2, 0x3FFE_A100, 1],
        );
        assert_eq!(
            call(&mut cpu, &mut board, &mut rom, 0x4000_0e24, &[1, 11, 111]),
            0
        );
        assert_eq!(
            call(&mut cpu, &mut board, &mut rom, 0x4000_0e24, &[2, 22, 222]),
            0
        );
        assert_eq!(
            call(&mut cpu, &mut board, &mut rom, 0x4000_0e24, &[2, 23, 223]),
            1,
            "queue full"
        );
        cpu.set_pc(sched::ETS_RUN);
        rom.dispatch(&mut cpu, &mut board).unwrap();
        assert_eq!(cpu.pc(), 0x4010_2000, "the higher priority first");
        assert_eq!(board.mem.read_u32(cpu.ar(2) + 4), Some(222));
        cpu.set_pc(RET_TASK);
        rom.dispatch(&mut cpu, &mut board).unwrap();
        assert_eq!(cpu.pc(), 0x4010_1000);
        assert_eq!(board.mem.read_u32(cpu.ar(2)), Some(11));
        cpu.set_pc(RET_TASK);
        rom.dispatch(&mut cpu, &mut board).unwrap();
        assert_eq!(cpu.pc(), IDLE_WAITI, "nothing left: waiti");
    }

    #[test]
    fn level1_interrupts_call_the_attached_handler_and_return() {
        let (mut cpu, mut board, mut rom) = setup();
        call(
            &mut cpu,
            &mut board,
            &mut rom,
            0x4000_0f88,
            &[9, 0x4010_3000, 0x55],
        );
        call(&mut cpu, &mut board, &mut rom, 0x4000_0fa8, &[1 << 9]);
        cpu.raise_interrupt(9);
        // As the vector code leaves it: frame 256 below, a2..a4 saved in it.
        let sp = 0x3FFF_E000 - 256;
        board.mem.write_bytes(sp + 20, &7u32.to_le_bytes());
        cpu.set_ar(1, sp);
        cpu.set_ar(0, 0x1234);
        cpu.set_special_register(SpecialReg::Epc1, 0x4010_0400);
        cpu.set_special_register(SpecialReg::Ps, 0x30);
        cpu.set_pc(sched::XTOS_L1INT_HANDLER);
        rom.dispatch(&mut cpu, &mut board).unwrap();
        assert_eq!((cpu.pc(), cpu.ar(2)), (0x4010_3000, 0x55));
        assert_eq!(
            cpu.special_register(SpecialReg::Interrupt) & (1 << 9),
            0,
            "edge cleared"
        );
        cpu.set_pc(RET_ISR);
        rom.dispatch(&mut cpu, &mut board).unwrap();
        assert_eq!(cpu.pc(), 0x4010_0400);
        assert_eq!((cpu.ar(0), cpu.ar(1), cpu.ar(2)), (0x1234, 0x3FFF_E000, 7));
        assert_eq!(
            cpu.special_register(SpecialReg::Ps) & 0x10,
            0,
            "EXCM cleared as RFE does"
        );
    }

    #[test]
    fn an_unimplemented_function_names_itself_and_its_caller() {
        let (mut cpu, mut board, mut rom) = setup();
        cpu.set_ar(0, RET);
        cpu.set_pc(0x4000_7268);
        let err = rom.dispatch(&mut cpu, &mut board).unwrap_err();
        assert_eq!(
            err,
            RomStop::Unimplemented {
                addr: 0x4000_7268,
                name: "rom_i2c_readReg",
                caller: RET
            }
        );
    }
}
