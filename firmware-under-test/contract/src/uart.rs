//! How a UART listening at one rate hears bytes sent at another, and the shape
//! the ESP8266 ROM's 74880-baud banner takes in a console at 115200.
//!
//! [`resample`] replays the sender's bit stream (start bit, 8 data bits LSB
//! first, stop bit, idle high) into an ideal receiver at the listener's rate
//! that synchronises on each falling edge and samples mid-bit. The virtual
//! board uses it to garble what its ROM prints; the harness uses it to know what
//! a ROM banner looks like when it arrives garbled, so a reboot shows on any
//! firmware and any log profile.

use crate::esp8266::{APP_BAUD, ROM_LOG_BAUD};

/// The bytes an ideal UART receiving at `to` baud reads from `bytes` sent at `from`.
///
/// ```
/// use hil_contract::uart::resample;
///
/// assert_eq!(resample(b"ok", 9600, 9600), b"ok");
/// assert_ne!(resample(b"\r\n ets Jan", 74_880, 115_200), b"\r\n ets Jan");
/// ```
pub fn resample(bytes: &[u8], from: u32, to: u32) -> Vec<u8> {
    if from == to || from == 0 || to == 0 {
        return bytes.to_vec();
    }
    // Time unit: 1 / (2 * from * to) s, so both bit times and half bit times are
    // whole numbers.
    let sent_bit = 2 * u64::from(to);
    let recv_bit = 2 * u64::from(from);
    let total_bits = bytes.len() as u64 * 10;
    let level = |bit: u64| -> bool {
        if bit >= total_bits {
            return true;
        }
        let byte = bytes[(bit / 10) as usize];
        match bit % 10 {
            0 => false,
            9 => true,
            n => (byte >> (n - 1)) & 1 == 1,
        }
    };
    let level_at = |t: u64| level(t / sent_bit);
    let mut out = Vec::new();
    let mut t = 0u64;
    // Falling edges only happen at sent-bit boundaries.
    let mut bit = 0u64;
    while bit < total_bits {
        if bit * sent_bit < t || level(bit) || (bit > 0 && !level(bit - 1)) {
            bit += 1;
            continue;
        }
        let start = bit * sent_bit;
        let mut value = 0u8;
        for i in 0..8u64 {
            if level_at(start + recv_bit * (i + 1) + recv_bit / 2) {
                value |= 1 << i;
            }
        }
        out.push(value);
        t = start + recv_bit * 9 + recv_bit / 2;
        bit += 1;
    }
    out
}

/// The ROM banner's text up to its reset cause, as the ROM starts it after a
/// reset (a line end first).
const BANNER_HEAD: &[u8] = b"\r\n ets Jan  8 2013,rst cause:";

/// How many bytes of the garbled banner head must appear in a row before the
/// bytes count as a ROM banner: ordinary text at 115200 never holds such a run
/// (its bytes include NULs and bytes above 0x7F), and a cut-off start still
/// leaves this many.
pub const GARBLED_RUN: usize = 12;

/// What a console at 115200 reads of the ROM's banner head sent at 74880.
pub fn garbled_banner_head() -> Vec<u8> {
    resample(BANNER_HEAD, ROM_LOG_BAUD, APP_BAUD)
}

/// What a console at 115200 reads of the banner with reset cause `cause`,
/// through the cause digit and the text after it.
pub fn garbled_banner(cause: u8) -> Vec<u8> {
    let mut text = BANNER_HEAD.to_vec();
    text.extend_from_slice(format!("{cause}, boot mode:(").as_bytes());
    resample(&text, ROM_LOG_BAUD, APP_BAUD)
}

/// Finds a ROM banner heard garbled at 115200 in `bytes`: where the run that
/// matched ends, and the reset cause when the bytes after it tell it.
///
/// ```
/// use hil_contract::uart::{find_garbled_banner, resample};
///
/// let banner = b"\r\n ets Jan  8 2013,rst cause:2, boot mode:(3,6)\r\n\r\n";
/// let heard = resample(banner, 74_880, 115_200);
/// let mut stream = b"[mqtt] connected\r\n".to_vec();
/// stream.extend_from_slice(&heard);
/// assert_eq!(find_garbled_banner(&stream).map(|(_, cause)| cause), Some(Some(2)));
/// assert!(find_garbled_banner(b"[mqtt] connected client_id=x\r\n").is_none());
/// ```
pub fn find_garbled_banner(bytes: &[u8]) -> Option<(usize, Option<u8>)> {
    let head = garbled_banner_head();
    // The longest run of the head's bytes, at any alignment of the two.
    let mut best: Option<(usize, usize, usize)> = None; // (run, end in bytes, start in bytes)
    for start in 0..bytes.len() {
        for offset in 0..head.len() {
            let run = bytes[start..]
                .iter()
                .zip(&head[offset..])
                .take_while(|(a, b)| a == b)
                .count();
            if run >= GARBLED_RUN && best.is_none_or(|(r, ..)| run > r) {
                // Where the head would have started in `bytes`.
                best = Some((run, start + run, start.saturating_sub(offset)));
            }
        }
    }
    let (_, end, head_start) = best?;
    // The cause: the candidate whose garbled form matches most bytes from the
    // head's start on (the head is shared, so the digit decides).
    let window = &bytes[head_start..];
    let score = |cause: u8| {
        garbled_banner(cause)
            .iter()
            .zip(window)
            .filter(|(a, b)| a == b)
            .count()
    };
    let scores: Vec<(u8, usize)> = (0..=7).map(|c| (c, score(c))).collect();
    let top = scores.iter().map(|(_, s)| *s).max().unwrap_or(0);
    let winners: Vec<u8> = scores
        .iter()
        .filter(|(_, s)| *s == top)
        .map(|(c, _)| *c)
        .collect();
    let cause = match winners.as_slice() {
        [one] if top > head.len() => Some(*one),
        _ => None,
    };
    Some((end, cause))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reset_cause_is_told_apart_through_the_garble() {
        for cause in 0..=7u8 {
            for mode in [(3, 6), (1, 6), (3, 7)] {
                let banner = format!(
                    "\r\n ets Jan  8 2013,rst cause:{cause}, boot mode:({},{})\r\n\r\nload 0x4010f000, len 3424, room 16 \r\n",
                    mode.0, mode.1
                );
                let heard = resample(banner.as_bytes(), ROM_LOG_BAUD, APP_BAUD);
                let found = find_garbled_banner(&heard);
                assert_eq!(
                    found.map(|(_, c)| c),
                    Some(Some(cause)),
                    "cause {cause} mode {mode:?}"
                );
            }
        }
    }

    #[test]
    fn a_banner_cut_at_its_start_is_still_a_banner() {
        let banner = b"\r\n ets Jan  8 2013,rst cause:2, boot mode:(3,6)\r\n";
        let heard = resample(banner, ROM_LOG_BAUD, APP_BAUD);
        assert!(find_garbled_banner(&heard[6..]).is_some());
    }

    #[test]
    fn text_and_other_garbage_are_no_banner() {
        let text = b"[boot] fw=hil-reference version=1.0.0 reset=External-System\r\n\
            Attempting MQTT connection...failed, rc=-2 try again in 5 seconds\r\n";
        assert!(find_garbled_banner(text).is_none());
        // Firmware text at 115200 read by a console at 74880 is garbage too,
        // but not this garbage.
        let other = resample(text, APP_BAUD, ROM_LOG_BAUD);
        assert!(find_garbled_banner(&other).is_none());
        let noise: Vec<u8> = (0..512u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        assert!(find_garbled_banner(&noise).is_none());
    }
}
