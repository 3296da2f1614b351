//! The ROM's scheduler, interrupts and exception handlers: `ets_task`/`ets_post`/
//! `ets_run` (tasks by priority, the idle callback, `waiti` when nothing is left),
//! `ets_isr_attach` and the level-1 interrupt dispatcher the exception table points
//! at, `_xtos_set_exception_handler`, delays, the CPU frequency, the watchdog
//! helpers and the reset reason.

use std::collections::VecDeque;

use lx106::SpecialReg;

use super::{
    Ctx, Flow, IsrFrame, RomStop, Task, C_HANDLER_TABLE, EXC_HANDLER_TABLE, IDLE_WAITI, RET_EXC,
    RET_IDLE, RET_ISR, RET_TASK,
};

/// `_xtos_l1int_handler`: what the exception table holds for cause 4.
pub const XTOS_L1INT_HANDLER: u32 = 0x4000_048c;
/// `_xtos_unhandled_exception`.
pub const XTOS_UNHANDLED_EXCEPTION: u32 = 0x4000_dc44;
/// `_xtos_c_wrapper_handler`: calls a C exception handler.
pub const XTOS_C_WRAPPER_HANDLER: u32 = 0x4000_0598;
/// `ets_run`.
pub const ETS_RUN: u32 = 0x4000_0e04;

const PS_EXCM: u32 = 1 << 4;
/// Edge-triggered and software interrupts, cleared before their handler runs.
const CLEAR_ON_DISPATCH: u32 = 0x3F80;

/// The scheduler's loop: the highest-priority task with an event, else the idle
/// callback, else `waiti 0` until an interrupt.
pub(super) fn ets_run(ctx: &mut Ctx) -> Result<Flow, RomStop> {
    // Interrupts are open between tasks.
    let ps = ctx.cpu.special_register(SpecialReg::Ps);
    ctx.cpu.set_special_register(SpecialReg::Ps, ps & !0xF);
    let ready = ctx
        .rom
        .tasks
        .iter()
        .rposition(|t| t.as_ref().is_some_and(|t| !t.events.is_empty()));
    if let Some(prio) = ready {
        let Some(task) = ctx.rom.tasks[prio].as_mut() else {
            return Ok(Flow::Jumped);
        };
        let (sig, par) = task.events.pop_front().unwrap_or_default();
        let slot = task.queue + 8 * (task.slot % task.len.max(1));
        task.slot = task.slot.wrapping_add(1);
        let func = task.func;
        let mut ev = sig.to_le_bytes().to_vec();
        ev.extend_from_slice(&par.to_le_bytes());
        ctx.write("ets_run (event queue)", slot, &ev)?;
        ctx.call(func, &[slot], RET_TASK);
    } else if let Some((cb, arg)) = ctx.rom.idle_cb {
        ctx.call(cb, &[arg], RET_IDLE);
    } else {
        ctx.cpu.set_pc(IDLE_WAITI);
    }
    Ok(Flow::Jumped)
}

/// Level-1 interrupt: saves the interrupted context (the vector code left a2..a4 in
/// its 256-byte frame), then calls each pending handler in turn.
fn l1int(ctx: &mut Ctx) -> Result<Flow, RomStop> {
    let sp = ctx.cpu.ar(1);
    let mut regs = [0u32; 16];
    for (i, r) in regs.iter_mut().enumerate() {
        *r = ctx.cpu.ar(i);
    }
    regs[1] = sp.wrapping_add(256);
    for (i, off) in [(2usize, 20u32), (3, 24), (4, 28)] {
        regs[i] = ctx.board.mem.read_u32(sp + off).unwrap_or(0);
    }
    let ps = ctx.cpu.special_register(SpecialReg::Ps);
    let pending = ctx.cpu.special_register(SpecialReg::Interrupt)
        & ctx.cpu.special_register(SpecialReg::Intenable)
        & 0x3FFF;
    ctx.rom.isr_frames.push(IsrFrame {
        regs,
        sar: ctx.cpu.special_register(SpecialReg::Sar),
        ps,
        epc1: ctx.cpu.special_register(SpecialReg::Epc1),
        pending,
    });
    // Handlers run with level-1 interrupts masked, outside exception mode.
    ctx.cpu
        .set_special_register(SpecialReg::Ps, (ps & !(PS_EXCM | 0xF)) | 1);
    isr_next(ctx)
}

