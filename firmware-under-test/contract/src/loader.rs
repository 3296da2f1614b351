//! The ESP8266 serial loader's protocol: the mask ROM's download mode, and the
//! flasher stub esptool and espflash upload and start in RAM.
//!
//! A request is `00 op len:u16 chk:u32 data` and a response `01 op len:u16
//! value:u32 data status[2]`, little-endian, each in its own [SLIP](crate::slip)
//! frame. `chk` is [`checksum`] of a data block for the commands that carry one,
//! 0 otherwise. The ROM reports failure as status `01 code` ([`rom_error`]), the
//! stub as `code 00` ([`stub_error`]).
//!
//! ```
//! use hil_contract::loader::{self, command, Response};
//!
//! let request = loader::request(command::READ_REG, &0x4000_1000u32.to_le_bytes(), 0);
//! assert_eq!(&request[..4], &[0x00, command::READ_REG, 4, 0]);
//!
//! let answer = loader::response(command::READ_REG, 0xFFF0_C101, &[], [0, 0]);
//! let parsed = Response::parse(&answer).expect("a response");
//! assert_eq!(parsed.value, 0xFFF0_C101);
//! assert!(parsed.succeeded());
//! ```

/// Command opcodes. The ROM knows `FLASH_BEGIN` to `READ_REG`; a stub adds the
/// rest.
pub mod command {
    /// Begin writing flash: erase size, block count, block size, offset.
    pub const FLASH_BEGIN: u8 = 0x02;
    /// One block of flash data: size, sequence number, two zero words, data.
    pub const FLASH_DATA: u8 = 0x03;
    /// Finish writing flash; a zero word asks to run the new image.
    pub const FLASH_END: u8 = 0x04;
    /// Begin uploading to RAM: size, block count, block size, address.
    pub const MEM_BEGIN: u8 = 0x05;
    /// Finish uploading to RAM, optionally jumping to an entry point.
    pub const MEM_END: u8 = 0x06;
    /// One block of RAM data.
    pub const MEM_DATA: u8 = 0x07;
    /// Synchronise the baud rate ([`super::SYNC_PAYLOAD`]).
    pub const SYNC: u8 = 0x08;
    /// Write a register: address, value, mask, delay.
    pub const WRITE_REG: u8 = 0x09;
    /// Read a register: its value comes back in the response's value word.
    pub const READ_REG: u8 = 0x0A;
    /// The flash's geometry (stub).
    pub const SPI_SET_PARAMS: u8 = 0x0B;
    /// Attach the SPI flash (stub; the ESP8266's ROM has it attached already).
    pub const SPI_ATTACH: u8 = 0x0D;
    /// Change the UART's rate: new, old (stub).
    pub const CHANGE_BAUDRATE: u8 = 0x0F;
    /// Begin writing zlib-compressed data to flash (stub).
    pub const FLASH_DEFL_BEGIN: u8 = 0x10;
    /// One block of compressed data (stub).
    pub const FLASH_DEFL_DATA: u8 = 0x11;
    /// Finish writing compressed data (stub).
    pub const FLASH_DEFL_END: u8 = 0x12;
    /// The MD5 of a flash region: address, size, two zero words (stub).
    pub const SPI_FLASH_MD5: u8 = 0x13;
    /// Erase the whole flash (stub).
    pub const ERASE_FLASH: u8 = 0xD0;
    /// Erase a region: offset, size (stub).
    pub const ERASE_REGION: u8 = 0xD1;
    /// Read flash back in acknowledged packets (stub).
    pub const READ_FLASH: u8 = 0xD2;
    /// Leave the stub and boot the image in flash.
    pub const RUN_USER_CODE: u8 = 0xD3;
}

/// The ROM's failure reasons: the second status byte, after a 1.
pub mod rom_error {
    /// The request was malformed (a wrong length, an unknown command).
    pub const INVALID_MESSAGE: u8 = 0x05;
    /// The command could not be carried out (a block out of sequence).
    pub const FAILED_TO_ACT: u8 = 0x06;
    /// The data block's checksum is wrong.
    pub const BAD_CHECKSUM: u8 = 0x07;
    /// Writing flash failed.
    pub const FLASH_WRITE: u8 = 0x08;
}

/// The flasher stub's failure codes: the first status byte.
pub mod stub_error {
    /// Bad data length.
    pub const BAD_DATA_LEN: u8 = 0xC0;
    /// Bad data checksum.
    pub const BAD_DATA_CHECKSUM: u8 = 0xC1;
    /// A SPI (flash) operation failed, such as an address past the end.
    pub const FAILED_SPI_OP: u8 = 0xC4;
    /// Data without a begin command before it.
    pub const NOT_IN_FLASH_MODE: u8 = 0xC6;
    /// The compressed stream is corrupt.
    pub const INFLATE_ERROR: u8 = 0xC7;
    /// More data than the begin command announced.
    pub const TOO_MUCH_DATA: u8 = 0xC9;
    /// A command the stub does not know.
    pub const NOT_IMPLEMENTED: u8 = 0xFF;

