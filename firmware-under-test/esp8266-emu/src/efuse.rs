//! The eFuse words at 0x3FF00050..0x3FF0005C: the MAC address and chip id, encoded
//! as esptool's `read_mac` decodes them (word 3 holds the OUI when it is not
//! Espressif's default, word 1 the middle bytes, word 0's top byte the last), with the
//! bits the SDK checks at start: word 2 bit 15 (an ESP8266; without it the SDK prints
//! `Firmware ONLY supports ESP8266!!!` and stops), bit 12 (the OUI is in word 3) and
//! the CRC-8 of the OUI in its top byte.

/// Address of the first eFuse word.
pub const EFUSE_BASE: u32 = 0x3FF0_0050;

/// The four eFuse words for a station MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Efuse {
    words: [u32; 4],
}

impl Efuse {
    /// The words that make `mac` the station MAC. Word 2 bit 16 and word 0 bit 4 stay
    /// clear (an ESP8266, not an ESP8285).
    pub fn new(mac: [u8; 6]) -> Efuse {
        let w0 = u32::from(mac[5]) << 24;
        let w1 = u32::from(mac[3]) << 8 | u32::from(mac[4]);
        let crc = crc8(&[mac[2], mac[1], mac[0]]);
        let w2 = u32::from(crc) << 24 | 1 << 15 | 1 << 12;
        let w3 = u32::from(mac[0]) << 16 | u32::from(mac[1]) << 8 | u32::from(mac[2]);
        Efuse {
            words: [w0, w1, w2, w3],
        }
    }

    /// Reads word `index` (0..4).
    pub fn word(&self, index: usize) -> u32 {
        self.words[index & 3]
    }

    /// The MAC as esptool decodes the words.
    pub fn mac(&self) -> [u8; 6] {
        let [w0, w1, _, w3] = self.words;
        let oui = if w3 != 0 {
            [(w3 >> 16) as u8, (w3 >> 8) as u8, w3 as u8]
        } else if (w1 >> 16) & 0xFF == 0 {
            [0x18, 0xFE, 0x34]
        } else {
            [0xAC, 0xD0, 0x74]
        };
        [
            oui[0],
            oui[1],
            oui[2],
            (w1 >> 8) as u8,
            w1 as u8,
            (w0 >> 24) as u8,
        ]
    }

    /// The chip id `ESP.getChipId()` reports: the MAC's last three bytes.
    pub fn chip_id(&self) -> u32 {
        let [w0, w1, ..] = self.words;
        (w0 >> 24) | (w1 & 0xFF_FFFF) << 8
    }
}

/// The SDK's CRC-8 over eFuse bytes: reflected, polynomial 0x8C, initial value 0.
pub fn crc8(bytes: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &b in bytes {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8C
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trips_through_the_words() {
        let mac = [0x5C, 0xCF, 0x7F, 0x12, 0x34, 0x56];
        let e = Efuse::new(mac);
        assert_eq!(e.mac(), mac);
        assert_eq!(e.chip_id(), 0x12_3456);
        assert_eq!(e.word(2) & (1 << 16), 0);
        assert_eq!(e.word(0) & (1 << 4), 0);
        assert_ne!(e.word(2) & (1 << 15), 0, "an ESP8266");
        // CRC-8/MAXIM check value.
        assert_eq!(crc8(b"123456789"), 0xA1);
    }
}
