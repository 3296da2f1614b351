//! The board's 4 MB SPI flash, kept in a file so it survives restarts of the board.
//!
//! Erased flash reads 0xFF; erasing works on 4 KB sectors. Writes are what the
//! stub and the ROM do after their erase, so they store bytes as given.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::VboardError;

pub use hil_contract::esp8266::FLASH_SIZE;
/// Erase granularity.
pub(crate) const SECTOR: usize = hil_contract::esp8266::SECTOR_SIZE;
/// JEDEC id in the byte order RDID leaves in SPI W0: Winbond (EF), 0x40, 0x16 = 4 MB.
pub(crate) const JEDEC_ID: u32 = 0x0016_40EF;

/// Flash contents in memory, written through to a file when the board has one.
#[derive(Debug)]
pub(crate) struct Flash {
    /// The file that keeps the contents across restarts (`None`: a board that
    /// lives as long as its process, such as the scenario runner's).
    file: Option<(PathBuf, File)>,
    bytes: Vec<u8>,
    /// Injected faults: (address, writes left to spoil there).
    spoil: Vec<(usize, u32)>,
}

impl Flash {
    /// Opens `path`, creating an erased 4 MB file when it does not exist.
    pub(crate) fn open(path: &Path) -> Result<Flash, VboardError> {
        let io = |source| VboardError::FlashFile {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut bytes = Vec::with_capacity(FLASH_SIZE);
        if len == 0 {
            bytes.resize(FLASH_SIZE, 0xFF);
            file.write_all(&bytes).map_err(io)?;
        } else if len != FLASH_SIZE as u64 {
            return Err(VboardError::FlashSize {
                path: path.to_path_buf(),
                len,
            });
        } else {
            file.read_to_end(&mut bytes).map_err(io)?;
        }
        Ok(Flash {
            file: Some((path.to_path_buf(), file)),
            bytes,
            spoil: Vec::new(),
        })
    }

    /// Erased flash kept in memory only: nothing on disk to clean up.
    pub(crate) fn in_memory() -> Flash {
        Flash {
            file: None,
            bytes: vec![0xFF; FLASH_SIZE],
            spoil: Vec::new(),
        }
    }

    /// Makes the next `times` writes reaching `offset` store that byte flipped
    /// (a test fault: flash that does not keep what was written).
    pub(crate) fn spoil_writes(&mut self, offset: u32, times: u32) {
        self.spoil.push((offset as usize, times));
    }

    /// The whole contents.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `len` bytes at `offset`, or `None` past the end.
    pub(crate) fn read(&self, offset: usize, len: usize) -> Option<&[u8]> {
        self.bytes.get(offset..offset.checked_add(len)?)
    }

    /// Stores `data` at `offset`; `false` (nothing written) when it runs past the end.
    pub(crate) fn write(&mut self, offset: usize, data: &[u8]) -> Result<bool, VboardError> {
        let Some(end) = offset
            .checked_add(data.len())
            .filter(|end| *end <= FLASH_SIZE)
        else {
            return Ok(false);
        };
        self.bytes[offset..end].copy_from_slice(data);
        for (at, left) in &mut self.spoil {
            if *left > 0 && (offset..end).contains(at) {
                self.bytes[*at] ^= 0xA5;
                *left -= 1;
            }
        }
        self.persist(offset, end)?;
        Ok(true)
    }

    /// Erases every sector overlapping `[offset, offset + len)`; `false` past the end.
    pub(crate) fn erase(&mut self, offset: usize, len: usize) -> Result<bool, VboardError> {
        let Some(end) = offset.checked_add(len).filter(|end| *end <= FLASH_SIZE) else {
            return Ok(false);
        };
        if len == 0 {
            return Ok(true);
        }
        let start = offset / SECTOR * SECTOR;
        let end = end.div_ceil(SECTOR) * SECTOR;
        self.bytes[start..end].fill(0xFF);
        self.persist(start, end)?;
        Ok(true)
    }

    fn persist(&mut self, start: usize, end: usize) -> Result<(), VboardError> {
        let Some((path, file)) = self.file.as_mut() else {
            return Ok(());
        };
        let io = |source| VboardError::FlashFile {
            path: path.clone(),
            source,
        };
        file.seek(SeekFrom::Start(start as u64)).map_err(io)?;
        file.write_all(&self.bytes[start..end]).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erased_file_and_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flash.bin");
        let mut flash = Flash::open(&path).unwrap();
        assert!(flash.bytes().iter().all(|b| *b == 0xFF));
        assert!(flash.write(0x1000, b"hello").unwrap());
        assert!(!flash.write(FLASH_SIZE - 2, b"abc").unwrap());
        drop(flash);
        let mut flash = Flash::open(&path).unwrap();
        assert_eq!(flash.read(0x1000, 5).unwrap(), b"hello");
        assert!(flash.erase(0x1002, 1).unwrap());
        assert_eq!(flash.read(0x1000, 5).unwrap(), &[0xFF; 5]);
        flash.spoil_writes(0x2001, 1);
        assert!(flash.write(0x2000, b"abc").unwrap());
        assert_eq!(flash.read(0x2000, 3).unwrap(), &[b'a', b'b' ^ 0xA5, b'c']);
        assert!(flash.write(0x2000, b"abc").unwrap());
        assert_eq!(flash.read(0x2000, 3).unwrap(), b"abc");
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            Flash::open(&path),
            Err(VboardError::FlashSize { len: 5, .. })
        ));
    }
}
