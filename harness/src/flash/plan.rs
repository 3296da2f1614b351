//! Which parts of a region to write: the region is compared with flash by MD5
//! (the stub hashes flash; the harness hashes the image), and only sectors that
//! differ are written again.
//!
//! The unit is the 4 KB flash sector: the stub erases whole sectors, so a
//! sector is the smallest piece that can be rewritten without touching its
//! neighbours. Asking for one sector's MD5 costs about 54 bytes on the wire (26
//! out, 28 back) and a round trip; writing it costs its compressed size, about
//! 2 KB for firmware. So the comparison goes coarse to fine: the whole region
//! (unchanged: done), then 64 KB chunks, then the sectors of the chunks that
//! differ, but only when some chunk matched. When no chunk matches (a first
//! flash, or a release whose code moved), the flash holds nothing worth keeping
//! and the sector probes would only add bytes: everything is written.

/// Erase granularity of SPI flash.
pub(crate) const SECTOR: u32 = 0x1000;
/// Sectors compared together before looking at single sectors.
pub(crate) const CHUNK_SECTORS: usize = 16;

/// A piece of flash: `len` bytes at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Flash address.
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
}

impl Span {
    /// One past the last byte.
    pub fn end(self) -> u32 {
        self.offset + self.len
    }
}

/// The region cut at absolute sector boundaries (the first and last piece may be
/// partial sectors).
pub(crate) fn sectors(region: Span) -> Vec<Span> {
    let mut out = Vec::new();
    let mut at = region.offset;
    while at < region.end() {
        let next = ((at / SECTOR) + 1) * SECTOR;
        let end = next.min(region.end());
        out.push(Span {
            offset: at,
            len: end - at,
        });
        at = end;
    }
    out
}

/// Adjacent spans merged (input in address order).
pub(crate) fn runs(spans: &[Span]) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for span in spans {
        match out.last_mut() {
            Some(last) if last.end() == span.offset => last.len += span.len,
            _ => out.push(*span),
        }
    }
    out
}

fn join(spans: &[Span]) -> Span {
    let first = spans[0];
    let last = spans[spans.len() - 1];
    Span {
        offset: first.offset,
        len: last.end() - first.offset,
    }
}

/// What comparing a region with flash found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Comparison {
    /// Sectors to write, in address order.
    pub(crate) changed: Vec<Span>,
    /// MD5 questions asked.
    pub(crate) probes: usize,
}

/// Compares `region` with flash, asking `same(span)` whether flash holds the
/// image's bytes for a span (one SPI_FLASH_MD5 each).
pub(crate) fn compare<E>(
    region: Span,
    mut same: impl FnMut(Span) -> Result<bool, E>,
) -> Result<Comparison, E> {
    let mut probes = 1;
    if region.len == 0 || same(region)? {
        return Ok(Comparison {
            changed: Vec::new(),
            probes,
        });
    }
    let all = sectors(region);
    let chunks: Vec<&[Span]> = all.chunks(CHUNK_SECTORS).collect();
    let mut differing: Vec<&[Span]> = Vec::new();
    if chunks.len() == 1 {
        differing.push(chunks[0]);
    } else {
        for chunk in &chunks {
            probes += 1;
            if !same(join(chunk))? {
                differing.push(chunk);
            }
        }
        if differing.len() == chunks.len() {
            return Ok(Comparison {
                changed: all,
                probes,
            });
        }
    }
    let mut changed = Vec::new();
    for chunk in differing {
        for sector in chunk {
            probes += 1;
            if !same(*sector)? {
                changed.push(*sector);
            }
        }
    }
    Ok(Comparison { changed, probes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(offset: u32, len: u32) -> Span {
        Span { offset, len }
    }

    #[test]
    fn sectors_follow_absolute_boundaries() {
        assert_eq!(
            sectors(span(0x0800, 0x2000)),
            vec![
                span(0x0800, 0x800),
                span(0x1000, 0x1000),
                span(0x2000, 0x800)
            ]
        );
        assert_eq!(sectors(span(0x3000, 10)), vec![span(0x3000, 10)]);
        assert!(sectors(span(0, 0)).is_empty());
        assert_eq!(
            runs(&[span(0, 0x1000), span(0x1000, 0x1000), span(0x5000, 8)]),
            vec![span(0, 0x2000), span(0x5000, 8)]
        );
    }

    /// Flash that differs from the image in the given sectors.
    fn flash_differing_in(sectors: &[u32]) -> impl FnMut(Span) -> Result<bool, ()> + '_ {
        move |s: Span| {
            Ok(!sectors
                .iter()
                .any(|k| (s.offset..s.end()).contains(&(k * SECTOR))))
        }
    }

    #[test]
    fn unchanged_costs_one_probe() {
        let c = compare(span(0, 1 << 20), flash_differing_in(&[])).unwrap();
        assert_eq!(c.changed, vec![]);
        assert_eq!(c.probes, 1);
    }

    #[test]
    fn one_changed_sector_is_found_and_alone_written() {
        let c = compare(span(0, 1 << 20), flash_differing_in(&[37])).unwrap();
        assert_eq!(c.changed, vec![span(37 * SECTOR, SECTOR)]);
        // Region, 16 chunks, the 16 sectors of the chunk that differs.
        assert_eq!(c.probes, 1 + 16 + 16);
    }

    #[test]
    fn nothing_in_common_writes_everything_without_sector_probes() {
        let all: Vec<u32> = (0..256).collect();
        let c = compare(span(0, 1 << 20), flash_differing_in(&all)).unwrap();
        assert_eq!(c.changed.len(), 256);
        assert_eq!(runs(&c.changed), vec![span(0, 1 << 20)]);
        assert_eq!(c.probes, 1 + 16);
    }

    #[test]
    fn a_small_region_is_compared_sector_by_sector() {
        let c = compare(span(0x10000, 0x5800), flash_differing_in(&[0x12, 0x15])).unwrap();
        assert_eq!(c.changed, vec![span(0x12000, 0x1000), span(0x15000, 0x800)]);
        assert_eq!(c.probes, 1 + 6);
    }

    #[test]
    fn a_release_that_moved_code_after_a_point_keeps_what_is_before() {
        // 432 KB, like the reference firmware: changed from sector 70 on.
        let from: Vec<u32> = (70..106).collect();
        let c = compare(span(0, 432_256), flash_differing_in(&from)).unwrap();
        assert_eq!(
            runs(&c.changed),
            vec![span(70 * SECTOR, 432_256 - 70 * SECTOR)]
        );
    }
}
