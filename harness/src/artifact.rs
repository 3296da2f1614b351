//! Writing what a run produces: files appear whole or not at all, and secrets
//! (passwords given in steps, private keys) never reach them.
//!
//! ```
//! use hil::artifact::Secrets;
//!
//! let secrets = Secrets::default();
//! secrets.add("s3cret");
//! assert_eq!(secrets.redact("password s3cret"), "password <redacted>");
//! ```

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

use regex::Regex;

/// Writes `bytes` to `path` through a temporary file in the same directory and a
/// rename, so a reader (or a run killed half-way, even by SIGKILL) sees the old
/// file or the new one, never a torn one. (No fsync: the guarantee is about the
/// process dying, not the machine losing power, and a run writes many files.)
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "artifact".into());
    // Unique per write, so two threads writing one path never share a file.
    let nth = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}-{nth}.tmp", std::process::id()));
    in_flight()?.insert(tmp.clone());
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    if let Ok(mut writing) = in_flight() {
        writing.remove(&tmp);
    }
    result
}

/// Removes the temporary files of writes still under way and refuses new ones:
/// called by a process about to exit in the middle of things (a second Ctrl-C),
/// so no `.tmp` file outlives it.
pub fn abandon_writes_in_flight() {
    if let Ok(mut writing) = IN_FLIGHT.lock() {
        for tmp in std::mem::take(&mut *writing) {
            let _ = std::fs::remove_file(tmp);
        }
        ABANDONED.store(true, Ordering::SeqCst);
    }
}

static WRITES: AtomicU64 = AtomicU64::new(0);
static IN_FLIGHT: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
static ABANDONED: AtomicBool = AtomicBool::new(false);

/// The set of temporary files being written, unless writes were abandoned (the
/// check is under the lock, so no write starts after the last cleanup).
fn in_flight() -> std::io::Result<MutexGuard<'static, BTreeSet<PathBuf>>> {
    let writing = IN_FLIGHT
        .lock()
        .map_err(|_| std::io::Error::other("an artifact writer panicked"))?;
    if ABANDONED.load(Ordering::SeqCst) {
        return Err(std::io::Error::other("the process is exiting"));
    }
    Ok(writing)
}

/// Text that must never appear in an artifact, shared by everything that writes
/// one. Cloning gives another handle to the same set.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    known: Arc<RwLock<Vec<String>>>,
}

/// What a secret is replaced with.
pub const REDACTED: &str = "<redacted>";

impl Secrets {
    /// Adds a secret (empty strings are ignored: they would match everywhere).
    pub fn add(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        if let Ok(mut known) = self.known.write() {
            if !known.iter().any(|k| k == secret) {
                known.push(secret.to_owned());
                // Longest first, so a secret containing another is replaced whole.
                known.sort_by_key(|k| std::cmp::Reverse(k.len()));
            }
        }
    }

    /// `text` with every known secret, and every PEM private key, replaced.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        if let Ok(known) = self.known.read() {
            for secret in known.iter() {
                if out.contains(secret.as_str()) {
                    out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
                }
            }
        }
        if out.contains("PRIVATE KEY-----") {
            out = Cow::Owned(redact_private_keys(&out));
        }
        out
    }
}

/// Replaces each PEM private key block (to its END line, or to the end of the
/// text when cut short) with a marker.
fn redact_private_keys(text: &str) -> String {
    static PEM_KEY: OnceLock<Regex> = OnceLock::new();
    let re = PEM_KEY.get_or_init(|| {
        Regex::new(
            r"(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\z)",
        )
        .expect("a literal pattern")
    });
    re.replace_all(text, "<private key redacted>").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_keys_are_redacted_wherever_they_appear() {
        let secrets = Secrets::default();
        secrets.add("s3cret");
        secrets.add("s3cret-longer");
        secrets.add("");
        assert_eq!(
            secrets.redact("a s3cret-longer and a s3cret"),
            "a <redacted> and a <redacted>"
        );
        let begin = format!("-----BEGIN {}-----", "PRIVATE KEY");
        let end = format!("-----END {}-----", "PRIVATE KEY");
        let text = format!("before\n{begin}\nMIIB\nAAAA\n{end}\nafter");
        let clean = secrets.redact(&text);
        assert_eq!(clean, "before\n<private key redacted>\nafter");
        let cut = format!("x {begin}\nMIIB");
        assert_eq!(secrets.redact(&cut), "x <private key redacted>");
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert_eq!(secrets.redact(cert), cert);
    }

    #[test]
    fn an_atomic_write_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        assert!(write_atomically(&dir.path().join("no/such/dir/x"), b"x").is_err());
    }
}
