//! Verdicts that must not pass for the wrong reason, end to end: `hil run` on
//! virtual boards with firmware built from the shipped knobs, each case one of
//! the findings of issue 11 (a scenario that passed before and must not now).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::process::Output;

use common::cli::hil_as_ci;
use common::served::ServedBoard;

struct Run {
    out: Output,
    dir: tempfile::TempDir,
}

impl Run {
    fn text(&self) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&self.out.stdout),
            String::from_utf8_lossy(&self.out.stderr)
        )
    }

    fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    /// Every `timeline.jsonl` of the run's scenarios, concatenated.
    fn timelines(&self) -> String {
        let mut all = String::new();
        for run in std::fs::read_dir(self.dir.path().join("runs")).unwrap() {
            let scenarios = run.unwrap().path().join("scenarios");
            for s in std::fs::read_dir(scenarios).unwrap() {
                all.push_str(
                    &std::fs::read_to_string(s.unwrap().path().join("timeline.jsonl")).unwrap(),
                );
            }
        }
        all
    }
}

/// `hil run` of one feature (text) with extra arguments, from the repository root.
fn run(feature: &str, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("case.feature");
    std::fs::write(&path, feature).unwrap();
    let runs = dir.path().join("runs");
    let out = hil_as_ci()
        .arg("run")
        .arg(&path)
        .args(["--runs-dir", runs.to_str().unwrap()])
        .args(args)
        .output()
        .expect("run hil");
    Run { out, dir }
}

/// Finding 1: a broker that refuses the CONNECT (CONNACK 4) is not a connection.
#[test]
fn a_refused_connect_is_not_a_connection() {
    let r = run(
        "Feature: f\n  Scenario: wrong credentials cannot connect\n    Given the board under test\n    And the broker requires username \"hil\" and password \"s3cret\"\n    And the device is provisioned with username \"hil\" and password \"wrong\"\n    When the board boots\n    Then the device connects to the broker within 5 s\n",
        &[],
    );
    let all = r.text();
    assert_eq!(r.code(), Some(1), "{all}");
    assert!(all.contains("CONNACK 4"), "{all}");
    assert!(
        !all.contains("s3cret"),
        "the password never reaches the console: {all}"
    );
}

/// Finding 2: a crash right after connecting fails the scenario, named.
#[test]
fn a_crash_after_connecting_fails_the_scenario_with_its_cause() {
    let r = run(
        "Feature: f\n  Scenario: connects\n    Given the board under test\n    When the board boots\n    Then the device connects to the broker within 20 s\n",
        &["--firmware", "reference+crash=after-connect"],
    );
    let all = r.text();
    assert_eq!(r.code(), Some(1), "{all}");
    assert!(
        all.contains("the board crashed: Exception (28) LoadProhibited"),
        "{all}"
    );
}

/// Finding 3: a board that never starts an application does not "refuse" anything.
#[test]
fn a_board_that_never_tried_is_inconclusive() {
    let r = run(
        "Feature: f\n  Scenario: erased\n    Given the board under test\n    And the board is flashed with \"fixtures/images/erased.bin\"\n    And the broker accepts only TLS 1.3\n    When the board boots\n    Then the TLS handshake does not complete\n",
        &["--settle", "3 s"],
    );
    let all = r.text();
    assert_eq!(r.code(), Some(1), "{all}");
    assert!(all.contains("INC"), "{all}");
    assert!(all.contains("never tried to reach the broker"), "{all}");
}

/// Finding 4: failing once, then retrying with setInsecure(), fails the refusal.
#[test]
fn a_refusal_must_hold_on_the_next_attempt() {
    let r = run(
        "Feature: f\n  Scenario: refused\n    Given the board under test\n    And the broker presents the \"wrong-san\" certificate\n    When the board boots\n    Then the device reports a TLS failure with code 56\n",
        &["--firmware", "reference+trust=insecure"],
    );
    // An insecure firmware never reports 56 at all; the retry case needs the
    // fallback knob (below).
    assert_eq!(r.code(), Some(1), "{}", r.text());
    let fallback = run(
        "Feature: f\n  Scenario: refused\n    Given the board under test\n    And the broker presents the \"wrong-san\" certificate\n    When the board boots\n    Then the device reports a TLS failure with code 56\n",
        &["--firmware", "fallback-insecure"],
    );
    let all = fallback.text();
    assert_eq!(fallback.code(), Some(1), "{all}");
    assert!(all.contains("later attempt"), "{all}");
}

