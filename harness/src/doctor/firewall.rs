//! Firewall hints: a runner whose INPUT chain drops by default silently keeps the
//! board away from the lab, which looks like a firmware bug from the serial log.

use std::net::IpAddr;
use std::process::Command;

use super::Check;

/// A chain on the input hook that ends in DROP or REJECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Blocking {
    /// nft: `family table chain`; iptables: `INPUT`.
    pub(crate) chain: String,
    /// `policy drop`, `-P INPUT DROP`, or the catch-all rule seen.
    pub(crate) how: String,
    /// The nft family and table, to write rules into the same chain.
    pub(crate) nft_table: Option<(String, String, String)>,
}

/// Input-hook chains of an `nft list ruleset` listing that drop or reject what no
/// earlier rule accepted: a `policy drop`, or a bare `drop`/`reject` rule.
pub(crate) fn nft_blocking(ruleset: &str) -> Vec<Blocking> {
    let mut found = Vec::new();
    let (mut family, mut table, mut chain) = (String::new(), String::new(), String::new());
    let mut input_hook = false;
    for line in ruleset.lines() {
        let line = line.trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["table", f, t, ..] => {
                family = f.to_string();
                table = t.to_string();
            }
            ["chain", c, ..] => {
                chain = c.to_string();
                input_hook = false;
            }
            _ => {}
        }
        if line.starts_with("type ") && line.contains("hook input") {
            input_hook = true;
            if line.contains("policy drop") {
                found.push(Blocking {
                    chain: format!("{family} {table} {chain}"),
                    how: "policy drop".into(),
                    nft_table: Some((family.clone(), table.clone(), chain.clone())),
                });
            }
            continue;
        }
        let catch_all = line == "drop" || line == "reject" || line.starts_with("reject with ");
        if input_hook && catch_all {
            found.push(Blocking {
                chain: format!("{family} {table} {chain}"),
                how: format!("final rule `{line}`"),
                nft_table: Some((family.clone(), table.clone(), chain.clone())),
            });
        }
    }
    found
}

/// The INPUT chain of an `iptables -S` listing, when it drops or rejects by
/// default: `-P INPUT DROP`, or an unconditional `-A INPUT -j DROP|REJECT`.
pub(crate) fn iptables_blocking(listing: &str) -> Vec<Blocking> {
    listing
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let how = match words.as_slice() {
                ["-P", "INPUT", "DROP"] => "policy DROP",
                ["-A", "INPUT", "-j", "DROP"] => "final rule `-j DROP`",
                ["-A", "INPUT", "-j", "REJECT", ..] => "final rule `-j REJECT`",
                _ => return None,
            };
            Some(Blocking {
                chain: "INPUT".into(),
                how: how.into(),
                nft_table: None,
            })
        })
        .collect()
}

/// The rules that let the board reach the lab, in nft and iptables forms.
pub(crate) fn allow_rules(lab: IpAddr, blocking: &[Blocking]) -> String {
    let (v, daddr_nft, daddr_ipt) = match lab {
        IpAddr::V4(_) => ("ip", format!("ip daddr {lab} "), format!("-d {lab} ")),
        IpAddr::V6(_) => ("ip6", format!("ip6 daddr {lab} "), format!("-d {lab} ")),
    };
    let (daddr_nft, daddr_ipt) = if lab.is_unspecified() {
        (String::new(), String::new())
    } else {
        (daddr_nft, daddr_ipt)
    };
    let ipt = if v == "ip6" { "ip6tables" } else { "iptables" };
    let mut rules = Vec::new();
    let mut tables: Vec<(String, String, String)> = blocking
        .iter()
        .filter_map(|b| b.nft_table.clone())
        .collect();
    tables.dedup();
    if tables.is_empty() && blocking.iter().any(|b| b.nft_table.is_none()) {
        // iptables-only hosts still get the nft form for the day they migrate.
        tables.push(("inet".into(), "filter".into(), "input".into()));
    }
    for (family, table, chain) in tables {
        rules.push(format!(
            "sudo nft insert rule {family} {table} {chain} {daddr_nft}udp dport {{ 53, 123 }} accept"
        ));
        rules.push(format!(
            "sudo nft insert rule {family} {table} {chain} {daddr_nft}tcp dport 8883 accept"
        ));
    }
    rules.push(format!(
        "sudo {ipt} -I INPUT {daddr_ipt}-p udp -m multiport --dports 53,123 -j ACCEPT"
    ));
    rules.push(format!(
        "sudo {ipt} -I INPUT {daddr_ipt}-p tcp --dport 8883 -j ACCEPT"
    ));
    rules.join("\n")
}

