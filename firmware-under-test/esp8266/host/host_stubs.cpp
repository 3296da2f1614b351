// Host emulation only (never part of a board build): the ESP8266 core's host
// emulation (tests/host in esp8266/Arduino) has no SNTP client and no
// settimeofday_cb. The host's clock is already right, so the stub reports "set
// by SNTP" at once and the sketch proceeds as it would after a real sync.
#include <coredecls.h>

void settimeofday_cb(BoolCB&& cb) { cb(true); }
