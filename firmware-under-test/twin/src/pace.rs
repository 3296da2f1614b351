//! How long the reference firmware's steps take on the chip.
//!
//! [`Timings::instant`] is the twin as it always ran: no computing time at all
//! (the firmware's own timers -- provisioning window, retries, timeouts -- hold
//! at every pace). [`Timings::esp8266_80mhz`] is a real ESP8266 at its default
//! 80 MHz clock, from published measurements cited next to each figure. The
//! twin applies them with `tokio::time::sleep` where the chip spends them, so a
//! test with paused time measures them exactly.

use std::time::Duration;

pub use hil_contract::pace::Pace;

/// What one handshake costs the client: its signature verifications and its
/// half of the key exchange, by the kind of key the server's chain carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoCosts {
    /// One RSA-2048 signature verification (public-key operation, e = 65537).
    pub rsa2048_verify: Duration,
    /// One ECDSA P-256 signature verification.
    pub p256_verify: Duration,
    /// The client's ECDHE: its key pair and the shared secret (two P-256 point
    /// multiplications).
    pub ecdhe_p256: Duration,
    /// Static RSA key exchange: encrypting the premaster secret to the server's
    /// RSA-2048 key (one public-key operation).
    pub rsa2048_encrypt: Duration,
}

/// Where the firmware's time goes, step by step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// From the ROM handing over to `setup()`'s first byte (SDK and core start,
    /// global constructors).
    pub sdk_init: Duration,
    /// `WiFi.begin()` to `WL_CONNECTED`: scan, association, WPA2 and DHCP.
    pub wifi_join: Duration,
    /// SNTP: from `configTime()` to the clock being set, on top of the UDP
    /// exchange itself.
    pub sntp: Duration,
    /// The TLS handshake's public-key work.
    pub crypto: CryptoCosts,
    /// PubSubClient's `connect()`: building and encrypting CONNECT, polling for
    /// CONNACK (on top of the broker's answer).
    pub mqtt_connect: Duration,
}

impl Timings {
    /// The twin as it always ran, 150 ms of SDK start aside: nothing else takes
    /// time.
    pub const fn instant() -> Timings {
        Timings {
            // A console reading the ROM at 74880 needs this gap to switch to
            // 115200 before setup() prints: 60 ms was too little on a loaded
            // machine (a demo with 144 boards next to a test run garbled a
            // boot line and its provisioning prompt), a real chip takes 280.
            sdk_init: Duration::from_millis(150),
            wifi_join: Duration::ZERO,
            sntp: Duration::ZERO,
            crypto: CryptoCosts {
                rsa2048_verify: Duration::ZERO,
                p256_verify: Duration::ZERO,
                ecdhe_p256: Duration::ZERO,
                rsa2048_encrypt: Duration::ZERO,
            },
            mqtt_connect: Duration::ZERO,
        }
    }

    /// A real ESP8266 at 80 MHz running the reference sketch (Arduino core 3.1,
    /// BearSSL as the core builds it).
    pub const fn esp8266_80mhz() -> Timings {
        Timings {
            // xoseperez/espurna#2121 (mcspr): the Arduino core "only starts
            // running initialization code at around 243 msec after power on",
            // global constructors take ~50-100 ms, "setup() & loop() are called
            // at around ~300-350msec". The ROM's own lines go out before this
            // (the board sends them at their line rate), so: 280 ms.
            sdk_init: Duration::from_millis(280),
            // esp8266/Arduino#2735 (eketjall): WiFi.begin(ssid, pass) after
            // ESP.restart(), averaged over 20 runs: 2291 ms to connected with
            // DHCP (5044 ms after a power cycle, 182 ms with channel and BSSID
            // given). The sketch gives neither: 2.3 s.
            wifi_join: Duration::from_millis(2_300),
            // No published figure for lwIP's SNTP on the ESP8266; the sketch
            // polls every 10 ms (syncClock), and lwIP's SNTP client sends its
            // first request from its own timer: an estimate of 100 ms.
            sntp: Duration::from_millis(100),
            crypto: CryptoCosts {
                // opendata-stuttgart/sensors-software#336 (ricki-z), all at
                // 80 MHz with BearSSL: a TLS 1.2 connection takes ~1000 ms
                // without certificate verification and 1400-1500 ms with it: the
                // chain's two RSA-2048 verifications cost ~450 ms, ~225 ms each.
                rsa2048_verify: Duration::from_millis(225),
                // esp8266/Arduino doc/esp8266wifi/bearssl-client-secure-class.rst
                // (PR #5315): a resumed session "can save significant time (3-4
                // seconds in the case of EC keys)": a full P-256 handshake's
                // public-key work is ~3.5 s; with two ECDSA verifications of the
                // chain, one of the ServerKeyExchange and the ECDHE (two point
                // multiplications), split as 3 x 700 ms + 1400 ms.
                p256_verify: Duration::from_millis(700),
                ecdhe_p256: Duration::from_millis(1_400),
                // The same measurement's ~1000 ms unverified connection is
                // mostly the server's and the network's; the client's one
                // RSA-2048 public-key operation costs what a verification does.
                rsa2048_encrypt: Duration::from_millis(225),
            },
            // No published figure: PubSubClient builds CONNECT and BearSSL
            // encrypts one small record; an estimate of 10 ms.
            mqtt_connect: Duration::from_millis(10),
        }
    }

