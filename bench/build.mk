# bench/build.mk: every workload built every way the benchmarks compare, and the
# `make bench` entry point (bench/run.py runs them and prints the table).
#
# Variants of each workload (same sources, same -O2 -g):
#   -base   no instrumentation
#   -fi     -finstrument-functions, glibc's empty hooks (what uftrace records)
#   -empty  -finstrument-functions + bench/empty_hooks.c as a shared library
#   -agg    -finstrument-functions + bench/mini_agg.c as a shared library
#   -filter -finstrument-functions + bench/mini_filter.c as a shared library
#   -rt     -finstrument-functions + libcodensm-rt (RT_LINK, shared)
#   -rts    -finstrument-functions + libcodensm-rt.a (RT_LINK_STATIC)
#   -pg     gprof's -pg
#   -nop    -empty with every hook call made a NOP and every tail jump to
#           the exit hook a ret (bench/nop_hooks.py): the code's shape
#           alone, the best any call-site patching can do
# The hooks libraries are shared like the runtime, so all three pay the
# same PLT call and differ only in what the hook does.  Bench builds never
# take the sanitizer flags: they measure the release build.

BB := $(B)/bench
BENCH_CFLAGS := -O2 -g -pthread
BENCH_FI := -finstrument-functions
BENCH_LIB := $(BB)/lib
bench_link = -L$(BENCH_LIB) -Wl,-rpath,$(abspath $(BENCH_LIB)) \
	-Wl,--push-state,--no-as-needed -l$(1) -Wl,--pop-state

$(BENCH_LIB)/libbench-empty.so: bench/empty_hooks.c
	$(call msg,CC,$<)
	@mkdir -p $(@D)
	$(Q)$(CC) -O2 -g -fPIC -shared -fno-instrument-functions -o $@ $<

$(BENCH_LIB)/libbench-agg.so: bench/mini_agg.c
	$(call msg,CC,$<)
	@mkdir -p $(@D)
	$(Q)$(CC) -O2 -g -fPIC -shared -fno-instrument-functions -pthread -o $@ $<

$(BENCH_LIB)/libbench-filter.so: bench/mini_filter.c
	$(call msg,CC,$<)
	@mkdir -p $(@D)
	$(Q)$(CC) -O2 -g -fPIC -shared -fno-instrument-functions -o $@ $<

# $(1) name, $(2) prerequisites, $(3) sources, $(4) extra flags.
define bench_variants
$(BB)/$(1)-base: $(2)
	$$(call msg,CC,$$@)
	@mkdir -p $$(@D)
	$$(Q)$$(CC) $$(BENCH_CFLAGS) $(4) -o $$@ $(3)
$(BB)/$(1)-fi: $(2)
	$$(call msg,CC,$$@)
	@mkdir -p $$(@D)
	$$(Q)$$(CC) $$(BENCH_CFLAGS) $$(BENCH_FI) $(4) -o $$@ $(3)
$(BB)/$(1)-empty: $(2) $(BENCH_LIB)/libbench-empty.so
	$$(call msg,CC,$$@)
	@mkdir -p $$(@D)
	$$(Q)$$(CC) $$(BENCH_CFLAGS) $$(BENCH_FI) $(4) -o $$@ $(3) $$(call bench_link,bench-empty)
$(BB)/$(1)-agg: $(2) $(BENCH_LIB)/libbench-agg.so
	$$(call msg,CC,$$@)
	@mkdir -p $$(@D)
	$$(Q)$$(CC) $$(BENCH_CFLAGS) $$(BENCH_FI) $(4) -o $$@ $(3) $$(call bench_link,bench-agg)
$(BB)/$(1)-filter: $(2) $(BENCH_LIB)/libbench-filter.so
	$$(call msg,CC,$$@)
	@mkdir -p $$(@D)
	$$(Q)$$(CC) $$(BENCH_CFLAGS) $$(BENCH_FI) $(4) -o $$@ $(3) $$(call bench_link,bench-filter)
$(BB)/$(1)-rt: $(2) $(RT_SO_LNK)
	$$(call msg,CC,$$@)
	@mkdir -p $$(@D)
	$$(Q)$$(CC) $$(BENCH_CFLAGS) $$(BENCH_FI) $(4) -o $$@ $(3) $$(RT_LINK)
$(BB)/$(1)-rts: $(2) $(RT_A)
	$$(call msg,CC,$$@)
	@mkdir -p $$(@D)
	$$(Q)$$(CC) $$(BENCH_CFLAGS) $$(BENCH_FI) $(4) -o $$@ $(3) $$(RT_LINK_STATIC)
$(BB)/$(1)-pg: $(2)
	$$(call msg,CC,$$@)
	@mkdir -p $$(@D)
	$$(Q)$$(CC) $$(BENCH_CFLAGS) -pg $(4) -o $$@ $(3)
endef

$(BB)/%-nop: $(BB)/%-empty bench/nop_hooks.py
	$(call msg,NOP,$@)
	$(Q)python3 bench/nop_hooks.py $< $@ >/dev/null && chmod +x $@

BENCH_KINDS := base fi empty agg filter rt rts pg nop
BENCH_NORT_KINDS := base fi empty agg filter pg nop

$(eval $(call bench_variants,calls,bench/calls.c,bench/calls.c,))
$(eval $(call bench_variants,manyfn,bench/manyfn.c,bench/manyfn.c,))

# The real program: bzip2 from its Debian source package, compiled the way
# its Makefile does (-O2 -g, large-file support) into one executable.
BZ_DIR := $(BB)/real/bzip2
BZ_STAMP := $(BB)/real/bzip2.fetched
BZ_SRC := $(addprefix $(BZ_DIR)/,blocksort.c huffman.c crctable.c randtable.c \
	compress.c decompress.c bzlib.c bzip2.c)