/// The next pending handler, or the return from the interrupt.
pub(super) fn isr_next(ctx: &mut Ctx) -> Result<Flow, RomStop> {
    let Some(frame) = ctx.rom.isr_frames.last_mut() else {
        return Err(RomStop::BadPointer {
            name: "interrupt return without an interrupt",
            addr: ctx.cpu.ar(1),
        });
    };
    while frame.pending != 0 {
        let n = frame.pending.trailing_zeros();
        frame.pending &= !(1 << n);
        if CLEAR_ON_DISPATCH & (1 << n) != 0 {
            ctx.cpu.set_special_register(SpecialReg::Intclear, 1 << n);
        }
        let (func, arg) = ctx.rom.isr[n as usize];
        if func == 0 {
            // Nobody listens: mask it, as the ROM's unhandled-interrupt handler would
            // leave it pending forever otherwise.
            let en = ctx.cpu.special_register(SpecialReg::Intenable);
            ctx.cpu
                .set_special_register(SpecialReg::Intenable, en & !(1 << n));
            continue;
        }
        let sp = frame.regs[1].wrapping_sub(256);
        ctx.cpu.set_ar(1, sp);
        ctx.call(func, &[arg, sp], RET_ISR);
        return Ok(Flow::Jumped);
    }
    let Some(frame) = ctx.rom.isr_frames.pop() else {
        return Ok(Flow::Jumped);
    };
    restore(ctx, &frame);
    Ok(Flow::Jumped)
}

/// Back to the interrupted code, as RFE does.
fn restore(ctx: &mut Ctx, frame: &IsrFrame) {
    for (i, r) in frame.regs.iter().enumerate() {
        ctx.cpu.set_ar(i, *r);
    }
    ctx.cpu.set_special_register(SpecialReg::Sar, frame.sar);
    ctx.cpu
        .set_special_register(SpecialReg::Ps, frame.ps & !PS_EXCM);
    ctx.cpu.set_pc(frame.epc1);
}

/// Offsets in the exception frame the user vector opens (256 bytes below the
/// interrupted stack pointer) and `_xtos_c_wrapper_handler` fills, as the core's
/// `struct __exception_frame` reads it: EPC, PS, SAR, a spare word, a0, a2..a15
/// (no a1: the frame's end is a1), then the cause.
mod frame {
    pub const EPC: u32 = 0;
    pub const PS: u32 = 4;
    pub const SAR: u32 = 8;
    pub const A0: u32 = 16;
    /// a2; a(n) for n >= 2 is at `A2 + 4 * (n - 2)`.
    pub const A2: u32 = 20;
    pub const CAUSE: u32 = 76;
    /// What the vector took from the stack.
    pub const SIZE: u32 = 256;
}

/// `_xtos_c_wrapper_handler`: the user vector left a2..a4 in the frame at a1 and
/// jumped here through the exception table. Saves the rest of the interrupted
/// context in the frame, then calls the C handler `_xtos_set_exception_handler`
/// recorded for the cause as `handler(frame, cause)` on the stack below the frame,
/// with exception mode left and level-1 interrupts masked. Its return comes to
/// [`exc_return`], which resumes from the frame (a handler may change it: the
/// core's non-32-bit access handler writes the loaded register and moves EPC on).
fn c_wrapper(ctx: &mut Ctx) -> Result<Flow, RomStop> {
    let sp = ctx.cpu.ar(1);
    let cause = ctx.cpu.special_register(SpecialReg::Exccause);
    let handler = ctx
        .board
        .mem
        .read_u32(C_HANDLER_TABLE + 4 * (cause & 63))
        .unwrap_or(0);
    if handler == 0 {
        return Err(unhandled(ctx));
    }
    let ps = ctx.cpu.special_register(SpecialReg::Ps);
    let mut words = vec![
        (frame::EPC, ctx.cpu.special_register(SpecialReg::Epc1)),
        (frame::PS, ps),
        (frame::SAR, ctx.cpu.special_register(SpecialReg::Sar)),
        (frame::A0, ctx.cpu.ar(0)),
        (frame::CAUSE, cause),
    ];
    for n in 5..16 {
        words.push((frame::A2 + 4 * (n as u32 - 2), ctx.cpu.ar(n)));
    }
    for (off, v) in words {
        ctx.write("_xtos_c_wrapper_handler", sp + off, &v.to_le_bytes())?;
    }
    ctx.rom.exc_frames.push(sp);
    ctx.cpu
        .set_special_register(SpecialReg::Ps, (ps & !(PS_EXCM | 0xF)) | 1);
    ctx.call(handler, &[sp, cause], RET_EXC);
    Ok(Flow::Jumped)
}