    /// The timings of a board at `pace`.
    pub const fn for_pace(pace: Pace) -> Timings {
        match pace {
            Pace::Hardware => Timings::esp8266_80mhz(),
            _ => Timings::instant(),
        }
    }
}

impl Default for Timings {
    fn default() -> Self {
        Timings::instant()
    }
}

/// The key exchange a cipher suite uses, from its IANA number: what the
/// client computes between the server's flight and its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyExchange {
    /// ECDHE with an ECDSA-signed ServerKeyExchange (an EC chain).
    EcdheEcdsa,
    /// ECDHE with an RSA-signed ServerKeyExchange (an RSA chain).
    EcdheRsa,
    /// Static RSA (an RSA chain, no ServerKeyExchange).
    Rsa,
    /// Static ECDH (an EC chain, no ServerKeyExchange).
    Ecdh,
}

impl KeyExchange {
    /// The key exchange of `suite`, from the IANA registry's ranges BearSSL
    /// offers (RFC 4492/5289/7905 ECDHE and ECDH suites, RFC 5246 RSA suites).
    pub(crate) fn of_suite(suite: u16) -> KeyExchange {
        match suite {
            // ECDHE_ECDSA: C009/C00A, C023/C024, C02B/C02C, CCA9, C0AC..C0AF, C008.
            0xC008..=0xC00A | 0xC023 | 0xC024 | 0xC02B | 0xC02C | 0xCCA9 | 0xC0AC..=0xC0AF => {
                KeyExchange::EcdheEcdsa
            }
            // ECDHE_RSA: C012..C014, C027/C028, C02F/C030, CCA8.
            0xC012..=0xC014 | 0xC027 | 0xC028 | 0xC02F | 0xC030 | 0xCCA8 => KeyExchange::EcdheRsa,
            // ECDH_ECDSA / ECDH_RSA: C003..C005, C00D..C00F, C025/C026, C029/C02A,
            // C02D/C02E, C031/C032.
            0xC003..=0xC005
            | 0xC00D..=0xC00F
            | 0xC025
            | 0xC026
            | 0xC029
            | 0xC02A
            | 0xC02D
            | 0xC02E
            | 0xC031
            | 0xC032 => KeyExchange::Ecdh,
            _ => KeyExchange::Rsa,
        }
    }
}

impl CryptoCosts {
    /// What the client computes after the server's flight: `chain_signatures`
    /// verifications of the chain (0 when the mode checks no signature), the
    /// ServerKeyExchange's signature, and its half of the key exchange.
    pub(crate) fn handshake(&self, kx: KeyExchange, chain_signatures: u32) -> Duration {
        let (verify, exchange, signed_kx) = match kx {
            KeyExchange::EcdheEcdsa => (self.p256_verify, self.ecdhe_p256, true),
            KeyExchange::EcdheRsa => (self.rsa2048_verify, self.ecdhe_p256, true),
            KeyExchange::Rsa => (self.rsa2048_verify, self.rsa2048_encrypt, false),
            // One point multiplication with the server's static key.
            KeyExchange::Ecdh => (self.p256_verify, self.ecdhe_p256 / 2, false),
        };
        verify * (chain_signatures + u32::from(signed_kx)) + exchange
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_pace_costs_nothing_but_the_sdk_start() {
        let t = Timings::for_pace(Pace::Default);
        assert_eq!(t, Timings::instant());
        assert_eq!(t.sdk_init, Duration::from_millis(150));
        assert_eq!(t.crypto.handshake(KeyExchange::EcdheRsa, 2), Duration::ZERO);
    }

    #[test]
    fn an_rsa_chain_costs_about_a_second_and_a_p256_one_about_three_and_a_half() {
        let c = Timings::for_pace(Pace::Hardware).crypto;
        // Two chain verifications, the ServerKeyExchange's, and ECDHE.
        assert_eq!(
            c.handshake(KeyExchange::EcdheRsa, 2),
            Duration::from_millis(3 * 225 + 1_400)
        );
        assert_eq!(
            c.handshake(KeyExchange::EcdheEcdsa, 2),
            Duration::from_millis(3 * 700 + 1_400)
        );
        // setInsecure() checks no signature of the chain.
        assert_eq!(c.handshake(KeyExchange::Rsa, 0), Duration::from_millis(225));
        assert_eq!(KeyExchange::of_suite(0xC02F), KeyExchange::EcdheRsa);
        assert_eq!(KeyExchange::of_suite(0xCCA9), KeyExchange::EcdheEcdsa);
        assert_eq!(KeyExchange::of_suite(0x009C), KeyExchange::Rsa);
        assert_eq!(KeyExchange::of_suite(0xC02D), KeyExchange::Ecdh);
    }
}
