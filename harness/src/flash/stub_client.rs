//! A client for the flasher stub once espflash has uploaded and started it: the
//! commands espflash 2.1 does not send to an ESP8266 (CHANGE_BAUDRATE,
//! FLASH_DEFL_*, SPI_FLASH_MD5, SPI_SET_PARAMS), with their answers' data, which
//! espflash's `Connection::command` drops.
//!
//! Requests are `00 op len:u16 chk:u32 data` and answers `01 op len:u16
//! value:u32 data status`, each in a SLIP frame; the stub's status is its error
//! code, then 0.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use serialport::SerialPort;

use hil_contract::slip;

use hil_contract::loader::command::{
    CHANGE_BAUDRATE, FLASH_DEFL_BEGIN, FLASH_DEFL_DATA, FLASH_DEFL_END, READ_REG, SPI_FLASH_MD5,
    SPI_SET_PARAMS,
};
use hil_contract::loader::{self, Response};

/// How long one read of the port may block.
const READ_SLICE: Duration = Duration::from_millis(20);
/// How long the stub may take over an ordinary command.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// Erasing and writing a megabyte of a slow chip's flash (esptool's figure).
const WRITE_PER_MB: Duration = Duration::from_secs(40);
/// Hashing a megabyte of flash (esptool's figure).
const MD5_PER_MB: Duration = Duration::from_secs(8);

/// Why a command got no usable answer.
#[derive(Debug)]
pub(crate) enum StubFailure {
    /// Nothing came back in time.
    Silent,
    /// The stub answered with an error code (0xC0.. from its status byte).
    Refused {
        /// The command.
        op: u8,
        /// The stub's error code.
        code: u8,
    },
    /// An answer that makes no sense (a digest of the wrong length).
    Malformed(String),
    /// The port itself failed.
    Port(io::Error),
}

impl From<io::Error> for StubFailure {
    fn from(error: io::Error) -> StubFailure {
        StubFailure::Port(error)
    }
}

/// One answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) value: u32,
    pub(crate) data: Vec<u8>,
}

pub(crate) use hil_contract::loader::checksum;

/// Time a stub may spend writing `bytes` of flash.
pub(crate) fn write_time(bytes: usize) -> Duration {
    WRITE_PER_MB.mul_f64(bytes as f64 / 1_048_576.0)
}

/// The serial link to a running stub.
pub(crate) struct StubClient {
    port: Box<dyn SerialPort>,
    decoder: slip::Decoder,
    baud: u32,
}

impl StubClient {
    /// Talks to a stub on `port`, which runs at `baud`.
    pub(crate) fn new(mut port: Box<dyn SerialPort>, baud: u32) -> StubClient {
        // Short reads, so every wait ends at its own deadline (espflash leaves
        // the port at 3 s).
        let _ = port.set_timeout(READ_SLICE);
        StubClient {
            port,
            decoder: slip::Decoder::new(),
            baud,
        }
    }

    /// The port back (for a reset or a new connection).
    pub(crate) fn into_port(self) -> Box<dyn SerialPort> {
        self.port
    }

    /// The rate the link runs at.
    pub(crate) fn baud(&self) -> u32 {
        self.baud
    }

    /// Sets the local end of the link to `baud`; an error means the port (the
    /// adapter, or an RFC 2217 server) does not support it.
    pub(crate) fn set_port_baud(&mut self, baud: u32) -> serialport::Result<()> {
        let result = self.port.set_baud_rate(baud);
        self.baud = self.port.baud_rate().unwrap_or(baud);
        result
    }

    /// Drops whatever arrived and was not read (noise after a rate change).
    pub(crate) fn clear_input(&mut self) -> Result<(), StubFailure> {
        self.port
            .clear(serialport::ClearBuffer::Input)
            .map_err(|e| StubFailure::Port(e.into()))?;
        self.decoder.clear();
        Ok(())
    }

    fn line_time(&self, bytes: usize) -> Duration {
        Duration::from_secs_f64(bytes as f64 * 10.0 / f64::from(self.baud.max(1)))
    }

    /// Sends one request; returns how long it takes on the wire.
    fn send(&mut self, op: u8, data: &[u8], chk: u8) -> Result<Duration, StubFailure> {
        let frame = slip::encode(&loader::request(op, data, u32::from(chk)));
        self.port.write_all(&frame)?;
        self.port.flush()?;
        Ok(self.line_time(frame.len()))
    }

