# p1d: make builds build/libp1.a, build/p1 (and build/p1d); make test runs every suite.
# Variables: PREFIX, DESTDIR, CC, EXTRA_CFLAGS, SAN=1 (build with ASan+UBSan into build/san),
# TSAN=1 (build with ThreadSanitizer into build/tsan).

CC ?= cc
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
BUILD ?= build
PKG_CONFIG ?= pkg-config

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
        -Wformat=2 -Wno-format-nonliteral
BASE_CFLAGS := -std=c11 -g -O2 $(WARN) -Iinclude -fno-strict-aliasing
# gcc on x86-64 expands a memset/memcpy of a few hundred bytes inline as `rep stos`/`rep movs`,
# which take tens of cycles to start; libc's versions, picked per CPU at run time, are quicker
# for what the decoder clears and copies per telegram (p1 bench: about 3% more telegrams/s).
# Only where the compiler knows the option; elsewhere (ARM, clang) nothing changes.
STRINGOP := $(shell $(CC) -mstringop-strategy=libcall -x c -c /dev/null -o /dev/null 2>/dev/null \
                && echo -mstringop-strategy=libcall)
BASE_CFLAGS += $(STRINGOP)
# The sanitizer build also takes the CRC's table path (P1_CRC_TABLES), which x86-64 machines with
# PCLMULQDQ never run otherwise: `make test` then covers both (the fuzzers take the other).
SAN_FLAGS := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
             -DP1_CRC_TABLES
ifeq ($(SAN),1)
BUILD := build/san
BASE_CFLAGS += $(SAN_FLAGS)
LDSAN := -fsanitize=address,undefined
endif
# The ThreadSanitizer build: p1d's threads (the history worker, host name lookups) beside the
# loop. `make test` runs test_history_worker.py with it.
TSAN_FLAGS := -O1 -fsanitize=thread -fno-omit-frame-pointer
ifeq ($(TSAN),1)
BUILD := build/tsan
BASE_CFLAGS += $(TSAN_FLAGS)
LDSAN := -fsanitize=thread
endif
CFLAGS_ALL = $(BASE_CFLAGS) $(EXTRA_CFLAGS)
DEPFLAGS = -MMD -MP

