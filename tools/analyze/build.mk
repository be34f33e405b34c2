# tools/analyze/build.mk: codensm-analyze, the libclang front end that
# `codensm analyze` runs (docs/flows.md).  A program of its own so that
# the rest of the CLI never loads libclang and LLVM.  It links the static
# runtime for the naming rules (rules.c) and the binary's function list
# (symbols.c), so its names are the runtime's.

LLVM_CONFIG ?= $(firstword $(wildcard /usr/lib/llvm-14/bin/llvm-config) $(shell command -v llvm-config 2>/dev/null))
AN_SRC := $(wildcard tools/analyze/*.c)
AN_OBJ := $(AN_SRC:tools/analyze/%.c=$(B)/obj/analyze/%.o)
AN_BIN := $(if $(LLVM_CONFIG),$(B)/bin/codensm-analyze)
AN_CFLAGS := -Iruntime/src -fno-instrument-functions -I$(shell $(LLVM_CONFIG) --includedir 2>/dev/null) \
	$(shell $(PKG_CONFIG) --cflags jansson libelf 2>/dev/null)
AN_LIBS := -L$(shell $(LLVM_CONFIG) --libdir 2>/dev/null) -Wl,-rpath,$(shell $(LLVM_CONFIG) --libdir 2>/dev/null) -lclang \
	$(RT_A) $(RT_LIBS) $(shell $(PKG_CONFIG) --libs jansson libelf 2>/dev/null)

.PHONY: analyze install-analyze uninstall-analyze
all: analyze
tools: analyze
analyze: $(AN_BIN)

$(B)/obj/analyze/%.o: tools/analyze/%.c
	$(call msg,CC,$<)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(AN_CFLAGS) -MMD -c $< -o $@

$(B)/bin/codensm-analyze: $(AN_OBJ) $(RT_A)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) -o $@ $(AN_OBJ) $(LDFLAGS_ALL) $(AN_LIBS)

-include $(AN_OBJ:.o=.d)

install: install-analyze
install-analyze: analyze
	install -d $(DESTDIR)$(PREFIX)/bin
	$(if $(AN_BIN),install -m 755 $(AN_BIN) $(DESTDIR)$(PREFIX)/bin/)
uninstall: uninstall-analyze
uninstall-analyze:
	rm -f $(DESTDIR)$(PREFIX)/bin/codensm-analyze
