//! The safe owner of one BearSSL client context.

use std::ffi::CString;
use std::ptr::NonNull;

use super::ffi;
use super::{TlsConfig, TrustMode};

/// A configuration the engine cannot start with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetupError {
    /// Out of memory for the context or its buffers.
    #[error("cannot allocate the BearSSL context and buffers")]
    OutOfMemory,
    /// The server name contains a NUL byte.
    #[error("the server name contains a NUL byte")]
    BadServerName,
    /// The client key could not be decoded (BearSSL error number).
    #[error("the client private key could not be decoded (BearSSL error {0})")]
    BadClientKey(i32),
    /// `br_ssl_client_reset` refused to start (BearSSL error number).
    #[error("BearSSL refused to start the handshake (error {0})")]
    Reset(i32),
}

/// One BearSSL client context. It owns its C allocation; it is used from one task
/// at a time (`&mut self`), which is all BearSSL requires.
pub(crate) struct Engine {
    raw: NonNull<ffi::TwinTls>,
    /// How many anchors BearSSL accepted (the rest did not decode).
    pub(crate) anchors_loaded: usize,
}

// SAFETY: the context is plain memory owned exclusively by this value; BearSSL keeps
// no thread-local state, so moving it between threads is sound.
unsafe impl Send for Engine {}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: `raw` came from twin_tls_new and is freed exactly once, here.
        unsafe { ffi::twin_tls_free(self.raw.as_ptr()) }
    }
}

impl Engine {
    pub(crate) fn start(config: &TlsConfig) -> Result<Engine, SetupError> {
        // SAFETY: plain allocation; a null return is handled below.
        let raw = unsafe { ffi::twin_tls_new(config.recv_buffer, config.xmit_buffer) };
        let raw = NonNull::new(raw).ok_or(SetupError::OutOfMemory)?;
        let mut engine = Engine {
            raw,
            anchors_loaded: 0,
        };
        let t = engine.raw.as_ptr();
        // SAFETY: for every call in this block, `t` is a live context owned by `engine`;
        // every pointer/length pair refers to a slice that outlives the call, and the
        // shim copies what it keeps.
        unsafe {
            ffi::twin_tls_set_time(t, config.device_time);
            ffi::twin_tls_set_versions(t, config.versions.0.wire(), config.versions.1.wire());
            match &config.mode {
                TrustMode::TrustAnchors(anchors) => {
                    ffi::twin_tls_set_mode(t, ffi::MODE_TRUST_ANCHORS);
                    for der in anchors {
                        if ffi::twin_tls_add_anchor(t, der.as_ptr(), der.len()) == 0 {
                            engine.anchors_loaded += 1;
                        }
                    }
                }
                TrustMode::Insecure => ffi::twin_tls_set_mode(t, ffi::MODE_INSECURE),
                TrustMode::Fingerprint(fp) => {
                    ffi::twin_tls_set_mode(t, ffi::MODE_FINGERPRINT);
                    ffi::twin_tls_set_fingerprint(t, fp.as_ptr());
                }
                TrustMode::KnownKey(key) => {
                    ffi::twin_tls_set_mode(t, ffi::MODE_KNOWN_KEY);
                    let rc = match key {
                        super::KnownKey::Rsa { n, e } => {
                            ffi::twin_tls_set_known_rsa(t, n.as_ptr(), n.len(), e.as_ptr(), e.len())
                        }
                        super::KnownKey::Ec { curve, point } => ffi::twin_tls_set_known_ec(
                            t,
                            *curve as i32,
                            point.as_ptr(),
                            point.len(),
                        ),
                    };
                    if rc != 0 {
                        return Err(SetupError::OutOfMemory);
                    }
                }
                TrustMode::SelfSigned => ffi::twin_tls_set_mode(t, ffi::MODE_SELF_SIGNED),
            }
            if let Some(identity) = &config.client_identity {
                for der in &identity.chain {
                    if ffi::twin_tls_add_client_cert(t, der.as_ptr(), der.len()) != 0 {
                        return Err(SetupError::OutOfMemory);
                    }
                }
                let rc = ffi::twin_tls_set_client_key(t, identity.key.as_ptr(), identity.key.len());
                if rc != 0 {
                    return Err(SetupError::BadClientKey(rc));
                }
            }
            let name = match &config.server_name {
                Some(name) => {
                    Some(CString::new(name.as_str()).map_err(|_| SetupError::BadServerName)?)
                }
                None => None,
            };
            let name_ptr = name.as_ref().map_or(std::ptr::null(), |n| n.as_ptr());
            let rc = ffi::twin_tls_reset(t, name_ptr);
            if rc != 0 {
                return Err(SetupError::Reset(rc));
            }
        }
        Ok(engine)
    }

