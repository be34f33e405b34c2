# tools/build.mk: the programs under tools/: codensm-server (the local ingest
# server, its SQLite store and the dashboard) and the codensm CLI.

SRV_SRC  := $(wildcard tools/server/*.c)
SRV_OBJ  := $(SRV_SRC:tools/server/%.c=$(B)/obj/server/%.o)
SRV_BIN  := $(B)/bin/codensm-server
SRV_DEPS := libmicrohttpd sqlite3 libpq jansson libcrypto libgvc libcgraph
# -Iruntime/src: contract.h, what the server and the runtime agree on.
SRV_CFLAGS := -Iruntime/src $(shell $(PKG_CONFIG) --cflags $(SRV_DEPS) 2>/dev/null) -pthread
SRV_LIBS := $(shell $(PKG_CONFIG) --libs $(SRV_DEPS) 2>/dev/null) -pthread -lm

# ---- the codensm CLI (tools/cli/, its own engineer's): fill in here ----------
# CLI_SRC lists tools/cli/*.c; they build into $(B)/bin/codensm with CLI_CFLAGS
# and CLI_LIBS.  Empty sources: no CLI target.
# `codensm doctor` reads ELF/DWARF through the runtime's own symbols, rules
# and config code, so the CLI links the static archive (its hidden cnsmp_*
# functions are reachable from there) and names functions as the runtime does.
CLI_SRC  ?= $(wildcard tools/cli/*.c)
CLI_OBJ  := $(CLI_SRC:tools/cli/%.c=$(B)/obj/cli/%.o)
CLI_BIN  := $(if $(CLI_SRC),$(B)/bin/codensm)
CLI_CFLAGS := -Iruntime/src -fno-instrument-functions \
	$(shell $(PKG_CONFIG) --cflags libcurl jansson libelf 2>/dev/null)
CLI_LIBS := $(RT_A) $(RT_LIBS) $(shell $(PKG_CONFIG) --libs libcurl libelf 2>/dev/null)
$(CLI_BIN): $(RT_A)
# -------------------------------------------------------------------------------

.PHONY: tools server cli install-tools uninstall-tools
all: tools
tools: server cli
server: $(SRV_BIN)
cli: $(CLI_BIN)

$(B)/obj/server/%.o: tools/server/%.c tools/server/server.h runtime/src/contract.h
	$(call msg,CC,$<)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(SRV_CFLAGS) -MMD -c $< -o $@

$(SRV_BIN): $(SRV_OBJ)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL) $(SRV_LIBS)

$(B)/obj/cli/%.o: tools/cli/%.c
	$(call msg,CC,$<)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(CLI_CFLAGS) -MMD -c $< -o $@

$(B)/bin/codensm: $(CLI_OBJ)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL) $(CLI_LIBS)

-include $(SRV_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

# The server's systemd unit goes to PREFIX/lib/systemd/system (systemd reads
# /usr/local/lib/systemd/system too), installed, never enabled.
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
TOOLS_MAN1 := docs/man/codensm-server.1 $(if $(CLI_BIN),docs/man/codensm.1)

install: install-tools
install-tools: tools
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/codensm/web \
		$(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(SYSTEMD_UNIT_DIR)
	install -m 755 $(SRV_BIN) $(DESTDIR)$(PREFIX)/bin/
	$(if $(CLI_BIN),install -m 755 $(CLI_BIN) $(DESTDIR)$(PREFIX)/bin/)
	cp -R tools/server/web/. $(DESTDIR)$(PREFIX)/share/codensm/web/
	chmod -R u=rwX,go=rX $(DESTDIR)$(PREFIX)/share/codensm/web
	install -m 644 $(TOOLS_MAN1) $(DESTDIR)$(PREFIX)/share/man/man1/
	sed 's|@BINDIR@|$(PREFIX)/bin|' tools/server/codensm-server.service.in \
		> $(DESTDIR)$(SYSTEMD_UNIT_DIR)/codensm-server.service
	chmod 644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/codensm-server.service

uninstall: uninstall-tools
uninstall-tools:
	rm -f $(DESTDIR)$(PREFIX)/bin/codensm-server $(DESTDIR)$(PREFIX)/bin/codensm \
		$(DESTDIR)$(PREFIX)/share/man/man1/codensm-server.1 \
		$(DESTDIR)$(PREFIX)/share/man/man1/codensm.1 \
		$(DESTDIR)$(SYSTEMD_UNIT_DIR)/codensm-server.service
	rm -rf $(DESTDIR)$(PREFIX)/share/codensm/web
	-rmdir $(DESTDIR)$(PREFIX)/share/codensm 2>/dev/null
