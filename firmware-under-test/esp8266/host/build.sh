#!/usr/bin/env bash
# Builds the sketch as a native program with the ESP8266 core's own host
# emulation (esp8266/Arduino tests/host: the real core and ESP8266WiFi sources,
# the core's BearSSL fork, sockets instead of lwIP, stdin/stdout as the UART).
# No board and no Xtensa toolchain needed: the result prints the same serial
# lines and talks TLS/MQTT to real peers, so a lab or mosquitto can be tried on it.
#
# Usage: host/build.sh CORE_DIR PUBSUBCLIENT_DIR ARDUINOJSON_DIR [-DHIL_... ...]
#   CORE_DIR          a checkout of esp8266/Arduino 3.1.2 with its submodules
#                     (git clone --recursive --branch 3.1.2 ...), BearSSL built
#                     natively once: make -C CORE_DIR/tools/sdk/ssl/bearssl
#   PUBSUBCLIENT_DIR  knolleary/pubsubclient v2.8;  ARDUINOJSON_DIR  bblanchon/ArduinoJson v7
#   -DHIL_...         build flags of a variant (see ../platformio.ini)
# Output: CORE_DIR/tests/host/bin/hil-sketch/hil-sketch. Run it under a pty (the
# emulation reads the UART from a terminal); `-f` runs without throttling.
set -euo pipefail
if (($# < 3)); then sed -n '2,17p' "$0" >&2; exit 2; fi
core=$(cd "$1" && pwd); pubsub=$(cd "$2" && pwd); json=$(cd "$3" && pwd); shift 3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../src" && pwd)

[[ -f $core/tests/host/Makefile ]] || { echo "build.sh: $core is not an esp8266/Arduino checkout" >&2; exit 2; }
[[ -f $core/tools/sdk/ssl/bearssl/build/libbearssl.a ]] || {
  echo "build.sh: build BearSSL first: make -C $core/tools/sdk/ssl/bearssl" >&2; exit 2; }

# The emulation builds a sketch from NAME/NAME.ino; ours is plain .cpp files, so
# the .ino only includes them (in a scratch directory, never in the source tree).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/hil-sketch"
{
  for f in bearssl_names log provision main; do printf '#include "%s/%s.cpp"\n' "$src" "$f"; done
  printf '#include "%s/host_stubs.cpp"\n' "$here"
} > "$work/hil-sketch/hil-sketch.ino"

# The scratch path is new on every run, so objects of an earlier flag set are
# never reused.
make -C "$core/tests/host" FORCE32=0 OPTZ=-O0 \
  ULIBDIRS="$pubsub:$json" \
  USERCFLAGS="-DARDUINOJSON_USE_LONG_LONG=1 -I$src $*" \
  "$work/hil-sketch/hil-sketch"
echo "built: $core/tests/host/bin/hil-sketch/hil-sketch"