    fn ptr(&self) -> *mut ffi::TwinTls {
        self.raw.as_ptr()
    }

    pub(crate) fn state(&self) -> u32 {
        // SAFETY: live context.
        unsafe { ffi::twin_tls_state(self.ptr()) }
    }

    pub(crate) fn last_error(&self) -> i32 {
        // SAFETY: live context.
        unsafe { ffi::twin_tls_last_error(self.ptr()) }
    }

    pub(crate) fn version(&self) -> u16 {
        // SAFETY: live context.
        unsafe { ffi::twin_tls_version(self.ptr()) as u16 }
    }

    pub(crate) fn suite(&self) -> u16 {
        // SAFETY: live context.
        unsafe { ffi::twin_tls_suite(self.ptr()) as u16 }
    }

    pub(crate) fn max_fragment_length(&self) -> u32 {
        // SAFETY: live context.
        unsafe { ffi::twin_tls_max_frag_len(self.ptr()) }
    }

    /// Bytes BearSSL wants sent to the peer (empty when none).
    pub(crate) fn sendrec(&mut self) -> &[u8] {
        buffer(self, ffi::twin_tls_sendrec_buf)
    }

    pub(crate) fn sendrec_ack(&mut self, n: usize) {
        // SAFETY: live context; `n` is at most the length sendrec() returned.
        unsafe { ffi::twin_tls_sendrec_ack(self.ptr(), n) }
    }

    /// Where bytes from the peer go (empty when BearSSL wants none now).
    pub(crate) fn recvrec(&mut self) -> &mut [u8] {
        buffer_mut(self, ffi::twin_tls_recvrec_buf)
    }

    pub(crate) fn recvrec_ack(&mut self, n: usize) {
        // SAFETY: live context; `n` bytes were written into the recvrec buffer.
        unsafe { ffi::twin_tls_recvrec_ack(self.ptr(), n) }
    }

    /// Room for application data to send.
    pub(crate) fn sendapp(&mut self) -> &mut [u8] {
        buffer_mut(self, ffi::twin_tls_sendapp_buf)
    }

    pub(crate) fn sendapp_ack(&mut self, n: usize) {
        // SAFETY: live context; `n` bytes were written into the sendapp buffer.
        unsafe { ffi::twin_tls_sendapp_ack(self.ptr(), n) }
    }

    /// Decrypted application data ready to read.
    pub(crate) fn recvapp(&mut self) -> &[u8] {
        buffer(self, ffi::twin_tls_recvapp_buf)
    }

    pub(crate) fn recvapp_ack(&mut self, n: usize) {
        // SAFETY: live context; `n` is at most the length recvapp() returned.
        unsafe { ffi::twin_tls_recvapp_ack(self.ptr(), n) }
    }

    pub(crate) fn flush(&mut self) {
        // SAFETY: live context.
        unsafe { ffi::twin_tls_flush(self.ptr()) }
    }

    pub(crate) fn close(&mut self) {
        // SAFETY: live context.
        unsafe { ffi::twin_tls_close(self.ptr()) }
    }
}

type BufFn = unsafe extern "C" fn(*mut ffi::TwinTls, *mut usize) -> *mut u8;

fn buffer(engine: &mut Engine, get: BufFn) -> &[u8] {
    let mut len = 0usize;
    // SAFETY: BearSSL returns a pointer into the context's own buffers, valid for
    // `len` bytes until the next engine call, which the borrow of `engine` prevents.
    unsafe {
        let ptr = get(engine.ptr(), &mut len);
        if ptr.is_null() || len == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(ptr, len)
        }
    }
}

fn buffer_mut(engine: &mut Engine, get: BufFn) -> &mut [u8] {
    let mut len = 0usize;
    // SAFETY: as in `buffer`, and the mutable borrow of `engine` makes the slice
    // the only access to that memory while it lives.
    unsafe {
        let ptr = get(engine.ptr(), &mut len);
        if ptr.is_null() || len == 0 {
            &mut []
        } else {
            std::slice::from_raw_parts_mut(ptr, len)
        }
    }
}
