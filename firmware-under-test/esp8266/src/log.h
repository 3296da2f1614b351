// The firmware's serial lines: one function per event of the contract
// (DESIGN.md, "Contract between firmware and harness").
//
// Each function prints the reference `[tag] key=value` line, or, when built with
// HIL_LOG_SEED, the free-form forum-post lines (often nothing at all: that
// firmware never says why TLS failed). Every format string is wrapped in REF()
// or SEED() so twin/tests/lockstep.rs can extract them and compare them with
// twin/src/log.rs; a line printed any other way would escape that check.
#pragma once

#include <Arduino.h>
#include <IPAddress.h>

namespace hil {
namespace log {

void boot(const char* fw, const char* version, const String& reset);
void provReady(uint32_t windowMs);
void provOk();
void provError(const String& reason);
void wifiConnecting(const String& ssid);
void wifiConnected(const IPAddress& ip);
void wifiFailed();
void dnsResolved(const String& host, const IPAddress& ip);
void dnsFailed(const String& host);
void ntpSynced(uint32_t epoch);
void ntpFailed();
void tlsConnecting(const String& host, uint16_t port, const char* mode);
void tlsOk(const char* version, const String& suite, unsigned mfln);
void tlsError(int code, const char* text);
void mqttConnected(const String& clientId);
void mqttFailed(int rc, uint32_t retryMs);
void mqttSubscribed(const String& topic);
void mqttPublished(const String& topic, size_t bytes, bool ok);
void mqttMessage(const char* topic, const String& payload);
void mqttRetry(uint32_t inMs);
void heap(uint32_t freeBytes);

}  // namespace log
}  // namespace hil
