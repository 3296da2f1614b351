//! `docs/your-firmware.md`, walked as a reader would: every `sh` block marked
//! `<!-- tested -->` (or `<!-- tested: exit N -->`) runs, in order, in one
//! temporary directory that looks like a checkout (features/ and fixtures/ are
//! the repository's), with this build's `hil` first on PATH, and must exit as
//! the marker says. Every other `sh` block must say why it is not run
//! (`<!-- not run: ... -->`), so a new command cannot slip in untested. After
//! the walk, the artifacts are checked for what the guide promises: the level-2
//! run used the exported root and the chosen name and provisioned nothing, the
//! level-3 run provisioned, the root's key stayed private.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One `sh` block of the guide.
#[derive(Debug)]
struct Block {
    /// 1-based line of its opening fence.
    line: usize,
    /// The commands.
    text: String,
    /// `Some(code)` when it runs, `None` when the guide says it is not run.
    exit: Option<i32>,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn guide() -> String {
    std::fs::read_to_string(repo().join("docs/your-firmware.md")).expect("docs/your-firmware.md")
}

/// Every `sh` block with the marker on the line before it (blank lines
/// between are allowed). Panics, naming the line, on a block without one.
fn blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() != "```sh" {
            i += 1;
            continue;
        }
        let open = i;
        let marker = lines[..open]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim())
            .unwrap_or_default();
        let exit = if marker == "<!-- tested -->" {
            Some(0)
        } else if let Some(rest) = marker
            .strip_prefix("<!-- tested: exit ")
            .and_then(|r| r.strip_suffix(" -->"))
        {
            Some(
                rest.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("line {}: bad exit code in `{marker}`", open + 1)),
            )
        } else if marker.starts_with("<!-- not run: ") && marker.ends_with("-->") {
            None
        } else {
            panic!(
                "docs/your-firmware.md:{}: a sh block needs `<!-- tested -->`, \
                 `<!-- tested: exit N -->` or `<!-- not run: why -->` before it (found `{marker}`)",
                open + 1
            );
        };
        let close = (open + 1..lines.len())
            .find(|&j| lines[j].trim_end() == "```")
            .unwrap_or_else(|| panic!("line {}: the block is never closed", open + 1));
        out.push(Block {
            line: open + 1,
            text: lines[open + 1..close].join("\n") + "\n",
            exit,
        });
        i = close + 1;
    }
    out
}

/// Runs one block with bash (`-e`, `pipefail`), its output in files, killed
/// with its children at `limit`.
fn run(block: &Block, dir: &Path, limit: Duration) -> (Option<i32>, String) {
    let hil = Path::new(env!("CARGO_BIN_EXE_hil"));
    let mut path = std::ffi::OsString::from(hil.parent().unwrap());
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let log = dir.join(format!(".block-{}.log", block.line));
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new("bash");
    cmd.args(["-e", "-o", "pipefail", "-c", &block.text])
        .current_dir(dir)
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir)
        .env("TMPDIR", std::env::temp_dir())
        .env("CI", "true")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().expect("start bash");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            // The whole group: bash and the hil it started.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    (status.and_then(|s| s.code()), output)
}

/// The only directory under `dir` (a run directory under a --runs-dir).
fn only_run(dir: &Path) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.into_iter().next().unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

fn scenario_dirs(run: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(run.join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_command_block_is_either_tested_or_says_why_not() {
    let blocks = blocks(&guide());
    let tested = blocks.iter().filter(|b| b.exit.is_some()).count();
    assert!(tested >= 6, "only {tested} tested blocks: {blocks:#?}");
    assert!(
        blocks.iter().any(|b| b.exit.is_some_and(|c| c != 0)),
        "the guide shows no run that fails"
    );
    // The three levels are walked, each with a run of its own.
    for runs in ["runs/level-1", "runs/level-2", "runs/level-3"] {
        assert!(
            blocks
                .iter()
                .any(|b| b.exit.is_some() && b.text.contains(&format!("--runs-dir {runs}"))),
            "no tested run writes {runs}"
        );
    }
}

#[test]
fn the_guide_runs_as_written() {
    let text = guide();
    let dir = tempfile::tempdir().unwrap();
    for name in ["features", "fixtures"] {
        std::os::unix::fs::symlink(repo().join(name), dir.path().join(name)).unwrap();
    }
    for block in blocks(&text).iter().filter(|b| b.exit.is_some()) {
        let began = Instant::now();
        let (code, output) = run(block, dir.path(), Duration::from_secs(400));
        let tail: Vec<&str> = output.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        assert_eq!(
            code,
            block.exit,
            "docs/your-firmware.md:{}: the block exited {code:?}, the guide says {:?}\n--- block ---\n{}--- output (last lines) ---\n{}",
            block.line,
            block.exit,
            block.text,
            tail.join("\n")
        );
        assert!(
            !output.contains("PRIVATE KEY"),
            "docs/your-firmware.md:{}: a private key was printed",
            block.line
        );
        eprintln!(
            "docs/your-firmware.md:{} ran in {:.1} s",
            block.line,
            began.elapsed().as_secs_f64()
        );
    }

    // The exported root's key stayed private.
    let key = dir.path().join("lab-ca/lab-root-key.pem");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", key.display());
    }

    // Level 2 used that root and the chosen name, and provisioned nothing.
    let root = hil::pki::RootCa::load(&dir.path().join("lab-ca/lab-root.pem"), &key).unwrap();
    let fingerprint: Vec<String> = openssl::sha::sha256(root.certificate().der())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let level2 = only_run(&dir.path().join("runs/level-2"));
    let lab = json(&level2.join("lab.json"));
    assert_eq!(lab["broker_name"], "mqtt.team.test", "{lab}");
    assert_eq!(lab["root"]["sha256"], fingerprint.join(":"), "{lab}");
    assert!(
        lab["root"]["subject"]
            .as_str()
            .is_some_and(|s| s.contains("CN=HIL Root")),
        "{lab}"
    );
    let scenarios = scenario_dirs(&level2);
    assert_eq!(scenarios.len(), 4 + 6, "{scenarios:?}");
    for scenario in &scenarios {
        let manifest = json(&scenario.join("lab.json"));
        assert_eq!(manifest["provisioned"], false, "{}", scenario.display());
        let transcript = std::fs::read_to_string(scenario.join("transcript.txt")).unwrap();
        assert!(
            !transcript.contains("PROV "),
            "{}: an unprovisioned run sent a PROV line",
            scenario.display()
        );
    }

    // Level 3 provisioned every scenario, and the line never shows.
    let level3 = only_run(&dir.path().join("runs/level-3"));
    for scenario in scenario_dirs(&level3) {
        let transcript = std::fs::read_to_string(scenario.join("transcript.txt")).unwrap();
        assert!(
            transcript.contains("PROV <redacted"),
            "{}: not provisioned",
            scenario.display()
        );
        assert!(!transcript.contains("s3cret"), "{}", scenario.display());
    }
}