    /// Waits for the answer to `op` until `deadline`.
    fn receive(&mut self, op: u8, deadline: Instant) -> Result<Reply, StubFailure> {
        let mut buf = [0u8; 4096];
        loop {
            if Instant::now() >= deadline {
                return Err(StubFailure::Silent);
            }
            let n = match self.port.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
                Err(e) => return Err(StubFailure::Port(e)),
            };
            for frame in self.decoder.feed(&buf[..n]) {
                // Anything else (an echo, a late answer to an earlier request,
                // garbage that happened to be framed) is not this answer.
                let Some(answer) = Response::parse(&frame).filter(|r| r.op == op) else {
                    continue;
                };
                if !answer.succeeded() {
                    return Err(StubFailure::Refused {
                        op,
                        code: answer.status[0],
                    });
                }
                return Ok(Reply {
                    value: answer.value,
                    data: answer.data.to_vec(),
                });
            }
        }
    }

    /// Sends a request and waits `timeout` (after its last byte is out) for the
    /// answer.
    pub(crate) fn command(
        &mut self,
        op: u8,
        data: &[u8],
        chk: u8,
        timeout: Duration,
    ) -> Result<Reply, StubFailure> {
        let on_wire = self.send(op, data, chk)?;
        self.receive(op, Instant::now() + on_wire + timeout)
    }

    /// Reads a register.
    pub(crate) fn read_reg(&mut self, addr: u32, timeout: Duration) -> Result<u32, StubFailure> {
        Ok(self
            .command(READ_REG, &addr.to_le_bytes(), 0, timeout)?
            .value)
    }

    /// Tells the stub the flash's geometry (it writes nothing past `size`).
    pub(crate) fn spi_set_params(&mut self, size: u32) -> Result<(), StubFailure> {
        let mut data = Vec::with_capacity(24);
        // id (unused), total size, 64 KB blocks, 4 KB sectors, 256-byte pages,
        // status mask.
        for word in [0, size, 0x1_0000, 0x1000, 0x100, 0xFFFF] {
            data.extend_from_slice(&u32::to_le_bytes(word));
        }
        self.command(SPI_SET_PARAMS, &data, 0, COMMAND_TIMEOUT)?;
        Ok(())
    }

    /// Asks the stub to move to `new` baud. The answer comes at the old rate; the
    /// stub switches about 10 ms after sending it.
    pub(crate) fn change_baud(&mut self, new: u32) -> Result<(), StubFailure> {
        let mut data = new.to_le_bytes().to_vec();
        data.extend_from_slice(&self.baud.to_le_bytes());
        self.command(CHANGE_BAUDRATE, &data, 0, COMMAND_TIMEOUT)?;
        Ok(())
    }

    /// Sends CHANGE_BAUDRATE without waiting for an answer nobody could read.
    pub(crate) fn change_baud_blind(&mut self, new: u32, old: u32) -> Result<(), StubFailure> {
        let mut data = new.to_le_bytes().to_vec();
        data.extend_from_slice(&old.to_le_bytes());
        self.send(CHANGE_BAUDRATE, &data, 0)?;
        Ok(())
    }

    /// The MD5 of `len` bytes of flash at `offset`.
    pub(crate) fn md5(&mut self, offset: u32, len: u32) -> Result<[u8; 16], StubFailure> {
        let mut data = Vec::with_capacity(16);
        for word in [offset, len, 0, 0] {
            data.extend_from_slice(&word.to_le_bytes());
        }
        let timeout = COMMAND_TIMEOUT + MD5_PER_MB.mul_f64(f64::from(len) / 1_048_576.0);
        let reply = self.command(SPI_FLASH_MD5, &data, 0, timeout)?;
        let mut digest = [0u8; 16];
        match reply.data.len() {
            16 => digest.copy_from_slice(&reply.data),
            // A ROM (ESP32 family) answers in hex; accept it, it costs nothing.
            32 => {
                let text = String::from_utf8_lossy(&reply.data).to_string();
                let bytes = hex::decode(&text)
                    .map_err(|_| StubFailure::Malformed(format!("MD5 answer {text:?}")))?;
                digest.copy_from_slice(&bytes);
            }
            n => return Err(StubFailure::Malformed(format!("a {n}-byte MD5 answer"))),
        }
        Ok(digest)
    }

    /// Starts a compressed write of `size` bytes at `offset`, sent as `blocks`
    /// blocks of at most `block_size` compressed bytes. The stub erases as it goes.
    pub(crate) fn defl_begin(
        &mut self,
        size: u32,
        blocks: u32,
        block_size: u32,
        offset: u32,
    ) -> Result<(), StubFailure> {
        let mut data = Vec::with_capacity(16);
        for word in [size, blocks, block_size, offset] {
            data.extend_from_slice(&word.to_le_bytes());
        }
        self.command(FLASH_DEFL_BEGIN, &data, 0, COMMAND_TIMEOUT)?;
        Ok(())
    }

    /// Sends compressed block `seq`. The stub acknowledges a block once it has
    /// written the one before, so `write_time` bounds how long that takes.
    pub(crate) fn defl_data(
        &mut self,
        seq: u32,
        block: &[u8],
        write_time: Duration,
    ) -> Result<(), StubFailure> {
        let mut data = Vec::with_capacity(16 + block.len());
        for word in [block.len() as u32, seq, 0, 0] {
            data.extend_from_slice(&word.to_le_bytes());
        }
        data.extend_from_slice(block);
        self.command(
            FLASH_DEFL_DATA,
            &data,
            checksum(block),
            COMMAND_TIMEOUT + write_time,
        )?;
        Ok(())
    }

    /// Ends a compressed write once the last block is in flash; the stub stays
    /// in its loader (it would boot the firmware otherwise).
    pub(crate) fn defl_end(&mut self, write_time: Duration) -> Result<(), StubFailure> {
        self.command(
            FLASH_DEFL_END,
            &1u32.to_le_bytes(),
            0,
            COMMAND_TIMEOUT + write_time,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_and_times() {
        assert_eq!(checksum(&[]), 0xEF);
        assert_eq!(checksum(&[0xEF]), 0);
        assert_eq!(write_time(1_048_576), WRITE_PER_MB);
        assert!(write_time(0x4000) < Duration::from_secs(1));
    }
}
