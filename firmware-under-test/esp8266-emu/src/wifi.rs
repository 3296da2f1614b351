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
    /// Its MAC address (the BSSID the SDK's events carry).
    pub bssid: [u8; 6],
    /// Its radio channel.
    pub channel: u8,
}

impl AccessPoint {
    /// An access point on channel 1 with a locally administered BSSID,
    /// [`AccessPoint::DEFAULT_BSSID`].
    pub fn new(ssid: impl Into<String>, passphrase: impl Into<String>) -> AccessPoint {
        AccessPoint {
            ssid: ssid.into(),
            passphrase: passphrase.into(),
            bssid: Self::DEFAULT_BSSID,
            channel: 1,
        }
    }

    /// The BSSID [`AccessPoint::new`] gives.
    pub const DEFAULT_BSSID: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
}

impl std::fmt::Debug for AccessPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessPoint")
            .field("ssid", &self.ssid)
            .field("passphrase", &"[redacted]")
            .field("bssid", &self.bssid)
            .field("channel", &self.channel)
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

/// The SDK's reason for a disconnection (`REASON_*` in the SDK's
/// `user_interface.h`), what `EVENT_STAMODE_DISCONNECTED` carries and the core's
/// `WiFiEventStationModeDisconnected::reason` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DisconnectReason {
    /// `REASON_4WAY_HANDSHAKE_TIMEOUT`: the access point gave up on the WPA2
    /// handshake, which is what a wrong passphrase looks like from the station;
    /// libnet80211's `ieee80211_sta_new_state` turns it into `WrongPassword`.
    FourWayHandshakeTimeout = 15,
    /// `REASON_NO_AP_FOUND`: no access point has the SSID.
    NoApFound = 201,
}

/// An event of the SDK's Wi-Fi event handler (`System_Event_t`, 44 bytes: the
/// event number, then the union whose station members are the SSID (32 bytes),
/// its length, the BSSID and the channel or reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `EVENT_STAMODE_CONNECTED` (0): associated.
    Connected {
        /// The network's name.
        ssid: Vec<u8>,
        /// The access point's MAC.
        bssid: [u8; 6],
        /// Its channel.
        channel: u8,
    },
    /// `EVENT_STAMODE_DISCONNECTED` (1): the join failed or the link was lost.
    Disconnected {
        /// The network's name.
        ssid: Vec<u8>,
        /// The access point's MAC (zero when none was found).
        bssid: [u8; 6],
        /// Why.
        reason: DisconnectReason,
    },
}

impl Event {
    /// Size of `System_Event_t`.
    pub const SIZE: usize = 44;

    /// The event as the SDK lays it out for the handler.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut raw = [0u8; Self::SIZE];
        let (number, ssid, bssid, last) = match self {
            Event::Connected {
                ssid,
                bssid,
                channel,
            } => (0u32, ssid, bssid, *channel),
            Event::Disconnected {
                ssid,
                bssid,
                reason,
            } => (1, ssid, bssid, *reason as u8),
        };
        raw[..4].copy_from_slice(&number.to_le_bytes());
        let n = ssid.len().min(32);
        raw[4..4 + n].copy_from_slice(&ssid[..n]);
        raw[36] = n as u8;
        raw[37..43].copy_from_slice(bssid);
        raw[43] = last;
        raw
    }
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
    /// outcomes for an unknown SSID and for a wrong passphrase, else associated;
    /// with the event the SDK posts to the firmware's handler for it.
    pub fn join(&mut self, ap: Option<&AccessPoint>) -> (StationStatus, Event) {
        self.joins += 1;
        let ssid = self
            .config
            .as_ref()
            .map(|(ssid, _)| ssid.clone())
            .unwrap_or_default();
        let not_found = || Event::Disconnected {
            ssid: ssid.clone(),
            bssid: [0; 6],
            reason: DisconnectReason::NoApFound,
        };
        let Some((_, password)) = &self.config else {
            return (StationStatus::NoApFound, not_found());
        };
        match ap {
            Some(ap) if ap.ssid.as_bytes() == ssid.as_slice() => {
                if ap.passphrase.as_bytes() == password.as_slice() {
                    let event = Event::Connected {
                        ssid: ssid.clone(),
                        bssid: ap.bssid,
                        channel: ap.channel,
                    };
                    (StationStatus::Connecting, event)
                } else {
                    let event = Event::Disconnected {
                        ssid: ssid.clone(),
                        bssid: ap.bssid,
                        reason: DisconnectReason::FourWayHandshakeTimeout,
                    };
                    (StationStatus::WrongPassword, event)
                }
            }
            _ => (StationStatus::NoApFound, not_found()),
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
        let ap = AccessPoint::new("lab", "secret-1");
        let mut sta = Station::default();
        let status = |j: (StationStatus, Event)| j.0;
        assert_eq!(
            status(sta.join(Some(&ap))),
            StationStatus::NoApFound,
            "no config"
        );
        sta.set_config(&config("lab", "secret-1"));
        assert_eq!(status(sta.join(Some(&ap))), StationStatus::Connecting);
        assert_eq!(status(sta.join(None)), StationStatus::NoApFound);
        sta.set_config(&config("lab", "secret-2"));
        assert_eq!(status(sta.join(Some(&ap))), StationStatus::WrongPassword);
        sta.set_config(&config("other", "secret-1"));
        assert_eq!(status(sta.join(Some(&ap))), StationStatus::NoApFound);
        assert_eq!(sta.joins, 5);
        assert!(!format!("{ap:?}").contains("secret"));
    }

    /// The events as libnet80211's `ieee80211_sta_new_state` fills them: the
    /// event number in the first word, the SSID at 4, its length at 36, the BSSID
    /// at 37, the channel or the reason at 43.
    #[test]
    fn each_outcome_has_the_sdks_event_in_its_layout() {
        let ap = AccessPoint::new("lab", "secret-1");
        let mut sta = Station::default();
        sta.set_config(&config("lab", "secret-1"));
        let (_, connected) = sta.join(Some(&ap));
        let raw = connected.to_bytes();
        assert_eq!(&raw[..4], &[0, 0, 0, 0]);
        assert_eq!(&raw[4..7], b"lab");
        assert_eq!(raw[7], 0);
        assert_eq!(raw[36], 3);
        assert_eq!(raw[37..43], AccessPoint::DEFAULT_BSSID);
        assert_eq!(raw[43], 1, "channel");

        sta.set_config(&config("lab", "secret-2"));
        let (_, wrong) = sta.join(Some(&ap));
        let raw = wrong.to_bytes();
        assert_eq!(&raw[..4], &[1, 0, 0, 0]);
        assert_eq!(raw[43], 15, "REASON_4WAY_HANDSHAKE_TIMEOUT");

        let (_, none) = sta.join(None);
        let raw = none.to_bytes();
        assert_eq!(raw[37..43], [0; 6]);
        assert_eq!(raw[43], 201, "REASON_NO_AP_FOUND");
    }
}
