# codensm: one Makefile for the runtime, the tools, the samples, the tests
# and the benchmarks.  Each folder adds its rules in its own build.mk; this
# file holds the flags and the targets a user types.
#
#   make            build everything into build/ (ASAN=1 -> build-asan/, TSAN=1 -> build-tsan/)
#   make test       every test that must stay true (unit, integration, browser,
#                   sanitizer builds, bounded fuzz and load runs)
#   make demo       build, start the local server, run the samples, print the dashboard address
#   make bench      the benchmarks (not part of test)
#   make install PREFIX=/usr/local DESTDIR=   /   make uninstall
#                   the runtime, its header and .pc, the tools, the man pages
#                   and a systemd unit for codensm-server (not enabled)
#   make deps       (root) install the Debian packages the build and the tests need
#   V=1 shows the commands, DEBUG=1 builds without optimisation.

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
CXX     ?= c++
PKG_CONFIG ?= pkg-config

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-8s %s\n' $(1) $(2)
endif

OPT := -O2
ifeq ($(DEBUG),1)
OPT := -O0
endif

B := build
SAN :=
ifeq ($(ASAN),1)
B := build-asan
SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
endif
ifeq ($(TSAN),1)
B := build-tsan
SAN := -fsanitize=thread
endif

WARN    := -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes
CFLAGS  ?=
CPPFLAGS_ALL := -D_GNU_SOURCE -Iruntime/include
CFLAGS_ALL   := -std=c11 $(OPT) -g $(WARN) $(SAN) $(CFLAGS)
LDFLAGS_ALL  := $(SAN) $(LDFLAGS)

RT_VERSION := 0.1.0
RT_SONAME  := libcodensm-rt.so.0

.PHONY: all test demo bench install uninstall clean help deps deps-ok
all:

include runtime/build.mk
-include tools/build.mk
-include tools/analyze/build.mk
-include samples/build.mk
-include tests/build.mk
-include bench/build.mk
-include tests/fuzz/build.mk

help:
	@sed -n '4,14p' Makefile | sed 's/^# \{0,1\}//'

deps:
	bash .ci/deps

# make, make install and make uninstall need only the -dev packages and never
# install anything.  demo and test install the packages themselves (.ci/deps)
# on a machine that lacks one of the libraries or commands the suites use.
DEPS_PC  := libcurl jansson libdw libelf libmicrohttpd sqlite3 libcrypto cmocka libgvc libcgraph libpq
DEPS_CMD := cc c++ clang clang++ python3 chromium curl openssl valgrind uftrace \
	dpkg-source groff man promtool /usr/lib/postgresql/15/bin/initdb
CLANG_C_INDEX := /usr/lib/llvm-14/include/clang-c/Index.h
# Zydis (libzydis-dev) has no .pc: its header says it is there.
ZYDIS_H := /usr/include/Zydis/Decoder.h
deps-ok:
	@$(PKG_CONFIG) --exists $(DEPS_PC) 2>/dev/null && \
		(for c in $(DEPS_CMD); do command -v $$c >/dev/null || exit 1; done) && \
		test -f /usr/share/javascript/chart.js/chart.min.js && test -f $(CLANG_C_INDEX) && test -f $(ZYDIS_H) || bash .ci/deps

clean:
	rm -rf build build-asan build-tsan tests/artifacts

demo: deps-ok
	@$(MAKE) --no-print-directory all
	@bash tools/demo.sh
