# Compiles and links the sketch for a NodeMCU v2 (ESP-12E, 4 MB) the way
# PlatformIO's espressif8266@4.2.1 does for `pio run -e nodemcuv2` (ESP8266
# Arduino core 3.1.2: tools/platformio-build.py and the nodemcuv2 board), with
# Debian's gcc-xtensa-lx106 12.2 and the pieces ../build.sh prepares in WORK.
#
#   make -f toolchain/sketch.mk WORK=DIR OUT=DIR [CORE_OUT=DIR] [VARIANT_FLAGS='-D...']
#
# Run by ../build.sh; it is not meant to be run by hand before build.sh has
# prepared WORK (core sources, sysroot, libbearssl.a, libraries).

WORK     ?= $(error WORK: the work directory build.sh prepared)
OUT      ?= $(error OUT: where this environment's objects and image go)
# The core's objects depend on no variant flag, so variants share them.
CORE_OUT ?= $(OUT)
SKETCH   ?= $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
VARIANT_FLAGS ?=

CORE     := $(WORK)/core
SYSROOT  := $(WORK)/sysroot/xtensa-lx106-elf
BEARSSL  := $(WORK)/bearssl/esp8266
PUBSUB   := $(WORK)/libs/PubSubClient
AJSON    := $(WORK)/libs/ArduinoJson
ESPTOOL  ?= esptool.py

# The committed fixture was linked with the 4 MB / 2 MB FS layout; the app's
# code and data land at the same addresses with either.
LD_SCRIPT ?= eagle.flash.4m2m.ld
SDK       := NONOSDK22x_190703
LWIP      := lwip2-536-feat

CC   := xtensa-lx106-elf-gcc
CXX  := xtensa-lx106-elf-g++
AR   := xtensa-lx106-elf-ar
SIZE := xtensa-lx106-elf-size

# What the core's platformio-build.py defines for this board.
BOARD_DEFS := -D__ets__ -DICACHE_FLASH -U__STRICT_ANSI__ -D_GNU_SOURCE \
  -DESP8266 -DARDUINO_ARCH_ESP8266 -DARDUINO_ESP8266_NODEMCU_ESP12E \
  -DF_CPU=80000000L -DARDUINO=10805 \
  '-DARDUINO_BOARD="PLATFORMIO_NODEMCUV2"' '-DARDUINO_BOARD_ID="nodemcuv2"' \
  -DFLASHMODE_DIO -DLWIP_OPEN_SRC -D$(SDK)=1 \
  -DTCP_MSS=536 -DLWIP_FEATURES=1 -DLWIP_IPV6=0 \
  -DVTABLES_IN_FLASH -DMMU_IRAM_SIZE=0x8000 -DMMU_ICACHE_SIZE=0x8000

INCLUDES := -I$(CORE_OUT)/generated -I$(CORE)/tools/sdk/include -I$(CORE)/cores/esp8266 \
  -I$(CORE)/tools/sdk/lwip2/include -I$(CORE)/variants/nodemcu \
  -I$(CORE)/libraries/ESP8266WiFi/src -I$(PUBSUB)/src -I$(AJSON)/src \
  -isystem $(SYSROOT)/include/c++/12.2.0 \
  -isystem $(SYSROOT)/include/c++/12.2.0/xtensa-lx106-elf \
  -isystem $(SYSROOT)/include

# Neither the image nor the ELF may name a path of the build machine.
NO_PATHS := -ffile-prefix-map=$(abspath $(WORK))=. \
  -ffile-prefix-map=$(abspath $(SKETCH))=firmware-under-test/esp8266

OPT      := -Os -g -mlongcalls -mtext-section-literals -falign-functions=4 \
  -ffunction-sections -fdata-sections -Wall -Werror=return-type -free -fipa-pta $(NO_PATHS)
C_FLAGS  := $(OPT) -std=gnu17 -Wpointer-arith -Wno-implicit-function-declaration \
  -fno-inline-functions -nostdlib
CXX_FLAGS := $(OPT) -std=gnu++17 -fno-rtti -fno-exceptions
ASM_FLAGS := -g -x assembler-with-cpp -mlongcalls -mtext-section-literals $(NO_PATHS)
# platformio.ini's [env] build_flags, then the variant's own.
SKETCH_FLAGS := -DARDUINOJSON_USE_LONG_LONG=1 -Wall $(VARIANT_FLAGS)

CORE_SOURCES := $(shell cd $(CORE) && find cores/esp8266 \( -name '*.c' -o -name '*.cpp' -o -name '*.S' \) | sort) \
  $(shell cd $(CORE) && find libraries/ESP8266WiFi/src -name '*.cpp' | sort)
CORE_OBJECTS := $(CORE_SOURCES:%=$(CORE_OUT)/core/%.o)
SKETCH_SOURCES := $(sort $(notdir $(wildcard $(SKETCH)/src/*.cpp)))
SKETCH_OBJECTS := $(SKETCH_SOURCES:%=$(OUT)/sketch/%.o)
LIB_OBJECTS := $(OUT)/lib/PubSubClient.cpp.o

SYSTEM_LIBS := -lhal -lphy -lpp -lnet80211 -l$(LWIP) -lwpa -lcrypto -lmain -lwps \
  -lbearssl -lespnow -lsmartconfig -lairkiss -lwpa2 -lstdc++ -lm -lc -lgcc

LINK_FLAGS := -Os -nostdlib -Wl,--no-check-sections -Wl,-static -Wl,--gc-sections \
  -Wl,-wrap,system_restart_local -Wl,-wrap,spi_flash_read \
  -u app_entry -u _printf_float -u _scanf_float \
  -u _DebugExceptionVector -u _DoubleExceptionVector -u _KernelExceptionVector \
  -u _NMIExceptionVector -u _UserExceptionVector \
  -L$(CORE_OUT)/ld -L$(CORE)/tools/sdk/lib -L$(CORE)/tools/sdk/lib/$(SDK) \
  -L$(CORE)/tools/sdk/ld -L$(BEARSSL) -L$(SYSROOT)/lib \
  -T$(LD_SCRIPT) -Wl,-Map=$(OUT)/firmware.map

.PHONY: all
all: $(OUT)/firmware.bin

$(CORE_OUT)/generated/core_version.h:
	mkdir -p $(@D)
	python3 $(CORE)/tools/makecorever.py -b $(CORE_OUT)/generated -i . -p $(CORE) -v 3.1.2 -r

# The linker script the SDK's flash scripts include, preprocessed as the core does.
$(CORE_OUT)/ld/local.eagle.app.v6.common.ld: $(CORE)/tools/sdk/ld/eagle.app.v6.common.ld.h
	mkdir -p $(@D)
	$(CC) -CC -E -P -DVTABLES_IN_FLASH -DMMU_IRAM_SIZE=0x8000 -DMMU_ICACHE_SIZE=0x8000 $< -o $@

$(CORE_OUT)/core/%.c.o: $(CORE)/%.c $(CORE_OUT)/generated/core_version.h
	@mkdir -p $(@D)
	$(CC) $(BOARD_DEFS) $(INCLUDES) $(C_FLAGS) -c $< -o $@

$(CORE_OUT)/core/%.cpp.o: $(CORE)/%.cpp $(CORE_OUT)/generated/core_version.h
	@mkdir -p $(@D)
	$(CXX) $(BOARD_DEFS) $(INCLUDES) $(CXX_FLAGS) -c $< -o $@

$(CORE_OUT)/core/%.S.o: $(CORE)/%.S $(CORE_OUT)/generated/core_version.h
	@mkdir -p $(@D)
	$(CC) $(BOARD_DEFS) $(INCLUDES) $(ASM_FLAGS) -c $< -o $@

$(CORE_OUT)/libFrameworkArduino.a: $(CORE_OBJECTS)
	rm -f $@
	$(AR) cr $@ $^

$(OUT)/lib/PubSubClient.cpp.o: $(PUBSUB)/src/PubSubClient.cpp $(CORE_OUT)/generated/core_version.h
	@mkdir -p $(@D)
	$(CXX) $(BOARD_DEFS) $(INCLUDES) $(CXX_FLAGS) $(SKETCH_FLAGS) -c $< -o $@

$(OUT)/sketch/%.cpp.o: $(SKETCH)/src/%.cpp $(wildcard $(SKETCH)/src/*.h) $(CORE_OUT)/generated/core_version.h
	@mkdir -p $(@D)
	$(CXX) $(BOARD_DEFS) -I$(SKETCH)/src $(INCLUDES) $(CXX_FLAGS) $(SKETCH_FLAGS) -c $< -o $@

$(OUT)/firmware.elf: $(SKETCH_OBJECTS) $(LIB_OBJECTS) $(CORE_OUT)/libFrameworkArduino.a $(CORE_OUT)/ld/local.eagle.app.v6.common.ld
	$(CC) $(LINK_FLAGS) -o $@ -Wl,--start-group $(SKETCH_OBJECTS) $(LIB_OBJECTS) \
	  $(CORE_OUT)/libFrameworkArduino.a $(SYSTEM_LIBS) -Wl,--end-group
	$(SIZE) -A $@ | grep -E '^\.(irom0\.text|text|text1|data|rodata|bss)\s'

# The image as Arduino and PlatformIO make it: eboot at 0x0, the app (a v1
# image, irom0 included) at 0x1000, eboot's CRC stamped in. esptool's
# elf2image is the wrong tool for Arduino images.
$(OUT)/firmware.bin: $(OUT)/firmware.elf
	python3 $(CORE)/tools/elf2bin.py --eboot $(CORE)/bootloaders/eboot/eboot.elf \
	  --app $< --flash_mode dio --flash_freq 40 --flash_size 4M --path /usr/bin --out $@
	dd if=$@ of=$(OUT)/app-at-0x1000.bin bs=4096 skip=1 status=none
	$(ESPTOOL) --chip esp8266 image_info --version 2 $(OUT)/app-at-0x1000.bin
