//! The ROM's C library and libgcc helpers: memory and string functions, integer
//! division and 64-bit arithmetic, IEEE single and double arithmetic (done with
//! Rust's `f32`/`f64`, which round to nearest-even as the ROM's soft-float does).

use super::{Ctx, Flow, RomStop};

fn f32a(x: u32) -> f32 {
    f32::from_bits(x)
}

fn f64a(ctx: &Ctx, first: usize) -> f64 {
    let lo = ctx.arg(first) as u64;
    let hi = ctx.arg(first + 1) as u64;
    f64::from_bits(hi << 32 | lo)
}

fn u64a(ctx: &Ctx, first: usize) -> u64 {
    (ctx.arg(first + 1) as u64) << 32 | ctx.arg(first) as u64
}

/// Returns a 64-bit value in a2 (low) and a3 (high).
fn ret64(ctx: &mut Ctx, v: u64) -> Flow {
    ctx.cpu.set_ar(3, (v >> 32) as u32);
    Flow::Return(Some(v as u32))
}

/// Performs the function at `pc` if it is one of this module's.
pub(super) fn call(ctx: &mut Ctx, pc: u32) -> Result<Option<Flow>, RomStop> {
    let flow = match pc {
        // memcpy, ets_memcpy, xthal_memcpy; memmove, ets_memmove
        0x4000_df48 | 0x4000_18b4 | 0x4000_06c4 | 0x4000_e04c | 0x4000_18c4 => {
            let (dst, src, n) = (ctx.arg(0), ctx.arg(1), ctx.arg(2) as usize);
            let data = ctx.read("memcpy", src, n)?;
            ctx.write("memcpy", dst, &data)?;
            ctx.spend(n as u64 / 4);
            Flow::Return(Some(dst))
        }
        // memset, ets_memset
        0x4000_e190 | 0x4000_18a4 => {
            let (dst, c, n) = (ctx.arg(0), ctx.arg(1), ctx.arg(2) as usize);
            ctx.write("memset", dst, &vec![c as u8; n])?;
            ctx.spend(n as u64 / 4);
            Flow::Return(Some(dst))
        }
        // bzero, ets_bzero
        0x4000_de84 | 0x4000_2ae8 => {
            let (dst, n) = (ctx.arg(0), ctx.arg(1) as usize);
            ctx.write("bzero", dst, &vec![0; n])?;
            Flow::Return(None)
        }
        // memcmp, ets_memcmp
        0x4000_dea8 | 0x4000_18d4 => {
            let (a, b, n) = (ctx.arg(0), ctx.arg(1), ctx.arg(2) as usize);
            let x = ctx.read("memcmp", a, n)?;
            let y = ctx.read("memcmp", b, n)?;
            let r = x
                .iter()
                .zip(&y)
                .find(|(p, q)| p != q)
                .map_or(0, |(p, q)| i32::from(*p) - i32::from(*q));
            Flow::Return(Some(r as u32))
        }
        // strlen, ets_strlen
        0x4000_bf4c | 0x4000_2ac8 => {
            let s = ctx.cstr("strlen", ctx.cpu.ar(2))?;
            Flow::Return(Some(s.len() as u32))
        }
        // strcmp, ets_strcmp; strncmp, ets_strncmp
        0x4000_bdc8 | 0x4000_2aa8 | 0x4000_bfa8 | 0x4000_2ab8 => {
            let limit = if matches!(pc, 0x4000_bfa8 | 0x4000_2ab8) {
                ctx.arg(2) as usize
            } else {
                usize::MAX
            };
            let mut a = ctx.cstr("strcmp", ctx.arg(0))?;
            let mut b = ctx.cstr("strcmp", ctx.arg(1))?;
            a.push(0);
            b.push(0);
            let mut r = 0i32;
            for i in 0..limit.min(a.len()).min(b.len()) {
                if a[i] != b[i] || a[i] == 0 {
                    r = i32::from(a[i]) - i32::from(b[i]);
                    break;
                }
            }
            Flow::Return(Some(r as u32))
        }
        // strcpy, ets_strcpy
        0x4000_bec8 | 0x4000_2a88 => {
            let (dst, src) = (ctx.arg(0), ctx.arg(1));
            let mut s = ctx.cstr("strcpy", src)?;
            s.push(0);
            ctx.write("strcpy", dst, &s)?;
            Flow::Return(Some(dst))
        }
        // strncpy, ets_strncpy
        0x4000_c0a0 | 0x4000_2a98 => {
            let (dst, src, n) = (ctx.arg(0), ctx.arg(1), ctx.arg(2) as usize);
            let mut s = ctx.cstr("strncpy", src)?;
            s.resize(n, 0);
            ctx.write("strncpy", dst, &s)?;
            Flow::Return(Some(dst))
        }
        // strstr, ets_strstr
        0x4000_e1e0 | 0x4000_2ad8 => {
            let (hay, needle) = (ctx.arg(0), ctx.arg(1));
            let h = ctx.cstr("strstr", hay)?;
            let n = ctx.cstr("strstr", needle)?;
            let found = if n.is_empty() {
                Some(0)
            } else {
                h.windows(n.len()).position(|w| w == n.as_slice())
            };
            Flow::Return(Some(found.map_or(0, |i| hay + i as u32)))
        }
        // lldesc_build_chain(desc, desclen, mblk, buflen, blksz, owner, &head, &tail):
        // a DMA descriptor chain (12-byte lldesc_t: size, length, eof and owner bits;
        // buffer; next) over blocks of blksz bytes.
        0x4000_4f40 => {
            let (desc, desclen, mblk, buflen, blksz, owner) = (
                ctx.arg(0),
                ctx.arg(1),
                ctx.arg(2),
                ctx.arg(3),
                ctx.arg(4),
                ctx.arg(5),
            );
            let (head_at, tail_at) = (ctx.arg(6), ctx.arg(7));
            let n = (desclen / 12).min(buflen.checked_div(blksz).unwrap_or(0).max(1));
            for i in 0..n {
                let last = i + 1 == n;
                let size = blksz & 0xFFF;
                let word = size | size << 12 | u32::from(last) << 30 | (owner & 1) << 31;
                let next = if last { 0 } else { desc + 12 * (i + 1) };
                let mut bytes = word.to_le_bytes().to_vec();
                bytes.extend_from_slice(&(mblk + i * blksz).to_le_bytes());
                bytes.extend_from_slice(&next.to_le_bytes());
                ctx.write("lldesc_build_chain", desc + 12 * i, &bytes)?;
            }
            let tail = desc + 12 * n.saturating_sub(1);
            ctx.write("lldesc_build_chain", head_at, &desc.to_le_bytes())?;
            ctx.write("lldesc_build_chain", tail_at, &tail.to_le_bytes())?;
            Flow::Return(None)
        }
        // __divsi3, __udivsi3, __umodsi3 (division by zero gives 0 here)
        0x4000_dc88 => {
            let (a, b) = (ctx.arg(0) as i32, ctx.arg(1) as i32);
            Flow::Return(Some(if b == 0 { 0 } else { a.wrapping_div(b) as u32 }))
        }
        0x4000_e21c => {
            let (a, b) = (ctx.arg(0), ctx.arg(1));
            Flow::Return(Some(a.checked_div(b).unwrap_or(0)))
        }
        0x4000_e268 => {
            let (a, b) = (ctx.arg(0), ctx.arg(1));
            Flow::Return(Some(a.checked_rem(b).unwrap_or(0)))
        }
        // roundup2(x, align): x rounded up to a power-of-two alignment.
        0x4000_31b4 => {
            let (x, align) = (ctx.arg(0), ctx.arg(1));
            Flow::Return(Some(
                x.wrapping_add(align.wrapping_sub(1)) & align.wrapping_neg(),
            ))
        }
        // __muldi3
        0x4000_0650 => {
            let (a, b) = (u64a(ctx, 0), u64a(ctx, 2));
            ret64(ctx, a.wrapping_mul(b))
        }
        // __umulsidi3
        0x4000_dcf0 => {
            let v = u64::from(ctx.arg(0)) * u64::from(ctx.arg(1));
            ret64(ctx, v)
        }
        // __udivdi3, __umoddi3, __divdi3
        0x4000_d310 => {
            let (a, b) = (u64a(ctx, 0), u64a(ctx, 2));
            ret64(ctx, a.checked_div(b).unwrap_or(0))
        }
        0x4000_d770 => {
            let (a, b) = (u64a(ctx, 0), u64a(ctx, 2));
            ret64(ctx, a.checked_rem(b).unwrap_or(0))
        }
        0x4000_ce60 => {
            let (a, b) = (u64a(ctx, 0) as i64, u64a(ctx, 2) as i64);
            ret64(ctx, if b == 0 { 0 } else { a.wrapping_div(b) as u64 })
        }
        // Single precision.
        0x4000_c180 => Flow::Return(Some((f32a(ctx.arg(0)) + f32a(ctx.arg(1))).to_bits())),
        0x4000_c268 => Flow::Return(Some((f32a(ctx.arg(0)) - f32a(ctx.arg(1))).to_bits())),
        0x4000_c3dc => Flow::Return(Some((f32a(ctx.arg(0)) * f32a(ctx.arg(1))).to_bits())),
        0x4000_c4c4 => Flow::Return(Some(f32a(ctx.arg(0)) as u32)),
        0x4000_e2ac => Flow::Return(Some((ctx.arg(0) as i32 as f32).to_bits())),
        0x4000_e2a4 => Flow::Return(Some((ctx.arg(0) as f32).to_bits())),
        // Double precision.
        0x4000_c538 | 0x4000_c688 | 0x4000_c8f0 | 0x4000_cb94 => {
            let (a, b) = (f64a(ctx, 0), f64a(ctx, 2));
            let r = match pc {
                0x4000_c538 => a + b,
                0x4000_c688 => a - b,
                0x4000_c8f0 => a * b,
                _ => a / b,
            };
            ret64(ctx, r.to_bits())
        }
        0x4000_cdfc => {
            let r = f64::from(f32a(ctx.arg(0)));
            ret64(ctx, r.to_bits())
        }
        0x4000_cd5c => Flow::Return(Some((f64a(ctx, 0) as f32).to_bits())),
        0x4000_ccb8 => Flow::Return(Some(f64a(ctx, 0) as i32 as u32)),
        0x4000_cd00 => Flow::Return(Some(f64a(ctx, 0) as u32)),
        0x4000_e2f0 => {
            let r = f64::from(ctx.arg(0) as i32);
            ret64(ctx, r.to_bits())
        }
        0x4000_e2e8 => {
            let r = f64::from(ctx.arg(0));
            ret64(ctx, r.to_bits())
        }
        _ => return Ok(None),
    };
    Ok(Some(flow))
}