$(BZ_STAMP): build-aux/fetch-source.sh
	$(call msg,FETCH,bzip2)
	@mkdir -p $(@D)
	$(Q)bash build-aux/fetch-source.sh bzip2 $(BB)/real
	@touch $@
$(eval $(call bench_variants,bzip2,$(BZ_STAMP),$(BZ_SRC),-w -D_FILE_OFFSET_BITS=64))

# A real server (run.py --only redis): redis-server and redis-benchmark
# from Debian's redis source, built once each way by redis's own Makefile
# (bench/redis-build.sh): plain, and -finstrument-functions with the
# shared runtime, which a new runtime build does not need to relink
# (redis's make runs in its own folder: the runtime's -L is made absolute).
REDIS_STAMP := $(BB)/real/redis.fetched
$(REDIS_STAMP): build-aux/fetch-source.sh
	$(call msg,FETCH,redis)
	@mkdir -p $(@D)
	$(Q)bash build-aux/fetch-source.sh redis $(BB)/real
	@touch $@
$(BB)/redis-base/src/redis-server: $(REDIS_STAMP) bench/redis-build.sh
	$(call msg,BUILD,$@)
	$(Q)bash bench/redis-build.sh $(BB)/real/redis $(BB)/redis-base plain
$(BB)/redis-rt/src/redis-server: $(REDIS_STAMP) bench/redis-build.sh | $(RT_SO_LNK)
	$(call msg,BUILD,$@)
	$(Q)bash bench/redis-build.sh $(BB)/real/redis $(BB)/redis-rt inst \
		"$(subst -L$(B)/lib,-L$(abspath $(B)/lib),$(RT_LINK))"
REDIS_BINS := $(BB)/redis-base/src/redis-server $(BB)/redis-rt/src/redis-server

# The Lua interpreter (run.py's lua workload), built plain and instrumented
# by tests/real/build.sh (its cache: rebuilt only when that script, the
# compiler or the runtime's link flags change); -empty relinks the
# instrumented objects with the empty hooks instead of the runtime.
LUA_REAL := $(B)/real/lua
$(LUA_REAL)/stamp: tests/real/build.sh build-aux/fetch-source.sh | $(RT_SO_LNK) $(RT_PC)
	$(call msg,BUILD,lua)
	$(Q)CODENSM_BUILD=$(B) bash tests/real/build.sh lua >/dev/null
$(BB)/lua-base: $(LUA_REAL)/stamp
	@mkdir -p $(@D)
	$(Q)cp $(LUA_REAL)/plain/src/lua $@
$(BB)/lua-rt: $(LUA_REAL)/stamp
	@mkdir -p $(@D)
	$(Q)cp $(LUA_REAL)/inst/src/lua $@
$(BB)/lua-empty: $(LUA_REAL)/stamp $(BENCH_LIB)/libbench-empty.so
	$(call msg,LD,$@)
	$(Q)$(CC) -o $@ $(LUA_REAL)/inst/src/lua.o $(LUA_REAL)/inst/src/liblua.a \
		$(call bench_link,bench-empty) -lm -Wl,-E -ldl
LUA_BINS := $(BB)/lua-base $(BB)/lua-rt $(BB)/lua-empty $(BB)/lua-nop

# The flusher's ship rate: links the static archive to reach the payload
# builder (hidden in the shared library).
$(BB)/payload_rate: bench/payload_rate.c $(RT_A) runtime/src/internal.h
	$(call msg,CC,$<)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS_ALL) -Iruntime/src -O2 -g -fno-instrument-functions -pthread \
		-o $@ $< $(RT_A) $(RT_LIBS) -lm

# Memory per thread alive: only the baseline and the runtime are compared.
$(BB)/threads-base: bench/threads.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(BENCH_CFLAGS) -o $@ $<
$(BB)/threads-rt: bench/threads.c $(RT_SO_LNK)
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(BENCH_CFLAGS) $(BENCH_FI) -o $@ $< $(RT_LINK)

# What probes cost (run.py --only probes): the shared runtime only.
$(BB)/probes-rt: bench/probes.c $(RT_SO_LNK)
	$(call msg,CC,$<)
	@mkdir -p $(@D)
	$(Q)$(CC) $(BENCH_CFLAGS) -Iruntime/include $(BENCH_FI) -o $@ $< $(RT_LINK)

BENCH_WORKLOADS := calls manyfn bzip2
BENCH_NORT_BINS := $(foreach w,$(BENCH_WORKLOADS),$(foreach k,$(BENCH_NORT_KINDS),$(BB)/$(w)-$(k)))
BENCH_BINS := $(foreach w,$(BENCH_WORKLOADS),$(foreach k,$(BENCH_KINDS),$(BB)/$(w)-$(k))) \
	$(BB)/payload_rate $(BB)/threads-base $(BB)/threads-rt $(BB)/probes-rt $(REDIS_BINS) $(LUA_BINS)

.PHONY: bench bench-bins bench-nort
# Everything that does not need the runtime (for building ahead of it).
bench-nort: $(BENCH_NORT_BINS)
bench-bins: $(BENCH_BINS)

# BENCH_ARGS is passed to the runner, e.g. BENCH_ARGS="--runs 3 --quick".
# The load rows drive the server with tests/load/'s generator.
bench: bench-bins $(B)/bin/codensm-server $(B)/tests/load/loadgen
	$(Q)python3 bench/run.py --build $(B) $(BENCH_ARGS)
