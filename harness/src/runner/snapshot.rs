//! `Then the transcript matches the snapshot`: the scenario's serial transcript,
//! normalised so only what a release changes shows, compared with a reviewed
//! insta snapshot in `features/snapshots/`.
//!
//! A mismatch leaves `<name>.snap.new` beside the snapshot (unless CI=true);
//! `cargo insta review` shows the diff and accepts or rejects it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;

use crate::timeline::{Event, EventKind, HarnessEvent};

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

/// A reviewed text in the snapshot directory (a scenario's transcript, the main
/// job's kill matrix), in insta's file format.
#[derive(Debug, Clone)]
pub struct Snapshot {
    dir: PathBuf,
    name: String,
}

impl Snapshot {
    /// The snapshot of scenario `scenario` of the feature file `feature`.
    pub fn new(dir: &Path, feature: &Path, scenario: &str) -> Snapshot {
        Snapshot::named(dir, &snapshot_name(feature, scenario))
    }

    /// The snapshot called `name` (a file name without `.snap`) in `dir`.
    pub fn named(dir: &Path, name: &str) -> Snapshot {
        Snapshot {
            // insta resolves relative snapshot paths against its caller's source file.
            dir: std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()),
            name: name.to_owned(),
        }
    }

    /// Where it is stored.
    pub fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.snap", self.name))
    }

    /// The reviewed text, when there is one.
    pub fn stored(&self) -> Option<String> {
        stored(&self.path())
    }

    /// Whether `text` is the reviewed one.
    pub fn matches(&self, text: &str) -> bool {
        self.stored().is_some_and(|s| same(&s, text))
    }

    /// Hands a differing transcript to insta's review workflow: a `.snap.new`
    /// beside the snapshot (insta writes nothing when CI=true), or the snapshot
    /// itself with INSTA_UPDATE=always. True when insta accepted it (then the
    /// transcript is the snapshot now).
    pub fn propose(&self, transcript: &str) -> bool {
        let dir = self.dir.clone();
        let name = self.name.clone();
        let content = transcript.to_owned();
        std::panic::catch_unwind(move || {
            let mut settings = insta::Settings::clone_current();
            settings.set_snapshot_path(dir);
            settings.set_prepend_module_to_snapshot(false);
            settings.set_omit_expression(true);
            settings.bind(|| insta::assert_snapshot!(name, content));
        })
        .is_ok()
    }
}

impl Snapshot {
    /// Leaves `text` beside the snapshot as `<name>.snap.new` for `cargo insta
    /// review`, without insta's diff on the console; nothing is written when
    /// CI=true (a CI run only compares). Returns the file written.
    pub fn write_pending(&self, text: &str) -> std::io::Result<Option<PathBuf>> {
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            return Ok(None);
        }
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("{}.snap.new", self.name));
        let body = format!("---\nsource: hil\n---\n{}\n", text.trim_end());
        crate::artifact::write_atomically(&path, body.as_bytes())?;
        Ok(Some(path))
    }
}

/// Whether a stored snapshot and a transcript are the same text (insta trims
/// the trailing newline).
pub(crate) fn same(stored: &str, transcript: &str) -> bool {
    stored.trim_end() == transcript.trim_end()
}

/// The stored snapshot's content, without insta's header.
fn stored(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let body = text.strip_prefix("---\n")?;
    let end = body.find("\n---\n")?;
    Some(body[end + 5..].trim_end().to_owned())
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
    fn a_changed_transcript_does_not_match_its_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = Snapshot::new(dir.path(), Path::new("features/x.feature"), "a boot");
        assert!(
            !snapshot.matches("[boot] fw=<n>\n"),
            "no snapshot stored yet"
        );
        std::fs::write(
            snapshot.path(),
            "---\nsource: features/x.feature\n---\n[boot] fw=hil-reference\n[prov] ok\n",
        )
        .unwrap();
        assert!(snapshot.matches("[boot] fw=hil-reference\n[prov] ok\n"));
        assert!(!snapshot.matches("[boot] fw=hil-reference\n[prov] error reason=x\n"));
        assert!(!snapshot.matches("[boot] fw=hil-reference\n"));
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
