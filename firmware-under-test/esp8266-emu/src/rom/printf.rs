//! The ROM's console: `ets_printf` and its formatter, the character output
//! function firmware installs (`ets_install_putc1`), `ets_putc`, the ROM's own UART
//! output (which turns `\n` into `\r\n`), and the UART helpers (`uart_div_modify`,
//! `uart_tx_one_char`).

use std::collections::VecDeque;

use super::{Ctx, Flow, PutcFrame, RomStop, RET_PUTC};

/// `ets_printf`.
pub const ETS_PRINTF: u32 = 0x4000_24cc;
/// `ets_vprintf(putc, fmt, va_list)`.
pub const ETS_VPRINTF: u32 = 0x4000_1f00;
/// `ets_write_char`: one character through the installed function.
pub const ETS_WRITE_CHAR: u32 = 0x4000_1da0;

/// `ets_vprintf`: the `va_list` comes by value in a4..a6 (GCC's Xtensa layout:
/// the stack area less 32, the register save area, the byte index of the next
/// argument); arguments at index up to 24 come from the register area.
fn vprintf(ctx: &mut Ctx) -> Result<Flow, RomStop> {
    let (putc, fmt_at) = (ctx.arg(0), ctx.arg(1));
    let (va_stk, va_reg, mut ndx) = (ctx.arg(2), ctx.arg(3), ctx.arg(4));
    let fmt = ctx.cstr("ets_vprintf", fmt_at)?;
    let mut raw = Vec::new();
    let mut strings = Vec::new();
    {
        let mem = &ctx.board.mem;
        let mut next = |wide: bool| -> u64 {
            let size = if wide { 8 } else { 4 };
            let mut orig = ndx;
            if wide {
                orig = (orig + 7) & !7;
            }
            ndx = orig + size;
            let base = if ndx <= 24 {
                va_reg
            } else {
                if orig <= 24 {
                    ndx = 32 + size;
                }
                va_stk
            };
            let at = base.wrapping_add(ndx - size);
            let lo = u64::from(mem.read_u32(at).unwrap_or(0));
            let v = if wide {
                lo | u64::from(mem.read_u32(at + 4).unwrap_or(0)) << 32
            } else {
                lo
            };
            raw.push(v);
            v
        };
        format(&fmt, &mut next, |a| {
            strings.push(a);
            Vec::new()
        });
    }
    let resolved: Vec<Vec<u8>> = strings
        .iter()
        .map(|&a| {
            ctx.cstr("ets_vprintf %s", a)
                .unwrap_or_else(|_| b"(null)".to_vec())
        })
        .collect();
    let mut args = raw.into_iter();
    let mut strs = resolved.into_iter();
    let text = format(
        &fmt,
        |_| args.next().unwrap_or(0),
        |_| strs.next().unwrap_or_default(),
    );
    let n = text.len() as u32;
    let target = match putc {
        ETS_WRITE_CHAR => ctx.rom.putc1,
        0x4000_2be8 | 0x4000_3b30 | 0x4000_1dcc | 0 => None,
        f => Some(f),
    };
    Ok(emit_to(ctx, target, text, n))
}

