//! Wi-Fi at the lwIP2 glue: the radio, the 802.11 MAC and the WPA2 handshake do
//! not exist here. The station joins the machine's [`AccessPoint`] (or fails to,
//! as the SDK would say) when the firmware calls `wifi_station_connect`, and from
//! then on Ethernet frames cross at the glue between the SDK and the core's lwIP2
//! (`tools/sdk/lwip2/include/glue.h`): lwIP's frames leave through
//! `glue2esp_linkoutput` into [`Station::take_frames_out`]; frames for the station
//! go in through `esp2glue_ethernet_input`. The image's own lwIP (its DHCP client
//! included) runs as compiled.
//!
//! The interception rows that use this are in [`crate::intercept`].

/// The access point the machine's station can join.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessPoint {
    /// Its network name.
    pub ssid: String,
    /// Its WPA2 passphrase.
    pub passphrase: String,
}

impl std::fmt::Debug for AccessPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessPoint")
            .field("ssid", &self.ssid)
            .field("passphrase", &"[redacted]")
            .finish()
    }
}

/// The SDK's `station_status_t`, what `wifi_station_get_connect_status` returns and
/// the core's `WiFi.status()` maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StationStatus {
    /// Not connecting.
    Idle = 0,
    /// Joining (associated, waiting for an address).
    Connecting = 1,
    /// The access point refused the passphrase.
    WrongPassword = 2,
    /// No access point has the SSID.
    NoApFound = 3,
    /// Another failure.
    ConnectFail = 4,
    /// Joined with an address.
    GotIp = 5,
}

/// The station's side of the machine: what it was configured with, frames out and
/// in.
#[derive(Debug, Clone, Default)]
pub struct Station {
    /// SSID and passphrase from the last `wifi_station_set_config[_current]`.
    pub config: Option<(Vec<u8>, Vec<u8>)>,
    /// Frames lwIP sent, oldest first, not yet taken.
    frames_out: Vec<Vec<u8>>,
    /// `wifi_station_connect` calls.
    pub joins: u32,
}

/// Bytes up to the first NUL of a fixed-size C field.
fn c_field(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().copied().take_while(|&b| b != 0).collect()
}

impl Station {
    /// Records a `struct station_config` (ssid[32], password[64], ...) as the SDK
    /// takes it.
    pub fn set_config(&mut self, raw: &[u8]) {
        if raw.len() >= 96 {
            self.config = Some((c_field(&raw[..32]), c_field(&raw[32..96])));
        }
    }

    /// What joining `ap` with the recorded configuration gives: the SDK's own
    /// outcomes for an unknown SSID and for a wrong passphrase, else associated.
    pub fn join(&mut self, ap: Option<&AccessPoint>) -> StationStatus {
        self.joins += 1;
        let Some((ssid, password)) = &self.config else {
            return StationStatus::NoApFound;
        };
        match ap {
            Some(ap) if ap.ssid.as_bytes() == ssid.as_slice() => {
                if ap.passphrase.as_bytes() == password.as_slice() {
                    StationStatus::Connecting
                } else {
                    StationStatus::WrongPassword
                }
            }
            _ => StationStatus::NoApFound,
        }
    }

    /// Records a frame lwIP sent.
    pub fn frame_out(&mut self, frame: Vec<u8>) {
        self.frames_out.push(frame);
    }

    /// The frames lwIP sent since the last call.
    pub fn take_frames_out(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.frames_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(ssid: &str, password: &str) -> Vec<u8> {
        let mut raw = vec![0; 104];
        raw[..ssid.len()].copy_from_slice(ssid.as_bytes());
        raw[32..32 + password.len()].copy_from_slice(password.as_bytes());
        raw
    }

    #[test]
    fn joining_needs_the_ssid_and_the_passphrase() {
        let ap = AccessPoint {
            ssid: "lab".into(),
            passphrase: "secret-1".into(),
        };
        let mut sta = Station::default();
        assert_eq!(sta.join(Some(&ap)), StationStatus::NoApFound, "no config");
        sta.set_config(&config("lab", "secret-1"));
        assert_eq!(sta.join(Some(&ap)), StationStatus::Connecting);
        assert_eq!(sta.join(None), StationStatus::NoApFound);
        sta.set_config(&config("lab", "secret-2"));
        assert_eq!(sta.join(Some(&ap)), StationStatus::WrongPassword);
        sta.set_config(&config("other", "secret-1"));
        assert_eq!(sta.join(Some(&ap)), StationStatus::NoApFound);
        assert_eq!(sta.joins, 5);
        assert!(!format!("{ap:?}").contains("secret"));
    }
}
