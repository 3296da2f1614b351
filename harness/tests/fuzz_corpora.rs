//! Replays every committed fuzz corpus (`harness/fuzz/corpora/<target>/`) through
//! its target in `hil::fuzz`, so an input that once broke a parser keeps being
//! tried. Runs in seconds with no fuzzing engine; `ci/fuzz` grows the corpora.

#![cfg(feature = "virtual")] // the targets live in the full build

use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;

use hil::fuzz::{self, corpus_dir};

/// The files of `dir` that `run` panics on, and how many files there were.
fn replay(dir: &std::path::Path, run: fn(&[u8])) -> (Vec<String>, usize) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    let mut failed = Vec::new();
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if panic::catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    (failed, files.len())
}

fn replay_target(name: &str) {
    let target = fuzz::target(name).unwrap_or_else(|| panic!("no fuzz target {name}"));
    let (failed, count) = replay(&corpus_dir(name), target.run);
    assert!(count > 0, "the {name} corpus is empty");
    assert!(
        failed.is_empty(),
        "{} of {count} {name} inputs fail (the panic messages are above):\n{}",
        failed.len(),
        failed.join("\n")
    );
}

macro_rules! corpora {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay_target(stringify!($name));
            }
        )*

        #[test]
        fn every_target_is_replayed() {
            let replayed = [$(stringify!($name)),*];
            let targets: Vec<&str> = fuzz::TARGETS.iter().map(|t| t.name).collect();
            assert_eq!(replayed.as_slice(), targets.as_slice());
        }
    };
}

corpora!(feature, logprofile, telnet, slip, loader, hello, mqtt, image, prov, crash);

#[test]
fn a_target_that_panics_is_reported_with_the_input() {
    let dir = corpus_dir("slip");
    let (failed, count) = replay(&dir, |data| assert!(data.len() > usize::MAX / 2));
    assert!(count > 0);
    assert_eq!(failed.len(), count);
    assert!(failed[0].contains("corpora/slip/"), "{}", failed[0]);
}
