//! The machine: CPU, board, native ROM and interceptions, and the loop that runs
//! them in virtual time.
//!
//! Time is the cycle count at 80 MHz: one cycle per instruction (as the `lx106`
//! crate counts), native ROM functions charge what they stand for (a delay, a flash
//! erase). When the CPU waits in WAITI the clock jumps to the next event: CCOMPARE0
//! (`Cpu::cycles_until_timer`) or a peripheral's (`Board::next_event`).

use std::collections::VecDeque;

use lx106::{Cpu, SpecialReg, StepOutcome};
use thiserror::Error;

use crate::board::{Board, BoardConfig};
use crate::intercept::{Action, Hit, Intercept, Intercepts, TABLE};
use crate::memory::ROM_BASE;
use crate::rom::boot::{self, Check, ROM_BAUD};
use crate::rom::{Rom, RomStop, IDLE_AFTER, RET_IDLE, RET_TASK, ROM_STACK_TOP};
use crate::symbols::Symbols;
use crate::uart::TxByte;
use crate::wifi::{AccessPoint, Event, Station, StationStatus};

/// The ROM's reset vector, where software jumps to restart the chip.
pub const ROM_RESET_VECTOR: u32 = 0x4000_0080;

/// CPU cycles per second.
pub const CPU_HZ: u64 = 80_000_000;

/// Why the machine stopped before its time was up.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Stop {
    /// The native ROM stopped it.
    #[error(transparent)]
    Rom(#[from] RomStop),
    /// The CPU waits in WAITI and nothing is armed that could wake it: no
    /// CCOMPARE0 match with the timer interrupt enabled, no FRC1/FRC2 expiry, no
    /// UART byte on its way. Input from outside (a UART line) may still wake it.
    #[error(
        "the CPU waits in WAITI with nothing armed to wake it (PC {pc:#010x}, \
         INTENABLE {intenable:#x}, PS {ps:#x}, FRC2 alarm {frc2_alarm:#x} already met)"
    )]
    IdleForever {
        /// Where it waits.
        pc: u32,
        /// The interrupts it would take.
        intenable: u32,
        /// PS while it waits.
        ps: u32,
        /// The FRC2 alarm value last programmed (it has fired, or FRC2 is stopped).
        frc2_alarm: u32,
    },
    /// The machine needs a firmware symbol the ELF does not have.
    #[error("the machine needs the firmware's {name}, which the ELF does not have")]
    MissingSymbol {
        /// The symbol.
        name: &'static str,
    },
    /// A debug exception (BREAK) with no debugger.
    #[error("debug exception (DEBUGCAUSE {cause:#x}) at {pc:#010x}")]
    Debug {
        /// DEBUGCAUSE.
        cause: u32,
        /// EPC2 (where it happened).
        pc: u32,
    },
}

/// Where firmware functions the machine calls return to (the ROM's unused top
/// page): the next call of the chain, or the return to the intercepted caller.
pub const RET_CHAIN: u32 = 0x4000_FF1C;

/// One step of a chain: a firmware call, or the machine's own work between calls.
#[derive(Debug, Clone)]
enum Step {
    /// Call0 into firmware with these arguments.
    Call(u32, Vec<u32>),
    /// Fill the pbuf `esp2glue_alloc_for_recv` gave (its pbuf and payload pointers
    /// are in the scratch words at the chain's stack) with the frame, then hand it
    /// to `esp2glue_ethernet_input` for the station's netif.
    FillFrame(Vec<u8>),
    /// Fill the `System_Event_t` the call before allocated (its address in a2;
    /// none: the event is dropped, as the SDK drops it) and post it to the SDK's
    /// event task, as libnet80211 does: `ets_post(EVENT_TASK_PRIO, 1, event)`.
    PostEvent(Event),
}

/// The ROM scheduler priority of the SDK's Wi-Fi event task
/// (`wifi_set_event_handler_cb` registers it; it calls the handler and frees the
/// event).
const EVENT_TASK_PRIO: u32 = 21;

/// Firmware calls the machine makes (for an intercepted function, or to deliver a
/// frame), and where it goes when they are done.
#[derive(Debug, Clone)]
struct Chain {
    steps: VecDeque<Step>,
    ret: u32,
    /// a2 on return (None: as the last call left it).
    result: Option<u32>,
    /// The stack pointer to restore, when the chain took scratch space below it.
    sp: Option<u32>,
}