# libp1: the pure decoder (no dependencies) plus crypt.c (OpenSSL), pulled in only when used.
LIB_SRC := $(wildcard lib/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
TOOL_SRC := $(wildcard tools/*.c)
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/%.o)
DAEMON_SRC := $(wildcard src/*.c)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

LIBS_CRYPTO := $(shell $(PKG_CONFIG) --libs libcrypto 2>/dev/null || echo -lcrypto)

.PHONY: all deps run test unit unit-san fuzz fuzz-smoke bench clean install deb format
all: deps-build $(BUILD)/libp1.a $(BUILD)/p1 $(if $(DAEMON_SRC),$(BUILD)/p1d)

deps-build:
	@tools/setup.sh build

# Order-only: on a fresh machine the -dev packages and npm modules must be there before any
# compile, also under make -j.
$(BUILD)/%.o: %.c | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(DEPFLAGS) -c $< -o $@

$(BUILD)/libp1.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# p1 also links the daemon modules it shares; --wrap lets `p1 bench` count allocations.
TOOL_SHARED_OBJ := $(BUILD)/src/sim.o $(BUILD)/src/json.o $(BUILD)/src/reading_json.o \
                   $(BUILD)/src/store.o $(BUILD)/src/cost.o $(BUILD)/src/civil.o \
                   $(BUILD)/src/suggest.o
LIBS_SQLITE := $(shell $(PKG_CONFIG) --libs sqlite3 2>/dev/null || echo -lsqlite3)
LIBS_ZLIB := $(shell $(PKG_CONFIG) --libs zlib 2>/dev/null || echo -lz)
TOOL_LDFLAGS := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc
$(BUILD)/p1: $(TOOL_OBJ) $(TOOL_SHARED_OBJ) $(BUILD)/libp1.a
	$(CC) $(LDSAN) $(TOOL_LDFLAGS) -o $@ $(TOOL_OBJ) $(TOOL_SHARED_OBJ) $(BUILD)/libp1.a $(LIBS_CRYPTO) \
	      $(LIBS_SQLITE) $(LIBS_ZLIB)

# -MMD: tests that #include a module's .c file (test_homewizard) rebuild when it changes.
$(BUILD)/tests/test_%: tests/unit/test_%.c $(BUILD)/libp1.a tests/unit/check.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -Itests/unit -o $@ $< $(BUILD)/libp1.a $(LIBS_CRYPTO)

# Unit tests of daemon modules also link the module under test.
$(BUILD)/tests/test_sim: tests/unit/test_sim.c $(BUILD)/src/sim.o $(BUILD)/src/civil.o $(BUILD)/libp1.a tests/unit/check.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/unit -o $@ $< $(BUILD)/src/sim.o $(BUILD)/src/civil.o $(BUILD)/libp1.a $(LIBS_CRYPTO)

$(BUILD)/tests/test_civil: tests/unit/test_civil.c $(BUILD)/src/civil.o $(BUILD)/libp1.a tests/unit/check.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDSAN) -Itests/unit -Isrc -o $@ $< $(BUILD)/src/civil.o $(BUILD)/libp1.a

$(BUILD)/tests/test_log: tests/unit/test_log.c $(BUILD)/src/log.o tests/unit/check.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDSAN) -Itests/unit -Isrc -o $@ $< $(BUILD)/src/log.o

$(BUILD)/tests/test_json: tests/unit/test_json.c $(BUILD)/src/json.o tests/unit/check.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/unit -o $@ $< $(BUILD)/src/json.o

$(BUILD)/tests/test_loop: tests/unit/test_loop.c $(BUILD)/src/loop.o tests/unit/check.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/unit -o $@ $< $(BUILD)/src/loop.o

$(BUILD)/tests/test_worker: tests/unit/test_worker.c $(BUILD)/src/worker.o $(BUILD)/src/loop.o tests/unit/check.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDSAN) -Itests/unit -o $@ $< $(BUILD)/src/worker.o $(BUILD)/src/loop.o -lpthread

$(BUILD)/tests/test_store: tests/unit/test_store.c $(BUILD)/src/store.o $(BUILD)/src/civil.o $(BUILD)/libp1.a tests/unit/check.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDSAN) -Itests/unit -Isrc -o $@ $< $(BUILD)/src/store.o $(BUILD)/src/civil.o $(BUILD)/libp1.a $(LIBS_SQLITE)

$(BUILD)/tests/test_outbox: tests/unit/test_outbox.c $(BUILD)/src/outbox.o $(BUILD)/src/store.o $(BUILD)/src/civil.o $(BUILD)/libp1.a tests/unit/check.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDSAN) -Itests/unit -Isrc -o $@ $< $(BUILD)/src/outbox.o $(BUILD)/src/store.o $(BUILD)/src/civil.o $(BUILD)/libp1.a $(LIBS_SQLITE)

# bench/bench_store.c: store size per reading and per year, and import speed (`make bench`).
$(BUILD)/bench_store: bench/bench_store.c $(BUILD)/src/store.o $(BUILD)/src/sim.o $(BUILD)/src/civil.o $(BUILD)/libp1.a
	$(CC) $(CFLAGS_ALL) $(LDSAN) -Isrc -o $@ $< $(BUILD)/src/store.o $(BUILD)/src/sim.o $(BUILD)/src/civil.o $(BUILD)/libp1.a $(LIBS_SQLITE)

# tests/unit/test_cost.c and bench/bench_query.c: prices, costs and history queries.
$(BUILD)/tests/test_cost: tests/unit/test_cost.c $(BUILD)/src/cost.o $(BUILD)/src/civil.o $(BUILD)/libp1.a tests/unit/check.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDSAN) -Itests/unit -Isrc -o $@ $< $(BUILD)/src/cost.o $(BUILD)/src/civil.o $(BUILD)/libp1.a $(LIBS_SQLITE)
$(BUILD)/bench_query: bench/bench_query.c $(BUILD)/src/store.o $(BUILD)/src/cost.o $(BUILD)/src/civil.o $(BUILD)/libp1.a
	$(CC) $(CFLAGS_ALL) $(LDSAN) -Isrc -o $@ $< $(BUILD)/src/store.o $(BUILD)/src/cost.o $(BUILD)/src/civil.o $(BUILD)/libp1.a $(LIBS_SQLITE)

$(BUILD)/tests/test_demand: tests/unit/test_demand.c $(BUILD)/src/demand.o tests/unit/check.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDSAN) -Itests/unit -Isrc -o $@ $< $(BUILD)/src/demand.o

# tests/unit/test_pub_mqtt.c: the MQTT / Home Assistant / InfluxDB payload builders.
PUB_PAYLOAD_OBJ := $(BUILD)/src/pub_payload.o $(BUILD)/src/reading_json.o $(BUILD)/src/json.o \
                   $(BUILD)/src/civil.o
$(BUILD)/tests/test_pub_mqtt: tests/unit/test_pub_mqtt.c $(PUB_PAYLOAD_OBJ) $(BUILD)/libp1.a tests/unit/check.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDSAN) -Itests/unit -Isrc -o $@ $< $(PUB_PAYLOAD_OBJ) $(BUILD)/libp1.a $(LIBS_CRYPTO)

# tests/unit/test_price_fetch.c: the price fetcher's URL placeholders and schedule; it links the
# daemon's modules (all but main).
$(BUILD)/tests/test_price_fetch: tests/unit/test_price_fetch.c $(filter-out $(BUILD)/src/main.o,$(DAEMON_OBJ)) $(BUILD)/gen/web_assets.o $(BUILD)/libp1.a tests/unit/check.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDSAN) -Itests/unit -Isrc -o $@ $< $(filter-out $(BUILD)/src/main.o,$(DAEMON_OBJ)) $(BUILD)/gen/web_assets.o $(BUILD)/libp1.a $(LIBS_DAEMON) $(LIBS_SQLITE) -ldl

unit: $(UNIT_BIN)

# The dashboard: web/ plus uPlot (npm, pinned by web/package-lock.json, installed by setup.sh)
# turned into a C source of gzip'd files that p1d serves at / (src/web.c).
WEB_FILES := $(wildcard web/*.html web/*.js web/*.css web/*.svg)
UPLOT_DIST := web/node_modules/uplot/dist
WEB_NPM := web/node_modules/.package-lock.json $(UPLOT_DIST)/uPlot.iife.min.js $(UPLOT_DIST)/uPlot.min.css
WEB_GEN := $(BUILD)/gen/web_assets.c
# Installed by deps-build (npm ci); when npm is unavailable the page is embedded without charts.
$(WEB_NPM): | deps-build
	@test -f $@ || echo "warning: $@ missing (npm packages not installed): the dashboard has no charts"
$(WEB_GEN): tools/embed.py $(WEB_FILES) $(WEB_NPM) | deps-build
	python3 tools/embed.py -o $@ $(WEB_FILES) '?uplot.min.js=$(UPLOT_DIST)/uPlot.iife.min.js' \
	        '?uplot.min.css=$(UPLOT_DIST)/uPlot.min.css'
$(BUILD)/gen/web_assets.o: $(WEB_GEN) src/web.h
	$(CC) $(CFLAGS_ALL) -Isrc -c $< -o $@

# p1d: every src/*.c, libp1, the embedded dashboard, and the daemon's libraries. libcurl,
# libmosquitto and libavahi-client are not linked: the publishers and the mDNS announcer that need
# them dlopen them (src/dl_curl.c, src/dl_mosquitto.c, src/dl_avahi.c), so only their -dev
# headers are needed here.
LIBS_DAEMON := $(shell $(PKG_CONFIG) --libs libmicrohttpd libcrypto zlib 2>/dev/null || \
                 echo -lmicrohttpd -lcrypto -lz)
$(BUILD)/p1d: $(DAEMON_OBJ) $(BUILD)/gen/web_assets.o $(BUILD)/libp1.a
	$(CC) $(LDSAN) -o $@ $(DAEMON_OBJ) $(BUILD)/gen/web_assets.o $(BUILD)/libp1.a $(LIBS_DAEMON) \
	      $(LIBS_SQLITE)

# `make run`: the daemon with the built-in simulated meter; Ctrl-C stops it.
run: all
	@echo "p1d: dashboard and API at http://127.0.0.1:8080/"
	$(BUILD)/p1d --source home=sim --listen 127.0.0.1:8080 --db p1d.db

test:
	@tools/setup.sh test
	@tools/run-tests.sh

fuzz: all
	@tools/fuzz.sh 60

bench: all $(BUILD)/bench_store $(BUILD)/bench_query
	@tools/setup.sh test
	@bench/run.sh

format:
	clang-format -i include/p1/*.h lib/*.c tools/*.c $(wildcard src/*.c src/*.h) tests/unit/*.c fuzz/*.c

clean:
	rm -rf build

# A Debian package of p1 and p1d for this machine's architecture: build/p1d_VERSION-1_ARCH.deb.
deb: all
	@tools/mkdeb.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/p1
	install -m 755 $(BUILD)/p1 $(DESTDIR)$(PREFIX)/bin/p1
	install -m 644 $(BUILD)/libp1.a $(DESTDIR)$(PREFIX)/lib/libp1.a
	install -m 644 include/p1/*.h $(DESTDIR)$(PREFIX)/include/p1/
	install -m 755 $(BUILD)/p1d $(DESTDIR)$(PREFIX)/bin/p1d
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man8 \
	        $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/share/doc/p1d
	install -m 644 dist/p1.1 $(DESTDIR)$(PREFIX)/share/man/man1/p1.1
	install -m 644 dist/p1d.8 $(DESTDIR)$(PREFIX)/share/man/man8/p1d.8
	sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' dist/p1d.service > $(DESTDIR)$(PREFIX)/lib/systemd/system/p1d.service
	chmod 644 $(DESTDIR)$(PREFIX)/lib/systemd/system/p1d.service
	install -m 644 dist/p1d.conf.example $(DESTDIR)$(PREFIX)/share/doc/p1d/p1d.conf.example
	install -d $(DESTDIR)$(PREFIX)/share/doc/p1d/grafana
	install -m 644 dist/grafana/p1d.json $(DESTDIR)$(PREFIX)/share/doc/p1d/grafana/p1d.json
	install -d $(DESTDIR)$(SYSCONFDIR)
	[ -e $(DESTDIR)$(SYSCONFDIR)/p1d.conf ] || install -m 644 dist/p1d.conf.example $(DESTDIR)$(SYSCONFDIR)/p1d.conf

-include $(LIB_OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(DAEMON_OBJ:.o=.d) $(wildcard $(UNIT_BIN:=.d))
