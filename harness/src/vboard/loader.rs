//! The ESP8266 ROM serial loader, and the flasher stub's protocol once a stub was
//! uploaded and started.
//!
//! Requests: `00 op len:u16 chk:u32 data`; responses: `01 op len:u16 value:u32 data
//! status[2]`, each in its own SLIP frame. The ROM reports failure as `01 code`, the
//! stub as `code 00`.

use super::flash::{Flash, FLASH_SIZE, JEDEC_ID};
use super::stub::{self, Inflate, ReadJob, SectorWriter};
use super::VboardError;
use crate::timeline::BoardEvent;
use hil_contract::slip;

use hil_contract::esp8266::{CHIP_MAGIC, CHIP_MAGIC_REG, EFUSE_BASE};
use hil_contract::loader::command::*;
use hil_contract::loader::{self, rom_error as rom_code, stub_error as stub_code, ROM_SYNC_VALUE};

const UART_CLKDIV: u32 = 0x6000_0014;
const SPI_BASE: u32 = 0x6000_0200;
const SPI_CMD_USR: u32 = 1 << 18;
const SPI_RDID: u32 = 0x9F;
/// RAM a stub may be uploaded to: DRAM and IRAM (the text lives in IRAM).
const RAM: std::ops::Range<u32> = 0x3FFE_8000..0x4011_0000;
/// Upper bound on uploaded RAM: more than the chip has means a broken client.
const MAX_UPLOAD: usize = 128 * 1024;

/// Which protocol the chip speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// The mask ROM's loader.
    Rom,
    /// A flasher stub, uploaded to RAM and started.
    Stub,
}

/// What the board must do besides sending the frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// A SLIP-encoded frame for the client.
    Send(Vec<u8>),
    /// Leave the loader and boot the image in flash (FLASH_END/MEM_END "run", RUN_USER_CODE).
    BootFlash,
    /// Something worth a timeline entry.
    Event(BoardEvent),
    /// The stub changes its UART to this rate, once the frames before this
    /// effect are out (CHANGE_BAUDRATE answers at the old rate).
    SetBaud(u32),
}

#[derive(Debug)]
enum FlashSession {
    Plain {
        offset: usize,
        block_size: usize,
        writer: SectorWriter,
        next_seq: u32,
    },
    Deflate {
        offset: usize,
        job: Inflate,
    },
}

#[derive(Debug, Default)]
struct Upload {
    segments: Vec<(u32, Vec<u8>)>,
    current: Option<(u32, usize, usize)>,
    total: usize,
}

/// The chip's identity as its efuses hold it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Efuse {
    words: [u32; 4],
}

impl Efuse {
    /// Efuses for a chip with MAC `18:FE:34:a:b:c` (Espressif's first OUI, which
    /// tools pick when word 1 bits 16..23 are 0 and word 3 is 0). Word 0 bit 4 and
    /// word 2 bit 16 stay 0: an ESP8266EX, not an ESP8285.
    pub(crate) fn for_mac(mac: [u8; 6]) -> Efuse {
        Efuse {
            words: [
                (mac[5] as u32) << 24,
                ((mac[3] as u32) << 8) | mac[4] as u32,
                0,
                0,
            ],
        }
    }
}

/// The loader state of one chip between resets.
#[derive(Debug)]
pub(crate) struct Loader {
    protocol: Protocol,
    efuse: Efuse,
    regs: std::collections::HashMap<u32, u32>,
    session: Option<FlashSession>,
    upload: Upload,
    read: Option<ReadJob>,
    halted: bool,
    /// Data blocks the stub received (for [`Loader::hang_at_block`]).
    data_blocks: u32,
    hang_at: Option<u32>,
}

