# tests/fuzz/build.mk: the hostile-input tools of `make test`: the libFuzzer
# targets (tests/fuzz/fuzz_*.c, built with clang, ASan and UBSan, straight
# from the sources they exercise) and the load generator (tests/load/).
# tests/suites/fuzz.sh and load.sh build these through `make fuzz-tools`.

FUZZ_CC     ?= clang
FUZZ_FLAGS  := -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -D_GNU_SOURCE -Iruntime/include
FUZZ_SRV_SRC := $(filter-out tools/server/main.c tools/server/http.c,$(wildcard tools/server/*.c))
# Through the HTTP layer: every server module but main.c.
FUZZ_HTTP_SRC := $(filter-out tools/server/main.c,$(wildcard tools/server/*.c))
FUZZ_CFG_SRC := runtime/src/config.c runtime/src/log.c runtime/src/rules.c
# The index reader and writer, and index.c for cnsmp_index_free.
FUZZ_SYM_SRC := runtime/src/symcache.c runtime/src/index.c \
	runtime/src/spool.c runtime/src/log.c runtime/src/rules.c
FUZZ_BIN    := $(B)/fuzz/fuzz_ingest $(B)/fuzz/fuzz_http $(B)/fuzz/fuzz_config \
	$(B)/fuzz/fuzz_symcache
LOADGEN_BIN := $(B)/tests/load/loadgen

.PHONY: fuzz-tools
fuzz-tools: $(FUZZ_BIN) $(LOADGEN_BIN)

$(B)/fuzz/fuzz_ingest: tests/fuzz/fuzz_ingest.c tests/fuzz/store.h $(FUZZ_SRV_SRC) tools/server/server.h runtime/src/contract.h
	$(call msg,FUZZ,$@)
	@mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -Itools/server -Iruntime/src $(shell $(PKG_CONFIG) --cflags sqlite3 libpq jansson libcrypto libgvc libcgraph) \
		tests/fuzz/fuzz_ingest.c $(FUZZ_SRV_SRC) -o $@ \
		$(shell $(PKG_CONFIG) --libs sqlite3 libpq jansson libcrypto libgvc libcgraph) -pthread -lm

$(B)/fuzz/fuzz_http: tests/fuzz/fuzz_http.c tests/fuzz/store.h $(FUZZ_HTTP_SRC) tools/server/server.h
	$(call msg,FUZZ,$@)
	@mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -Itools/server -Iruntime/src \
		$(shell $(PKG_CONFIG) --cflags libmicrohttpd sqlite3 libpq jansson libcrypto libgvc libcgraph) \
		tests/fuzz/fuzz_http.c $(FUZZ_HTTP_SRC) -o $@ \
		$(shell $(PKG_CONFIG) --libs libmicrohttpd sqlite3 libpq jansson libcrypto libgvc libcgraph) -pthread -lm

$(B)/fuzz/fuzz_config: tests/fuzz/fuzz_config.c $(FUZZ_CFG_SRC) runtime/src/internal.h
	$(call msg,FUZZ,$@)
	@mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -Iruntime/src \
		tests/fuzz/fuzz_config.c $(FUZZ_CFG_SRC) -o $@ -lm

$(B)/fuzz/fuzz_symcache: tests/fuzz/fuzz_symcache.c $(FUZZ_SYM_SRC) runtime/src/internal.h
	$(call msg,FUZZ,$@)
	@mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -Iruntime/src $(shell $(PKG_CONFIG) --cflags libdw) \
		tests/fuzz/fuzz_symcache.c $(FUZZ_SYM_SRC) -o $@ -pthread -ldl

$(LOADGEN_BIN): tests/load/loadgen.c
	$(call msg,CC,$<)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(shell $(PKG_CONFIG) --cflags libcurl) $< -o $@ \
		$(LDFLAGS_ALL) $(shell $(PKG_CONFIG) --libs libcurl) -pthread -lm
