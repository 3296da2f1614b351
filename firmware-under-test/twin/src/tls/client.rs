//! Driving BearSSL over a socket, the way the ESP8266 core's `_run_until` does.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout_at, Instant};

use super::engine::{Engine, SetupError};
use super::ffi::{STATE_CLOSED, STATE_RECVAPP, STATE_RECVREC, STATE_SENDAPP, STATE_SENDREC};
use super::names::{suite_name, version_name};
use super::TlsConfig;
use crate::pace::{CryptoCosts, KeyExchange};

/// What a completed handshake negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// Wire version (0x0303 is TLS 1.2).
    pub version: u16,
    /// Cipher suite number.
    pub suite: u16,
    /// The record size the engine settled on (512 when MFLN 512 was accepted or
    /// asked for; 16384 without it).
    pub max_fragment_length: u32,
}

impl Session {
    /// "TLS1.2" and the like.
    pub fn version_name(&self) -> &'static str {
        version_name(self.version)
    }

    /// The suite's IANA name.
    pub fn suite_name(&self) -> String {
        suite_name(self.suite)
    }
}

/// Why the TLS connection failed, as `getLastSSLError()` would tell it.
#[derive(Debug, thiserror::Error)]
pub enum TlsFailure {
    /// The engine failed with this BearSSL error number (for example 62 for a chain
    /// that reaches no anchor). BearSSL sent no alert; the socket is left as it is.
    #[error("BearSSL error {0}")]
    Engine(i32),
    /// The peer closed the connection; the engine's error number at that moment
    /// (often 0: the core reports no error for a plain close).
    #[error("connection closed by the peer (BearSSL error {0})")]
    Closed(i32),
    /// The peer sent nothing the engine could use for the whole timeout of one
    /// blocking run (`_run_until` in the core); the engine's error number at that
    /// moment (0 when the peer just stalled). The socket is left open.
    #[error("timed out waiting for the peer (BearSSL error {0})")]
    Timeout(i32),
    /// The socket failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

impl TlsFailure {
    /// The number the device logs as `[tls] error code=`.
    pub fn code(&self) -> i32 {
        match self {
            TlsFailure::Engine(code) | TlsFailure::Closed(code) | TlsFailure::Timeout(code) => {
                *code
            }
            // The core maps a dead transport to BR_ERR_IO.
            TlsFailure::Io(_) => 31,
        }
    }
}

/// A BearSSL client bound to one connection attempt.
pub struct TlsClient {
    engine: Engine,
    timeout: Duration,
    crypto: CryptoCosts,
    /// Chain signatures the trust mode verifies.
    chain_signatures: u32,
    /// The handshake's public-key work: owed once the server's flight has
    /// arrived, paid before the client's answer (or its verdict) goes out.
    compute: Compute,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compute {
    /// Nothing received from the server yet.
    Waiting,
    /// The server's records are in: the next flight (or failure) costs time.
    Owed,
    /// Spent (or nothing to spend).
    Done,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("state", &self.engine.state())
            .finish()
    }
}

impl TlsClient {
    /// Configures BearSSL and readies the ClientHello.
    pub fn new(config: &TlsConfig) -> Result<TlsClient, SetupError> {
        // x509_minimal verifies each certificate's signature up to an anchor:
        // the lab's leaf and intermediate; the other modes verify none.
        let chain_signatures = match config.mode {
            super::TrustMode::TrustAnchors(_) => 2,
            _ => 0,
        };
        Ok(TlsClient {
            engine: Engine::start(config)?,
            timeout: config.timeout,
            crypto: config.crypto,
            chain_signatures,
            compute: Compute::Waiting,
        })
    }

    /// How many trust anchors decoded (a mangled CA leaves 0, hence error 62).
    pub fn anchors_loaded(&self) -> usize {
        self.engine.anchors_loaded
    }

    /// BearSSL's last error number.
    pub fn last_error(&self) -> i32 {
        self.engine.last_error()
    }

