# runtime/build.mk: libcodensm-rt, shared (versioned soname) and static.
# Never built with -finstrument-functions: the runtime must not trace itself.

RT_SRC  := $(wildcard runtime/src/*.c)
RT_PIC_OBJ := $(RT_SRC:runtime/src/%.c=$(B)/obj/rt-pic/%.o)
# libcurl, libdw, libelf and Zydis: headers only.  transport.c dlopen()s
# libcurl on the flusher thread, dw.c libdw on the first function the symbol
# cache does not name (dw.h says why), insn.c Zydis on the first exit the
# compiler tail-jumped (insn.h).
RT_CFLAGS := $(shell $(PKG_CONFIG) --cflags libcurl jansson libdw libelf 2>/dev/null) -pthread \
	-fvisibility=hidden -fno-instrument-functions
RT_LIBS := $(shell $(PKG_CONFIG) --libs jansson 2>/dev/null) -pthread -ldl

RT_SO     := $(B)/lib/libcodensm-rt.so.$(RT_VERSION)
RT_SO_LNK := $(B)/lib/libcodensm-rt.so $(B)/lib/$(RT_SONAME)
RT_A      := $(B)/lib/libcodensm-rt.a
RT_PC     := $(B)/lib/pkgconfig/codensm-rt.pc

# What a program links against the uninstalled tree (tests, samples, bench):
# the same flags the installed .pc gives, pointing at $(B)/lib.
RT_LINK   := -L$(B)/lib -Wl,-rpath,$(abspath $(B)/lib) -Wl,--push-state,--no-as-needed \
	-Wl,-u,__cyg_profile_func_enter -Wl,-u,__cyg_profile_func_exit -lcodensm-rt -Wl,--pop-state
RT_LINK_STATIC := -Wl,-u,__cyg_profile_func_enter -Wl,-u,__cyg_profile_func_exit \
	$(RT_A) $(RT_LIBS)

all: runtime
.PHONY: runtime
runtime: $(RT_SO_LNK) $(RT_A) $(RT_PC)

$(B)/obj/rt-pic/%.o: runtime/src/%.c runtime/src/internal.h runtime/src/contract.h runtime/include/codensm.h
	$(call msg,CC,$<)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(RT_CFLAGS) -fPIC -MMD -c $< -o $@

$(RT_SO): $(RT_PIC_OBJ)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) -shared -Wl,-soname,$(RT_SONAME) -Wl,-z,nodelete -Wl,--no-undefined -o $@ $^ $(LDFLAGS_ALL) $(RT_LIBS)

$(RT_SO_LNK): $(RT_SO)
	$(Q)ln -sf $(notdir $(RT_SO)) $@

# The static archive is built from PIC objects too, so it links into PIE
# executables (Debian's default) and into other shared libraries.
$(RT_A): $(RT_PIC_OBJ)
	$(call msg,AR,$@)
	@mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $^

$(RT_PC): runtime/codensm-rt.pc.in
	@mkdir -p $(@D)
	$(Q)sed -e 's|@PREFIX@|$(abspath $(B))|' -e 's|@INCLUDEDIR@|$(abspath runtime/include)|' \
		-e 's|@LIBDIR@|$(abspath $(B)/lib)|' -e 's|@VERSION@|$(RT_VERSION)|' $< > $@

-include $(RT_PIC_OBJ:.o=.d)

install: runtime
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 runtime/include/codensm.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(RT_SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(notdir $(RT_SO)) $(DESTDIR)$(PREFIX)/lib/$(RT_SONAME)
	ln -sf $(notdir $(RT_SO)) $(DESTDIR)$(PREFIX)/lib/libcodensm-rt.so
	install -m 644 $(RT_A) $(DESTDIR)$(PREFIX)/lib/
	install -d $(DESTDIR)$(PREFIX)/share/man/man3
	install -m 644 docs/man/libcodensm-rt.3 $(DESTDIR)$(PREFIX)/share/man/man3/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@INCLUDEDIR@|$(PREFIX)/include|' \
		-e 's|@LIBDIR@|$(PREFIX)/lib|' -e 's|@VERSION@|$(RT_VERSION)|' \
		runtime/codensm-rt.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/codensm-rt.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/codensm.h \
		$(DESTDIR)$(PREFIX)/lib/libcodensm-rt.so* \
		$(DESTDIR)$(PREFIX)/lib/libcodensm-rt.a \
		$(DESTDIR)$(PREFIX)/share/man/man3/libcodensm-rt.3 \
		$(DESTDIR)$(PREFIX)/lib/pkgconfig/codensm-rt.pc
