//! `hil pki export` checked by the compilers and the TLS library a firmware
//! build uses: the BearSSL trust-anchor code compiles against the system's
//! bearssl.h, and BearSSL, given exactly those anchors, validates the catalogue
//! built on the exported root (and refuses a catalogue built on another); the
//! Arduino header is valid C++ and carries the PEM byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use common::cli::{hil, lossy};
use hil::pki::{Catalogue, CatalogueOptions, Profile, ProfileId, RootCa};
use time::OffsetDateTime;

/// The lab clock: now, so a CA that openssl makes now is valid at it.
fn lab_clock() -> OffsetDateTime {
    static AT: std::sync::OnceLock<OffsetDateTime> = std::sync::OnceLock::new();
    *AT.get_or_init(|| {
        let now = OffsetDateTime::now_utc();
        now.replace_nanosecond(0).unwrap()
    })
}

fn at_text() -> String {
    lab_clock()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("start the command");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        lossy(&out.stdout),
        lossy(&out.stderr)
    );
    out
}

/// `hil pki export --out DIR` in a fresh directory.
fn export(extra: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let at = at_text();
    let mut args = vec!["pki", "export", "--out", "exp", "--at", &at];
    args.extend_from_slice(extra);
    let out = hil(&args, dir.path());
    assert!(out.status.success(), "{}", lossy(&out.stderr));
    dir
}

/// The chain checker of tests/support, compiled with the exported anchors.
fn checker(ta_header: &Path, work: &Path) -> PathBuf {
    common::require("gcc");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/bearssl_chain.c");
    let exe = work.join("bearssl_chain");
    run_ok(
        Command::new("gcc")
            .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-include"])
            .arg(ta_header)
            .arg(&source)
            .arg("-o")
            .arg(&exe)
            .arg("-lbearssl"),
    );
    exe
}