    /// Runs the engine until a state in `target` is reached. A blocking run (the
    /// handshake, a write) gives up at the configured timeout, as the core's
    /// `_run_until` does; reading waits as long as the caller does, because the
    /// device polls for data (PubSubClient's keepalive bounds that wait).
    async fn run_until<S>(
        &mut self,
        io: &mut S,
        target: u32,
        blocking: bool,
    ) -> Result<(), TlsFailure>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let deadline = blocking.then(|| Instant::now() + self.timeout);
        loop {
            let state = self.engine.state();
            // The chip verifies the chain and computes its key exchange between
            // the server's flight and its own answer: the server sees the
            // ClientHello at once, then a pause. A rejected chain (an X.509
            // error, 32 and up) costs the verifications too before the device
            // can say why.
            let rejected = state & STATE_CLOSED != 0 && self.engine.last_error() >= 32;
            if self.compute == Compute::Owed && (state & STATE_SENDREC != 0 || rejected) {
                self.compute = Compute::Done;
                let kx = KeyExchange::of_suite(self.engine.suite());
                let cost = self.crypto.handshake(kx, self.chain_signatures);
                if !cost.is_zero() {
                    tokio::time::sleep(cost).await;
                }
            }
            // A closed engine stops here, before any pending record (an alert) is
            // written: the ESP8266 core checks CLOSED first too, so the device
            // never sends an alert when it rejects a certificate.
            if state & STATE_CLOSED != 0 {
                return Err(TlsFailure::Engine(self.engine.last_error()));
            }
            if state & STATE_SENDREC != 0 {
                let pending = self.engine.sendrec();
                let n = pending.len();
                let sent = async {
                    io.write_all(pending).await?;
                    io.flush().await
                };
                match deadline {
                    Some(at) => timeout_at(at, sent).await.map_err(|_| self.timed_out())??,
                    None => sent.await?,
                }
                self.engine.sendrec_ack(n);
                continue;
            }
            if state & target != 0 {
                return Ok(());
            }
            if state & STATE_RECVAPP != 0 {
                // Application data arrived while we wanted to write: the core calls
                // this unrecoverable; so do we.
                return Err(TlsFailure::Engine(self.engine.last_error()));
            }
            if state & STATE_RECVREC != 0 {
                let room = self.engine.recvrec();
                let n = match deadline {
                    Some(at) => timeout_at(at, io.read(room))
                        .await
                        .map_err(|_| self.timed_out())??,
                    None => io.read(room).await?,
                };
                if n == 0 {
                    return Err(TlsFailure::Closed(self.engine.last_error()));
                }
                self.engine.recvrec_ack(n);
                if self.compute == Compute::Waiting {
                    self.compute = Compute::Owed;
                }
                continue;
            }
            self.engine.flush();
        }
    }

    fn timed_out(&self) -> TlsFailure {
        TlsFailure::Timeout(self.engine.last_error())
    }

    /// Performs the handshake.
    pub async fn handshake<S>(&mut self, io: &mut S) -> Result<Session, TlsFailure>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.run_until(io, STATE_SENDAPP, true).await?;
        Ok(Session {
            version: self.engine.version(),
            suite: self.engine.suite(),
            max_fragment_length: self.engine.max_fragment_length(),
        })
    }

    /// Encrypts and sends all of `data`.
    pub async fn write_all<S>(&mut self, io: &mut S, mut data: &[u8]) -> Result<(), TlsFailure>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        while !data.is_empty() {
            self.run_until(io, STATE_SENDAPP, true).await?;
            let room = self.engine.sendapp();
            let n = room.len().min(data.len());
            room[..n].copy_from_slice(&data[..n]);
            self.engine.sendapp_ack(n);
            data = &data[n..];
        }
        self.engine.flush();
        self.run_until(io, STATE_SENDAPP | STATE_RECVAPP, true)
            .await
    }

    /// Reads decrypted bytes into `buf`; 0 means the peer closed cleanly.
    pub async fn read<S>(&mut self, io: &mut S, buf: &mut [u8]) -> Result<usize, TlsFailure>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        match self.run_until(io, STATE_RECVAPP, false).await {
            Ok(()) => {}
            Err(TlsFailure::Closed(_)) => return Ok(0),
            Err(TlsFailure::Engine(0)) => return Ok(0), // close_notify
            Err(other) => return Err(other),
        }
        let ready = self.engine.recvapp();
        let n = ready.len().min(buf.len());
        buf[..n].copy_from_slice(&ready[..n]);
        self.engine.recvapp_ack(n);
        Ok(n)
    }

    /// Sends close_notify (best effort), as `stop()` does.
    pub async fn close<S>(&mut self, io: &mut S)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.engine.close();
        let pending = self.engine.sendrec();
        let n = pending.len();
        if n > 0 && io.write_all(pending).await.is_ok() {
            self.engine.sendrec_ack(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{TrustMode, TLS_TIMEOUT_MS};

    /// A TCP peer that completes the TCP handshake (the kernel does, from the
    /// listen backlog) and never says a word, and the device's socket to it.
    async fn silent_peer() -> (std::net::TcpListener, tokio::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let socket = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        (listener, socket)
    }

    #[tokio::test]
    async fn a_handshake_with_a_silent_peer_fails_at_the_timeout_with_the_engines_error() {
        let (_listener, mut socket) = silent_peer().await;
        let config = TlsConfig {
            timeout: Duration::from_millis(200),
            ..TlsConfig::new(TrustMode::Insecure)
        };
        let mut tls = TlsClient::new(&config).unwrap();
        let started = Instant::now();
        // The outer limit turns "waits forever" into a failure instead of a hang.
        let outcome = tokio::time::timeout(Duration::from_secs(10), tls.handshake(&mut socket))
            .await
            .expect("the handshake gave up on its own");
        let failure = outcome.expect_err("nobody answered");
        assert!(matches!(failure, TlsFailure::Timeout(0)), "{failure:?}");
        assert_eq!(failure.code(), 0, "a stall is no engine error");
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn the_default_timeout_is_the_cores_15_seconds() {
        let (_listener, mut socket) = silent_peer().await;
        let mut tls = TlsClient::new(&TlsConfig::new(TrustMode::Insecure)).unwrap();
        let started = Instant::now();
        let failure = tls
            .handshake(&mut socket)
            .await
            .expect_err("nobody answered");
        assert!(matches!(failure, TlsFailure::Timeout(0)), "{failure:?}");
        // Paused time: the clock jumps straight to the deadline.
        assert_eq!(started.elapsed(), Duration::from_millis(TLS_TIMEOUT_MS));
    }
}
