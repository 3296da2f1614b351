// BearSSL numbers as the names the harness reads.
//
// getLastSSLError() returns a number and an English sentence; the contract's
// `[tls] error code=<n> text=<name>` line carries the BR_ERR_* symbol instead, so a
// log line is unambiguous and greppable. The twin takes the same names from
// contract/src/bearssl.rs; the lockstep test checks that both lists agree.
#pragma once

#include <stdint.h>
#include <WString.h>

namespace hil {

// The BR_ERR_* symbol for `code` (alert bits already removed by the core), or
// "BR_ERR_UNKNOWN" for a number BearSSL does not define.
const char* bearsslErrorName(int code);

// "TLS1.2" and friends for a br_ssl_engine_get_version() value.
const char* tlsVersionName(unsigned version);

// The IANA name of a suite BearSSL's client can negotiate, else "0x%04X".
String tlsSuiteName(uint16_t suite);

}  // namespace hil