/// The lwIP2 glue's number of the station interface (`STATION_IF`).
const STATION_NETIF: u32 = 0;

/// The emulated ESP8266.
#[derive(Debug)]
pub struct Machine {
    /// The CPU.
    pub cpu: Cpu,
    /// Memories and peripherals.
    pub board: Board,
    /// The native ROM.
    pub rom: Rom,
    /// The firmware's symbols (empty without an ELF).
    pub symbols: Symbols,
    /// The interception table, resolved.
    pub intercepts: Intercepts,
    /// The Wi-Fi station (configuration, frames).
    pub wifi: Station,
    /// The access point the station can join.
    pub access_point: Option<AccessPoint>,
    chains: Vec<Chain>,
    frames_in: VecDeque<Vec<u8>>,
    /// Instructions executed.
    pub instructions: u64,
    /// Exceptions the CPU took (by EXCCAUSE), interrupts included as cause 4.
    pub exceptions: [u64; 64],
    /// Software restarts (jumps to the ROM's reset vector) since the machine was made.
    pub restarts: u32,
    lines: u32,
    next_event: u64,
    /// The last PCs executed, when [`Machine::keep_history`] is on.
    history: VecDeque<u32>,
    keep_history: bool,
    /// Calls of watched functions ([`Machine::watch`]), oldest first.
    pub watched: Vec<WatchedCall>,
    watch_bytes: std::collections::HashMap<u32, usize>,
    /// Wi-Fi events the machine posted to the SDK's event task, oldest first.
    pub events_posted: Vec<Event>,
}

/// A call of a watched function, as the machine saw it at the function's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedCall {
    /// The function's address.
    pub addr: u32,
    /// a2..a7: the first six arguments.
    pub args: [u32; 6],
    /// The bytes at the first argument (as many as the watch asked for; empty
    /// when it points nowhere readable).
    pub at_arg0: Vec<u8>,
    /// Machine cycles since reset.
    pub cycle: u64,
}

impl Machine {
    /// A machine with `image` in flash (at offset 0), not yet reset.
    pub fn new(image: &[u8], config: &BoardConfig, symbols: Symbols) -> Machine {
        let intercepts = Intercepts::resolve(&symbols);
        Machine {
            cpu: Cpu::new(),
            board: Board::new(image, config),
            rom: Rom::new(),
            symbols,
            intercepts,
            wifi: Station::default(),
            access_point: config.access_point.clone(),
            chains: Vec::new(),
            frames_in: VecDeque::new(),
            instructions: 0,
            exceptions: [0; 64],
            restarts: 0,
            lines: 0,
            next_event: 0,
            history: VecDeque::new(),
            keep_history: false,
            watched: Vec::new(),
            watch_bytes: std::collections::HashMap::new(),
            events_posted: Vec::new(),
        }
    }

    /// Records every call of the firmware function at `addr` in
    /// [`Machine::watched`] (its arguments and `bytes` bytes at the first one),
    /// then lets it run: a breakpoint that does not stop, for tests and
    /// post-mortems. An interrupt taken right at the entry records the call
    /// twice.
    pub fn watch(&mut self, addr: u32, bytes: usize) {
        self.intercepts.watch(addr);
        self.watch_bytes.insert(addr, bytes);
    }

    /// Keeps the last `n` PCs for [`Machine::history`] (slower; for post-mortems).
    pub fn keep_history(&mut self, n: usize) {
        self.keep_history = n > 0;
        self.history = VecDeque::with_capacity(n);
    }

