//! The interception table: the one place where the machine replaces firmware code.
//!
//! The SDK's closed libraries run as compiled wherever they only compute. The radio
//! does not exist here: PHY calibration, the RF front end and the MAC (WDEV) are
//! undocumented hardware no public model implements. Where the firmware enters those
//! parts, the machine takes over at the function boundary, found by ELF symbol: the
//! function is not executed, it returns at once with the value given here (or, for
//! the Wi-Fi rows, after the machine has done what the radio would have, calling
//! back into firmware as the SDK does; see [`crate::wifi`]). One kind of row only
//! watches: the function runs as compiled after the machine has read its
//! arguments. Each entry says why. Nothing is intercepted by address alone; a symbol the ELF does not
//! have is reported as unresolved.

use std::collections::HashMap;

use crate::symbols::Symbols;

/// What the machine does instead of running an intercepted function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Return at once with this value in a2.
    Return(u32),
    /// Return at once, a2 untouched (a `void` function).
    ReturnVoid,
    /// Return at once with this value, and the APB clock is now 80 MHz: what the
    /// real function's PLL setup for the 26 MHz crystal achieves (from then on the
    /// UART divisors the SDK writes give their nominal rates).
    ReturnWithPll(u32),
    /// Return 0 with the PLL at 80 MHz, as `ReturnWithPll`, and the PHY library's
    /// function table pointer (the ELF's `g_phyFuns`) set to the ROM's table of PHY
    /// stubs, as the real function sets it to the ROM's (`phy_get_romfuncs`).
    PhyRegister,
    /// Watch, do not replace: record the `struct station_config` at a2 (the SSID
    /// and passphrase the station will join with), then run the function.
    StationConfig,
    /// Join the machine's access point with the recorded configuration: the
    /// station status becomes the SDK's outcome and the SDK's event for it goes
    /// to the firmware's handler (`EVENT_STAMODE_CONNECTED`, or
    /// `EVENT_STAMODE_DISCONNECTED` with reason 15 for a wrong passphrase, 201
    /// for an unknown SSID), through the SDK's event task as libnet80211 posts
    /// it; on success the station's netif is brought up and its DHCP client
    /// started through the lwIP2 glue (`netif_set_up`, `dhcp_start`), as the
    /// SDK's `eagle_auth_done` does. Returns true (the join started).
    StationConnect,
    /// A frame from lwIP (`glue2esp_linkoutput(netif, ref, data, size)`): the
    /// machine takes the bytes, hands the pbuf back (`esp2glue_pbuf_freed(ref)`, as
    /// the SDK does once sent) and returns 0 (sent).
    LinkOutput,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Intercept {
    /// The function's ELF symbol.
    pub symbol: &'static str,
    /// What happens instead.
    pub action: Action,
    /// Why it is replaced.
    pub why: &'static str,
}