fn word(data: &[u8], index: usize) -> Option<u32> {
    let bytes = data.get(index * 4..index * 4 + 4)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

impl Loader {
    /// A chip that just entered download mode.
    pub(crate) fn new(efuse: Efuse) -> Loader {
        Loader {
            protocol: Protocol::Rom,
            efuse,
            regs: Default::default(),
            session: None,
            upload: Upload::default(),
            read: None,
            halted: false,
            data_blocks: 0,
            hang_at: None,
        }
    }

    /// A test fault: the stub goes silent when it receives its `n`th data block.
    pub(crate) fn hang_at_block(mut self, n: Option<u32>) -> Loader {
        self.hang_at = n;
        self
    }

    fn response(&self, op: u8, value: u32, data: &[u8], failure: Option<u8>) -> Effect {
        let status = match (failure, self.protocol) {
            (None, _) => [0, 0],
            (Some(code), Protocol::Rom) => [1, code],
            (Some(code), Protocol::Stub) => [code, 0],
        };
        Effect::Send(slip::encode(&loader::response(op, value, data, status)))
    }

    fn ok(&self, op: u8) -> Effect {
        self.response(op, 0, &[], None)
    }

    /// The failure for "I do not know this command" / "malformed" / "bad checksum".
    fn fail(&self, op: u8, rom: u8, stub: u8) -> Effect {
        let code = match self.protocol {
            Protocol::Rom => rom,
            Protocol::Stub => stub,
        };
        self.response(op, 0, &[], Some(code))
    }

    fn malformed(&self, op: u8) -> Result<Vec<Effect>, VboardError> {
        Ok(vec![self.fail(
            op,
            rom_code::INVALID_MESSAGE,
            stub_code::BAD_DATA_LEN,
        )])
    }

    fn read_register(&self, addr: u32, client_baud: u32) -> u32 {
        match addr {
            CHIP_MAGIC_REG => CHIP_MAGIC,
            a if (EFUSE_BASE..EFUSE_BASE + 16).contains(&a) && a % 4 == 0 => {
                self.efuse.words[((a - EFUSE_BASE) / 4) as usize]
            }
            // The ROM measured the client's rate at SYNC: divisor of the 52 MHz APB
            // clock (26 MHz crystal x 2), which tools turn back into the crystal.
            UART_CLKDIV => (52_000_000 + client_baud / 2) / client_baud.max(1),
            other => self.regs.get(&other).copied().unwrap_or(0),
        }
    }

    fn write_register(&mut self, addr: u32, value: u32, mask: u32) {
        let old = self.regs.get(&addr).copied().unwrap_or(0);
        let new = (old & !mask) | (value & mask);
        self.regs.insert(addr, new);
        if addr == SPI_BASE && new & SPI_CMD_USR != 0 {
            // A user SPI command: run it at once and clear the busy bit.
            let opcode = self.regs.get(&(SPI_BASE + 0x24)).copied().unwrap_or(0) & 0xFFFF;
            let w0 = if opcode == SPI_RDID { JEDEC_ID } else { 0 };
            self.regs.insert(SPI_BASE + 0x40, w0);
            self.regs.insert(SPI_BASE, new & !SPI_CMD_USR);
        }
    }

    /// Handles one frame from the client.
    pub(crate) fn handle(
        &mut self,
        frame: &[u8],
        flash: &mut Flash,
        client_baud: u32,
    ) -> Result<Vec<Effect>, VboardError> {
        if self.halted {
            return Ok(Vec::new());
        }
        if let Some(job) = self.read.as_mut() {
            // During READ_FLASH the client only sends 4-byte acknowledgements.
            if frame.len() == 4 {
                let total = word(frame, 0).unwrap_or(0) as usize;
                let mut effects: Vec<Effect> = Vec::new();
                let digest = job.ack(total);
                effects.extend(
                    job.pump(flash)
                        .iter()
                        .map(|f| Effect::Send(slip::encode(f))),
                );
                if let Some(digest) = digest {
                    effects.push(Effect::Send(slip::encode(&digest)));
                    self.read = None;
                }
                return Ok(effects);
            }
            self.read = None;
        }
        let Some(loader::Request { op, len, chk, data }) = loader::Request::parse(frame) else {
            // Not a request (too short, or a response echoed back): noise.
            return Ok(Vec::new());
        };
        if data.len() != len {
            return Ok(vec![self.fail(
                op,
                rom_code::INVALID_MESSAGE,
                stub_code::BAD_DATA_LEN,
            )]);
        }
        let known = match self.protocol {
            Protocol::Rom => matches!(
                op,
                FLASH_BEGIN
                    | FLASH_DATA
                    | FLASH_END
                    | MEM_BEGIN
                    | MEM_END
                    | MEM_DATA
                    | SYNC
                    | WRITE_REG
                    | READ_REG
            ),
            Protocol::Stub => matches!(
                op,
                FLASH_BEGIN
                    | FLASH_DATA
                    | FLASH_END
                    | MEM_BEGIN
                    | MEM_END
                    | MEM_DATA
                    | SYNC
                    | WRITE_REG
                    | READ_REG
                    | SPI_SET_PARAMS
                    | SPI_ATTACH
                    | CHANGE_BAUDRATE
                    | FLASH_DEFL_BEGIN
                    | FLASH_DEFL_DATA
                    | FLASH_DEFL_END
                    | SPI_FLASH_MD5
                    | ERASE_FLASH
                    | ERASE_REGION
                    | READ_FLASH
                    | RUN_USER_CODE
            ),
        };
        if !known {
            return Ok(vec![self.fail(
                op,
                rom_code::INVALID_MESSAGE,
                stub_code::NOT_IMPLEMENTED,
            )]);
        }
        if self.protocol == Protocol::Stub && matches!(op, FLASH_DATA | FLASH_DEFL_DATA) {
            if self.hang_at == Some(self.data_blocks) {
                self.halted = true;
                return Ok(Vec::new());
            }
            self.data_blocks += 1;
        }
        // Data-carrying commands: 16-byte header, then a payload covered by `chk`.
        if matches!(op, FLASH_DATA | MEM_DATA | FLASH_DEFL_DATA) {
            let Some(payload) = data.get(16..) else {
                return Ok(vec![self.fail(
                    op,
                    rom_code::INVALID_MESSAGE,
                    stub_code::BAD_DATA_LEN,
                )]);
            };
            if loader::checksum(payload) != chk {
                return Ok(vec![self.fail(
                    op,
                    rom_code::BAD_CHECKSUM,
                    stub_code::BAD_DATA_CHECKSUM,
                )]);
            }
            let declared = word(data, 0).unwrap_or(0) as usize;
            if declared != payload.len() {
                return Ok(vec![self.fail(
                    op,
                    rom_code::INVALID_MESSAGE,
                    stub_code::BAD_DATA_LEN,
                )]);
            }
        }
        match op {
            SYNC => {
                if data != loader::SYNC_PAYLOAD {
                    return self.malformed(op);
                }
                // The ROM answers a SYNC eight times; the stub once, with value 0.
                Ok(match self.protocol {
                    Protocol::Rom => (0..8)
                        .map(|_| self.response(op, ROM_SYNC_VALUE, &[], None))
                        .collect(),
                    Protocol::Stub => vec![self.ok(op)],
                })
            }
            READ_REG => match word(data, 0) {
                Some(addr) if data.len() == 4 => {
                    let value = self.read_register(addr, client_baud);
                    Ok(vec![self.response(op, value, &[], None)])
                }
                _ => self.malformed(op),
            },
            WRITE_REG => {
                if data.is_empty() || !data.len().is_multiple_of(16) {
                    return self.malformed(op);
                }
                for entry in data.chunks(16) {
                    let (Some(addr), Some(value), Some(mask)) =
                        (word(entry, 0), word(entry, 1), word(entry, 2))
                    else {
                        return self.malformed(op);
                    };
                    self.write_register(addr, value, mask);
                }
                Ok(vec![self.ok(op)])
            }
            FLASH_BEGIN | FLASH_DEFL_BEGIN => self.flash_begin(op, data, flash),
            FLASH_DATA | FLASH_DEFL_DATA => self.flash_data(op, data, flash),
            FLASH_END | FLASH_DEFL_END => {
                let Some(flag) = word(data, 0) else {
                    return self.malformed(op);
                };
                let mut effects: Vec<Effect> = self.close().into_iter().collect();
                effects.insert(0, self.ok(op));
                if flag == 0 {
                    effects.push(Effect::BootFlash);
                }
                Ok(effects)
            }
            MEM_BEGIN => {
                let (Some(size), Some(addr)) = (word(data, 0), word(data, 3)) else {
                    return self.malformed(op);
                };
                let block = word(data, 2).unwrap_or(0) as usize;
                let end = addr as u64 + size as u64;
                if !RAM.contains(&addr)
                    || end > RAM.end as u64
                    || self.upload.total + size as usize > MAX_UPLOAD
                {
                    return Ok(vec![self.fail(
                        op,
                        rom_code::FAILED_TO_ACT,
                        stub_code::BAD_DATA_LEN,
                    )]);
                }
                self.upload.total += size as usize;
                self.upload.current = Some((addr, size as usize, block));
                self.upload
                    .segments
                    .push((addr, Vec::with_capacity(size as usize)));
                Ok(vec![self.ok(op)])
            }
            MEM_DATA => {
                let (Some((_, size, block)), Some(seq)) = (self.upload.current, word(data, 1))
                else {
                    return Ok(vec![self.fail(
                        op,
                        rom_code::FAILED_TO_ACT,
                        stub_code::NOT_IN_FLASH_MODE,
                    )]);
                };
                let payload = &data[16..];
                let at = seq as usize * block;
                let Some(segment) = self.upload.segments.last_mut() else {
                    return Ok(vec![self.fail(
                        op,
                        rom_code::FAILED_TO_ACT,
                        stub_code::NOT_IN_FLASH_MODE,
                    )]);
                };
                if at + payload.len() > size {
                    return Ok(vec![self.fail(
                        op,
                        rom_code::FAILED_TO_ACT,
                        stub_code::TOO_MUCH_DATA,
                    )]);
                }
                if segment.1.len() < at + payload.len() {
                    segment.1.resize(at + payload.len(), 0);
                }
                segment.1[at..at + payload.len()].copy_from_slice(payload);
                Ok(vec![self.ok(op)])
            }
            MEM_END => self.mem_end(op, data),
            SPI_SET_PARAMS | SPI_ATTACH => Ok(vec![self.ok(op)]),
            CHANGE_BAUDRATE => match (word(data, 0), word(data, 1)) {
                // New rate, then the rate the client believes the stub runs at; the
                // stub answers at the old rate and switches after the answer is out.
                (Some(new), Some(_old)) if data.len() == 8 && new != 0 => {
                    Ok(vec![self.ok(op), Effect::SetBaud(new)])
                }
                _ => self.malformed(op),
            },
            SPI_FLASH_MD5 => {
                let (Some(addr), Some(size)) = (word(data, 0), word(data, 1)) else {
                    return self.malformed(op);
                };
                match stub::md5(flash, addr as usize, size as usize) {
                    Some(digest) => Ok(vec![self.response(op, 0, &digest, None)]),
                    None => Ok(vec![self.fail(op, 0, stub_code::FAILED_SPI_OP)]),
                }
            }
            ERASE_FLASH => {
                flash.erase(0, FLASH_SIZE)?;
                Ok(vec![
                    self.ok(op),
                    Effect::Event(BoardEvent::FlashErased {
                        offset: None,
                        bytes: None,
                    }),
                ])
            }
            ERASE_REGION => {
                let (Some(offset), Some(size)) = (word(data, 0), word(data, 1)) else {
                    return self.malformed(op);
                };
                if offset % 4096 != 0 || size % 4096 != 0 {
                    return Ok(vec![self.fail(op, 0, stub_code::FAILED_SPI_OP)]);
                }
                if !flash.erase(offset as usize, size as usize)? {
                    return Ok(vec![self.fail(op, 0, stub_code::FAILED_SPI_OP)]);
                }
                Ok(vec![
                    self.ok(op),
                    Effect::Event(BoardEvent::FlashErased {
                        offset: Some(offset),
                        bytes: Some(size),
                    }),
                ])
            }
            READ_FLASH => {
                let (Some(offset), Some(len), Some(packet), Some(window)) =
                    (word(data, 0), word(data, 1), word(data, 2), word(data, 3))
                else {
                    return self.malformed(op);
                };
                if flash.read(offset as usize, len as usize).is_none() {
                    return Ok(vec![self.fail(op, 0, stub_code::FAILED_SPI_OP)]);
                }
                let mut job = ReadJob::new(
                    offset as usize,
                    len as usize,
                    (packet as usize).min(0x4000),
                    (window as usize).min(256),
                );
                let mut effects = vec![self.ok(op)];
                effects.extend(
                    job.pump(flash)
                        .iter()
                        .map(|f| Effect::Send(slip::encode(f))),
                );
                if len == 0 {
                    if let Some(digest) = job.ack(0) {
                        effects.push(Effect::Send(slip::encode(&digest)));
                    }
                } else {
                    self.read = Some(job);
                }
                Ok(effects)
            }
            RUN_USER_CODE => Ok(vec![Effect::BootFlash]),
            _ => self.malformed(op),
        }
    }

    /// Ends the flash session, if any, with a note of what it wrote. Tools end a
    /// session with another BEGIN, an END, or simply a reset.
    pub(crate) fn close(&mut self) -> Option<Effect> {
        let (offset, written) = match self.session.take()? {
            FlashSession::Plain { offset, writer, .. } => (offset, writer.written()),
            FlashSession::Deflate { offset, job } => (offset, job.written()),
        };
        (written > 0).then_some(Effect::Event(BoardEvent::FlashWritten {
            offset: offset as u32,
            bytes: written as u64,
        }))
    }

    fn flash_begin(
        &mut self,
        op: u8,
        data: &[u8],
        flash: &mut Flash,
    ) -> Result<Vec<Effect>, VboardError> {
        let (Some(size), Some(blocks), Some(block_size), Some(offset)) =
            (word(data, 0), word(data, 1), word(data, 2), word(data, 3))
        else {
            return Ok(vec![self.fail(
                op,
                rom_code::INVALID_MESSAGE,
                stub_code::BAD_DATA_LEN,
            )]);
        };
        let (size, offset) = (size as usize, offset as usize);
        let span = blocks as u64 * block_size as u64;
        if offset as u64 + (size as u64).max(if op == FLASH_BEGIN { span } else { 0 })
            > FLASH_SIZE as u64
        {
            return Ok(vec![self.fail(
                op,
                rom_code::FLASH_WRITE,
                stub_code::FAILED_SPI_OP,
            )]);
        }
        let mut effects: Vec<Effect> = self.close().into_iter().collect();
        if op == FLASH_DEFL_BEGIN {
            self.session = Some(FlashSession::Deflate {
                offset,
                job: Inflate::new(offset, size),
            });
        } else {
            // The ROM erases at BEGIN (by the size word, which tools shrink to make
            // up for the ROM's erase bug); sectors the data reaches beyond that are
            // erased as the writer gets there, as the stub does for everything.
            if self.protocol == Protocol::Rom && !flash.erase(offset, size)? {
                return Ok(vec![self.fail(
                    op,
                    rom_code::FLASH_WRITE,
                    stub_code::FAILED_SPI_OP,
                )]);
            }
            let writer = match self.protocol {
                Protocol::Rom => SectorWriter::already_erased(offset, size),
                Protocol::Stub => SectorWriter::new(offset),
            };
            self.session = Some(FlashSession::Plain {
                offset,
                block_size: block_size as usize,
                writer,
                next_seq: 0,
            });
        }
        effects.insert(0, self.ok(op));
        if size > 0 {
            effects.push(Effect::Event(BoardEvent::FlashBegin {
                offset: offset as u32,
                size: size as u32,
                compressed: op == FLASH_DEFL_BEGIN,
            }));
        }
        Ok(effects)
    }

    fn flash_data(
        &mut self,
        op: u8,
        data: &[u8],
        flash: &mut Flash,
    ) -> Result<Vec<Effect>, VboardError> {
        let seq = word(data, 1).unwrap_or(0);
        let payload = &data[16..];
        let result = match (&mut self.session, op) {
            (
                Some(FlashSession::Plain {
                    block_size,
                    writer,
                    next_seq,
                    ..
                }),
                FLASH_DATA,
            ) => {
                if seq != *next_seq {
                    Err((rom_code::FAILED_TO_ACT, stub_code::BAD_DATA_LEN))
                } else if writer.write_at(flash, seq as usize * *block_size, payload)? {
                    *next_seq += 1;
                    Ok(())
                } else {
                    Err((rom_code::FLASH_WRITE, stub_code::FAILED_SPI_OP))
                }
            }
            (Some(FlashSession::Deflate { job, .. }), FLASH_DEFL_DATA) => {
                job.block(flash, seq, payload)?.map_err(|code| (0, code))
            }
            _ => Err((rom_code::FAILED_TO_ACT, stub_code::NOT_IN_FLASH_MODE)),
        };
        Ok(vec![match result {
            Ok(()) => self.ok(op),
            Err((rom, stub)) => self.fail(op, rom, stub),
        }])
    }

    fn mem_end(&mut self, op: u8, data: &[u8]) -> Result<Vec<Effect>, VboardError> {
        let (Some(flag), Some(entry)) = (word(data, 0), word(data, 1)) else {
            return Ok(vec![self.fail(
                op,
                rom_code::INVALID_MESSAGE,
                stub_code::BAD_DATA_LEN,
            )]);
        };
        let upload = std::mem::take(&mut self.upload);
        let mut effects = vec![self.ok(op)];
        if flag != 0 {
            return Ok(effects);
        }
        // The board cannot execute Xtensa code. Code uploaded to RAM and started at
        // an address inside what was uploaded is taken for a flasher stub: every
        // tool that does this uploads one, and the stub's behaviour is what the
        // board then models. Anything else would crash or hang a real chip's loader
        // too; the board goes silent until the next reset.
        let inside = upload
            .segments
            .iter()
            .any(|(addr, bytes)| (*addr..addr + bytes.len() as u32).contains(&entry));
        let text_bytes: usize = upload.segments.iter().map(|(_, b)| b.len()).sum();
        if inside {
            self.protocol = Protocol::Stub;
            self.session = None;
            effects.push(Effect::Send(slip::encode(b"OHAI")));
            effects.push(Effect::Event(BoardEvent::StubStarted {
                entry,
                bytes: text_bytes,
            }));
        } else {
            self.halted = true;
            // Code at that entry cannot run on the virtual board.
            effects.push(Effect::Event(BoardEvent::RamCodeHalted { entry }));
        }
        Ok(effects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(op: u8, data: &[u8], chk: u8) -> Vec<u8> {
        let mut frame = vec![0, op];
        frame.extend_from_slice(&(data.len() as u16).to_le_bytes());
        frame.extend_from_slice(&(chk as u32).to_le_bytes());
        frame.extend_from_slice(data);
        frame
    }

    fn decode(effect: &Effect) -> Vec<u8> {
        match effect {
            Effect::Send(bytes) => slip::Decoder::new().feed(bytes).remove(0),
            other => panic!("not a frame: {other:?}"),
        }
    }

    fn setup() -> (tempfile::TempDir, Flash, Loader) {
        let dir = tempfile::tempdir().unwrap();
        let flash = Flash::open(&dir.path().join("f")).unwrap();
        (
            dir,
            flash,
            Loader::new(Efuse::for_mac([0x18, 0xFE, 0x34, 1, 2, 3])),
        )
    }

    #[test]
    fn rom_statuses() {
        let (_dir, mut flash, mut loader) = setup();
        let replies = loader
            .handle(
                &request(SYNC, &loader::SYNC_PAYLOAD, 0),
                &mut flash,
                115_200,
            )
            .unwrap();
        assert_eq!(replies.len(), 8);
        assert_eq!(decode(&replies[0]), [1, 8, 2, 0, 7, 7, 0x12, 0x20, 0, 0]);

        let unknown = loader
            .handle(&request(0x14, &[], 0), &mut flash, 115_200)
            .unwrap();
        assert_eq!(decode(&unknown[0]), [1, 0x14, 2, 0, 0, 0, 0, 0, 1, 5]);

        let mut begin = Vec::new();
        for w in [4u32, 1, 0x400, 0] {
            begin.extend(w.to_le_bytes());
        }
        loader
            .handle(&request(FLASH_BEGIN, &begin, 0), &mut flash, 115_200)
            .unwrap();
        let mut block = Vec::new();
        for w in [4u32, 0, 0, 0] {
            block.extend(w.to_le_bytes());
        }
        block.extend([1, 2, 3, 4]);
        let bad = loader
            .handle(&request(FLASH_DATA, &block, 0x00), &mut flash, 115_200)
            .unwrap();
        assert_eq!(decode(&bad[0])[8..], [1, 7]);
        let good = loader
            .handle(
                &request(FLASH_DATA, &block, 0xEF ^ 1 ^ 2 ^ 3 ^ 4),
                &mut flash,
                115_200,
            )
            .unwrap();
        assert_eq!(decode(&good[0])[8..], [0, 0]);
        assert_eq!(flash.read(0, 4).unwrap(), &[1, 2, 3, 4]);
    }

    #[test]
    fn spi_rdid_and_mac_registers() {
        let (_dir, mut flash, mut loader) = setup();
        let mut write = Vec::new();
        for w in [SPI_BASE + 0x24, 0x7000_009F, u32::MAX, 0] {
            write.extend(w.to_le_bytes());
        }
        for w in [SPI_BASE, SPI_CMD_USR, u32::MAX, 0] {
            write.extend(w.to_le_bytes());
        }
        loader
            .handle(&request(WRITE_REG, &write, 0), &mut flash, 115_200)
            .unwrap();
        let read = |loader: &mut Loader, flash: &mut Flash, addr: u32| {
            let r = loader
                .handle(&request(READ_REG, &addr.to_le_bytes(), 0), flash, 115_200)
                .unwrap();
            word(&decode(&r[0])[4..8], 0).unwrap()
        };
        assert_eq!(read(&mut loader, &mut flash, SPI_BASE) & SPI_CMD_USR, 0);
        assert_eq!(read(&mut loader, &mut flash, SPI_BASE + 0x40), JEDEC_ID);
        assert_eq!(read(&mut loader, &mut flash, 0x3FF0_0050), 3 << 24);
        assert_eq!(read(&mut loader, &mut flash, 0x3FF0_0054), 0x0102);
        assert_eq!(read(&mut loader, &mut flash, UART_CLKDIV), 451);
    }
}