/// A C exception handler returned: the registers, SAR, PS and PC come back from
/// its frame, as the wrapper's RFE does.
pub(super) fn exc_return(ctx: &mut Ctx) -> Result<Flow, RomStop> {
    let Some(sp) = ctx.rom.exc_frames.pop() else {
        return Err(RomStop::BadPointer {
            name: "exception return without an exception",
            addr: ctx.cpu.ar(1),
        });
    };
    let word = |ctx: &mut Ctx, off: u32| -> Result<u32, RomStop> {
        let b = ctx.read("_xtos_c_wrapper_handler", sp + off, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    for n in 2..16 {
        let v = word(ctx, frame::A2 + 4 * (n as u32 - 2))?;
        ctx.cpu.set_ar(n, v);
    }
    let a0 = word(ctx, frame::A0)?;
    let sar = word(ctx, frame::SAR)?;
    let ps = word(ctx, frame::PS)?;
    let epc = word(ctx, frame::EPC)?;
    ctx.cpu.set_ar(0, a0);
    ctx.cpu.set_ar(1, sp + frame::SIZE);
    ctx.cpu.set_special_register(SpecialReg::Sar, sar);
    ctx.cpu.set_special_register(SpecialReg::Ps, ps & !PS_EXCM);
    ctx.cpu.set_pc(epc);
    Ok(Flow::Jumped)
}

fn unhandled(ctx: &mut Ctx) -> RomStop {
    RomStop::UnhandledException {
        cause: ctx.cpu.special_register(SpecialReg::Exccause),
        epc: ctx.cpu.special_register(SpecialReg::Epc1),
        excvaddr: ctx.cpu.special_register(SpecialReg::Excvaddr),
    }
}

/// Performs the function at `pc` if it is one of this module's.
pub(super) fn call(ctx: &mut Ctx, pc: u32) -> Result<Option<Flow>, RomStop> {
    let flow = match pc {
        ETS_RUN => ets_run(ctx)?,
        // ets_task(func, prio, queue, qlen)
        0x4000_0dd0 => {
            let (func, prio, queue, len) = (ctx.arg(0), ctx.arg(1), ctx.arg(2), ctx.arg(3));
            if let Some(slot) = ctx.rom.tasks.get_mut(prio as usize) {
                *slot = Some(Task {
                    func,
                    queue,
                    len,
                    events: VecDeque::new(),
                    slot: 0,
                });
            }
            Flow::Return(Some(1))
        }
        // ets_post(prio, sig, par): 0 when queued, 1 when the queue is full or absent.
        0x4000_0e24 => {
            let (prio, sig, par) = (ctx.arg(0), ctx.arg(1), ctx.arg(2));
            let r = match ctx.rom.tasks.get_mut(prio as usize) {
                Some(Some(task)) if (task.events.len() as u32) < task.len.max(1) => {
                    task.events.push_back((sig, par));
                    0
                }
                _ => 1,
            };
            Flow::Return(Some(r))
        }
        // ets_set_idle_cb(func, arg)
        0x4000_0dc0 => {
            let (f, a) = (ctx.arg(0), ctx.arg(1));
            ctx.rom.idle_cb = (f != 0).then_some((f, a));
            Flow::Return(None)
        }
        // ets_isr_attach(n, func, arg), _xtos_set_interrupt_handler_arg(n, func, arg)
        0x4000_0f88 | 0x4000_bd28 => {
            let (n, f, a) = (ctx.arg(0), ctx.arg(1), ctx.arg(2));
            let old = ctx.rom.isr.get(n as usize).map_or(0, |h| h.0);
            if let Some(h) = ctx.rom.isr.get_mut(n as usize) {
                *h = (f, a);
            }
            Flow::Return(Some(old))
        }
        // _xtos_set_interrupt_handler(n, func): the argument is the number.
        0x4000_bd70 => {
            let (n, f) = (ctx.arg(0), ctx.arg(1));
            let old = ctx.rom.isr.get(n as usize).map_or(0, |h| h.0);
            if let Some(h) = ctx.rom.isr.get_mut(n as usize) {
                *h = (f, n);
            }
            Flow::Return(Some(old))
        }
        // ets_isr_mask(mask), _xtos_ints_off(mask)
        0x4000_0f98 | 0x4000_bda4 => {
            let en = ctx.cpu.special_register(SpecialReg::Intenable);
            let mask = ctx.arg(0);
            ctx.cpu
                .set_special_register(SpecialReg::Intenable, en & !mask);
            Flow::Return(Some(en))
        }
        // ets_isr_unmask(mask), _xtos_ints_on(mask)
        0x4000_0fa8 | 0x4000_bd84 => {
            let en = ctx.cpu.special_register(SpecialReg::Intenable);
            let mask = ctx.arg(0);
            ctx.cpu
                .set_special_register(SpecialReg::Intenable, en | mask);
            Flow::Return(Some(en))
        }
        // ets_intr_lock / ets_intr_unlock (the ROM's; the core has its own)
        0x4000_0f74 => {
            let ps = ctx.cpu.special_register(SpecialReg::Ps);
            ctx.cpu
                .set_special_register(SpecialReg::Ps, (ps & !0xF) | 3);
            Flow::Return(None)
        }
        0x4000_0f80 => {
            let ps = ctx.cpu.special_register(SpecialReg::Ps);
            ctx.cpu.set_special_register(SpecialReg::Ps, ps & !0xF);
            Flow::Return(None)
        }
        // _xtos_set_exception_handler(cause, func): returns the previous C handler.
        0x4000_0454 => {
            let (cause, func) = (ctx.arg(0) & 63, ctx.arg(1));
            let c_at = C_HANDLER_TABLE + 4 * cause;
            let old = ctx.board.mem.read_u32(c_at).unwrap_or(0);
            let (entry, c) = if func == 0 {
                (XTOS_UNHANDLED_EXCEPTION, 0)
            } else {
                (XTOS_C_WRAPPER_HANDLER, func)
            };
            ctx.write("_xtos_set_exception_handler", c_at, &c.to_le_bytes())?;
            ctx.write(
                "_xtos_set_exception_handler",
                EXC_HANDLER_TABLE + 4 * cause,
                &entry.to_le_bytes(),
            )?;
            Flow::Return(Some(old))
        }
        XTOS_L1INT_HANDLER => l1int(ctx)?,
        XTOS_C_WRAPPER_HANDLER => c_wrapper(ctx)?,
        // _xtos_unhandled_exception, _xtos_unhandled_interrupt: on a chip a BREAK
        // then the same exception again until the watchdog bites; the machine stops
        // and says where.
        XTOS_UNHANDLED_EXCEPTION | 0x4000_dc3c => {
            return Err(unhandled(ctx));
        }
        // ets_delay_us(us)
        0x4000_2ecc => {
            let us = u64::from(ctx.arg(0));
            let mhz = u64::from(ctx.rom.cpu_mhz);
            ctx.spend(us * mhz);
            Flow::Return(None)
        }
        // ets_get_cpu_frequency
        0x4000_2f0c => Flow::Return(Some(ctx.rom.cpu_mhz)),
        // ets_update_cpu_frequency(mhz)
        0x4000_2f04 => {
            ctx.rom.cpu_mhz = ctx.arg(0);
            Flow::Return(None)
        }
        // ets_wdt_disable: stops the watchdog; returns the old mode (-1 as observed).
        0x4000_30f0 => {
            let ctl = ctx.board.watchdog.read(0).unwrap_or(0);
            let now = ctx.board.now;
            ctx.board.watchdog.write(0, ctl & !1, now);
            Flow::Return(Some(u32::MAX))
        }
        // ets_wdt_enable(mode, a, b)
        0x4000_2fa0 => {
            let ctl = ctx.board.watchdog.read(0).unwrap_or(0);
            let now = ctx.board.now;
            ctx.board.watchdog.write(0, ctl | 1, now);
            Flow::Return(None)
        }
        // rtc_get_reset_reason
        0x4000_25e0 => Flow::Return(Some(ctx.board.rtc.cause().code())),
        _ => return Ok(None),
    };
    Ok(Some(flow))
}
