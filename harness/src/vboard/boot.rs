//! What the ESP8266 ROM prints when it boots, and how that looks to a client that
//! listens at another baud rate.
//!
//! The ROM prints at 74880 baud (115200 scaled by its 26/40 MHz crystal mismatch).
//! A client listening at another rate gets the bytes a real UART would produce
//! from the same waveform: [`resample`] replays the 74880-baud bit stream (start bit,
//! 8 data bits LSB first, stop bit, idle high) into an ideal receiver at the client's
//! rate that synchronises on each falling edge and samples mid-bit. At 115200 that
//! gives the familiar short run of garbage bytes before the firmware's first line,
//! deterministically.

use crate::image::{ImageError, ImageV1};

pub use hil_contract::esp8266::ROM_LOG_BAUD as ROM_BAUD;

/// Why the chip (re)started, as the ROM prints it in `rst cause:N`, and the rate
/// the ROM prints its lines at after it.
///
/// The ROM's numbers: 1 power-on, 2 external reset (EN pin) and every restart
/// the firmware asks for (exception, `ESP.restart()`), 4 hardware watchdog
/// (esp8266/Arduino#1013 and #1809, `rst cause:4` followed by `wdt reset`).
/// After a hard reset the ROM prints at 74880 baud; after a restart the chip
/// asked for itself, the UART divisor the application configured survives and
/// the ROM's lines come out at the application's 115200 (esp8266/Arduino#7315:
/// "On hard reset, it runs at 74880, but on a self reset it runs at 115200";
/// #9122 shows `rst cause:4` and `wdt reset` readable at 115200).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetCause {
    /// 1: power-on.
    PowerOn,
    /// 2: external reset (EN pulled low, what auto-reset does).
    External,
    /// 2 as well: the firmware restarted the chip after an exception; the core
    /// tells the two apart, the ROM does not.
    Exception,
    /// 2: `ESP.restart()` (the core reports "Software/System restart").
    SoftwareRestart,
    /// 4: the hardware watchdog fired (the ROM adds `wdt reset`).
    HardwareWatchdog,
    /// 1: the supply dipped (a brown-out): to the chip, a power-on.
    BrownOut,
}

impl ResetCause {
    pub(crate) fn code(self) -> u8 {
        match self {
            ResetCause::PowerOn | ResetCause::BrownOut => 1,
            ResetCause::External | ResetCause::Exception | ResetCause::SoftwareRestart => 2,
            ResetCause::HardwareWatchdog => 4,
        }
    }

    /// Whether the chip restarted itself, keeping the application's UART
    /// divisor (so the ROM prints at the application's rate).
    pub fn keeps_uart_rate(self) -> bool {
        matches!(
            self,
            ResetCause::Exception | ResetCause::SoftwareRestart | ResetCause::HardwareWatchdog
        )
    }

    /// The rate the ROM prints its banner and `load` lines at after this reset.
    pub fn rom_baud(self) -> u32 {
        if self.keeps_uart_rate() {
            hil_contract::esp8266::APP_BAUD
        } else {
            ROM_BAUD
        }
    }
}

/// The banner line pair, e.g. ` ets Jan  8 2013,rst cause:2, boot mode:(3,6)`,
/// and after a watchdog reset the ROM's `wdt reset` line.
pub(crate) fn banner(cause: ResetCause, boot_mode: u8) -> String {
    let mut text = format!(
        "\r\n ets Jan  8 2013,rst cause:{}, boot mode:({boot_mode},6)\r\n\r\n",
        cause.code()
    );
    if cause == ResetCause::HardwareWatchdog {
        text.push_str("wdt reset\r\n");
    }
    text
}

/// The outcome of the ROM's check of the image at offset 0.
#[derive(Debug)]
pub(crate) enum ImageCheck {
    /// The image loads; the firmware starts.
    Valid(ImageV1),
    /// Erased flash, a wrong magic or a truncated image: the ROM stops.
    Unbootable(ImageError),
    /// The segments load but the checksum does not match.
    ChecksumError(ImageV1),
}

