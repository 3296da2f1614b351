//! The loop the lab's UDP services share: receive a datagram, let the service
//! decide (by the sender's policy) what to answer and what to record, send the
//! answer if there is one, until shutdown.

use std::net::SocketAddr;

use tokio::net::UdpSocket;
use tokio::sync::watch;

/// Serves datagrams until `shutdown` fires. `handle` gets each datagram and its
/// sender and returns the reply to send (`None`: stay silent) and what to do once
/// it is sent (record the event).
pub(crate) async fn serve<R: FnOnce()>(
    socket: UdpSocket,
    max_datagram: usize,
    mut shutdown: watch::Receiver<bool>,
    mut handle: impl FnMut(&[u8], SocketAddr) -> Option<(Option<Vec<u8>>, R)>,
) {
    let mut buf = vec![0u8; max_datagram];
    loop {
        let (n, peer): (usize, SocketAddr) = tokio::select! {
            _ = shutdown.changed() => break,
            got = socket.recv_from(&mut buf) => match got {
                Ok(got) => got,
                // ICMP errors from earlier replies surface here on some systems.
                Err(_) => continue,
            },
        };
        let Some((reply, record)) = handle(&buf[..n], peer) else {
            continue;
        };
        if let Some(reply) = reply {
            let _ = socket.send_to(&reply, peer).await;
        }
        record();
    }
}
