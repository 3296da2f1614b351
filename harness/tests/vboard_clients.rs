//! One client at a time, as a real serial port, without being held forever: the
//! next client is told who holds the board, and a TCP client that never says a
//! word is let go.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::time::{Duration, Instant};

use hil::timeline::{BoardEvent, EventKind, Timeline};
use hil::vboard::{BoardIndex, BoardOptions, VirtualBoard};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn a_second_client_is_told_who_holds_the_board_and_a_silent_one_is_let_go() {
    let timeline = Timeline::new();
    let options = BoardOptions::new(BoardIndex::new(7).unwrap(), "unused.flash")
        .flash_in_memory()
        .timeline(timeline.clone());
    let board = VirtualBoard::start(options).await.unwrap();
    let addr = board.addr();

    let holder = TcpStream::connect(addr).await.unwrap();
    let held_by = holder.local_addr().unwrap();
    timeline
        .wait_for(timeline.start(), Duration::from_secs(5), |e| {
            matches!(
                &e.kind,
                EventKind::Board {
                    what: BoardEvent::ClientConnected { .. }
                }
            )
        })
        .await
        .expect("the first client is served");

    let mut second = TcpStream::connect(addr).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), second.read_to_string(&mut answer))
        .await
        .expect("the second client gets an answer and the connection ends")
        .unwrap();
    assert_eq!(answer, format!("busy: held by {held_by}\r\n"));

    // The holder never sent a byte: after the silence allowed, it is let go and
    // the board takes the next client.
    let began = Instant::now();
    let silent = timeline
        .wait_for(timeline.start(), Duration::from_secs(20), |e| {
            matches!(&e.kind, EventKind::Board { what: BoardEvent::ClientSilent { peer } } if *peer == held_by)
        })
        .await;
    assert!(silent.is_some(), "a silent client holds the board forever");
    assert!(
        began.elapsed() >= Duration::from_secs(5),
        "let go too early: {:?}",
        began.elapsed()
    );
    let after = timeline.cursor();
    let _third = TcpStream::connect(addr).await.unwrap();
    timeline
        .wait_for(after, Duration::from_secs(5), |e| {
            matches!(
                &e.kind,
                EventKind::Board {
                    what: BoardEvent::ClientConnected { .. }
                }
            )
        })
        .await
        .expect("the board serves the next client");
    drop(holder);
}
