//! `Then the transcript matches the snapshot`: the scenario's serial transcript,
//! normalised so only what a release changes shows, compared with a reviewed
//! insta snapshot in `features/snapshots/`.
//!
//! A mismatch leaves `<name>.snap.new` beside the snapshot (unless CI=true);
//! `cargo insta review` shows the diff and accepts or rejects it.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use regex::Regex;

use super::checks::StepFailure;
use super::context::{RunContext, SnapshotMode};
use super::world::{ScenarioWorld, StepResult};
use crate::timeline::{Event, EventKind, HarnessEvent};

/// How long the console must stay quiet before the transcript is taken, so a
/// line the device is printing right now is not cut in half of the runs.
const QUIET: Duration = Duration::from_millis(300);
const QUIET_AT_MOST: Duration = Duration::from_secs(3);

fn rules() -> &'static [(Regex, &'static str)] {
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    RULES.get_or_init(|| {
        [
            // Keys and certificates, should a firmware ever print one.
            (
                r"-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----",
                "<pem>",
            ),
            (
                r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
                "<time>",
            ),
            (r"\b(\d{1,3}\.){3}\d{1,3}(:\d+)?\b", "<address>"),
            (r"\b([0-9a-fA-F]{2}:){5,}[0-9a-fA-F]{2}\b", "<hex>"),
            (r"\b[0-9a-fA-F]{16,}\b", "<hex>"),
            (r"(client_id=|clientId=|client id )\S+", "${1}<client-id>"),
            (
                r"\b(epoch|uptime|uptime_ms|free|heap|port|in_ms|millis)=\d+",
                "${1}=<n>",
            ),
            (
                r#""(seq|uptime|uptime_ms|heap|ts|time)":\s*\d+"#,
                "\"${1}\":<n>",
            ),
            (r"\bbytes=\d+", "bytes=<n>"),
        ]
        .into_iter()
        .filter_map(|(pattern, replacement)| Regex::new(pattern).ok().map(|r| (r, replacement)))
        .collect()
    })
}

/// One line with what varies between runs redacted.
pub fn normalise_line(line: &str) -> String {
    let readable = !line
        .chars()
        .any(|c| c == char::REPLACEMENT_CHARACTER || (c.is_control() && c != '\t'));
    if !readable {
        return "<unreadable at this baud rate>".into();
    }
    rules()
        .iter()
        .fold(line.trim_end().to_owned(), |text, (re, to)| {
            re.replace_all(&text, *to).into_owned()
        })
}

/// The normalised transcript of `events`: serial lines, and where the harness
/// provisioned (never what).
pub fn normalise(events: &[Event]) -> String {
    let mut out = String::new();
    for event in events {
        let line = match &event.kind {
            EventKind::SerialLine { line } => normalise_line(line),
            EventKind::Harness {
                what: HarnessEvent::ProvisioningSent { .. },
            } => "> PROV <redacted>".into(),
            _ => continue,
        };
        // Runs of blank or unreadable lines vary with timing at the rate switch.
        let last = out.lines().last();
        if line.trim().is_empty() || (line.starts_with('<') && last == Some(line.as_str())) {
            continue;
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A name insta accepts as a file name: the feature file's stem and the scenario.
fn snapshot_name(feature: &Path, scenario: &str) -> String {
    let slug = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect::<String>()
            .split('_')
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("_")
    };
    let stem = feature
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{}__{}", slug(&stem), slug(scenario))
}

/// The stored snapshot's content, without insta's header.
fn stored(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let body = text.strip_prefix("---\n")?;
    let end = body.find("\n---\n")?;
    Some(body[end + 5..].trim_end().to_owned())
}

pub(crate) async fn check(world: &ScenarioWorld, ctx: &RunContext) -> StepResult {
    let device = world.require_device()?;
    let start = world.start.unwrap_or_else(|| ctx.timeline.start());
    let begun = Instant::now();
    // Wait for the console to go quiet: every new line restarts the wait.
    let mut from = ctx.timeline.cursor();
    while begun.elapsed() < QUIET_AT_MOST {
        let next = ctx
            .timeline
            .wait_for(from, QUIET, |e| {
                e.device == Some(device) && matches!(e.kind, EventKind::SerialLine { .. })
            })
            .await;
        match next {
            Some(e) => from = e.cursor_after(),
            None => break,
        }
    }
    let transcript = normalise(&world.device_events(ctx, start));
    let info = world
        .info
        .as_ref()
        .ok_or_else(|| StepFailure::infrastructure("the scenario has no name"))?;
    let name = snapshot_name(&info.path, &info.name);
    let file = ctx.snapshots_dir.join(format!("{name}.snap"));
    if stored(&file).as_deref() == Some(transcript.trim_end()) {
        return Ok(());
    }
    let mismatch = |found: String| StepFailure {
        expectation: format!("the transcript to match the snapshot {}", file.display()),
        found,
        window: Vec::new(),
        infrastructure: false,
    };
    match ctx.snapshots {
        SnapshotMode::CompareOnly => Err(mismatch(format!("it differs:\n{}", transcript))),
        SnapshotMode::Review => {
            let dir = ctx.snapshots_dir.clone();
            let content = transcript.clone();
            let outcome = std::panic::catch_unwind(move || {
                let mut settings = insta::Settings::clone_current();
                settings.set_snapshot_path(dir);
                settings.set_prepend_module_to_snapshot(false);
                settings.set_omit_expression(true);
                settings.bind(|| insta::assert_snapshot!(name, content));
            });
            match outcome {
                Ok(()) => Ok(()),
                Err(_) => Err(mismatch(format!(
                    "it differs (review with `cargo insta review`, or accept with INSTA_UPDATE=always); the transcript was:\n{transcript}"
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_varies_is_redacted() {
        assert_eq!(
            normalise_line("[dns] resolved host=broker.hil.test ip=127.0.0.1"),
            "[dns] resolved host=broker.hil.test ip=<address>"
        );
        assert_eq!(
            normalise_line("[ntp] synced epoch=1790000000"),
            "[ntp] synced epoch=<n>"
        );
        assert_eq!(
            normalise_line("[mqtt] connected client_id=esp8266-a1b2c3"),
            "[mqtt] connected client_id=<client-id>"
        );
        assert_eq!(
            normalise_line("pin 0123456789abcdef0123456789abcdef01234567"),
            "pin <hex>"
        );
        assert_eq!(
            normalise_line("\u{fffd}\u{1}x"),
            "<unreadable at this baud rate>"
        );
    }

    #[test]
    fn names_are_file_safe() {
        assert_eq!(
            snapshot_name(
                Path::new("features/transcript.feature"),
                "the boot, and first connection"
            ),
            "transcript__the_boot_and_first_connection"
        );
    }
}
