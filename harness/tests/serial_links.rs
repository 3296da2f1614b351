//! The console session over real links, no board needed: provisioning across a
//! pseudo-terminal pair (the kernel's tty layer carries the bytes, as a USB
//! serial adapter's would), and a session that survives its transport dropping
//! and coming back (an RFC 2217 connection cut, as when ser2net restarts).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use hil::serial::session::{ConsoleSession, SessionOptions};
use hil::serial::PortSpec;
use hil::timeline::{BoardEvent, EventKind, HarnessEvent, Timeline};
use hil::vboard::{BoardIndex, BoardOptions, VirtualBoard};
use hil::vfirmware::{TwinNetwork, TwinRunner};
use hil_twin::descriptor::Variant;
use hil_twin::{BoardEnv, Console};
use serialport::SerialPort;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

fn prompt() -> hil::serial::session::PromptTest {
    Arc::new(|line: &str| line.starts_with("[prov] ready"))
}

fn options(timeline: &Timeline, provisioning: Option<String>) -> SessionOptions {
    SessionOptions {
        timeline: timeline.clone(),
        device: None,
        provisioning,
        is_prompt: prompt(),
    }
}

async fn line_seen(
    timeline: &Timeline,
    from: hil::timeline::Cursor,
    text: &str,
    within: Duration,
) -> bool {
    timeline
        .wait_for(
            from,
            within,
            |e| matches!(&e.kind, EventKind::SerialLine { line } if line.contains(text)),
        )
        .await
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_crosses_a_pty_pair() {
    let (master, slave) = serialport::TTYPort::pair().expect("a pseudo-terminal pair");
    let slave_path = slave.name().expect("the slave's device path");
    // The harness opens the device by its path, as it opens /dev/ttyUSB0.
    drop(slave);

    // The twin runs on the master side: its UART is the pty.
    let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let (in_tx, in_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let mut writer = master.try_clone_native().unwrap();
    let mut reader = master;
    reader.set_timeout(Duration::from_millis(50)).unwrap();
    std::thread::spawn(move || {
        while let Some(bytes) = out_rx.blocking_recv() {
            if writer.write_all(&bytes).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(n) if n > 0 => {
                    if in_tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                // The slave is not open yet (EIO): wait for the harness.
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });

    let timeline = Timeline::new();
    let spec = PortSpec::Path(slave_path.clone().into());
    let port = spec.open(74_880).expect("open the pty by its path");
    let mut settings = hil_twin::provision::compiled_in();
    settings.wifi.ssid = "hil-pty".into();
    settings.wifi.password = "pty-secret-passphrase".into();
    let line = hil::provisioning::line(&settings);
    let session = ConsoleSession::start(spec, port, options(&timeline, Some(line)));

    let twin = tokio::spawn(async move {
        let env = BoardEnv {
            ip: Ipv4Addr::new(127, 0, 1, 77),
            mac: [0x5c, 0xcf, 0x7f, 0, 0, 77],
            access_point: None,
            dns: None,
            ntp: None,
            reset_reason: "External System".into(),
            timings: hil_twin::Timings::instant(),
        };
        let mut console = Console {
            output: out_tx,
            input: in_rx,
        };
        hil_twin::run(&Variant::Reference.descriptor(), &env, &mut console).await
    });

    let start = timeline.start();
    assert!(
        line_seen(
            &timeline,
            start,
            "[wifi] connecting ssid=hil-pty",
            Duration::from_secs(10)
        )
        .await,
        "the provisioned settings reached the firmware: {:#?}",
        timeline.snapshot()
    );
    assert!(line_seen(&timeline, start, "[prov] ok", Duration::from_secs(1)).await);
    let events = timeline.snapshot();
    assert!(
        events.iter().any(|e| matches!(
            &e.kind,
            EventKind::Harness { what: HarnessEvent::ProvisioningSent { line } }
                if line.starts_with("PROV <redacted")
        )),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            &e.kind,
            EventKind::Board {
                what: BoardEvent::ResetImpossible { .. }
            }
        )),
        "a pty has no modem lines and the transcript says so: {events:?}"
    );
    let json = serde_json::to_string(&events).unwrap();
    assert!(
        !json.contains("pty-secret-passphrase"),
        "the Wi-Fi password never reaches the timeline"
    );
    session.stop().await.unwrap();
    twin.abort();
}

/// A TCP relay whose connections can be cut while it keeps accepting.
async fn relay(target: std::net::SocketAddr) -> (std::net::SocketAddr, watch::Sender<u32>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (cut, _) = watch::channel(0u32);
    let cuts = cut.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let mut watcher = cuts.subscribe();
            watcher.borrow_and_update();
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(target).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    _ = watcher.changed() => {}
                }
            });
        }
    });
    (addr, cut)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_reopens_its_link_when_the_transport_returns() {
    let dir = tempfile::tempdir().unwrap();
    let timeline = Timeline::new();
    let board = VirtualBoard::start(
        BoardOptions::new(BoardIndex::new(78).unwrap(), dir.path().join("flash"))
            .timeline(timeline.clone())
            .firmware(Arc::new(TwinRunner::new(TwinNetwork::default()))),
    )
    .await
    .unwrap();
    let image = hil::vfirmware::build(&Variant::Reference.descriptor()).to_bytes();
    let direct: PortSpec = board.url().parse().unwrap();
    tokio::task::spawn_blocking(move || {
        hil::flash::flash(
            &direct,
            &hil::flash::FlashInput::Bin {
                data: image,
                offset: 0,
            },
            &mut |_| {},
        )
    })
    .await
    .unwrap()
    .unwrap();

    let (addr, cut) = relay(board.addr()).await;
    let spec: PortSpec = format!("rfc2217://{addr}").parse().unwrap();
    let open_spec = spec.clone();
    let port = tokio::task::spawn_blocking(move || hil::serial::session::open_held(&open_spec))
        .await
        .unwrap()
        .unwrap();
    let session = ConsoleSession::start(spec, port, options(&timeline, None));
    let start = timeline.start();
    assert!(line_seen(&timeline, start, "[boot] fw=", Duration::from_secs(10)).await);

    let before_cut = timeline.cursor();
    cut.send_replace(1);
    let reopened = timeline
        .wait_for(before_cut, Duration::from_secs(10), |e| {
            matches!(
                &e.kind,
                EventKind::Board {
                    what: BoardEvent::SerialReopened { .. }
                }
            )
        })
        .await
        .expect("the session reopens the link");
    let gap = timeline.since(before_cut).into_iter().any(|e| {
        matches!(
            &e.kind,
            EventKind::Board {
                what: BoardEvent::SerialGap { .. }
            }
        )
    });
    assert!(gap, "the gap is on the timeline");
    // The firmware kept running while the link was down; its lines keep coming
    // through the reopened link.
    let after = reopened.cursor_after();
    let more = timeline
        .wait_for(after, Duration::from_secs(10), |e| {
            matches!(e.kind, EventKind::SerialLine { .. })
        })
        .await;
    assert!(
        more.is_some(),
        "lines keep coming after the reopen: {:#?}",
        timeline.since(before_cut)
    );
    session.stop().await.unwrap();
}