/// The table. Found by tracing the reference image from reset (see the crate docs).
pub const TABLE: &[Intercept] = &[
    Intercept {
        symbol: "register_chipv6_phy",
        action: Action::PhyRegister,
        why: "libphy's radio bring-up, called by pm_wakeup_init: it takes the ROM's PHY \
              function table (phy_get_romfuncs, ROM code no one has reimplemented) and \
              calibrates the RF front end through the analog I2C block. No radio here; \
              the caller ignores the result",
    },
    Intercept {
        symbol: "phy_init",
        action: Action::Return(0),
        why: "the PHY's init through the ops table register_chipv6_phy fills (RF and baseband calibration): the table is never filled (register_chipv6_phy is intercepted), so the call would jump through a null pointer",
    },
    Intercept {
        symbol: "rf_init",
        action: Action::Return(0),
        why: "the RF front end's init through the PHY ops table: the table is never filled (register_chipv6_phy is intercepted), so the call would jump through a null pointer",
    },
    Intercept {
        symbol: "bb_init",
        action: Action::Return(0),
        why: "the baseband's init through the PHY ops table: the table is never filled (register_chipv6_phy is intercepted), so the call would jump through a null pointer",
    },
    Intercept {
        symbol: "phy_initialize_bb",
        action: Action::Return(0),
        why: "baseband registers through the PHY ops table: the table is never filled (register_chipv6_phy is intercepted), so the call would jump through a null pointer",
    },
    Intercept {
        symbol: "phy_set_sense",
        action: Action::Return(0),
        why: "receiver sensitivity through the PHY ops table: the table is never filled (register_chipv6_phy is intercepted), so the call would jump through a null pointer",
    },
    Intercept {
        symbol: "phy_enable_agc",
        action: Action::Return(0),
        why: "the receiver's gain control through the PHY ops table: the table is never filled (register_chipv6_phy is intercepted), so the call would jump through a null pointer",
    },
    Intercept {
        symbol: "phy_disable_agc",
        action: Action::Return(0),
        why: "the receiver's gain control through the PHY ops table: the table is never filled (register_chipv6_phy is intercepted), so the call would jump through a null pointer",
    },
    Intercept {
        symbol: "phy_delete_channel",
        action: Action::Return(0),
        why: "channel state through the PHY ops table: the table is never filled (register_chipv6_phy is intercepted), so the call would jump through a null pointer",
    },
    Intercept {
        symbol: "phy_change_channel",
        action: Action::Return(0),
        why: "tunes the radio through the PHY ops table: the table is never filled (register_chipv6_phy is intercepted), so the call would jump through a null pointer",
    },
    Intercept {
        symbol: "RFChannelSel",
        action: Action::Return(0),
        why: "tunes the radio through the PHY ops table: the table is never filled (register_chipv6_phy is intercepted), so the call would jump through a null pointer",
    },
    Intercept {
        symbol: "noise_check_loop",
        action: Action::ReturnVoid,
        why: "libpp's periodic noise-floor measurement (pp_enable_noise_timer runs it at \
              once and from a timer): it reads the baseband's measurement registers \
              (0x60009B60) and goes through the unfilled PHY ops table",
    },
    Intercept {
        symbol: "wifi_station_set_config_current",
        action: Action::StationConfig,
        why: "watched, not replaced: the SSID and passphrase the sketch's WiFi.begin \
              gives the SDK, which the machine's join compares with its access point",
    },
    Intercept {
        symbol: "wifi_station_set_config",
        action: Action::StationConfig,
        why: "watched, not replaced: as wifi_station_set_config_current, for sketches \
              that persist their credentials",
    },
    Intercept {
        symbol: "wifi_station_connect",
        action: Action::StationConnect,
        why: "the join: libnet80211 would scan (probe requests through the PHY), \
              authenticate and associate through the MAC, and libwpa would run the \
              WPA2 4-way handshake; none of that hardware exists. The machine decides \
              from its access point, posts the event ieee80211_sta_new_state would \
              (CONNECTED, or DISCONNECTED with its reason) to the SDK's event task, \
              and goes on where the SDK's eagle_auth_done does: netif up and DHCP \
              through the lwIP2 glue",
    },
    Intercept {
        symbol: "glue2esp_linkoutput",
        action: Action::LinkOutput,
        why: "the frame boundary: below it the SDK would wrap the frame in 802.11 \
              (ieee80211_output_pbuf) and queue it for the MAC (ppTxPkt); the machine \
              takes the Ethernet frame instead",
    },
];

/// What the machine finds at an address it looks up.
#[derive(Debug, Clone, Copy)]
pub enum Hit {
    /// A row of the table.
    Row(&'static Intercept),
    /// A watched function (see `Machine::watch`): recorded, then run.
    Watch,
}

/// The table resolved against an image's symbols.
#[derive(Debug, Clone, Default)]
pub struct Intercepts {
    by_addr: HashMap<u32, usize>,
    watched: std::collections::HashSet<u32>,
    filter: Vec<u64>,
    /// Calls per table row.
    pub hits: Vec<u64>,
    /// Rows whose symbol the ELF lacks.
    pub unresolved: Vec<&'static str>,
}

impl Intercepts {
    /// Resolves [`TABLE`] against `symbols`.
    pub fn resolve(symbols: &Symbols) -> Intercepts {
        let mut me = Intercepts {
            by_addr: HashMap::new(),
            watched: Default::default(),
            filter: vec![0; 1024],
            hits: vec![0; TABLE.len()],
            unresolved: Vec::new(),
        };
        for (i, row) in TABLE.iter().enumerate() {
            match symbols.addr_of(row.symbol) {
                Some(addr) => {
                    me.by_addr.insert(addr, i);
                    me.mark(addr);
                }
                None => me.unresolved.push(row.symbol),
            }
        }
        me
    }

    fn mark(&mut self, addr: u32) {
        let bit = (addr >> 2) & 0xFFFF;
        self.filter[(bit / 64) as usize] |= 1 << (bit % 64);
    }

    /// Watches `addr` as well (a table row at the same address wins).
    pub fn watch(&mut self, addr: u32) {
        self.watched.insert(addr);
        self.mark(addr);
    }

    /// The row intercepting `pc` or a watch on it, if any (a bit test first:
    /// this runs every step).
    #[inline]
    pub fn lookup(&mut self, pc: u32) -> Option<Hit> {
        let bit = (pc >> 2) & 0xFFFF;
        if self.filter[(bit / 64) as usize] & (1 << (bit % 64)) == 0 {
            return None;
        }
        if let Some(&i) = self.by_addr.get(&pc) {
            self.hits[i] += 1;
            return Some(Hit::Row(&TABLE[i]));
        }
        self.watched.contains(&pc).then_some(Hit::Watch)
    }
}