    /// What a stub's failure code means, as esptool names it.
    pub fn name(code: u8) -> Option<&'static str> {
        Some(match code {
            BAD_DATA_LEN => "bad data length",
            BAD_DATA_CHECKSUM => "bad data checksum",
            FAILED_SPI_OP => "SPI operation failed",
            NOT_IN_FLASH_MODE => "not in flash mode",
            INFLATE_ERROR => "inflate error",
            TOO_MUCH_DATA => "too much data",
            NOT_IMPLEMENTED => "command not implemented",
            _ => return None,
        })
    }
}

/// The SYNC request's data: `07 07 12 20` and 32 bytes of 0x55, which let the
/// ROM measure the client's baud rate.
pub const SYNC_PAYLOAD: [u8; 36] = {
    let mut payload = [0x55; 36];
    payload[0] = 0x07;
    payload[1] = 0x07;
    payload[2] = 0x12;
    payload[3] = 0x20;
    payload
};

/// The value word of the ROM's answers to SYNC.
pub const ROM_SYNC_VALUE: u32 = 0x2012_0707;

/// The checksum of a data block: 0xEF XOR every byte.
pub fn checksum(data: &[u8]) -> u8 {
    data.iter().fold(0xEF, |acc, b| acc ^ b)
}

/// A request, unframed: `00 op len chk data`.
pub fn request(op: u8, data: &[u8], chk: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + data.len());
    out.extend_from_slice(&[0, op]);
    out.extend_from_slice(&wire_len(data.len()).to_le_bytes());
    out.extend_from_slice(&chk.to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// A response, unframed: `01 op len value data status`.
pub fn response(op: u8, value: u32, data: &[u8], status: [u8; 2]) -> Vec<u8> {
    let mut out = Vec::with_capacity(10 + data.len());
    out.extend_from_slice(&[1, op]);
    out.extend_from_slice(&wire_len(data.len() + 2).to_le_bytes());
    out.extend_from_slice(&value.to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&status);
    out
}

/// The length field is 16 bits; no command carries more than a 16 KB block.
fn wire_len(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

/// A request as the chip reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The command.
    pub op: u8,
    /// The length the header announces (may differ from `data`'s: a malformed request).
    pub len: usize,
    /// The checksum word's low byte.
    pub chk: u8,
    /// Everything after the header.
    pub data: &'a [u8],
}

impl<'a> Request<'a> {
    /// Reads a decoded frame as a request; `None` when it is not one (too short,
    /// or a response echoed back).
    pub fn parse(frame: &'a [u8]) -> Option<Request<'a>> {
        if frame.len() < 8 || frame[0] != 0 {
            return None;
        }
        Some(Request {
            op: frame[1],
            len: usize::from(u16::from_le_bytes([frame[2], frame[3]])),
            chk: frame[4],
            data: &frame[8..],
        })
    }
}

/// A response as the host reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// The command answered.
    pub op: u8,
    /// The value word (a register's value, the SYNC value).
    pub value: u32,
    /// The data before the status bytes (an MD5 digest, say).
    pub data: &'a [u8],
    /// The two status bytes.
    pub status: [u8; 2],
}

impl<'a> Response<'a> {
    /// Reads a decoded frame as a response; `None` when it is not one.
    pub fn parse(frame: &'a [u8]) -> Option<Response<'a>> {
        if frame.len() < 10 || frame[0] != 1 {
            return None;
        }
        let value = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let body = &frame[8..];
        let (data, status) = body.split_at(body.len() - 2);
        Some(Response {
            op: frame[1],
            value,
            data,
            status: [status[0], status[1]],
        })
    }

    /// Whether the command succeeded: a zero first status byte from the stub,
    /// `00` from the ROM.
    pub fn succeeded(&self) -> bool {
        self.status[0] == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_fold_from_0xef() {
        assert_eq!(checksum(&[]), 0xEF);
        assert_eq!(checksum(&[0xEF]), 0);
        assert_eq!(checksum(&[1, 2, 3]), 0xEF ^ 1 ^ 2 ^ 3);
    }

    #[test]
    fn requests_and_responses_read_back() {
        let data = [1u8, 2, 3, 4, 5];
        let bytes = request(command::FLASH_DATA, &data, u32::from(checksum(&data)));
        let parsed = Request::parse(&bytes).unwrap();
        assert_eq!(parsed.op, command::FLASH_DATA);
        assert_eq!(parsed.len, 5);
        assert_eq!(parsed.chk, checksum(&data));
        assert_eq!(parsed.data, &data);
        assert!(
            Response::parse(&bytes).is_none(),
            "a request is no response"
        );

        let digest = [0xAB; 16];
        let bytes = response(
            command::SPI_FLASH_MD5,
            7,
            &digest,
            [stub_error::INFLATE_ERROR, 0],
        );
        let parsed = Response::parse(&bytes).unwrap();
        assert_eq!((parsed.op, parsed.value), (command::SPI_FLASH_MD5, 7));
        assert_eq!(parsed.data, &digest);
        assert!(!parsed.succeeded());
        assert_eq!(stub_error::name(parsed.status[0]), Some("inflate error"));
        assert!(Request::parse(&bytes).is_none(), "a response is no request");
        assert!(Response::parse(&bytes[..9]).is_none());
    }

    #[test]
    fn the_sync_payload_is_esptools() {
        assert_eq!(&SYNC_PAYLOAD[..4], &[0x07, 0x07, 0x12, 0x20]);
        assert!(SYNC_PAYLOAD[4..].iter().all(|b| *b == 0x55));
    }
}