/// Runs the ROM's image check over `flash` and renders the lines it prints.
pub(crate) fn check_image(flash: &[u8]) -> (ImageCheck, String) {
    let mut text = String::new();
    let image = match ImageV1::parse(flash) {
        Ok(image) => image,
        Err(error) => {
            text.push_str("ets_main.c \r\n");
            return (ImageCheck::Unbootable(error), text);
        }
    };
    let segments: Vec<(u32, &[u8])> = image
        .segments()
        .iter()
        .map(|s| (s.addr(), s.data()))
        .collect();
    let (lines, _) = hil_contract::rom::load_lines(&segments, image.stored_checksum());
    text.push_str(&lines);
    if image.checksum_ok() {
        (ImageCheck::Valid(image), text)
    } else {
        text.push_str("csum err\r\nets_main.c \r\n");
        (ImageCheck::ChecksumError(image), text)
    }
}

/// How a UART at one rate hears bytes sent at another (shared with the harness,
/// which recognises the ROM's banner heard that way).
pub(crate) use hil_contract::uart::resample;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Segment;

    #[test]
    fn same_rate_is_identity_and_other_rates_garble() {
        let text = banner(ResetCause::External, 3);
        assert_eq!(
            resample(text.as_bytes(), ROM_BAUD, ROM_BAUD),
            text.as_bytes()
        );
        let garbled = resample(text.as_bytes(), ROM_BAUD, 115_200);
        assert!(!garbled.is_empty());
        assert_ne!(garbled, text.as_bytes());
        // A receiver at the same rate through the resampler path recovers the text.
        assert_eq!(resample(b"ab\xff\x00c", 9600, 9601), b"ab\xff\x00c");
    }

    #[test]
    fn hard_resets_print_at_74880_and_restarts_at_the_apps_rate() {
        for (cause, code, baud) in [
            (ResetCause::PowerOn, 1, ROM_BAUD),
            (ResetCause::BrownOut, 1, ROM_BAUD),
            (ResetCause::External, 2, ROM_BAUD),
            (ResetCause::Exception, 2, 115_200),
            (ResetCause::SoftwareRestart, 2, 115_200),
            (ResetCause::HardwareWatchdog, 4, 115_200),
        ] {
            assert_eq!(cause.code(), code, "{cause:?}");
            assert_eq!(cause.rom_baud(), baud, "{cause:?}");
            let text = banner(cause, 3);
            assert!(text.contains(&format!("rst cause:{code},")), "{text}");
            assert_eq!(
                text.contains("wdt reset"),
                cause == ResetCause::HardwareWatchdog,
                "{text}"
            );
        }
    }

    #[test]
    fn room_and_tail_match_real_logs() {
        // From a real boot log: len 3424 room 16 tail 0, then len 40 room 8 tail 0.
        let image = ImageV1::new(
            0,
            vec![
                Segment::new(0x4010_f000, vec![1; 3424]),
                Segment::new(0x3fff_20b8, vec![2; 40]),
            ],
        );
        let (check, text) = check_image(&image.to_bytes());
        assert!(matches!(check, ImageCheck::Valid(_)));
        assert!(text.contains("len 3424, room 16 \r\ntail 0"), "{text}");
        assert!(text.contains("len 40, room 8 \r\ntail 0"), "{text}");
        // Another: 25700 room 16 tail 4, 848 room 4 tail 12, ho, 184 room 12.
        let image = ImageV1::new(
            0,
            vec![
                Segment::new(0x4010_0000, vec![1; 25700]),
                Segment::new(0x3ffe_8000, vec![2; 848]),
                Segment::new(0x3ffe_8350, vec![3; 184]),
            ],
        );
        let (_, text) = check_image(&image.to_bytes());
        assert!(text.contains("len 848, room 4 \r\ntail 12"), "{text}");
        assert!(text.contains("ho 0 tail 12 room 4"), "{text}");
        assert!(text.contains("len 184, room 12 \r\ntail 12"), "{text}");
    }

    #[test]
    fn corrupt_and_erased() {
        let (check, text) = check_image(&[0xFF; 64]);
        assert!(matches!(check, ImageCheck::Unbootable(_)));
        assert_eq!(text, "ets_main.c \r\n");
        let bad = ImageV1::new(0, vec![Segment::new(0, vec![7; 16])]).with_stored_checksum(1);
        let (check, text) = check_image(&bad.to_bytes());
        assert!(matches!(check, ImageCheck::ChecksumError(_)));
        assert!(
            text.ends_with("csum 0x01\r\ncsum err\r\nets_main.c \r\n"),
            "{text}"
        );
    }
}