/// Finding 5: "at most N per D" watches from the step, not a window already closed.
#[test]
fn a_rate_window_starts_when_its_step_is_reached() {
    let r = run(
        "Feature: f\n  Scenario: flood after a restart\n    Given the board under test\n    When the board boots\n    Then the device connects to the broker within 20 s\n    When the broker restarts\n    Then the device connects to the broker within 30 s\n    And the device publishes at most 5 messages per 2 s\n",
        &["--firmware", "publish-flood"],
    );
    let all = r.text();
    assert_eq!(r.code(), Some(1), "{all}");
    assert!(all.contains("it made 6 messages"), "{all}");
}

/// Finding 7: the harness publishes only once the broker acknowledged the
/// device's subscription.
#[test]
fn a_command_is_published_after_the_suback() {
    let r = run(
        "Feature: f\n  Scenario: command\n    Given the board under test\n    When the board boots\n    Then the device subscribes to \"hil/commands\" within 20 s\n    When the broker publishes \"led=on\" to \"hil/commands\"\n    Then the serial output contains \"led=on\" within 5 s\n",
        &[],
    );
    assert_eq!(r.code(), Some(0), "{}", r.text());
    let timeline = r.timelines();
    let suback = timeline
        .lines()
        .position(|l| l.contains("\"event\":\"mqtt_suback\""))
        .expect("the broker's SUBACK is on the timeline");
    let command = timeline
        .lines()
        .position(|l| l.contains("\"direction\":\"to_device\"") && l.contains("led=on"))
        .expect("the command reached the device");
    assert!(suback < command, "published before the SUBACK:\n{timeline}");
}

/// Finding 9: a receive buffer too small for a 4 KB record is caught.
#[test]
fn a_receive_buffer_smaller_than_a_command_is_caught() {
    let feature = "Feature: f\n  Scenario: a 4 KB command\n    Given the board under test\n    And the broker ignores the max fragment length extension\n    When the board boots\n    Then the device subscribes to \"hil/commands\" within 20 s\n    When the broker publishes a 4096-byte message to \"hil/commands\"\n    Then the device opens at most 1 connection per 3 s\n    And the serial output never contains \"[tls] error\"\n";
    let small = run(feature, &["--firmware", "reference+rx_buffer=1024"]);
    let all = small.text();
    assert_eq!(small.code(), Some(1), "{all}");
    let reference = run(feature, &[]);
    assert_eq!(reference.code(), Some(0), "{}", reference.text());
}

/// A scenario that ends while the broker is down for its device (a failure
/// right after `When the broker restarts`) does not hand the next scenario on
/// that board a broker that resets its first connections: that made a firmware
/// "refuse" a certificate it never saw, or report BearSSL 31 where 54 was due.
#[test]
fn a_broker_restart_ends_with_its_scenario() {
    let r = run(
        "Feature: f\n  Scenario: fails while the broker is down\n    Given the board under test\n    When the board boots\n    Then the device connects to the broker within 20 s\n    When the broker restarts\n    Then the serial output contains \"never printed\" within 300 ms\n\n  Scenario: the next one on that board\n    Given the board under test\n    When the board boots\n    Then the device opens at most 1 connection per 2 s\n    And the TLS handshake succeeds within 10 s\n",
        &["--board", "virtual:1"],
    );
    let all = r.text();
    assert_eq!(r.code(), Some(1), "{all}");
    assert!(
        all.contains("FAIL f › fails while the broker is down"),
        "{all}"
    );
    // Longest expected first: the restart (3 s) runs before the 2 s window.
    assert!(
        all.find("fails while the broker is down") < all.find("the next one on that board"),
        "{all}"
    );
    assert!(all.contains("ok   f › the next one on that board"), "{all}");
}

// Issue 19: verdicts that hold at a real board's pace. Each test names the
// finding it pins down; where the pace matters it runs on the default virtual
// board and on one at a real board's pace (`--pace hardware`).

/// Both paces of the virtual board.
const PACES: [&str; 2] = ["default", "hardware"];

