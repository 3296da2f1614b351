//! What the ESP8266's mask ROM prints while it loads an image from flash: its
//! `load`, `tail`, `chksum` and `csum` lines. The virtual board's ROM model and
//! the emulated ESP8266's native ROM print them from here, so the two agree line
//! for line with each other and with real boot logs.

use std::fmt::Write as _;

/// The seed of the image checksum (XOR of every segment byte).
pub const CHECKSUM_SEED: u8 = 0xEF;

/// The lines the ROM prints loading `segments` (load address and bytes, in
/// image order), then `csum` with the image's `stored` checksum; and whether
/// the checksum it computed matches (when it does not, the ROM goes on with
/// `csum err` and stops, which the caller prints).
///
/// ```
/// let text = hil_contract::rom::load_lines(&[(0x4010_f000, &[1u8; 3424][..]), (0x3fff_20b8, &[2u8; 40][..])], 0x2b).0;
/// assert!(text.starts_with("load 0x4010f000, len 3424, room 16 \r\ntail 0\r\n"));
/// assert!(text.contains("load 0x3fff20b8, len 40, room 8 \r\ntail 0\r\n"));
/// ```
pub fn load_lines(segments: &[(u32, &[u8])], stored: u8) -> (String, bool) {
    let mut text = String::new();
    // The ROM reads flash through a 16-byte buffer and reports how many bytes of
    // the current buffer a segment starts in (`room`), how many of its last buffer
    // it ends in (`tail`), and when a segment header straddles two buffers (`ho`).
    // This reproduces the figures of real boot logs for the common cases.
    let mut room = 16usize;
    let mut running = CHECKSUM_SEED;
    for (index, (addr, data)) in segments.iter().enumerate() {
        let len = data.len();
        let tail = if len <= room { 0 } else { (len - room) % 16 };
        let _ = write!(
            text,
            "load {addr:#010x}, len {len}, room {room} \r\ntail {tail}\r\n"
        );
        running = data.iter().fold(running, |acc, b| acc ^ b);
        let _ = write!(text, "chksum {running:#04x}\r\n");
        if index + 1 < segments.len() {
            let left = if len <= room {
                room - len
            } else if tail == 0 {
                16
            } else {
                16 - tail
            };
            if left >= 8 {
                room = left - 8;
            } else {
                let _ = write!(text, "ho 0 tail {tail} room {left}\r\n");
                room = left + 16 - 8;
            }
        }
    }
    let _ = write!(text, "csum {stored:#04x}\r\n");
    (text, running == stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_straddling_two_buffers_says_ho() {
        // From a real boot log: 25700 room 16 tail 4, 848 room 4 tail 12, ho, 184 room 12.
        let (text, _) = load_lines(
            &[
                (0x4010_0000, &[1; 25700]),
                (0x3ffe_8000, &[2; 848]),
                (0x3ffe_8350, &[3; 184]),
            ],
            0,
        );
        assert!(text.contains("len 848, room 4 \r\ntail 12"), "{text}");
        assert!(text.contains("ho 0 tail 12 room 4"), "{text}");
        assert!(text.contains("len 184, room 12 \r\ntail 12"), "{text}");
    }

    #[test]
    fn the_checksum_is_the_xor_of_every_byte_from_the_seed() {
        let (_, ok) = load_lines(&[(0, &[0xEF ^ 0x11])], 0x11);
        assert!(ok);
        let (text, ok) = load_lines(&[(0, &[1])], 0x55);
        assert!(!ok);
        assert!(text.ends_with("csum 0x55\r\n"), "{text}");
    }
}