/// Formats `fmt` as the ROM's printf does (`%d %i %u %x %X %c %s %p %%`, flags `-`
/// and `0`, a width, `l`/`ll`), taking arguments from `next` (true: a 64-bit one)
/// and strings from `string`.
pub fn format(
    fmt: &[u8],
    mut next: impl FnMut(bool) -> u64,
    mut string: impl FnMut(u32) -> Vec<u8>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        i += 1;
        if c != b'%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero, mut width, mut longs) = (false, false, 0usize, 0);
        while i < fmt.len() && matches!(fmt[i], b'-' | b'0') {
            if fmt[i] == b'-' {
                left = true;
            } else {
                zero = true;
            }
            i += 1;
        }
        while i < fmt.len() && fmt[i].is_ascii_digit() {
            width = width * 10 + usize::from(fmt[i] - b'0');
            i += 1;
        }
        while i < fmt.len() && fmt[i] == b'l' {
            longs += 1;
            i += 1;
        }
        let Some(&conv) = fmt.get(i) else { break };
        i += 1;
        let wide = longs >= 2;
        let body: Vec<u8> = match conv {
            b'd' | b'i' => {
                let v = next(wide);
                if wide {
                    (v as i64).to_string().into_bytes()
                } else {
                    (v as u32 as i32).to_string().into_bytes()
                }
            }
            b'u' => next(wide).to_string().into_bytes(),
            b'x' => format!("{:x}", next(wide)).into_bytes(),
            b'X' => format!("{:X}", next(wide)).into_bytes(),
            b'p' => format!("{:x}", next(false)).into_bytes(),
            b'c' => vec![next(false) as u8],
            b's' => string(next(false) as u32),
            b'%' => vec![b'%'],
            other => vec![b'%', other],
        };
        let pad = width.saturating_sub(body.len());
        if left {
            out.extend_from_slice(&body);
            out.extend(std::iter::repeat_n(b' ', pad));
        } else if zero && conv != b's' && conv != b'c' {
            let (sign, digits) = match body.first() {
                Some(b'-') => (&body[..1], &body[1..]),
                _ => (&body[..0], &body[..]),
            };
            out.extend_from_slice(sign);
            out.extend(std::iter::repeat_n(b'0', pad));
            out.extend_from_slice(digits);
        } else {
            out.extend(std::iter::repeat_n(b' ', pad));
            out.extend_from_slice(&body);
        }
    }
    out
}

