//! Just enough of the loader protocol to ask a running flasher stub for the MD5 of
//! a flash region (SPI_FLASH_MD5, 0x13), which espflash 2.1 does not expose.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serialport::SerialPort;

use super::FlashError;
use crate::slip;

const SPI_FLASH_MD5: u8 = 0x13;

fn protocol(what: impl Into<String>) -> FlashError {
    FlashError::StubProtocol { what: what.into() }
}

/// The MD5 (hex) the stub computes over `len` bytes of flash at `offset`.
pub fn stub_md5(
    port: &mut Box<dyn SerialPort>,
    offset: u32,
    len: u32,
) -> Result<String, FlashError> {
    let mut request = vec![0u8, SPI_FLASH_MD5];
    request.extend_from_slice(&16u16.to_le_bytes());
    request.extend_from_slice(&0u32.to_le_bytes());
    for word in [offset, len, 0, 0] {
        request.extend_from_slice(&word.to_le_bytes());
    }
    port.clear(serialport::ClearBuffer::Input)
        .map_err(|e| protocol(e.to_string()))?;
    port.write_all(&slip::encode(&request))
        .map_err(|e| protocol(e.to_string()))?;
    // The stub hashes at SPI speed: about 8 s per MB on a real chip.
    let deadline =
        Instant::now() + Duration::from_secs(3) + Duration::from_secs(8) * (len / (1 << 20));
    let mut decoder = slip::Decoder::new();
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        let n = match port.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) => return Err(protocol(e.to_string())),
        };
        for frame in decoder.feed(&buf[..n]) {
            if frame.len() < 10 || frame[0] != 1 || frame[1] != SPI_FLASH_MD5 {
                continue;
            }
            let body = &frame[8..];
            let status = &body[body.len() - 2..];
            if status[0] != 0 {
                return Err(protocol(format!("stub error {:#04x}", status[0])));
            }
            return match body.len() - 2 {
                16 => Ok(hex::encode(&body[..16])),
                // The ROM (ESP32 family) answers in ASCII hex.
                32 => Ok(String::from_utf8_lossy(&body[..32]).to_lowercase()),
                n => Err(protocol(format!("{n}-byte digest"))),
            };
        }
    }
    Err(protocol("no answer to SPI_FLASH_MD5"))
}
