//! Readers for `iw`'s output: which wiphy an interface belongs to (`iw dev IFACE
//! info`), and the interface modes that wiphy supports (`iw list`). Parsers take
//! text so tests feed them captured output.

/// The wiphy index from `iw dev IFACE info` (`\twiphy 1`).
pub(crate) fn wiphy_of(dev_info: &str) -> Option<u32> {
    dev_info.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("wiphy"), Some(n), None) => n.parse().ok(),
            _ => None,
        }
    })
}

/// The modes listed under "Supported interface modes:" for wiphy `index` in
/// `iw list` output: its section is headed `Wiphy phy<index>` or carries
/// `wiphy index: <index>` (a renamed phy). Only that list counts: "software
/// interface modes", "valid interface combinations" and a band's "HE Iftypes"
/// also name AP without meaning the hardware can be one. `None` when the wiphy
/// or its list is not there.
pub(crate) fn supported_modes(list: &str, index: u32) -> Option<Vec<String>> {
    let mut sections: Vec<(String, Vec<&str>)> = Vec::new();
    for line in list.lines() {
        if let Some(name) = line.strip_prefix("Wiphy ") {
            sections.push((name.trim().to_owned(), Vec::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            body.push(line);
        }
    }
    let wanted = format!("phy{index}");
    let marker = format!("wiphy index: {index}");
    let (_, body) = sections
        .into_iter()
        .find(|(name, body)| *name == wanted || body.iter().any(|l| l.trim() == marker))?;
    let start = body
        .iter()
        .position(|l| l.trim() == "Supported interface modes:")?;
    let modes = body[start + 1..]
        .iter()
        .map(|l| l.trim())
        .take_while(|l| l.starts_with('*'))
        .map(|l| l.trim_start_matches('*').trim().to_owned())
        .collect();
    Some(modes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two radios in `iw list`'s layout (iw 5.19): phy0 can be an access point,
    /// phy1 cannot, though AP is named in its software modes, its interface
    /// combinations and a band's HE interface types.
    const LIST: &str = "Wiphy phy0
\twiphy index: 0
\tmax # scan SSIDs: 4
\tSupported interface modes:
\t\t * IBSS
\t\t * managed
\t\t * AP
\t\t * AP/VLAN
\t\t * monitor
\tBand 1:
\t\tCapabilities: 0x11ef
\tsoftware interface modes (can always be added):
\t\t * AP/VLAN
\t\t * monitor
Wiphy phy1
\twiphy index: 1
\tSupported interface modes:
\t\t * managed
\t\t * monitor
\tBand 1:
\t\tHE Iftypes: AP
\tsoftware interface modes (can always be added):
\t\t * AP/VLAN
\t\t * monitor
\tvalid interface combinations:
\t\t * #{ managed } <= 1, #{ AP, P2P-client, P2P-GO } <= 1,
\t\t   total <= 2, #channels <= 1
";

    #[test]
    fn modes_come_from_the_wiphys_own_list_only() {
        let phy0 = supported_modes(LIST, 0).unwrap();
        assert!(phy0.iter().any(|m| m == "AP"), "{phy0:?}");
        let phy1 = supported_modes(LIST, 1).unwrap();
        assert_eq!(phy1, ["managed", "monitor"]);
        assert_eq!(supported_modes(LIST, 7), None);
        // A renamed phy is found by its index.
        let renamed = LIST.replace("Wiphy phy1", "Wiphy usbwifi");
        assert_eq!(
            supported_modes(&renamed, 1).unwrap(),
            ["managed", "monitor"]
        );
    }

    #[test]
    fn the_wiphy_of_an_interface() {
        let info = "Interface wlx00c0ca123456\n\tifindex 5\n\twdev 0x100000001\n\taddr 00:c0:ca:12:34:56\n\ttype managed\n\twiphy 1\n\ttxpower 20.00 dBm\n";
        assert_eq!(wiphy_of(info), Some(1));
        assert_eq!(wiphy_of("command failed: No such device (-19)"), None);
    }
}