/// Finding 1: `the board reboots within` after any When step sees a board that
/// keeps crashing, and a scenario that expects a reboot still fails on a crash
/// before the act its window counts from.
#[test]
fn a_reboot_after_any_when_step_is_seen() {
    for pace in PACES {
        let r = run(
            "Feature: f\n  Scenario: crash loop\n    Given the board under test\n    When the board boots\n    When 100 ms pass\n    Then the board reboots within 20 s\n",
            &["--firmware", "reference+crash=after-connect", "--pace", pace],
        );
        assert_eq!(r.code(), Some(0), "{pace}: {}", r.text());
        let early = run(
            "Feature: f\n  Scenario: crash before the window\n    Given the board under test\n    When the board boots\n    Then the device publishes to \"hil/telemetry\" within 20 s\n    When 1 s pass\n    Then the board reboots within 20 s\n",
            &["--firmware", "reference+crash=after-connect", "--pace", pace],
        );
        let all = early.text();
        assert_eq!(early.code(), Some(1), "{pace}: {all}");
        assert!(all.contains("the board crashed"), "{pace}: {all}");
    }
}

/// Finding 2: the window that must cover the firmware's next attempt counts
/// from its first failure (and covers the retry it announced), so a
/// `setInsecure()` fallback on the retry is caught even with a short settle.
#[test]
fn a_fallback_on_the_retry_is_caught_with_a_short_settle_window() {
    let feature = "Feature: f\n  Scenario: refused\n    Given the board under test\n    And the broker presents the \"wrong-san\" certificate\n    When the board boots\n    Then the TLS handshake does not complete\n";
    let r = run(
        feature,
        &["--firmware", "fallback-insecure", "--settle", "1s"],
    );
    let all = r.text();
    assert_eq!(r.code(), Some(1), "{all}");
    assert!(all.contains("later attempt"), "{all}");
    // At a real board's pace with the seed's loop: the first refusal comes
    // about 5 s after the act (boot, Wi-Fi, a 2 s handshake), the insecure
    // retry 5 s after it: a window counted from the act (6 s) was over first.
    let seed = "reference+reconnect=fixed:5s+fallback=insecure";
    let r = run(
        feature,
        &["--firmware", seed, "--settle", "6s", "--pace", "hardware"],
    );
    let all = r.text();
    assert_eq!(r.code(), Some(1), "{all}");
    assert!(all.contains("later attempt"), "{all}");
}

/// Finding 5: a publish waits for this device's subscription, and fails when
/// none comes instead of publishing to nobody.
#[test]
fn a_publish_nobody_subscribed_to_fails_the_step() {
    let r = run(
        "Feature: f\n  Scenario: wrong topic\n    Given the board under test\n    When the board boots\n    When the broker publishes \"led=on\" to \"hil/elsewhere\"\n    Then the serial output contains \"led=on\" within 5 s\n",
        &["--settle", "4s"],
    );
    let all = r.text();
    assert_eq!(r.code(), Some(1), "{all}");
    assert!(
        all.contains("never subscribed to a topic covering"),
        "{all}"
    );
    // Right after `When the board boots` a real board is seconds from its
    // SUBSCRIBE: the command waits for it and arrives.
    let r = run(
        "Feature: f\n  Scenario: command at once\n    Given the board under test\n    When the board boots\n    When the broker publishes \"led=on\" to \"hil/commands\"\n    Then the serial output contains \"led=on\" within 5 s\n",
        &["--pace", "hardware"],
    );
    assert_eq!(r.code(), Some(0), "{}", r.text());
}

/// Finding 6: nothing seen is not a pass; a scenario without a Then step and a
/// rate over no time are refused when the features are loaded.
#[test]
fn checks_that_saw_nothing_are_inconclusive_and_empty_scenarios_are_refused() {
    let r = run(
        "Feature: f\n  Scenario: erased\n    Given the board under test\n    And the board is flashed with \"fixtures/images/erased.bin\"\n    When the board boots\n    Then the device publishes at most 5 messages per 2 s\n",
        &["--settle", "2s"],
    );
    let all = r.text();
    assert_eq!(r.code(), Some(1), "{all}");
    assert!(all.contains("INC"), "{all}");
    assert!(all.contains("never published anything"), "{all}");

    let empty = run(
        "Feature: f\n  Scenario: asserts nothing\n    Given the board under test\n    When the board boots\n",
        &[],
    );
    let all = empty.text();
    assert_eq!(empty.code(), Some(2), "{all}");
    assert!(all.contains("has no Then step"), "{all}");
    assert!(all.contains("case.feature:2"), "{all}");

    let zero = run(
        "Feature: f\n  Scenario: no window\n    Given the board under test\n    When the board boots\n    Then the device publishes at most 1 message per 0 s\n",
        &[],
    );
    let all = zero.text();
    assert_eq!(zero.code(), Some(2), "{all}");
    assert!(all.contains("empty window"), "{all}");
}

