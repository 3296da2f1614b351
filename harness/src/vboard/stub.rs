//! What the flasher stub adds to the ROM loader: compressed writes, MD5 of a flash
//! region, and READ_FLASH with its acknowledged, windowed data frames.
//!
//! The board never runs the stub's code. It recognises that a stub was uploaded and
//! started (see `loader.rs`) and from then on answers as the stub does.

use flate2::{Decompress, FlushDecompress, Status};
use md5::{Digest, Md5};

use hil_contract::loader::stub_error;

use super::flash::{Flash, SECTOR};
use super::VboardError;

/// Writes into flash as a stub does: each sector is erased the first time the
/// write reaches it, so bytes after the data in its last sector read 0xFF.
#[derive(Debug)]
pub(crate) struct SectorWriter {
    offset: usize,
    written: usize,
    erased_up_to: usize,
}

impl SectorWriter {
    pub(crate) fn new(offset: usize) -> SectorWriter {
        SectorWriter {
            offset,
            written: 0,
            erased_up_to: offset / SECTOR * SECTOR,
        }
    }

    /// A writer for a region the ROM already erased at BEGIN.
    pub(crate) fn already_erased(offset: usize, size: usize) -> SectorWriter {
        let erased_up_to = if size == 0 {
            offset / SECTOR * SECTOR
        } else {
            (offset + size).div_ceil(SECTOR) * SECTOR
        };
        SectorWriter {
            offset,
            written: 0,
            erased_up_to,
        }
    }

    pub(crate) fn written(&self) -> usize {
        self.written
    }

    /// Writes `data` at `offset + at`; `Ok(false)` when it would run past the flash.
    pub(crate) fn write_at(
        &mut self,
        flash: &mut Flash,
        at: usize,
        data: &[u8],
    ) -> Result<bool, VboardError> {
        let start = self.offset + at;
        let end = start + data.len();
        if end > flash.bytes().len() {
            return Ok(false);
        }
        if end > self.erased_up_to {
            let from = self.erased_up_to.max(start / SECTOR * SECTOR);
            if !flash.erase(from, end - from)? {
                return Ok(false);
            }
            self.erased_up_to = end.div_ceil(SECTOR) * SECTOR;
        }
        if !flash.write(start, data)? {
            return Ok(false);
        }
        self.written = self.written.max(at + data.len());
        Ok(true)
    }
}

/// A FLASH_DEFL_BEGIN .. END session.
#[derive(Debug)]
pub(crate) struct Inflate {
    size: usize,
    writer: SectorWriter,
    inflater: Decompress,
    next_seq: u32,
}

impl Inflate {
    pub(crate) fn new(offset: usize, size: usize) -> Inflate {
        Inflate {
            size,
            writer: SectorWriter::new(offset),
            inflater: Decompress::new(true),
            next_seq: 0,
        }
    }

    /// Feeds one compressed block; returns a stub status code on failure.
    pub(crate) fn block(
        &mut self,
        flash: &mut Flash,
        seq: u32,
        data: &[u8],
    ) -> Result<Result<(), u8>, VboardError> {
        if seq != self.next_seq {
            return Ok(Err(stub_error::BAD_DATA_LEN));
        }
        self.next_seq += 1;
        let mut input = data;
        let mut out = vec![0u8; 0x8000];
        loop {
            let before_in = self.inflater.total_in();
            let before_out = self.inflater.total_out();
            let status = self
                .inflater
                .decompress(input, &mut out, FlushDecompress::None);
            let consumed = (self.inflater.total_in() - before_in) as usize;
            let produced = (self.inflater.total_out() - before_out) as usize;
            input = &input[consumed..];
            if produced > 0 {
                let at = self.writer.written();
                if at + produced > self.size {
                    return Ok(Err(stub_error::TOO_MUCH_DATA));
                }
                if !self.writer.write_at(flash, at, &out[..produced])? {
                    return Ok(Err(stub_error::FAILED_SPI_OP));
                }
            }
            match status {
                Err(_) => return Ok(Err(stub_error::INFLATE_ERROR)),
                Ok(Status::StreamEnd) => return Ok(Ok(())),
                Ok(_) if input.is_empty() && produced < out.len() => return Ok(Ok(())),
                Ok(_) if consumed == 0 && produced == 0 => return Ok(Ok(())),
                Ok(_) => {}
            }
        }
    }

