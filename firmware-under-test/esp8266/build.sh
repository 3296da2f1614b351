#!/usr/bin/env bash
# Builds the sketch into real ESP8266 images with Debian's Xtensa toolchain
# (gcc-xtensa-lx106 12.2) against ESP8266 Arduino core 3.1.2, PubSubClient 2.8
# and ArduinoJson 7.2.0: the reference (env nodemcuv2) and every variant
# environment of platformio.ini, each with its -D flags. No PlatformIO needed.
#
# Usage: build.sh [options] [ENV...]           (default: every nodemcuv2 env)
#   --check        report what is missing (tools, packages, sources, pins);
#                  build nothing; exit 0 when ready, 1 when something is missing
#   --list         print each environment and its flags, as derived from
#                  platformio.ini; build nothing
#   --work DIR     where sources are unpacked and the toolchain pieces built
#                  (default: $TMPDIR/hil-esp8266-build); reused between runs
#   --out DIR      where images land: DIR/<env>/firmware.{bin,elf,map}
#                  (default: WORK/out)
#   --fixtures     after building nodemcuv2, replace fixtures/firmware/'s
#                  reference image and ELF with it and record the source commits
#   --jobs N       parallel jobs (default: the number of CPUs)
#   --broker-host NAME
#                  a test build: the compiled-in settings dial NAME instead of
#                  mqtt.example.com (-DHIL_BROKER_HOST="NAME")
#   --lab-root-header FILE
#                  a test build: the compiled-in settings trust the root in FILE,
#                  the hil_lab_root.h `hil pki export` writes, instead of the
#                  production root (-DHIL_LAB_ROOT_HEADER, -I its directory)
#                  A test build's images land in OUT/<env>-test/, never over a
#                  release build; --list shows the flags they add.
#
# Sources are git directories (clones or bare mirrors) named by environment
# variables; each is read at a pinned commit, overridable by its *_COMMIT:
#   ARDUINO_GIT  esp8266/Arduino                   ARDUINO_COMMIT  (3.1.2, 210897ef)
#   NEWLIB_GIT   earlephilhower/newlib-xtensa      NEWLIB_COMMIT   (d6e3fcdb)
#   BEARSSL_GIT  earlephilhower/bearssl-esp8266    BEARSSL_COMMIT  (b024386d, the core's submodule)
#   HAL_GIT      earlephilhower/lx106-hal          HAL_COMMIT      (e4bcc63c)
#   QTC_GIT      earlephilhower/esp-quick-toolchain QTC_COMMIT     (1757bed1, two libstdc++ patches)
#   PUBSUB_GIT   knolleary/pubsubclient            PUBSUB_COMMIT   (v2.8)
#   AJSON_GIT    bblanchon/ArduinoJson             AJSON_COMMIT    (v7.2.0)
# Debian packages: gcc-xtensa-lx106 binutils-xtensa-lx106 gcc-12-source (not
# picolibc-xtensa-lx106-elf: it lands in gcc's default search path and quietly
# fills in what newlib lacks). Also git, make, patch, python3, xz, and esptool
# (source ci/env.sh for the project's).
#
# Exit: 0 built, 1 a build step failed (or --check found something missing),
# 2 bad arguments or missing inputs (every one is named).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
ini="$here/platformio.ini"

# ---- pins --------------------------------------------------------------------
# name  default commit  what it must resolve to (a prefix of the full id)
pins=(
  "ARDUINO 3.1.2 210897ef"
  "NEWLIB d6e3fcdb d6e3fcdb"
  "BEARSSL b024386d461abd1b7b9be3117e2516b7541f1201 b024386d"
  "HAL e4bcc63c9c016e4f8848e7e8f512438ca857531d e4bcc63c"
  "QTC 1757bed1 1757bed1"
  "PUBSUB v2.8 -"
  "AJSON v7.2.0 -"
)
# The compiler's exact version, for libstdc++ from Debian's gcc-12-source.
gcc_source=/usr/src/gcc-12/gcc-12.2.0-dfsg.tar.xz
tools=(xtensa-lx106-elf-gcc xtensa-lx106-elf-g++ xtensa-lx106-elf-ar xtensa-lx106-elf-size
       xtensa-lx106-elf-objcopy git make patch python3 xz)

