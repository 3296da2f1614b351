//! The UART line between the board and its client, when the board models its line
//! rate: a byte takes 10 bit times (start bit, 8 data bits, stop bit) at the rate
//! of whoever sends it, and each direction carries one byte at a time.
//!
//! The board is a loopback socket, so without this every byte arrives at once and
//! a flashing time measured on it says nothing about a real board. With it, a
//! request reaches the chip when its last stop bit would, and an answer reaches
//! the client when a UART at the chip's rate could have sent it.

use std::time::Duration;

use tokio::time::Instant;

/// Bits on the wire per byte with 8N1 framing.
pub(crate) const BITS_PER_BYTE: u64 = 10;

/// Bytes sent to the chip in one piece: small enough that a frame is handled
/// within about a millisecond of its last byte even at 921600 baud.
pub(crate) const RX_PIECE: usize = 128;

/// Bytes handed to the client in one piece when the chip talks: a UART's FIFO
/// drains byte by byte, so a client sees a long output grow, not arrive whole.
pub(crate) const TX_PIECE: usize = 16;

/// `heard`, the bytes a client reads of a transmission on the wire from `start`
/// to `end`, in pieces of at most [`TX_PIECE`] bytes (a line end closes a piece
/// too), each due when its share of the transmission is over: at the same rate
/// on both ends, when its last stop bit is out.
pub(crate) fn pieces(start: Instant, end: Instant, heard: &[u8]) -> Vec<(Instant, &[u8])> {
    let total = heard.len();
    let span = end.saturating_duration_since(start);
    let mut out = Vec::new();
    let mut from = 0;
    while from < total {
        let mut to = (from + TX_PIECE).min(total);
        if let Some(nl) = heard[from..to].iter().position(|b| *b == b'\n') {
            to = from + nl + 1;
        }
        // The share of the span up to byte `to`, in whole nanoseconds.
        let nanos = span.as_nanos() * to as u128 / total as u128;
        let due = start + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        out.push((due, &heard[from..to]));
        from = to;
    }
    out
}

/// How long `bytes` take on a line at `baud`.
pub(crate) fn wire_time(bytes: usize, baud: u32) -> Duration {
    if baud == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(bytes as u64 * BITS_PER_BYTE * 1_000_000_000 / u64::from(baud))
}

/// One direction of the line: busy until the last byte handed to it is out.
#[derive(Debug, Default)]
pub(crate) struct Direction {
    free_at: Option<Instant>,
}

impl Direction {
    /// Sends `bytes` at `baud`, starting at `now` or when the line is free,
    /// whichever is later; returns when the last stop bit ends.
    pub(crate) fn send(&mut self, now: Instant, bytes: usize, baud: u32) -> Instant {
        let start = match self.free_at {
            Some(free) if free > now => free,
            _ => now,
        };
        let end = start + wire_time(bytes, baud);
        self.free_at = Some(end);
        end
    }

    /// Forgets what was queued (a purge): the line is free now.
    pub(crate) fn clear(&mut self) {
        self.free_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_bits_a_byte_queued_back_to_back() {
        assert_eq!(wire_time(11_520, 115_200), Duration::from_secs(1));
        assert_eq!(wire_time(92_160, 921_600), Duration::from_secs(1));
        assert_eq!(wire_time(5, 0), Duration::ZERO);
        let t0 = Instant::now();
        let mut line = Direction::default();
        let first = line.send(t0, 1152, 115_200);
        assert_eq!(first - t0, Duration::from_millis(100));
        // Handed over while the first is still going out: it waits its turn.
        let second = line.send(t0 + Duration::from_millis(10), 1152, 115_200);
        assert_eq!(second - t0, Duration::from_millis(200));
        // After an idle gap the line starts at once.
        let third = line.send(t0 + Duration::from_secs(1), 92, 921_600);
        assert_eq!(
            third - t0,
            Duration::from_secs(1) + Duration::from_nanos(998_263)
        );
        line.clear();
        assert_eq!(line.send(t0, 0, 9600), t0);
    }

    #[test]
    fn output_is_cut_at_line_ends_and_every_16_bytes_each_due_when_it_is_out() {
        let t0 = Instant::now();
        let text = b"0123456789abcdefXYZ\r\nok\r\n";
        let end = t0 + wire_time(text.len(), 115_200);
        let got = pieces(t0, end, text);
        let cut: Vec<&[u8]> = got.iter().map(|(_, p)| *p).collect();
        assert_eq!(cut, [&b"0123456789abcdef"[..], b"XYZ\r\n", b"ok\r\n"],);
        // Each piece is due when its last stop bit is out (to the nanosecond's
        // rounding).
        let close = |a: Instant, b: Instant| {
            let gap = if a > b { a - b } else { b - a };
            assert!(gap <= Duration::from_nanos(2), "{a:?} vs {b:?}");
        };
        close(got[0].0, t0 + wire_time(16, 115_200));
        close(got[1].0, t0 + wire_time(21, 115_200));
        assert_eq!(got[2].0, end);
        assert!(pieces(t0, end, b"").is_empty());
    }
}