    pub(crate) fn written(&self) -> usize {
        self.writer.written()
    }
}

/// MD5 of a flash region, `None` past the end.
pub(crate) fn md5(flash: &Flash, offset: usize, len: usize) -> Option<[u8; 16]> {
    let bytes = flash.read(offset, len)?;
    Some(Md5::digest(bytes).into())
}

/// A READ_FLASH in progress: the stub sends `packet`-sized frames, at most
/// `window` unacknowledged, and the MD5 of everything once the last is acknowledged.
#[derive(Debug)]
pub(crate) struct ReadJob {
    offset: usize,
    length: usize,
    packet: usize,
    window: usize,
    sent: usize,
    acked: usize,
    hasher: Md5,
}

impl ReadJob {
    pub(crate) fn new(offset: usize, length: usize, packet: usize, window: usize) -> ReadJob {
        ReadJob {
            offset,
            length,
            packet: packet.max(1),
            window: window.max(1),
            sent: 0,
            acked: 0,
            hasher: Md5::new(),
        }
    }

    /// Data frames that may go out now.
    pub(crate) fn pump(&mut self, flash: &Flash) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        while self.sent < self.length && self.sent - self.acked < self.window * self.packet {
            let n = self.packet.min(self.length - self.sent);
            let chunk = flash
                .read(self.offset + self.sent, n)
                .map(<[u8]>::to_vec)
                .unwrap_or_else(|| vec![0xFF; n]);
            self.hasher.update(&chunk);
            self.sent += n;
            frames.push(chunk);
        }
        frames
    }

    /// Takes an acknowledgement (total bytes received); returns the digest when done.
    pub(crate) fn ack(&mut self, total: usize) -> Option<[u8; 16]> {
        self.acked = total.min(self.sent).max(self.acked);
        (self.acked >= self.length).then(|| std::mem::take(&mut self.hasher).finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::ZlibEncoder;
    use std::io::Write;

    #[test]
    fn inflates_across_blocks_and_erases_tail_of_sector() {
        let dir = tempfile::tempdir().unwrap();
        let mut flash = Flash::open(&dir.path().join("f")).unwrap();
        flash.write(0x2000 + 5000, &[0u8; 10]).unwrap();
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut enc = ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&data).unwrap();
        let compressed = enc.finish().unwrap();
        let mut job = Inflate::new(0x2000, data.len());
        for (seq, block) in compressed.chunks(100).enumerate() {
            assert_eq!(job.block(&mut flash, seq as u32, block).unwrap(), Ok(()));
        }
        assert_eq!(job.written(), data.len());
        assert_eq!(flash.read(0x2000, 5000).unwrap(), &data[..]);
        assert_eq!(flash.read(0x2000 + 5000, 10).unwrap(), &[0xFF; 10]);
        assert_eq!(
            Inflate::new(0, 10)
                .block(&mut flash, 0, b"not zlib")
                .unwrap(),
            Err(stub_error::INFLATE_ERROR)
        );
    }

    #[test]
    fn read_job_respects_window() {
        let dir = tempfile::tempdir().unwrap();
        let flash = Flash::open(&dir.path().join("f")).unwrap();
        let mut job = ReadJob::new(0, 10_000, 4096, 2);
        assert_eq!(job.pump(&flash).len(), 2);
        assert!(job.pump(&flash).is_empty());
        assert!(job.ack(4096).is_none());
        assert_eq!(job.pump(&flash).len(), 1);
        assert!(job.ack(8192).is_none());
        let digest = job.ack(10_000).unwrap();
        assert_eq!(digest, md5(&flash, 0, 10_000).unwrap());
    }
}
