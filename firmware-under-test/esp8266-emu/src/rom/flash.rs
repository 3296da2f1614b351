//! The ROM's SPI flash and cache functions: `SPIRead`, `SPIWrite`,
//! `SPIEraseSector`/`Block`/`Chip`, status and parameter helpers, and
//! `Cache_Read_Enable`/`Disable`, which map one MiB of flash at 0x40200000.

use super::{Ctx, Flow, RomStop, FLASHCHIP};

fn chip(ctx: &Ctx) -> u32 {
    ctx.board
        .mem
        .read_u32(FLASHCHIP)
        .unwrap_or(super::FLASHCHIP_STRUCT)
}

const SECTOR: usize = 0x1000;

fn flash_range(ctx: &Ctx, addr: u32, len: usize) -> Option<std::ops::Range<usize>> {
    let start = addr as usize;
    let end = start.checked_add(len)?;
    (end <= ctx.board.mem.flash.len()).then_some(start..end)
}

/// Performs the function at `pc` if it is one of this module's.
pub(super) fn call(ctx: &mut Ctx, pc: u32) -> Result<Option<Flow>, RomStop> {
    let flow = match pc {
        // SPIRead(flash_addr, dst, len): 0 on success.
        0x4000_4b1c => {
            let (addr, dst, len) = (ctx.arg(0), ctx.arg(1), ctx.arg(2) as usize);
            match flash_range(ctx, addr, len) {
                Some(r) => {
                    let data = ctx.board.mem.flash[r].to_vec();
                    ctx.write("SPIRead", dst, &data)?;
                    ctx.spend(len as u64 * 2);
                    Flow::Return(Some(0))
                }
                None => Flow::Return(Some(1)),
            }
        }
        // SPIWrite(flash_addr, src, len): programming clears bits only.
        0x4000_4a4c => {
            let (addr, src, len) = (ctx.arg(0), ctx.arg(1), ctx.arg(2) as usize);
            let data = ctx.read("SPIWrite", src, len)?;
            match flash_range(ctx, addr, len) {
                Some(r) => {
                    for (f, d) in ctx.board.mem.flash[r].iter_mut().zip(&data) {
                        *f &= d;
                    }
                    ctx.spend(len as u64 * 40);
                    Flow::Return(Some(0))
                }
                None => Flow::Return(Some(1)),
            }
        }
        // SPIEraseSector(n), SPIEraseBlock(n)
        0x4000_4a00 | 0x4000_49b4 => {
            let size = if pc == 0x4000_4a00 {
                SECTOR
            } else {
                16 * SECTOR
            };
            let n = ctx.arg(0) as usize;
            match flash_range(ctx, (n * size) as u32, size) {
                Some(r) => {
                    ctx.board.mem.flash[r].fill(0xFF);
                    ctx.spend(80_000 * 30);
                    Flow::Return(Some(0))
                }
                None => Flow::Return(Some(1)),
            }
        }
        // SPIEraseChip
        0x4000_4984 => {
            ctx.board.mem.flash.fill(0xFF);
            Flow::Return(Some(0))
        }
        // SPI_read_status: the flash idles with status 0.
        0x4000_43c8 => {
            if ctx.arg(0) != 0 {
                let at = ctx.arg(1);
                ctx.write("SPI_read_status", at, &0u32.to_le_bytes())?;
            }
            Flow::Return(Some(0))
        }
        // SPI_write_status, SPI_write_enable, Wait_SPI_Idle, SPIUnlock, SPILock,
        // SPIReadModeCnfig: nothing to wait for or configure; success.
        0x4000_4400 | 0x4000_443c | 0x4000_448c | 0x4000_4878 | 0x4000_48a8 | 0x4000_48ec => {
            Flow::Return(Some(0))
        }
        // SPIParamCfg(id, size, block, sector, page, status_mask): the flashchip struct.
        0x4000_4c2c => {
            let mut bytes = Vec::new();
            for i in 0..6 {
                bytes.extend_from_slice(&ctx.arg(i).to_le_bytes());
            }
            let at = chip(ctx);
            ctx.write("SPIParamCfg", at, &bytes)?;
            Flow::Return(Some(0))
        }
        // Cache_Read_Enable(odd_even, mb_count, no_idea): maps MiB (2*odd_even + mb_count).
        0x4000_4678 => {
            let (odd_even, mb) = (ctx.arg(0) & 1, ctx.arg(1) & 1);
            ctx.board.cache_segment = (odd_even << 1 | mb) << 20;
            ctx.board.set_cache(true);
            Flow::Return(None)
        }
        // Cache_Read_Disable
        0x4000_47f0 => {
            ctx.board.set_cache(false);
            Flow::Return(None)
        }
        _ => return Ok(None),
    };
    Ok(Some(flow))
}
