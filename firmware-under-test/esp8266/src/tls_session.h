// What the TLS handshake negotiated: version, cipher suite, fragment length.
//
// The contract's `[tls] ok version=.. suite=.. mfln=..` line needs three facts the
// core's WiFiClientSecure keeps to itself: its BearSSL engine sits in a private
// member of a private member, and the only public way out (setSession) is filled
// when the connection *closes*, too late for a line printed after the handshake.
// So this header reads the engine the one way C++ allows without editing the
// core: an explicit template instantiation may name private members ([temp.spec]
// -- access checking does not apply to the names in it), and a friend function
// defined by that instantiation hands out the member pointer.
//
// This depends on two member names of ESP8266 core 3.1.x
// (WiFiClientSecure::_ctx and WiFiClientSecureCtx::_eng). If a core release
// renames them, the build fails right here with a clear error instead of
// silently logging nonsense; platformio.ini pins the platform for that reason.
#pragma once

#include <WiFiClientSecureBearSSL.h>

#include <memory>

namespace hil {
namespace detail {

template <typename Tag, typename Tag::type Member>
struct ExposeMember {
  friend typename Tag::type memberPointer(Tag) { return Member; }
};

struct SecureCtxTag {
  using type = std::shared_ptr<BearSSL::WiFiClientSecureCtx> BearSSL::WiFiClientSecure::*;
  friend type memberPointer(SecureCtxTag);
};

struct EngineTag {
  using type = br_ssl_engine_context* BearSSL::WiFiClientSecureCtx::*;
  friend type memberPointer(EngineTag);
};

template struct ExposeMember<SecureCtxTag, &BearSSL::WiFiClientSecure::_ctx>;
template struct ExposeMember<EngineTag, &BearSSL::WiFiClientSecureCtx::_eng>;

}  // namespace detail

struct TlsSession {
  unsigned version;     // br_ssl_engine_get_version(): 0x0303 for TLS 1.2
  uint16_t suite;       // IANA cipher suite number
  unsigned fragment;    // 1 << log_max_frag_len, as the twin reports it
};

// The parameters of the handshake that just completed. Valid only right after a
// successful connect(): the core frees the engine on stop().
inline bool negotiated(BearSSL::WiFiClientSecure& client, TlsSession& out) {
  const auto& ctx = client.*memberPointer(detail::SecureCtxTag{});
  if (!ctx) {
    return false;
  }
  const br_ssl_engine_context* eng = (*ctx).*memberPointer(detail::EngineTag{});
  if (eng == nullptr) {
    return false;
  }
  out.version = br_ssl_engine_get_version(eng);
  out.suite = eng->session.cipher_suite;
  out.fragment = 1u << eng->log_max_frag_len;
  return true;
}

}  // namespace hil