say() { printf 'build.sh: %s\n' "$*" >&2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; }

# ---- arguments -----------------------------------------------------------------
check_only=0 list_only=0 fixtures=0
broker_host= lab_root_header=
work=${TMPDIR:-/tmp}/hil-esp8266-build
out=
jobs=$(nproc 2>/dev/null || echo 2)
wanted=()
while (($#)); do
  case $1 in
    --check) check_only=1 ;;
    --list) list_only=1 ;;
    --fixtures) fixtures=1 ;;
    --work|--out|--jobs|--broker-host|--lab-root-header)
      (($# >= 2)) || { say "$1 needs a value"; exit 2; }
      case $1 in
        --work) work=$2 ;; --out) out=$2 ;; --jobs) jobs=$2 ;;
        --broker-host) broker_host=$2 ;; --lab-root-header) lab_root_header=$2 ;;
      esac
      shift ;;
    -h|--help) usage; exit 0 ;;
    -*) say "unknown option $1"; usage; exit 2 ;;
    *) wanted+=("$1") ;;
  esac
  shift
done
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { say "--jobs takes a positive number, not '$jobs'"; exit 2; }
out=${out:-$work/out}

# ---- a test build's flags ----------------------------------------------------------
# Quoted for the shell that runs each compile (make passes them through as
# written), so the compiler sees -DHIL_BROKER_HOST="NAME": a C string.
test_flags=()
if [[ -n $broker_host ]]; then
  label='[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
  octet='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
  # A firmware may dial its broker by name or by an IPv4 address.
  if ! [[ $broker_host =~ ^$octet(\.$octet){3}$ ]] &&
     { ! [[ $broker_host =~ ^$label(\.$label)+$ ]] || [[ ${broker_host##*.} =~ ^[0-9]+$ ]] ||
       ((${#broker_host} > 253)); }; then
    say "--broker-host takes a DNS name (labels of letters, digits and hyphens) or an IPv4 address, not '$broker_host'"
    exit 2
  fi
  test_flags+=("'-DHIL_BROKER_HOST=\"$broker_host\"'")
fi
if [[ -n $lab_root_header ]]; then
  if [[ ! -f $lab_root_header ]]; then
    say "--lab-root-header: no file '$lab_root_header' (hil pki export --out DIR writes DIR/hil_lab_root.h)"
    exit 2
  fi
  if ! grep -q '^static const char HIL_LAB_ROOT_PEM\[\] PROGMEM = R"PEM(-----BEGIN CERTIFICATE-----' "$lab_root_header"; then
    say "--lab-root-header: '$lab_root_header' does not define HIL_LAB_ROOT_PEM as \`hil pki export\` writes it (export it again, with the default --symbol)"
    exit 2
  fi
  header_dir=$(cd "$(dirname "$lab_root_header")" && pwd)
  header_name=$(basename "$lab_root_header")
  if ! [[ $header_dir =~ ^[A-Za-z0-9_./+-]+$ && $header_name =~ ^[A-Za-z0-9_.+-]+\.h$ ]]; then
    say "--lab-root-header: '$header_dir/$header_name' has characters a compiler flag cannot carry unquoted; copy it to a plain path"
    exit 2
  fi
  # The header's directory is named `lab-root` in the ELF, like the build's own paths.
  test_flags+=("-I$header_dir" "-ffile-prefix-map=$header_dir=lab-root"
               "'-DHIL_LAB_ROOT_HEADER=\"$header_name\"'")
fi
if ((fixtures && ${#test_flags[@]})); then
  say "--fixtures takes the release reference; a test build (--broker-host, --lab-root-header) is never a fixture"
  exit 2
fi

# ---- environments, from platformio.ini -------------------------------------------
# Prints "env<TAB>board<TAB>flags" for every [env:NAME], resolving `extends` and
# `${env.build_flags}` (the flags every env shares, which sketch.mk adds itself).
environments() {
  awk '
    function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
    /^[ \t]*[;#]/ || /^[ \t]*$/ { next }
    /^\[/ { section = $0; gsub(/[\[\]]/, "", section); order[++n] = section; key = ""; next }
    /^[ \t]/ && key != "" { value[section, key] = value[section, key] " " trim($0); next }
    /=/ { key = trim(substr($0, 1, index($0, "=") - 1));
          value[section, key] = trim(substr($0, index($0, "=") + 1)); next }
    END {
      for (i = 1; i <= n; i++) {
        s = order[i]
        if (s !~ /^env:/) continue
        board = value[s, "board"]; flags = value[s, "build_flags"]
        parent = value[s, "extends"]
        if (board == "" && parent != "") board = value[parent, "board"]
        if (flags == "" && parent != "") flags = value[parent, "build_flags"]
        sub(/\$\{env\.build_flags\}/, "", flags); flags = trim(flags)
        printf "%s\t%s\t%s\n", substr(s, 5), board, flags
      }
    }' "$ini"
}

declare -A env_board env_flags
env_order=()
while IFS=$'\t' read -r name board flags; do
  env_order+=("$name"); env_board[$name]=$board; env_flags[$name]=$flags
done < <(environments)

if ((list_only)); then
  for name in "${env_order[@]}"; do
    [[ ${env_board[$name]} == nodemcuv2 ]] || continue
    flags="${env_flags[$name]}"
    if ((${#test_flags[@]})); then
      flags="${flags:+$flags }${test_flags[*]}"
    fi
    printf '%s\t%s\n' "$name" "$flags"
  done
  exit 0
fi

if ((${#wanted[@]} == 0)); then
  for name in "${env_order[@]}"; do
    [[ ${env_board[$name]} == nodemcuv2 ]] && wanted+=("$name")
  done
fi
for name in "${wanted[@]}"; do
  if [[ -z ${env_board[$name]+set} ]]; then
    say "no environment '$name' in platformio.ini (see build.sh --list)"; exit 2
  fi
  if [[ ${env_board[$name]} != nodemcuv2 ]]; then
    say "'$name' is for board ${env_board[$name]}; this script builds nodemcuv2 environments only (use PlatformIO for others)"
    exit 2
  fi
done
if ((fixtures)) && [[ " ${wanted[*]} " != *" nodemcuv2 "* ]]; then
  say "--fixtures needs the nodemcuv2 environment among those built"; exit 2
fi

# ---- what is missing -------------------------------------------------------------
missing=()
esptool=$(command -v esptool.py || command -v esptool || true)
# The Debian package that provides a tool.
package_of() {
  case $1 in
    xtensa-lx106-elf-gcc|xtensa-lx106-elf-g++) echo gcc-xtensa-lx106 ;;
    xtensa-lx106-elf-*) echo binutils-xtensa-lx106 ;;
    xz) echo xz-utils ;;
    *) echo "$1" ;;
  esac
}
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || missing+=("$tool (apt-get install $(package_of "$tool"))")
done
[[ -n $esptool ]] || missing+=("esptool (source ci/env.sh, or run ci/setup)")
[[ -f $gcc_source ]] || missing+=("$gcc_source (apt-get install gcc-12-source)")
if command -v dpkg-query >/dev/null &&
   dpkg-query -W -f='${Status}' picolibc-xtensa-lx106-elf 2>/dev/null | grep -q 'ok installed'; then
  missing+=("the absence of picolibc-xtensa-lx106-elf (apt-get remove it: it shadows newlib)")
fi
for pin in "${pins[@]}"; do
  read -r name default expect <<<"$pin"
  git_var=${name}_GIT commit_var=${name}_COMMIT
  dir=${!git_var:-}
  commit=${!commit_var:-$default}
  if [[ -z $dir ]]; then
    missing+=("$git_var, a git directory of its sources (pinned at $default)")
  elif ! gd=$(git -C "$dir" rev-parse --absolute-git-dir 2>/dev/null); then
    missing+=("$git_var=$dir, which is not a git directory")
  else
    resolved=$(git --git-dir="$gd" rev-parse --verify -q "$commit^{commit}" || true)
    if [[ -z $resolved ]]; then
      missing+=("commit $commit in $git_var=$dir")
    elif [[ $expect != - && -z ${!commit_var:-} && $resolved != "$expect"* ]]; then
      missing+=("$commit in $git_var resolving to the pinned $expect (it is $resolved; set $commit_var to build another on purpose)")
    else
      printf -v "${name}_DIR" '%s' "$gd"
      printf -v "${name}_REV" '%s' "$resolved"
    fi
  fi
done

if ((${#missing[@]})); then
  if ((check_only)); then
    say "missing:"
  else
    say "cannot build: these inputs are missing"
  fi
  printf '  - %s\n' "${missing[@]}" >&2
  ((check_only)) && exit 1
  exit 2
fi
if ((check_only)); then
  say "ready: ${#wanted[@]} environment(s): ${wanted[*]}"
  exit 0
fi

# ---- toolchain pieces the core expects and Debian does not ship ---------------------
mkdir -p "$work"
work=$(cd "$work" && pwd)
sysroot=$work/sysroot/xtensa-lx106-elf
target_flags="-mlongcalls -Os -g -free -fipa-pta -ffile-prefix-map=$work=."
cd "$work"

# Unpacks COMMIT of a git directory into DEST (fresh).
unpack() { rm -rf "$3"; mkdir -p "$3"; git --git-dir="$1" archive "$2" | tar -x -C "$3"; }

if [[ ! -f core/platform.txt ]]; then
  say "core sources at $ARDUINO_REV"
  # Through an index, leaving out the core's prebuilt libbearssl.a and
  # libstdc++*.a: they are built below from the pinned sources (and a mirror
  # without large blobs lacks them anyway).
  export GIT_INDEX_FILE=$work/core.index
  git --git-dir="$ARDUINO_DIR" read-tree "$ARDUINO_REV"
  git --git-dir="$ARDUINO_DIR" update-index --force-remove \
    tools/sdk/lib/libbearssl.a tools/sdk/lib/libstdc++.a tools/sdk/lib/libstdc++-exc.a
  rm -rf core
  git --git-dir="$ARDUINO_DIR" checkout-index -a --prefix="$work/core/"
  unset GIT_INDEX_FILE
fi
# gcc 12's headers no longer pull <exception> in through <numeric>; 3.1.2's
# core_esp8266_main.cpp needs it for std::set_terminate (fixed upstream later).
main_cpp=core/cores/esp8266/core_esp8266_main.cpp
grep -q '^#include <exception>' "$main_cpp" ||
  sed -i 's|^#include <numeric>$|#include <numeric>\n#include <exception>|' "$main_cpp"

if [[ ! -f $sysroot/lib/libc.a ]]; then
  say "newlib-xtensa at $NEWLIB_REV"
  unpack "$NEWLIB_DIR" "$NEWLIB_REV" newlib-src
  rm -rf newlib-build; mkdir -p newlib-build
  ( cd newlib-build
    CFLAGS_FOR_TARGET=$target_flags CXXFLAGS_FOR_TARGET=$target_flags \
      ../newlib-src/configure --prefix="$work/sysroot" --target=xtensa-lx106-elf \
      --with-newlib --enable-multilib --disable-newlib-io-c99-formats \
      --disable-newlib-supplied-syscalls --enable-newlib-nano-formatted-io \
      --enable-newlib-reent-small --enable-target-optspace \
      --disable-option-checking --disable-shared >configure.log
    make -j"$jobs" >make.log 2>&1 || { say "newlib failed: $PWD/make.log"; exit 1; }
    make install >install.log 2>&1 )
fi

if [[ ! -f $sysroot/include/xtensa/coreasm.h ]]; then
  say "lx106-hal headers at $HAL_REV"
  unpack "$HAL_DIR" "$HAL_REV" hal-src
  cp -rn hal-src/include/xtensa "$sysroot/include/"
fi

if [[ ! -f $sysroot/lib/libstdc++.a ]]; then
  say "libstdc++ (no exceptions) from $gcc_source"
  rm -rf gcc-src libstdcxx-build; mkdir -p gcc-src libstdcxx-build
  g=gcc-12.2.0
  tar -xJf "$gcc_source" -C gcc-src $g/libstdc++-v3 $g/libgcc $g/config $g/include \
    $g/libiberty $g/libbacktrace $g/gcc/BASE-VER $g/gcc/DATESTAMP $g/gcc/DEV-PHASE \
    $g/config.sub $g/config.guess $g/install-sh $g/ltmain.sh $g/config-ml.in \
    $g/missing $g/mkinstalldirs $g/move-if-change $g/compile $g/depcomp
  # From the quick-toolchain: ctype tables read from flash with pgm_read (a byte
  # load from flash faults), and the emergency exception pool. Its other
  # libstdc++ patches do not apply to 12.2.
  for p in gcc-ctype-inline-pgmread gcc-eh-alloc; do
    git --git-dir="$QTC_DIR" show "$QTC_REV:patches/gcc11.1/$p.patch" | patch -s -d gcc-src/$g -p1
  done
  # configure wants the testsuite's Makefile.in, which is not unpacked.
  mkdir -p gcc-src/$g/libstdc++-v3/testsuite
  printf 'all:\ninstall:\ncheck:\nclean:\ndistclean:\n' >gcc-src/$g/libstdc++-v3/testsuite/Makefile.in
  ( cd libstdcxx-build
    export CC="xtensa-lx106-elf-gcc -isystem $sysroot/include" \
           CXX="xtensa-lx106-elf-g++ -isystem $sysroot/include" \
           CFLAGS="$target_flags -fno-exceptions" CXXFLAGS="$target_flags -fno-exceptions" \
           LDFLAGS="-L$sysroot/lib" AR=xtensa-lx106-elf-ar RANLIB=xtensa-lx106-elf-ranlib \
           NM=xtensa-lx106-elf-nm
    ../gcc-src/$g/libstdc++-v3/configure --host=xtensa-lx106-elf --build=x86_64-linux-gnu \
      --target=xtensa-lx106-elf --prefix="$work/sysroot" \
      --with-target-subdir=xtensa-lx106-elf --with-cross-host=x86_64-linux-gnu \
      --with-newlib --disable-shared --enable-static --disable-multilib --disable-nls \
      --enable-threads=no --disable-__cxa_atexit --disable-libstdcxx-verbose \
      --disable-libstdcxx-pch --disable-libstdcxx-backtrace >configure.log 2>&1
    make -j"$jobs" >make.log 2>&1 || { say "libstdc++ failed: $PWD/make.log"; exit 1; }
    make install >install.log 2>&1 )
fi

# (A work directory whose BearSSL was built without -fno-strict-aliasing is rebuilt.)
if [[ ! -f bearssl/esp8266/libbearssl.a ]] ||
   ! grep -q -- '-fno-strict-aliasing' bearssl/conf/esp8266.mk; then
  say "libbearssl.a at $BEARSSL_REV"
  unpack "$BEARSSL_DIR" "$BEARSSL_REV" bearssl
  # A quick-toolchain-only option gcc 12.2 lacks (upstream gcc has it from 13).
  sed -i 's/ -mextra-l32r-costs=5//' bearssl/conf/esp8266.mk
  # BearSSL's T0 interpreters reach a context's `cpu` member through another
  # struct type (t0_context). Under gcc 12's type-based aliasing the store
  # `ctx->cpu.rp = &ctx->rp_stack[0]` in br_pem_decoder_init (and the other
  # *_init of a T0 machine) is deleted as dead, rp stays 0 from the memset, and
  # the first push writes to address 0: Exception (29) in
  # br_pem_decoder_init_main as soon as X509List parses a PEM. The emulator
  # found it; a chip crashes the same way.
  sed -i '/^CFLAGS = /s/$/ -fno-strict-aliasing/' bearssl/conf/esp8266.mk
  make -C bearssl CONF=esp8266 -j"$jobs" \
    CC="xtensa-lx106-elf-gcc -isystem $sysroot/include -ffile-prefix-map=$work=." \
    >bearssl/make.log 2>&1 || { say "BearSSL failed: $work/bearssl/make.log"; exit 1; }
  # The core links only the 16-bit-multiply implementations; drop the others.
  ( cd bearssl/esp8266
    mapfile -t other < <(xtensa-lx106-elf-ar t libbearssl.a |
      grep -E 'i31|i32|x86|sse|pwr8|i62|m31|m32|m62|m64|ct64|ctmul64' || true)
    ((${#other[@]})) && xtensa-lx106-elf-ar d libbearssl.a "${other[@]}" )
fi

[[ -f libs/PubSubClient/src/PubSubClient.h ]] || unpack "$PUBSUB_DIR" "$PUBSUB_REV" libs/PubSubClient
[[ -f libs/ArduinoJson/src/ArduinoJson.h ]] || unpack "$AJSON_DIR" "$AJSON_REV" libs/ArduinoJson

# ---- the environments ------------------------------------------------------------
mkdir -p "$out"
out=$(cd "$out" && pwd)
# A test build gets build and output directories of its own: objects depend on
# the sources, not on the flags, and a release image is never overwritten.
suffix=
if ((${#test_flags[@]})); then
  suffix=-test-$( { printf '%s\n' "${test_flags[@]}"; [[ -z $lab_root_header ]] || cat "$lab_root_header"; } |
    sha256sum | cut -c1-12)
fi
for name in "${wanted[@]}"; do
  flags="${env_flags[$name]} ${test_flags[*]}"
  say "building $name $flags"
  make -s -f "$here/toolchain/sketch.mk" -j"$jobs" WORK="$work" SKETCH="$here" \
    OUT="$work/build/$name$suffix" CORE_OUT="$work/build/core" ESPTOOL="$esptool" \
    VARIANT_FLAGS="$flags" || { say "$name failed"; exit 1; }
  dest=$out/$name${suffix:+-test}
  mkdir -p "$dest"
  cp "$work/build/$name$suffix"/firmware.{bin,elf,map} "$dest/"
done

if ((fixtures)); then
  dest=$repo/fixtures/firmware
  cp "$out/nodemcuv2/firmware.bin" "$dest/reference-nodemcuv2.bin"
  xz -9e -T1 -c "$out/nodemcuv2/firmware.elf" >"$dest/reference-nodemcuv2.elf.xz"
  {
    echo "# The source commits fixtures/firmware/ was built from (build.sh --fixtures)."
    for pin in "${pins[@]}"; do
      read -r name _ <<<"$pin"
      rev_var=${name}_REV
      printf '%-8s %s\n' "$name" "${!rev_var}"
    done
    printf '%-8s %s\n' gcc "$(xtensa-lx106-elf-gcc -dumpfullversion) ($(dpkg-query -W -f='${Version}' gcc-xtensa-lx106 2>/dev/null || echo unknown))"
  } >"$dest/SOURCES"
  ( cd "$dest" && sha256sum reference-nodemcuv2.bin reference-nodemcuv2.elf.xz )
  say "fixtures replaced; update the SHA-256 lines in fixtures/firmware/README.md"
fi
say "done: $out"