    /// The last PCs executed, oldest first.
    pub fn history(&self) -> impl Iterator<Item = u32> + '_ {
        self.history.iter().copied()
    }

    /// What the ROM does at reset: the banner at 74880 baud, the check of the image
    /// at flash 0 with its `load`/`tail`/`chksum`/`csum` lines, the copy of the
    /// segments, then a jump to the entry point with the registers the ROM leaves.
    pub fn reset(&mut self) -> Result<(), Stop> {
        self.rom.init_ram(&mut self.cpu, &mut self.board);
        let cause = self.board.rtc.cause().code();
        let mode = self.board.gpio.boot_mode;
        let cycle = self.board.now;
        let mut text = boot::banner(cause, mode);
        let (check, lines) = boot::check_image(&self.board.mem.flash);
        text.push_str(&lines);
        // The ROM's own UART setup: the divisor for 115200 at 80 MHz, which the
        // 26 MHz crystal turns into 74880 until the SDK sets the PLL; after a
        // software restart the PLL still runs and the ROM's lines come at 115200.
        self.board.uart0.set_clkdiv(694);
        let baud = if self.board.apb_hz == 52_000_000 {
            ROM_BAUD
        } else {
            self.board.uart0.baud(self.board.apb_hz)
        };
        self.board
            .uart0
            .tx
            .extend(text.bytes().map(|byte| TxByte { byte, baud, cycle }));
        let image = match check {
            Check::Valid(image) => image,
            Check::Unbootable(_) | Check::ChecksumError(_) => return Err(RomStop::NoImage.into()),
        };
        for seg in &image.segments {
            let data = self.board.mem.flash[seg.offset..seg.offset + seg.len].to_vec();
            if !self.board.mem.write_bytes(seg.addr, &data) {
                return Err(RomStop::BadPointer {
                    name: "the ROM's image loader",
                    addr: seg.addr,
                }
                .into());
            }
        }
        self.cpu.set_special_register(SpecialReg::Vecbase, ROM_BASE);
        // User mode (exceptions go to the user vector), interrupts at level 0.
        self.cpu.set_special_register(SpecialReg::Ps, 0x20);
        self.cpu.set_special_register(SpecialReg::Intenable, 0);
        self.cpu.set_ar(1, ROM_STACK_TOP);
        self.cpu.set_ar(0, 0);
        self.cpu.set_pc(image.entry);
        Ok(())
    }

    /// What happens when software jumps to the ROM's reset vector, as the SDK's
    /// `system_restart_core` does after a crash dump or `ESP.restart()`: the chip
    /// is not reset (RAM, RTC memory, peripherals and the PLL stay as they are);
    /// the CPU starts over in the ROM, which prints its banner with `rst cause:2`
    /// and boots the image again.
    fn restart(&mut self) -> Result<(), Stop> {
        let trace = self.rom.trace;
        self.cpu = Cpu::new();
        self.rom = Rom::new();
        self.chains.clear();
        self.rom.trace = trace;
        self.lines = 0;
        self.restarts += 1;
        self.reset()
    }

    /// Bytes UART0 sent since the last call.
    pub fn take_uart0(&mut self) -> Vec<TxByte> {
        std::mem::take(&mut self.board.uart0.tx)
    }

    /// Puts `bytes` on UART0's receive line, after any still on it: they reach the
    /// RX FIFO at the line rate the firmware set (ten bit times a byte), raising
    /// the UART interrupt as the chip does. Returns at once; [`Machine::run`] lets
    /// them arrive.
    pub fn uart0_receive(&mut self, bytes: &[u8]) {
        let now = self.board.now;
        let clock = self.board.apb_hz;
        self.board.uart0.receive(bytes, now, clock);
        self.next_event = self.board.next_event().unwrap_or(u64::MAX);
    }

    /// Emulated seconds since reset.
    pub fn seconds(&self) -> f64 {
        self.board.now as f64 / CPU_HZ as f64
    }

    /// Brings the CPU's interrupt lines in line with the peripherals.
    fn service(&mut self) {
        let now = self.board.now;
        self.board.update(now);
        let lines = self.board.irq_lines();
        let changed = lines ^ self.lines;
        if changed != 0 {
            for n in 0..15 {
                if changed & (1 << n) != 0 {
                    if lines & (1 << n) != 0 {
                        self.cpu.raise_interrupt(n);
                    } else {
                        self.cpu.clear_interrupt(n);
                    }
                }
            }
            self.lines = lines;
        }
        let edges = self.board.take_irq_edges();
        for n in 0..15 {
            if edges & (1 << n) != 0 {
                self.cpu.raise_interrupt(n);
                self.cpu.clear_interrupt(n);
            }
        }
        self.next_event = self.board.next_event().unwrap_or(u64::MAX);
        self.board.irq_dirty = false;
    }

    /// Runs for `cycles` CPU cycles of virtual time (or until something stops it).
    pub fn run(&mut self, cycles: u64) -> Result<(), Stop> {
        let end = self.board.now.saturating_add(cycles);
        self.service();
        while self.board.now < end {
            let pc = self.cpu.pc();
            if pc == RET_CHAIN {
                self.chain_next()?;
                self.board.now += 1;
                continue;
            }
            if pc == ROM_RESET_VECTOR {
                self.restart()?;
                self.board.now += 1;
                self.service();
                continue;
            }
            // A CPU halted in WAITI has its PC past the WAITI (in the ROM's idle
            // loop, a native address): it must wait, not run the ROM again.
            if Rom::is_native(pc) && !self.cpu.is_waiting() {
                if pc < ROM_BASE + 0x400 {
                    // An exception or interrupt while the ROM's vectors are in force.
                    return Err(RomStop::UnhandledException {
                        cause: self.cpu.special_register(SpecialReg::Exccause),
                        epc: self.cpu.special_register(SpecialReg::Epc1),
                        excvaddr: self.cpu.special_register(SpecialReg::Excvaddr),
                    }
                    .into());
                }
                if matches!(pc, IDLE_AFTER | RET_TASK | RET_IDLE)
                    && self.chains.is_empty()
                    && self.deliver_frame(pc)?
                {
                    self.board.now += 1;
                    continue;
                }
                self.rom.dispatch(&mut self.cpu, &mut self.board)?;
                self.board.now += 1;
                self.service();
                continue;
            }
            match self.intercepts.lookup(pc) {
                None => {}
                Some(Hit::Row(row)) if self.intercepted(row)? => {
                    self.board.now += 1;
                    continue;
                }
                Some(Hit::Row(_)) => {}
                Some(Hit::Watch) => self.record_watch(pc),
            }
            if self.keep_history {
                if self.history.len() == self.history.capacity() {
                    self.history.pop_front();
                }
                self.history.push_back(pc);
            }
            self.board.pc = pc;
            match self.cpu.step(&mut self.board) {
                StepOutcome::Executed => self.instructions += 1,
                StepOutcome::Exception(cause) => self.exceptions[cause as usize & 63] += 1,
                StepOutcome::Interrupt { .. } => self.exceptions[4] += 1,
                StepOutcome::Waiting => {
                    let timer = self.cpu.cycles_until_timer();
                    let timer = if self.cpu.special_register(SpecialReg::Intenable) & (1 << 6) != 0
                    {
                        timer
                    } else {
                        u64::MAX
                    };
                    let event = self.next_event.saturating_sub(self.board.now);
                    let skip = timer.min(event).min(end - self.board.now);
                    if timer == u64::MAX && self.next_event == u64::MAX {
                        return Err(Stop::IdleForever {
                            pc,
                            intenable: self.cpu.special_register(SpecialReg::Intenable),
                            ps: self.cpu.special_register(SpecialReg::Ps),
                            frc2_alarm: self.board.timers.frc2_alarm(),
                        });
                    }
                    let skip = skip.max(1);
                    self.cpu.advance_cycles(skip - 1);
                    self.board.now += skip - 1;
                }
                StepOutcome::Debug { cause } => {
                    return Err(Stop::Debug {
                        cause,
                        pc: self.cpu.special_register(SpecialReg::Epc2),
                    })
                }
            }
            self.board.now += 1;
            if self.board.irq_dirty || self.board.now >= self.next_event {
                self.service();
            }
        }
        Ok(())
    }

    fn record_watch(&mut self, pc: u32) {
        let mut args = [0; 6];
        for (i, a) in args.iter_mut().enumerate() {
            *a = self.cpu.ar(2 + i);
        }
        let len = self.watch_bytes.get(&pc).copied().unwrap_or(0);
        let at_arg0 = self.board.mem.read_bytes(args[0], len).unwrap_or_default();
        self.watched.push(WatchedCall {
            addr: pc,
            args,
            at_arg0,
            cycle: self.board.now,
        });
    }

    /// Does what the interception row `row` says at the function's entry; true when
    /// the machine took the call over (PC is set), false when the function runs.
    fn intercepted(&mut self, row: &'static Intercept) -> Result<bool, Stop> {
        match row.action {
            Action::Return(v) => self.cpu.set_ar(2, v),
            Action::ReturnWithPll(v) => {
                self.cpu.set_ar(2, v);
                self.board.apb_hz = 80_000_000;
            }
            Action::ReturnVoid => {}
            Action::PhyRegister => {
                self.cpu.set_ar(2, 0);
                self.board.apb_hz = 80_000_000;
                if let Some(at) = self.symbols.addr_of("g_phyFuns") {
                    self.board
                        .mem
                        .write_bytes(at, &crate::rom::PHY_STUB_TABLE.to_le_bytes());
                }
            }
            Action::StationConfig => {
                if let Some(raw) = self.board.mem.read_bytes(self.cpu.ar(2), 96) {
                    self.wifi.set_config(&raw);
                }
                return Ok(false);
            }
            Action::StationConnect => return self.station_connect().map(|()| true),
            Action::LinkOutput => {
                let (reference, data, size) = (self.cpu.ar(3), self.cpu.ar(4), self.cpu.ar(5));
                let frame =
                    self.board
                        .mem
                        .read_bytes(data, size as usize)
                        .ok_or(RomStop::BadPointer {
                            name: "glue2esp_linkoutput",
                            addr: data,
                        })?;
                self.wifi.frame_out(frame);
                let freed = self.firmware_fn("esp2glue_pbuf_freed")?;
                self.chain(vec![Step::Call(freed, vec![reference])], 0);
                return Ok(true);
            }
        }
        let ret = self.cpu.ar(0);
        self.cpu.set_pc(ret);
        Ok(true)
    }

    /// The address of a firmware function the machine calls.
    fn firmware_fn(&self, name: &'static str) -> Result<u32, Stop> {
        self.symbols
            .addr_of(name)
            .ok_or(Stop::MissingSymbol { name })
    }

    /// `wifi_station_connect`: the station status the join gives, written where
    /// the SDK keeps it (the byte at offset 210 of the station interface
    /// `g_ic.ic_if0` points to: what `wifi_station_get_connect_status` reads and
    /// `system_station_got_ip_set` sets to 5), and the SDK's event for it posted
    /// to the firmware's handler (`EVENT_STAMODE_CONNECTED`, or
    /// `EVENT_STAMODE_DISCONNECTED` with its reason); on success the station
    /// netif (the interface's first word, as `eagle_auth_done` takes it) goes up
    /// and its DHCP client starts, through the glue's `netif_set_up` and
    /// `dhcp_start`.
    fn station_connect(&mut self) -> Result<(), Stop> {
        let g_ic = self.firmware_fn("g_ic")?;
        let iface = self.board.mem.read_u32(g_ic + 16).unwrap_or(0);
        let netif = self.board.mem.read_u32(iface).unwrap_or(0);
        if iface == 0 || netif == 0 {
            // No station interface yet (the SDK's own start-up call, before the
            // sketch sets the mode): the SDK returns false and does nothing.
            self.chain(Vec::new(), 0);
            return Ok(());
        }
        let (status, event) = self.wifi.join(self.access_point.as_ref());
        self.board.mem.write_bytes(iface + 210, &[status as u8]);
        let mut steps = self.post_event(event)?;
        if status == StationStatus::Connecting {
            steps.push(Step::Call(self.firmware_fn("netif_set_up")?, vec![netif]));
            steps.push(Step::Call(self.firmware_fn("dhcp_start")?, vec![netif]));
        }
        self.chain(steps, 1);
        Ok(())
    }

    /// The steps that hand `event` to the firmware's Wi-Fi event handler as the
    /// SDK does: a `System_Event_t` from `pvPortZalloc`, posted to the event task.
    /// None when the firmware registered no handler (`event_cb` is null, or the
    /// image has no SDK event handling at all): the SDK posts nothing then.
    fn post_event(&mut self, event: Event) -> Result<Vec<Step>, Stop> {
        let Some(cb) = self.symbols.addr_of("event_cb") else {
            return Ok(Vec::new());
        };
        if self.board.mem.read_u32(cb).unwrap_or(0) == 0 {
            return Ok(Vec::new());
        }
        let zalloc = self.firmware_fn("pvPortZalloc")?;
        // (size, file, line): the SDK passes its source position for heap
        // debugging; none here.
        Ok(vec![
            Step::Call(zalloc, vec![Event::SIZE as u32, 0, 0]),
            Step::PostEvent(event),
        ])
    }

    /// Calls firmware functions one after the other (call0, each returning to the
    /// machine's trampoline), then returns from the intercepted function to its
    /// caller (a0 at the interception) with `result` in a2. Chains nest: a function
    /// called may reach another interception that chains its own calls.
    fn chain(&mut self, steps: Vec<Step>, result: u32) {
        self.chains.push(Chain {
            steps: steps.into(),
            ret: self.cpu.ar(0),
            result: Some(result),
            sp: None,
        });
        self.cpu.set_pc(RET_CHAIN);
    }

    /// Queues an Ethernet frame for the station. It is delivered as the SDK
    /// delivers received frames, from the scheduler between tasks: into a pbuf from
    /// `esp2glue_alloc_for_recv`, then `esp2glue_ethernet_input` for the station
    /// netif, so the image's lwIP takes it.
    pub fn frame_in(&mut self, frame: &[u8]) {
        self.frames_in.push_back(frame.to_vec());
        // The MAC's receive interrupt would end the scheduler's wait.
        if self.cpu.is_waiting() && self.cpu.pc() == IDLE_AFTER {
            self.cpu.set_pc(IDLE_AFTER);
        }
    }

    /// At the scheduler, between tasks: starts delivering the next frame, if any.
    fn deliver_frame(&mut self, pc: u32) -> Result<bool, Stop> {
        let Some(frame) = self.frames_in.pop_front() else {
            return Ok(false);
        };
        let alloc = self.firmware_fn("esp2glue_alloc_for_recv")?;
        let sp = self.cpu.ar(1);
        let scratch = sp - 16;
        self.cpu.set_ar(1, sp - 32);
        self.chains.push(Chain {
            steps: VecDeque::from([
                Step::Call(alloc, vec![frame.len() as u32, scratch, scratch + 4]),
                Step::FillFrame(frame),
            ]),
            ret: pc,
            result: None,
            sp: Some(sp),
        });
        self.cpu.set_pc(RET_CHAIN);
        Ok(true)
    }

    /// The trampoline: the next call of the innermost chain, or its end.
    fn chain_next(&mut self) -> Result<(), Stop> {
        let Some(chain) = self.chains.last_mut() else {
            return Err(RomStop::BadPointer {
                name: "the machine's call trampoline (no call in progress)",
                addr: RET_CHAIN,
            }
            .into());
        };
        match chain.steps.pop_front() {
            Some(Step::Call(func, args)) => {
                for (i, a) in args.iter().enumerate() {
                    self.cpu.set_ar(2 + i, *a);
                }
                self.cpu.set_ar(0, RET_CHAIN);
                self.cpu.set_pc(func);
                return Ok(());
            }
            Some(Step::FillFrame(frame)) => {
                let scratch = chain.sp.unwrap_or(0).wrapping_sub(16);
                let pbuf = self.board.mem.read_u32(scratch).unwrap_or(0);
                let data = self.board.mem.read_u32(scratch + 4).unwrap_or(0);
                // No pbuf (lwIP is out of memory): the frame is dropped, as the
                // SDK's ethernet_input drops it.
                if pbuf != 0 && self.board.mem.write_bytes(data, &frame) {
                    let input = self.firmware_fn("esp2glue_ethernet_input")?;
                    if let Some(chain) = self.chains.last_mut() {
                        chain
                            .steps
                            .push_front(Step::Call(input, vec![STATION_NETIF, pbuf]));
                    }
                }
                self.cpu.set_pc(RET_CHAIN);
                return Ok(());
            }
            Some(Step::PostEvent(event)) => {
                let at = self.cpu.ar(2);
                // No memory (pvPortZalloc returned null): the SDK drops the event.
                if at != 0 && self.board.mem.write_bytes(at, &event.to_bytes()) {
                    let post = self.firmware_fn("ets_post")?;
                    if let Some(chain) = self.chains.last_mut() {
                        chain
                            .steps
                            .push_front(Step::Call(post, vec![EVENT_TASK_PRIO, 1, at]));
                    }
                    self.events_posted.push(event);
                }
                self.cpu.set_pc(RET_CHAIN);
                return Ok(());
            }
            None => {}
        }
        let done = self.chains.pop().expect("a chain is in progress");
        if let Some(v) = done.result {
            self.cpu.set_ar(2, v);
        }
        if let Some(sp) = done.sp {
            self.cpu.set_ar(1, sp);
        }
        self.cpu.set_pc(done.ret);
        Ok(())
    }

    /// Frames the station's lwIP sent since the last call (Ethernet II, as lwIP
    /// built them).
    pub fn take_frames_out(&mut self) -> Vec<Vec<u8>> {
        self.wifi.take_frames_out()
    }

    /// The interception table with its hit counts.
    pub fn intercept_hits(&self) -> Vec<(&'static str, u64)> {
        TABLE
            .iter()
            .zip(&self.intercepts.hits)
            .map(|(row, &n)| (row.symbol, n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::DPORT_EDGE_INT_ENABLE;
    use crate::memory::IRAM_BASE;
    use crate::timers::{CTRL_ENABLE, FRC2_ALARM, FRC2_CTRL};
    use lx106::Bus;

    /// Regression: the CPU halted in the ROM's idle loop has its PC at a native
    /// address; it used to run the scheduler again instead of waiting, spinning
    /// through every emulated second with nothing happening.
    #[test]
    fn the_rom_idle_loop_waits_rather_than_spinning() {
        let mut m = waiting_machine();
        m.rom.init_ram(&mut m.cpu, &mut m.board);
        m.cpu.set_pc(crate::rom::IDLE_AFTER);
        let err = m.run(CPU_HZ).unwrap_err();
        assert!(
            matches!(err, Stop::IdleForever { pc, .. } if pc == crate::rom::IDLE_AFTER),
            "{err}"
        );
        assert_eq!(m.instructions, 1, "one WAITI");
    }

    /// A byte load from the flash window raises LoadStoreError; through a user
    /// vector like the SDK's (a2..a4 into a 256-byte frame, then the handler the
    /// exception table names), the ROM's C wrapper calls the handler
    /// `_xtos_set_exception_handler` recorded with the frame, and resumes from the
    /// frame the handler changed: the loaded register and EPC moved past the load,
    /// as the core's non-32-bit access handler does.
    #[test]
    fn a_c_exception_handler_runs_and_the_frame_it_changed_comes_back() {
        // addmi a1, a1, -256; s32i a2..a4, a1, 20..28; a3 = 0x40000598; jx a3
        const VECTOR: [u8; 30] = [
            0x12, 0xd1, 0xff, 0x22, 0x61, 0x05, 0x32, 0x61, 0x06, 0x42, 0x61, 0x07, 0x32, 0xa4,
            0x00, 0xc0, 0x33, 0x01, 0x32, 0xd3, 0x05, 0x32, 0xc3, 0x7f, 0x32, 0xc3, 0x19, 0xa0,
            0x03, 0x00,
        ];
        // ef->epc += 3; ef->a3 = 0x55; ret
        const HANDLER: [u8; 18] = [
            0x42, 0x22, 0x00, 0x42, 0xc4, 0x03, 0x42, 0x62, 0x00, 0x42, 0xa0, 0x55, 0x42, 0x62,
            0x06, 0x80, 0x00, 0x00,
        ];
        // l8ui a3, a5, 1; waiti 0
        const LOAD: [u8; 6] = [0x32, 0x05, 0x01, 0x00, 0x70, 0x00];
        const HANDLER_AT: u32 = IRAM_BASE + 0x300;
        let mut m = Machine::new(
            &[0x11, 0x22, 0x33, 0x44],
            &BoardConfig::default(),
            Symbols::empty(),
        );
        m.rom.init_ram(&mut m.cpu, &mut m.board);
        m.board.set_cache(true);
        m.board.mem.write_bytes(USER_VECTOR, &VECTOR);
        m.board.mem.write_bytes(HANDLER_AT, &HANDLER);
        m.board.mem.write_bytes(CODE, &LOAD);
        m.cpu.set_special_register(SpecialReg::Vecbase, IRAM_BASE);
        m.cpu.set_special_register(SpecialReg::Ps, 0x20);
        m.cpu.set_ar(1, 0x3FFF_E000);
        m.cpu.set_ar(5, 0x4020_0000);
        // _xtos_set_exception_handler(3, handler), returning to the load.
        m.cpu.set_ar(2, 3);
        m.cpu.set_ar(3, HANDLER_AT);
        m.cpu.set_ar(0, CODE);
        m.cpu.set_pc(0x4000_0454);
        let err = m.run(CPU_HZ).unwrap_err();
        assert!(
            matches!(err, Stop::IdleForever { pc, .. } if pc == CODE + 6),
            "resumed after the load: {err}"
        );
        assert_eq!(m.exceptions[3], 1, "one LoadStoreError");
        assert_eq!(m.cpu.ar(3), 0x55, "the register the handler wrote");
        assert_eq!(m.cpu.ar(5), 0x4020_0000, "the others as they were");
        assert_eq!(m.cpu.ar(1), 0x3FFF_E000, "the stack as it was");
        assert_eq!(
            m.cpu.special_register(SpecialReg::Ps) & 0x10,
            0,
            "EXCM left"
        );
    }

    const INUM_FRC2_LINE: u32 = crate::board::INUM_FRC2;
    const WAITI_0: [u8; 3] = [0x00, 0x70, 0x00];
    const CODE: u32 = IRAM_BASE + 0x200;
    /// The user exception vector (VECBASE + 0x50) where a level-1 interrupt goes.
    const USER_VECTOR: u32 = IRAM_BASE + 0x50;

    /// A bare machine: `waiti 0` at CODE and at the user vector, user mode.
    fn waiting_machine() -> Machine {
        let mut m = Machine::new(&[], &BoardConfig::default(), Symbols::empty());
        m.board.mem.write_bytes(CODE, &WAITI_0);
        m.board.mem.write_bytes(USER_VECTOR, &WAITI_0);
        m.cpu.set_special_register(SpecialReg::Vecbase, IRAM_BASE);
        m.cpu.set_special_register(SpecialReg::Ps, 0x20);
        m.cpu.set_pc(CODE);
        m
    }

    #[test]
    fn waiti_with_nothing_armed_stops_at_once_and_says_so() {
        let mut m = waiting_machine();
        m.cpu
            .set_special_register(SpecialReg::Intenable, 1 << INUM_FRC2_LINE);
        let err = m.run(CPU_HZ).unwrap_err();
        assert_eq!(
            err,
            Stop::IdleForever {
                pc: CODE + 3,
                intenable: 1 << INUM_FRC2_LINE,
                ps: 0x20,
                frc2_alarm: 0
            }
        );
        assert!(
            m.board.now < 10,
            "no emulated second spent: {}",
            m.board.now
        );
    }

    /// The SDK's software timers: FRC2 at 80 MHz / 256 with an alarm, its edge let
    /// through by DPORT. The wait skips straight to the alarm; each alarm rewritten
    /// without touching the interrupt-clear register is a new interrupt.
    #[test]
    fn waiti_jumps_to_the_frc2_alarm_and_every_alarm_interrupts() {
        let mut m = waiting_machine();
        m.board
            .write32(0x6000_0600 + FRC2_CTRL, CTRL_ENABLE | 2 << 2)
            .unwrap();
        m.board.write32(0x6000_0600 + FRC2_ALARM, 1000).unwrap();
        m.board.write32(DPORT_EDGE_INT_ENABLE, 4).unwrap();
        m.cpu
            .set_special_register(SpecialReg::Intenable, 1 << INUM_FRC2_LINE);
        // The interrupt leaves PS.EXCM set: the vector's own WAITI waits for good.
        let err = m.run(CPU_HZ).unwrap_err();
        assert!(
            matches!(err, Stop::IdleForever { pc, .. } if pc == USER_VECTOR + 3),
            "{err}"
        );
        assert_eq!(m.exceptions[4], 1, "one interrupt");
        assert!(
            (1000 * 256..1000 * 256 + 8).contains(&m.board.now),
            "woken at the alarm, not before or long after: {}",
            m.board.now
        );
        assert!(m.instructions < 5);
        // Back to the wait with a new alarm (the SDK never clears FRC2's status).
        m.cpu.set_special_register(SpecialReg::Ps, 0x20);
        m.cpu.set_pc(CODE);
        m.board.write32(0x6000_0600 + FRC2_ALARM, 2000).unwrap();
        let err = m.run(CPU_HZ).unwrap_err();
        assert!(matches!(err, Stop::IdleForever { .. }), "{err}");
        assert_eq!(m.exceptions[4], 2, "the second alarm interrupts too");
        assert!((2000 * 256..2000 * 256 + 8).contains(&m.board.now));
    }

    #[test]
    fn an_edge_dport_does_not_let_through_is_lost() {
        let mut m = waiting_machine();
        m.board
            .write32(0x6000_0600 + FRC2_CTRL, CTRL_ENABLE | 2 << 2)
            .unwrap();
        m.board.write32(0x6000_0600 + FRC2_ALARM, 10).unwrap();
        m.cpu
            .set_special_register(SpecialReg::Intenable, 1 << INUM_FRC2_LINE);
        let err = m.run(CPU_HZ).unwrap_err();
        assert!(matches!(err, Stop::IdleForever { pc, .. } if pc == CODE + 3));
        assert_eq!(m.exceptions[4], 0);
    }
}