/// The ROM's UART output: `\n` goes out as `\r\n`.
fn rom_uart_out(ctx: &mut Ctx, bytes: &[u8]) {
    let mut out = Vec::with_capacity(bytes.len() + 4);
    for &b in bytes {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    if ctx.rom.console_uart1 {
        let baud = ctx.board.uart1.baud(ctx.board.apb_hz);
        let cycle = ctx.board.now;
        ctx.board
            .uart1
            .tx
            .extend(
                out.iter()
                    .map(|&byte| crate::uart::TxByte { byte, baud, cycle }),
            );
    } else {
        ctx.uart0_raw(&out);
    }
}

/// Sends `bytes` through the installed character function (calling into
/// firmware once per byte) or the ROM's UART output, then returns `result`.
fn emit(ctx: &mut Ctx, bytes: Vec<u8>, result: u32) -> Flow {
    let putc1 = ctx.rom.putc1;
    emit_to(ctx, putc1, bytes, result)
}

/// Sends `bytes` to a firmware character function, or the ROM's UART for `None`.
fn emit_to(ctx: &mut Ctx, putc: Option<u32>, bytes: Vec<u8>, result: u32) -> Flow {
    match putc {
        None => {
            rom_uart_out(ctx, &bytes);
            Flow::Return(Some(result))
        }
        Some(func) => {
            let mut rest: VecDeque<u8> = bytes.into();
            let Some(first) = rest.pop_front() else {
                return Flow::Return(Some(result));
            };
            let ret = ctx.cpu.ar(0);
            let sp = ctx.cpu.ar(1);
            ctx.rom.putc_frames.push(PutcFrame {
                func,
                rest,
                ret,
                result,
                sp,
            });
            ctx.call(func, &[u32::from(first)], RET_PUTC);
            Flow::Jumped
        }
    }
}

/// The installed character function returned: the next byte, or back to the caller.
pub(super) fn putc_next(ctx: &mut Ctx) -> Result<Flow, RomStop> {
    let sp = ctx.cpu.ar(1);
    let Some(idx) = ctx.rom.putc_frames.iter().rposition(|f| f.sp == sp) else {
        return Err(RomStop::BadPointer {
            name: "ets_printf (return without a call)",
            addr: sp,
        });
    };
    let frame = &mut ctx.rom.putc_frames[idx];
    let func = frame.func;
    match frame.rest.pop_front() {
        Some(b) => {
            ctx.call(func, &[u32::from(b)], RET_PUTC);
        }
        None => {
            let frame = ctx.rom.putc_frames.remove(idx);
            ctx.cpu.set_ar(2, frame.result);
            ctx.cpu.set_pc(frame.ret);
        }
    }
    Ok(Flow::Jumped)
}

/// Performs the function at `pc` if it is one of this module's.
pub(super) fn call(ctx: &mut Ctx, pc: u32) -> Result<Option<Flow>, RomStop> {
    let flow = match pc {
        ETS_PRINTF => {
            let fmt = ctx.cstr("ets_printf", ctx.arg(0))?;
            let mut index = 1usize;
            let mut strings = Vec::new();
            let mut args = Vec::new();
            // Two passes: collect raw arguments, then format (strings read after).
            let text = {
                let mut collected: Vec<u64> = Vec::new();
                let mut probe = |wide: bool| {
                    if wide && index % 2 == 1 {
                        index += 1;
                    }
                    let v = if wide {
                        let lo = u64::from(ctx.arg(index));
                        let hi = u64::from(ctx.arg(index + 1));
                        index += 2;
                        hi << 32 | lo
                    } else {
                        let v = u64::from(ctx.arg(index));
                        index += 1;
                        v
                    };
                    collected.push(v);
                    v
                };
                let _ = format(&fmt, &mut probe, |a| {
                    strings.push(a);
                    Vec::new()
                });
                args.extend(collected);
                let mut resolved = Vec::new();
                for a in &strings {
                    resolved.push(
                        ctx.cstr("ets_printf %s", *a)
                            .unwrap_or_else(|_| b"(null)".to_vec()),
                    );
                }
                let mut args_iter = args.iter().copied();
                let mut strs = resolved.into_iter();
                format(
                    &fmt,
                    |_| args_iter.next().unwrap_or(0),
                    |_| strs.next().unwrap_or_default(),
                )
            };
            let n = text.len() as u32;
            emit(ctx, text, n)
        }
        // ets_write_char: through the installed character function.
        ETS_WRITE_CHAR => {
            let c = ctx.arg(0) as u8;
            emit(ctx, vec![c], 0)
        }
        ETS_VPRINTF => vprintf(ctx)?,
        // ets_putc, uart_tx_one_char, ets_uart_putc1: the ROM's UART.
        0x4000_2be8 | 0x4000_3b30 | 0x4000_1dcc => {
            let c = ctx.arg(0) as u8;
            rom_uart_out(ctx, &[c]);
            Flow::Return(Some(0))
        }
        // ets_install_putc1
        0x4000_242c => {
            let f = ctx.arg(0);
            ctx.rom.putc1 = (f != 0).then_some(f);
            Flow::Return(None)
        }
        // ets_install_uart_printf: back to the ROM's UART output.
        0x4000_2438 => {
            ctx.rom.putc1 = None;
            Flow::Return(None)
        }
        // uart_buff_switch(n): which UART the ROM's own output uses.
        0x4000_38a4 => {
            ctx.rom.console_uart1 = ctx.arg(0) == 1;
            Flow::Return(None)
        }
        // uart_div_modify (rom_uart_div_modify): divisor for a UART.
        0x4000_39d8 => {
            let (uart, div) = (ctx.arg(0), ctx.arg(1));
            if uart == 0 {
                ctx.board.uart0.set_clkdiv(div);
            } else {
                ctx.board.uart1.set_clkdiv(div);
            }
            Flow::Return(None)
        }
        _ => return Ok(None),
    };
    Ok(Some(flow))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_rom() {
        let args = [42u64, 0xBEEF, 0x3FFE_8000, 7];
        let mut it = args.iter().copied();
        let out = format(
            b"v%08x %d%% %s|%5d|%-3c|",
            |_| it.next().unwrap_or(0),
            |_| b"str".to_vec(),
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "v0000002a 48879% str|    7|\0  |"
        );
        let mut it = [(-5i32) as u32 as u64].into_iter();
        assert_eq!(
            format(b"%04d", |_| it.next().unwrap_or(0), |_| vec![]),
            b"-005"
        );
        let mut it = [1u64 << 40].into_iter();
        assert_eq!(
            format(b"%llu", |_| it.next().unwrap_or(0), |_| vec![]),
            b"1099511627776"
        );
    }
}
