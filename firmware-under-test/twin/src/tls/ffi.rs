//! Declarations of the C shim in `csrc/twin_tls.c`.

use std::os::raw::{c_char, c_int, c_uchar, c_uint};

/// The shim's opaque context.
#[repr(C)]
pub(crate) struct TwinTls {
    _private: [u8; 0],
}

pub(crate) const MODE_TRUST_ANCHORS: c_int = 0;
pub(crate) const MODE_INSECURE: c_int = 1;
pub(crate) const MODE_FINGERPRINT: c_int = 2;
pub(crate) const MODE_KNOWN_KEY: c_int = 3;
pub(crate) const MODE_SELF_SIGNED: c_int = 4;

// Engine state bits (bearssl_ssl.h).
pub(crate) const STATE_CLOSED: c_uint = 0x0001;
pub(crate) const STATE_SENDREC: c_uint = 0x0002;
pub(crate) const STATE_RECVREC: c_uint = 0x0004;
pub(crate) const STATE_SENDAPP: c_uint = 0x0008;
pub(crate) const STATE_RECVAPP: c_uint = 0x0010;

extern "C" {
    pub(crate) fn twin_tls_new(recv_size: usize, xmit_size: usize) -> *mut TwinTls;
    pub(crate) fn twin_tls_free(t: *mut TwinTls);
    pub(crate) fn twin_tls_add_anchor(t: *mut TwinTls, der: *const c_uchar, len: usize) -> c_int;
    pub(crate) fn twin_tls_set_time(t: *mut TwinTls, unix_seconds: u64);
    pub(crate) fn twin_tls_set_mode(t: *mut TwinTls, mode: c_int);
    pub(crate) fn twin_tls_set_fingerprint(t: *mut TwinTls, fp: *const c_uchar);
    pub(crate) fn twin_tls_set_known_rsa(
        t: *mut TwinTls,
        n: *const c_uchar,
        nlen: usize,
        e: *const c_uchar,
        elen: usize,
    ) -> c_int;
    pub(crate) fn twin_tls_set_known_ec(
        t: *mut TwinTls,
        curve: c_int,
        q: *const c_uchar,
        qlen: usize,
    ) -> c_int;
    pub(crate) fn twin_tls_set_versions(t: *mut TwinTls, min: c_uint, max: c_uint);
    pub(crate) fn twin_tls_add_client_cert(
        t: *mut TwinTls,
        der: *const c_uchar,
        len: usize,
    ) -> c_int;
    pub(crate) fn twin_tls_set_client_key(
        t: *mut TwinTls,
        der: *const c_uchar,
        len: usize,
    ) -> c_int;
    pub(crate) fn twin_tls_reset(t: *mut TwinTls, server_name: *const c_char) -> c_int;
    pub(crate) fn twin_tls_state(t: *const TwinTls) -> c_uint;
    pub(crate) fn twin_tls_last_error(t: *const TwinTls) -> c_int;
    pub(crate) fn twin_tls_version(t: *const TwinTls) -> c_uint;
    pub(crate) fn twin_tls_suite(t: *const TwinTls) -> c_uint;
    pub(crate) fn twin_tls_max_frag_len(t: *const TwinTls) -> c_uint;
    pub(crate) fn twin_tls_sendrec_buf(t: *mut TwinTls, len: *mut usize) -> *mut c_uchar;
    pub(crate) fn twin_tls_sendrec_ack(t: *mut TwinTls, len: usize);
    pub(crate) fn twin_tls_recvrec_buf(t: *mut TwinTls, len: *mut usize) -> *mut c_uchar;
    pub(crate) fn twin_tls_recvrec_ack(t: *mut TwinTls, len: usize);
    pub(crate) fn twin_tls_sendapp_buf(t: *mut TwinTls, len: *mut usize) -> *mut c_uchar;
    pub(crate) fn twin_tls_sendapp_ack(t: *mut TwinTls, len: usize);
    pub(crate) fn twin_tls_recvapp_buf(t: *mut TwinTls, len: *mut usize) -> *mut c_uchar;
    pub(crate) fn twin_tls_recvapp_ack(t: *mut TwinTls, len: usize);
    pub(crate) fn twin_tls_flush(t: *mut TwinTls);
    pub(crate) fn twin_tls_close(t: *mut TwinTls);
}
