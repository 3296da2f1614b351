//! The firmware's serial lines, in its configured log language.

use crate::descriptor::LogStyle;

/// One thing the firmware reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    Boot {
        fw: String,
        version: String,
        reset: String,
    },
    ProvReady {
        window_ms: u64,
    },
    ProvOk,
    ProvError {
        reason: String,
    },
    WifiConnecting {
        ssid: String,
    },
    WifiConnected {
        ip: String,
    },
    WifiFailed,
    DnsResolved {
        host: String,
        ip: String,
    },
    DnsFailed {
        host: String,
    },
    NtpSynced {
        epoch: u64,
    },
    NtpFailed,
    TlsConnecting {
        host: String,
        port: u16,
        mode: &'static str,
    },
    TlsOk {
        version: &'static str,
        suite: String,
        mfln: u32,
    },
    TlsError {
        code: i32,
        text: String,
    },
    MqttConnected {
        client_id: String,
    },
    MqttFailed {
        rc: i32,
        retry_ms: u64,
    },
    MqttSubscribed {
        topic: String,
    },
    MqttPublished {
        topic: String,
        bytes: usize,
        ok: bool,
    },
    MqttMessage {
        topic: String,
        payload: String,
    },
    MqttRetry {
        in_ms: u64,
    },
    Heap {
        free: usize,
    },
}

/// The text lines (without CRLF) for `line` in `style`; empty when that firmware
/// says nothing about it.
pub(crate) fn render(style: LogStyle, line: &Line) -> Vec<String> {
    match style {
        LogStyle::Reference => vec![reference(line)],
        LogStyle::Seed => seed(line),
    }
}

fn reference(line: &Line) -> String {
    match line {
        Line::Boot { fw, version, reset } => {
            format!("[boot] fw={fw} version={version} reset={reset}")
        }
        Line::ProvReady { window_ms } => format!("[prov] ready window_ms={window_ms}"),
        Line::ProvOk => "[prov] ok".into(),
        Line::ProvError { reason } => format!("[prov] error reason={reason}"),
        Line::WifiConnecting { ssid } => format!("[wifi] connecting ssid={ssid}"),
        Line::WifiConnected { ip } => format!("[wifi] connected ip={ip}"),
        Line::WifiFailed => "[wifi] failed".into(),
        Line::DnsResolved { host, ip } => format!("[dns] resolved host={host} ip={ip}"),
        Line::DnsFailed { host } => format!("[dns] failed host={host}"),
        Line::NtpSynced { epoch } => format!("[ntp] synced epoch={epoch}"),
        Line::NtpFailed => "[ntp] failed".into(),
        Line::TlsConnecting { host, port, mode } => {
            format!("[tls] connecting host={host} port={port} mode={mode}")
        }
        Line::TlsOk {
            version,
            suite,
            mfln,
        } => format!("[tls] ok version={version} suite={suite} mfln={mfln}"),
        Line::TlsError { code, text } => format!("[tls] error code={code} text={text}"),
        Line::MqttConnected { client_id } => format!("[mqtt] connected client_id={client_id}"),
        Line::MqttFailed { rc, .. } => format!("[mqtt] failed rc={rc}"),
        Line::MqttSubscribed { topic } => format!("[mqtt] subscribed topic={topic}"),
        Line::MqttPublished { topic, bytes, ok } => {
            format!(
                "[mqtt] published topic={topic} bytes={bytes} ok={}",
                u8::from(*ok)
            )
        }
        Line::MqttMessage { topic, payload } => {
            format!("[mqtt] message topic={topic} payload={payload}")
        }
        Line::MqttRetry { in_ms } => format!("[mqtt] retry in_ms={in_ms}"),
        Line::Heap { free } => format!("[heap] free={free}"),
    }
}

/// The forum-post style: chatty where the reference is terse, silent about the
/// TLS reason (which is exactly the problem people fight).
fn seed(line: &Line) -> Vec<String> {
    let one = |s: String| vec![s];
    match line {
        Line::Boot { .. } => one(String::new()),
        Line::ProvReady { .. } => one("Waiting for provisioning...".into()),
        Line::ProvOk => one("Provisioned".into()),
        Line::ProvError { reason } => one(format!("Provisioning failed: {reason}")),
        Line::WifiConnecting { ssid } => one(format!("Connecting to {ssid}")),
        Line::WifiConnected { ip } => {
            vec!["WiFi connected".into(), "IP address: ".into(), ip.clone()]
        }
        Line::WifiFailed => one(".".into()),
        Line::MqttConnected { .. } => one("Attempting MQTT connection...connected".into()),
        Line::MqttFailed { rc, retry_ms } => one(format!(
            "Attempting MQTT connection...failed, rc={rc} try again in {} seconds",
            retry_ms / 1000
        )),
        Line::MqttPublished { ok: true, .. } => one("Published".into()),
        Line::MqttMessage { topic, payload } => one(format!("Message arrived [{topic}] {payload}")),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_lines_follow_the_contract() {
        let l = Line::MqttPublished {
            topic: "t".into(),
            bytes: 3,
            ok: true,
        };
        assert_eq!(
            render(LogStyle::Reference, &l),
            vec!["[mqtt] published topic=t bytes=3 ok=1"]
        );
        let l = Line::TlsError {
            code: 56,
            text: "BR_ERR_X509_BAD_SERVER_NAME".into(),
        };
        assert_eq!(
            render(LogStyle::Reference, &l),
            vec!["[tls] error code=56 text=BR_ERR_X509_BAD_SERVER_NAME"]
        );
    }

    #[test]
    fn seed_lines_hide_the_tls_reason() {
        let l = Line::TlsError {
            code: 56,
            text: "x".into(),
        };
        assert!(render(LogStyle::Seed, &l).is_empty());
        let l = Line::MqttFailed {
            rc: -2,
            retry_ms: 5000,
        };
        assert_eq!(
            render(LogStyle::Seed, &l),
            vec!["Attempting MQTT connection...failed, rc=-2 try again in 5 seconds"]
        );
    }
}