/// BearSSL's verdict on `profile`'s chain as served, for `name` at the lab clock.
fn verdict(checker: &Path, profile: &Profile, name: &str, work: &Path) -> u32 {
    let dir = work.join(format!("chain-{}", profile.id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(checker);
    cmd.arg(name).arg(lab_clock().unix_timestamp().to_string());
    for (i, cert) in profile.broker_chain().iter().enumerate() {
        let path = dir.join(format!("{i}.der"));
        std::fs::write(&path, cert.der()).unwrap();
        cmd.arg(path);
    }
    let out = run_ok(&mut cmd);
    lossy(&out.stdout).trim().parse().unwrap()
}

fn catalogue_on(root: Arc<RootCa>, name: Option<&str>) -> Catalogue {
    let mut options = CatalogueOptions::default().with_root(root);
    if let Some(name) = name {
        options = options.with_broker_name(name.parse().unwrap());
    }
    Catalogue::generate_with(lab_clock(), &options).unwrap()
}

#[test]
fn bearssl_with_exactly_the_exported_anchors_validates_the_catalogue_on_that_root() {
    let dir = export(&[]);
    let exp = dir.path().join("exp");
    let checker = checker(&exp.join("hil_lab_root_ta.h"), dir.path());
    let root =
        Arc::new(RootCa::load(&exp.join("lab-root.pem"), &exp.join("lab-root-key.pem")).unwrap());
    let catalogue = catalogue_on(root, None);
    let host = "broker.hil.test";
    for (id, code) in [
        (ProfileId::Valid, 0),
        (ProfileId::FullChain, 0),
        (ProfileId::NewIntermediate, 0),
        (ProfileId::Ecdsa, 0),
        (ProfileId::WrongSan, 56),
        (ProfileId::Expired, 54),
        (ProfileId::UntrustedRoot, 62),
        (ProfileId::MissingIntermediate, 62),
    ] {
        let profile = catalogue.profile(id).unwrap();
        assert_eq!(verdict(&checker, profile, host, dir.path()), code, "{id}");
    }

    // The anchors are that root and no other "HIL Root": a catalogue generated
    // on a fresh root of the same name is refused.
    let other = Catalogue::generate(lab_clock()).unwrap();
    let valid = other.profile(ProfileId::Valid).unwrap();
    assert_eq!(verdict(&checker, valid, host, dir.path()), 62);
}

#[test]
fn the_arduino_header_is_valid_cpp_and_holds_the_pem_byte_for_byte() {
    common::require("g++");
    let dir = export(&[]);
    let exp = dir.path().join("exp");
    let header = exp.join("hil_lab_root.h");
    // As the ESP8266 core would see it: PROGMEM from <pgmspace.h>, included twice.
    let stub = dir.path().join("stub");
    std::fs::create_dir_all(&stub).unwrap();
    std::fs::write(
        stub.join("pgmspace.h"),
        "#pragma once\n#define PROGMEM __attribute__((section(\".irom.text\")))\n",
    )
    .unwrap();
    let program = dir.path().join("use_header.cpp");
    std::fs::write(
        &program,
        r#"#include <cstdio>
namespace BearSSL {
class X509List {
 public:
  explicit X509List(const char *pem) : pem_(pem) {}
  const char *pem() const { return pem_; }
 private:
  const char *pem_;
};
}  // namespace BearSSL
#include "hil_lab_root.h"
#include "hil_lab_root.h"
BearSSL::X509List labRoot(HIL_LAB_ROOT_PEM);
int main() { std::fputs(labRoot.pem(), stdout); return 0; }
"#,
    )
    .unwrap();
    let gxx = |extra: &[&str]| {
        let mut cmd = Command::new("g++");
        cmd.args(["-std=gnu++17", "-Wall", "-Wextra", "-Werror"])
            .args(extra)
            .arg("-I")
            .arg(&exp)
            .arg(&program);
        cmd
    };
    run_ok(&mut gxx(&[
        "-fsyntax-only",
        "-DARDUINO",
        "-I",
        stub.to_str().unwrap(),
    ]));
    let exe = dir.path().join("use_header");
    run_ok(&mut gxx(&["-o", exe.to_str().unwrap()]));
    let printed = run_ok(&mut Command::new(&exe)).stdout;
    let pem = std::fs::read(exp.join("lab-root.pem")).unwrap();
    assert_eq!(lossy(&printed), lossy(&pem));
    assert!(header.is_file());
}

#[test]
fn a_bad_symbol_is_refused_and_a_good_one_names_the_string() {
    let dir = tempfile::tempdir().unwrap();
    let out = hil(
        &["pki", "export", "--out", "x", "--symbol", "2nd-root"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        lossy(&out.stderr).contains("hil::pki::symbol"),
        "{}",
        lossy(&out.stderr)
    );
    assert!(
        !dir.path().join("x").exists(),
        "nothing written on bad input"
    );

    let dir = export(&["--symbol", "TEAM_TEST_ROOT"]);
    let header = std::fs::read_to_string(dir.path().join("exp/hil_lab_root.h")).unwrap();
    assert!(header.contains(
        "static const char TEAM_TEST_ROOT[] PROGMEM = R\"PEM(-----BEGIN CERTIFICATE-----\n"
    ));
}

#[test]
fn exporting_again_keeps_the_root_and_its_key_stays_private() {
    let dir = export(&[]);
    let exp = dir.path().join("exp");
    let first = std::fs::read(exp.join("lab-root.pem")).unwrap();
    let out = hil(&["pki", "export", "--out", "exp"], dir.path());
    assert!(out.status.success(), "{}", lossy(&out.stderr));
    assert_eq!(std::fs::read(exp.join("lab-root.pem")).unwrap(), first);
    assert!(lossy(&out.stderr).contains("the root kept here"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(exp.join("lab-root-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The key's path may be printed, its contents never.
    let printed = format!("{}{}", lossy(&out.stdout), lossy(&out.stderr));
    assert!(!printed.contains("PRIVATE KEY"), "{printed}");
}

#[test]
fn a_team_ec_ca_exports_as_an_ec_anchor_that_judges_its_own_broker_name() {
    common::require("openssl");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("ca.pem"), dir.path().join("ca-key.pem"));
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args([
                "-nodes",
                "-days",
                "3650",
                "-subj",
                "/O=Team/CN=Team EC Test CA",
            ])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    let out = hil(
        &[
            "pki",
            "export",
            "--out",
            "exp",
            "--ca-cert",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", lossy(&out.stderr));
    let exp = dir.path().join("exp");
    assert!(
        !exp.join("lab-root-key.pem").exists(),
        "a team's key is never copied"
    );
    let ta = std::fs::read_to_string(exp.join("hil_lab_root_ta.h")).unwrap();
    assert!(
        ta.contains("BR_KEYTYPE_EC") && ta.contains("BR_EC_secp256r1"),
        "{ta}"
    );

    let checker = checker(&exp.join("hil_lab_root_ta.h"), dir.path());
    let root = Arc::new(RootCa::load(&cert, &key).unwrap());
    let name = "mqtt.example.com";
    let catalogue = catalogue_on(root, Some(name));
    for (id, code) in [
        (ProfileId::Valid, 0),
        (ProfileId::RenewedLeaf, 0),
        (ProfileId::WrongSan, 56),
        (ProfileId::WildcardMismatch, 56),
        (ProfileId::CnOnly, 0),
        (ProfileId::NotYetValid, 54),
    ] {
        let profile = catalogue.profile(id).unwrap();
        assert_eq!(profile.host(), name, "{id}");
        assert_eq!(verdict(&checker, profile, name, dir.path()), code, "{id}");
    }
    // The lab's own name no longer fits the valid leaf.
    let valid = catalogue.profile(ProfileId::Valid).unwrap();
    assert_eq!(verdict(&checker, valid, "broker.hil.test", dir.path()), 56);
}
