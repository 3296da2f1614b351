// The root the compiled-in settings trust: the production root of a release
// build, or the lab's root in a test build given HIL_LAB_ROOT_HEADER (see
// config.h). Kept apart from provision.cpp so the inclusion path can be checked
// by a host compiler (harness/tests/esp8266_build.rs) without the core.
#pragma once

#include "config.h"
#include "production_root.h"

#if defined(HIL_LAB_ROOT_HEADER)
// From `hil pki export`: `static const char HIL_LAB_ROOT_PEM[] PROGMEM`.
#include HIL_LAB_ROOT_HEADER
#endif

namespace hil {

// A PEM string in flash (read it with FPSTR / the _P functions).
inline const char* compiledRootPem() {
#if defined(HIL_LAB_ROOT_HEADER)
  return HIL_LAB_ROOT_PEM;
#else
  return kProductionRootPem;
#endif
}

}  // namespace hil