/// Finding 7: a scenario's broker publish reaches its own device only, though
/// every board subscribes to the same topic on the same broker.
#[test]
fn a_command_reaches_only_its_scenarios_device() {
    for pace in PACES {
        let r = run(
        "Feature: f\n  Scenario: sends a command\n    Given the board under test\n    When the board boots\n    Then the device subscribes to \"hil/commands\" within 20 s\n    When 1 s pass\n    When the broker publishes \"for-one-board\" to \"hil/commands\"\n    Then the serial output contains \"for-one-board\" within 5 s\n\n  Scenario: overhears nothing\n    Given the board under test\n    When the board boots\n    Then the device subscribes to \"hil/commands\" within 20 s\n    When 4 s pass\n    Then the serial output never contains \"for-one-board\"\n",
        &["--board", "virtual:2", "--pace", pace],
    );
        assert_eq!(r.code(), Some(0), "{pace}: {}", r.text());
        // Both devices were subscribed when the command went out: the lab, not
        // luck, kept it from the second.
        let timeline = r.timelines();
        let delivered = timeline
            .lines()
            .filter(|l| l.contains("\"direction\":\"to_device\"") && l.contains("for-one-board"))
            .count();
        assert_eq!(delivered, 1, "{pace}: {timeline}");
    }
}

/// Finding 8: what a publish carries is judged.
#[test]
fn the_retain_flag_and_qos_of_publishes_are_judged() {
    let ok = run(
        "Feature: f\n  Scenario: flags\n    Given the board under test\n    When the board boots\n    Then the device publishes to \"hil/telemetry\" within 20 s\n    And the device's publishes to \"hil/telemetry\" are not retained\n    And the device's publishes to \"hil/telemetry\" use QoS 0\n",
        &[],
    );
    assert_eq!(ok.code(), Some(0), "{}", ok.text());
    let retained = run(
        "Feature: f\n  Scenario: flags\n    Given the board under test\n    When the board boots\n    Then the device's publishes to \"hil/telemetry\" are retained\n",
        &[],
    );
    let all = retained.text();
    assert_eq!(retained.code(), Some(1), "{all}");
    assert!(all.contains("not retained"), "{all}");
}

/// Finding 3: a reboot without a dump shows in the bytes on any firmware and
/// any log profile. A brown-out resets the chip the hard way: the ROM's banner
/// comes at 74880 baud and reads as garbage at 115200, and a firmware speaking
/// the seed's free-form lines (no boot line its profile knows) used to pass
/// `the board does not reboot` through it. At both paces.
#[test]
fn a_brown_out_is_a_reboot_whatever_the_log_profile() {
    for (pace, index, lab) in [
        ("default", 21u8, "127.0.0.71"),
        ("hardware", 22, "127.0.0.72"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let board = ServedBoard::start(
            dir.path(),
            index,
            &["--fault", "brown-out-after:12s", "--pace", pace],
        );
        let feature = dir.path().join("brownout.feature");
        std::fs::write(
            &feature,
            "Feature: f\n  Scenario: stays up\n    Given the board under test\n    When the board boots\n    Then the device connects to the broker within 20 s\n    And the board does not reboot\n    When 14 s pass\n",
        )
        .unwrap();
        let device = format!("127.0.1.{index}");
        let out = hil_as_ci()
            .arg("run")
            .arg(&feature)
            .args([
                "--board",
                &board.url,
                "--device-ip",
                &device,
                "--lab-bind",
                lab,
            ])
            .args(["--firmware", "seed-style-logs", "--pace", pace])
            .args(["--runs-dir", dir.path().join("runs").to_str().unwrap()])
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{pace}: {all}");
        assert!(all.contains("the board crashed"), "{pace}: {all}");
    }
}
