# tests/build.mk: the unit tests (cmocka, one file per runtime module) and the
# `make test` entry point.  Integration and browser tests are Python scripts
# under tests/ driven by tests/run.sh; everything speaks TAP, and run.sh ends
# with one line "N passed, N failed".

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/unit/%)
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)

.PHONY: unit-tests test test-asan test-tsan
unit-tests: $(UNIT_BIN)

# Unit tests link the static archive, so they can call the runtime's
# private (hidden) functions directly.
$(B)/tests/unit/%: tests/unit/%.c $(RT_A) runtime/src/internal.h tests/unit/hooks.h
	$(call msg,CC,$<)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS_ALL) -Iruntime/src $(CFLAGS_ALL) -fno-instrument-functions -pthread \
		$< $(filter %.o,$^) -o $@ $(LDFLAGS_ALL) $(UNIT_LDFLAGS) $(RT_A) $(RT_LIBS) $(CMOCKA_LIBS) -lm

# test_sample runs the hooks on a clock it sets itself (see the file).
$(B)/tests/unit/test_sample: UNIT_LDFLAGS := -Wl,--wrap=cnsmp_clock_fallback_now

# test_symbols names functions of fixtures built the way a user builds
# (-g, from their own folder), with the folder mapped to /src/shop so the
# expected names do not depend on where the tree is checked out; files
# under nodebug/ are built without -g.  C++ without exceptions or RTTI
# needs no libstdc++ at link time.
UNIT_FIXTURE_SRC := $(wildcard tests/unit/fixtures/*/*.c tests/unit/fixtures/*/*.cpp)
UNIT_FIXTURE_OBJ := $(UNIT_FIXTURE_SRC:tests/unit/fixtures/%=$(B)/tests/unit/fixtures/%.o)
$(B)/tests/unit/test_symbols: $(UNIT_FIXTURE_OBJ)
# ... and fails the runtime's allocations on demand (see the file).
$(B)/tests/unit/test_symbols: UNIT_LDFLAGS := -Wl,--wrap=malloc -Wl,--wrap=realloc
$(B)/tests/unit/fixtures/%.o: tests/unit/fixtures/%
	$(call msg,CC,$<)
	@mkdir -p $(@D)
	$(Q)cd tests/unit/fixtures && $(if $(filter %.cpp,$<),$(CXX) -fno-exceptions -fno-rtti,$(CC)) \
		$(if $(filter nodebug/%,$*),-g0,-g) -O0 -fno-instrument-functions \
		-fdebug-prefix-map=$(CURDIR)/tests/unit/fixtures=/src/shop -c $* -o $(abspath $@)

test: deps-ok
	@$(MAKE) --no-print-directory all unit-tests
	@bash tests/run.sh

# The sanitizer passes run the unit tests and the runtime integration tests
# against a runtime built with ASan+UBSan, and with TSan (tests/run.sh calls these).
test-asan:
	@$(MAKE) --no-print-directory ASAN=1 runtime unit-tests samples
test-tsan:
	@$(MAKE) --no-print-directory TSAN=1 runtime unit-tests samples
