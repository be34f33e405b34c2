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
$(B)/tests/unit/%: tests/unit/%.c $(RT_A) runtime/src/internal.h
	$(call msg,CC,$<)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS_ALL) -Iruntime/src $(CFLAGS_ALL) -fno-instrument-functions -pthread \
		$< -o $@ $(LDFLAGS_ALL) $(RT_A) $(RT_LIBS) $(CMOCKA_LIBS) -lm

test: deps-ok
	@$(MAKE) --no-print-directory all unit-tests
	@bash tests/run.sh

# The sanitizer passes run the unit tests and the runtime integration tests
# against a runtime built with ASan+UBSan, and with TSan (tests/run.sh calls these).
test-asan:
	@$(MAKE) --no-print-directory ASAN=1 runtime unit-tests samples
test-tsan:
	@$(MAKE) --no-print-directory TSAN=1 runtime unit-tests samples