fn query(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Inspects nftables and iptables for an INPUT chain that would drop the board's
/// DNS, NTP and MQTT/TLS traffic to `lab`.
pub fn check_firewall(lab: IpAddr) -> Check {
    const NAME: &str = "firewall";
    let nft = query("nft", &["list", "ruleset"]);
    let ipt = query("iptables", &["-S"]);
    if nft.is_none() && ipt.is_none() {
        return Check::ok(
            NAME,
            "could not inspect (`nft list ruleset` and `iptables -S` did not run: not \
             installed, or not root): make sure the board may reach UDP 53, UDP 123 and TCP 8883 on the lab address",
        );
    }
    let mut blocking = Vec::new();
    blocking.extend(nft.as_deref().map(nft_blocking).unwrap_or_default());
    blocking.extend(ipt.as_deref().map(iptables_blocking).unwrap_or_default());
    let inspected = match (&nft, &ipt) {
        (Some(_), Some(_)) => "nftables and iptables",
        (Some(_), None) => "nftables",
        _ => "iptables",
    };
    if blocking.is_empty() {
        return Check::ok(
            NAME,
            format!("{inspected}: no INPUT chain drops by default"),
        );
    }
    let chains: Vec<String> = blocking
        .iter()
        .map(|b| format!("{} ({})", b.chain, b.how))
        .collect();
    Check::warn(
        NAME,
        format!(
            "INPUT drops by default: {}; the board must reach UDP 53, UDP 123 and TCP 8883 on {lab}",
            chains.join(", ")
        ),
        format!("allow the lab's ports:\n{}", allow_rules(lab, &blocking)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NFT_DROP: &str = "table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tiif \"lo\" accept
\t\ttcp dport 22 accept
\t}
\tchain forward {
\t\ttype filter hook forward priority filter; policy drop;
\t}
\tchain output {
\t\ttype filter hook output priority filter; policy accept;
\t}
}
";

    #[test]
    fn nft_policy_drop_on_input_only() {
        let found = nft_blocking(NFT_DROP);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].chain, "inet filter input");
        assert_eq!(found[0].how, "policy drop");
        // The forward chain's drop policy does not concern traffic to the lab.
        let accept = NFT_DROP.replace(
            "hook input priority filter; policy drop;",
            "hook input priority filter; policy accept;",
        );
        assert!(nft_blocking(&accept).is_empty());
    }

    #[test]
    fn nft_final_reject_rule() {
        let ruleset = "table ip fw {\n\tchain in {\n\t\ttype filter hook input priority 0; policy accept;\n\t\ttcp dport 22 accept\n\t\treject with icmp type port-unreachable\n\t}\n}\n";
        let found = nft_blocking(ruleset);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].chain, "ip fw in");
        assert!(found[0].how.contains("reject"));
        let rules = allow_rules("192.168.1.10".parse().unwrap(), &found);
        assert!(
            rules.contains(
                "sudo nft insert rule ip fw in ip daddr 192.168.1.10 udp dport { 53, 123 } accept"
            ),
            "{rules}"
        );
        assert!(
            rules.contains("sudo iptables -I INPUT -d 192.168.1.10 -p tcp --dport 8883 -j ACCEPT"),
            "{rules}"
        );
    }

    #[test]
    fn iptables_policies() {
        let drop = "-P INPUT DROP\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n-A INPUT -i lo -j ACCEPT\n";
        let found = iptables_blocking(drop);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].how, "policy DROP");
        let reject = "-P INPUT ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -j REJECT --reject-with icmp-host-prohibited\n";
        assert_eq!(iptables_blocking(reject)[0].how, "final rule `-j REJECT`");
        // A REJECT that only matches some traffic is not a default.
        let open = "-P INPUT ACCEPT\n-A INPUT -p tcp --dport 23 -j REJECT\n";
        assert!(iptables_blocking(open).is_empty());
        let rules = allow_rules("0.0.0.0".parse().unwrap(), &found);
        assert!(
            rules.contains("sudo iptables -I INPUT -p udp -m multiport --dports 53,123 -j ACCEPT"),
            "{rules}"
        );
        assert!(
            rules.contains("sudo nft insert rule inet filter input udp dport { 53, 123 } accept"),
            "{rules}"
        );
    }
}
