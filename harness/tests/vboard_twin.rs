//! The whole device path end to end: a virtual firmware image flashed with
//! espflash onto the virtual board, reset through RFC 2217, the ROM's banner and
//! image check, then the firmware twin booting from it, provisioned over the
//! serial line and connecting to the lab.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hil::flash::{self, FlashInput};
use hil::lab::{Lab, LabConfig};
use hil::pki::{Catalogue, ProfileId};
use hil::provisioning::{self, ProvisionOptions};
use hil::serial::{boot_and_watch, BootPlan, PortSpec};
use hil::vboard::{BoardIndex, BoardOptions, VirtualBoard};
use hil::vfirmware::{self, TwinNetwork, TwinRunner};
use hil_twin::descriptor::Variant;

/// Resets the board and watches it boot, answering its provisioning prompt.
fn boot(spec: &PortSpec, prov: &str, until: impl Fn(&str) -> bool) -> Vec<String> {
    let plan = BootPlan {
        provisioning: Some(prov.to_owned()),
        timeout: Duration::from_secs(30),
        timeline: None,
        device: None,
    };
    boot_and_watch(spec, &plan, &until).expect("the board's console")
}

/// Flashes `image` with espflash, resets the board and watches it boot (provisioned
/// for the lab's `valid` profile) until `until` matches a line.
async fn flash_and_boot(
    lab: &Lab,
    catalogue: &Catalogue,
    board: &VirtualBoard,
    image: std::path::PathBuf,
    until: impl Fn(&str) -> bool + Send + 'static,
) -> Vec<String> {
    let valid = catalogue.profile(ProfileId::Valid).unwrap();
    let settings =
        provisioning::settings(&lab.addrs(), catalogue, valid, &ProvisionOptions::default())
            .unwrap();
    let prov = provisioning::line(&settings);
    let spec: PortSpec = board.url().parse().unwrap();
    tokio::task::spawn_blocking(move || {
        let input = FlashInput::from_file(&image, None).unwrap();
        flash::flash(&spec, &input, &mut |_| {}).expect("espflash writes the image");
        boot(&spec, &prov, until)
    })
    .await
    .unwrap()
}

async fn setup(k: u32, dir: &Path) -> (Lab, Catalogue, VirtualBoard) {
    let at = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    let catalogue = Catalogue::generate(at).unwrap();
    let valid = Arc::new(catalogue.profile(ProfileId::Valid).unwrap().clone());
    let lab = Lab::start(LabConfig::new(valid, dir.join("lab")))
        .await
        .unwrap();
    let runner = TwinRunner::new(TwinNetwork::default());
    let options = BoardOptions::new(BoardIndex::new(k).unwrap(), dir.join("board.flash"))
        .timeline(lab.timeline().clone())
        .firmware(Arc::new(runner));
    let board = VirtualBoard::start(options).await.unwrap();
    (lab, catalogue, board)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flashed_reference_image_boots_into_the_twin_which_connects_to_the_lab() {
    let dir = tempfile::tempdir().unwrap();
    let (lab, catalogue, board) = setup(7, dir.path()).await;
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/images/reference.bin");
    let lines = flash_and_boot(&lab, &catalogue, &board, image, |l| {
        l.starts_with("[mqtt] connected")
    })
    .await;
    let text = lines.join("\n");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("[boot] fw=hil-reference version=1.0.0 reset=External-System")),
        "{text}"
    );
    assert!(lines.iter().any(|l| l == "[prov] ok"), "{text}");
    assert!(
        lines.iter().any(|l| l == "[wifi] connected ip=127.0.1.7"),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("[tls] ok version=TLS1.2")),
        "{text}"
    );
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("[mqtt] connected")),
        "{text}"
    );
    // The lab saw the board's own address.
    let from_board = lab.timeline().snapshot().iter().any(|e| {
        e.device == Some("127.0.1.7".parse().unwrap())
            && matches!(e.kind, hil::timeline::EventKind::MqttConnect { .. })
    });
    assert!(from_board, "the lab never saw a CONNECT from 127.0.1.7");
    drop(board);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_twin_restarts_the_board_which_boots_again() {
    let dir = tempfile::tempdir().unwrap();
    let (lab, catalogue, board) = setup(8, dir.path()).await;
    let descriptor = Variant::CrashAfterConnect.descriptor();
    let image = dir.path().join("crash.bin");
    std::fs::write(&image, vfirmware::build(&descriptor).to_bytes()).unwrap();
    let lines = flash_and_boot(&lab, &catalogue, &board, image, |l| {
        l.contains("reset=Exception")
    })
    .await;
    let text = lines.join("\n");
    // The postmortem dump, whole, before the reboot.
    let cut = hil_twin::postmortem::CUT_HERE;
    let first = lines.iter().position(|l| l == cut).expect("a dump");
    let last = lines.iter().rposition(|l| l == cut).expect("a dump");
    assert!(first < last, "{text}");
    assert!(
        lines[first..last].iter().any(|l| l == "Exception (28):")
            && lines[first..last].iter().any(|l| l == "<<<stack<<<"),
        "{text}"
    );
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("[boot] ") && l.ends_with("reset=Exception")),
        "{text}"
    );
    drop(board);
    lab.shutdown().await;
}

#[test]
fn the_committed_images_are_what_the_builder_makes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/images");
    let reference = std::fs::read(dir.join("reference.bin")).unwrap();
    assert_eq!(
        reference,
        vfirmware::build(&Variant::Reference.descriptor()).to_bytes(),
        "fixtures/images/reference.bin is stale: see fixtures/images/README.md"
    );
    let corrupt = std::fs::read(dir.join("corrupt.bin")).unwrap();
    let parsed = hil::image::ImageV1::parse(&corrupt).unwrap();
    assert!(
        !parsed.checksum_ok(),
        "corrupt.bin must fail the ROM's checksum"
    );
    assert_eq!(corrupt.len(), reference.len());
    let erased = std::fs::read(dir.join("erased.bin")).unwrap();
    assert!(erased.iter().all(|b| *b == 0xff));
}
