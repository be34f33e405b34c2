# samples/build.mk: the sample programs, built the way a user builds theirs:
# `-finstrument-functions -g`, linked with the runtime's pkg-config flags.
#
# Each source is compiled from inside its sample's folder, so its DWARF
# compilation directory is that folder and the runtime names its functions
# from paths relative to it ("checkout/cart.c: cart_total" is
# "checkout.cart.cart_total").  Outputs go to $(B)/samples/:
#
#   shop              C service, two threads, shared runtime ($(RT_LINK))
#   shop-static       the same objects, static runtime ($(RT_LINK_STATIC))
#   shop-ldflags      the pkg-config flags BEFORE the objects, with
#                     -Wl,--as-needed (Debian's default): the hooks must
#                     still bind to the runtime, not to glibc's empty ones
#   shop-plain        no instrumentation, no runtime: the reference output
#   geometry          C++ with namespaces, overloads and exceptions (g++)
#   geometry-clang    the same with clang++ (clang calls no exit hook while
#                     unwinding), when clang++ is installed (not with ASAN/TSAN)
#   geometry-plain    no instrumentation
#   host + libdiscounts.so   a program that dlopen()s an instrumented library

SAMPLE_FLAGS := -O1 -g -finstrument-functions -pthread $(SAN) -I$(abspath runtime/include)
SAMPLE_CFLAGS := -std=gnu11 $(SAMPLE_FLAGS) -Wall -Wextra
SAMPLE_CXXFLAGS := -std=c++17 $(SAMPLE_FLAGS) -Wall -Wextra
PLAIN_FLAGS = $(filter-out -finstrument-functions,$(1))
SB := $(B)/samples
SO := $(B)/obj/samples
CLANGXX := $(shell command -v clang++ 2>/dev/null)

SHOP_SRC := $(wildcard samples/shop/*.c samples/shop/*/*.c)
SHOP_OBJ := $(SHOP_SRC:samples/shop/%.c=$(SO)/shop/%.o)
SHOP_PLAIN_OBJ := $(SHOP_SRC:samples/shop/%.c=$(SO)/shop-plain/%.o)
GEO_SRC := $(wildcard samples/geometry/*.cpp samples/geometry/*/*.cpp)
GEO_OBJ := $(GEO_SRC:samples/geometry/%.cpp=$(SO)/geometry/%.o)
GEO_CLANG_OBJ := $(GEO_SRC:samples/geometry/%.cpp=$(SO)/geometry-clang/%.o)
GEO_PLAIN_OBJ := $(GEO_SRC:samples/geometry/%.cpp=$(SO)/geometry-plain/%.o)

SAMPLES := $(SB)/shop $(SB)/shop-static $(SB)/shop-ldflags $(SB)/shop-plain \
	$(SB)/geometry $(SB)/geometry-plain $(SB)/host $(SB)/libdiscounts.so
# Not in sanitizer builds: clang's sanitizer runtime and gcc's (which the
# runtime library was built with) refuse to share a process.
ifneq ($(CLANGXX),)
ifeq ($(SAN),)
SAMPLES += $(SB)/geometry-clang
endif
endif

.PHONY: samples
all: samples
samples: $(SAMPLES)

$(SO)/shop/%.o: samples/shop/%.c samples/shop/shop.h runtime/include/codensm.h
	$(call msg,CC,$<)
	@mkdir -p $(@D)
	$(Q)cd samples/shop && $(CC) $(SAMPLE_CFLAGS) -c $*.c -o $(abspath $@)

$(SO)/shop-plain/%.o: samples/shop/%.c samples/shop/shop.h runtime/include/codensm.h
	$(call msg,CC,$<)
	@mkdir -p $(@D)
	$(Q)cd samples/shop && $(CC) $(call PLAIN_FLAGS,$(SAMPLE_CFLAGS)) -c $*.c -o $(abspath $@)

$(SB)/shop: $(SHOP_OBJ) $(RT_SO_LNK)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) -o $@ $(SHOP_OBJ) $(LDFLAGS_ALL) $(RT_LINK) -pthread

$(SB)/shop-static: $(SHOP_OBJ) $(RT_A)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) -o $@ $(SHOP_OBJ) $(LDFLAGS_ALL) $(RT_LINK_STATIC) -pthread

# The library flags first, as a build system that appends them to LDFLAGS
# does, and straight from the .pc file (plus an rpath for the build tree).
$(SB)/shop-ldflags: $(SHOP_OBJ) $(RT_SO_LNK) $(RT_PC)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) -Wl,--as-needed $$(PKG_CONFIG_PATH=$(abspath $(B)/lib/pkgconfig) \
		$(PKG_CONFIG) --libs codensm-rt) -Wl,-rpath,$(abspath $(B)/lib) \
		$(LDFLAGS_ALL) -o $@ $(SHOP_OBJ) -pthread

$(SB)/shop-plain: $(SHOP_PLAIN_OBJ)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL) -pthread

$(SO)/geometry/%.o: samples/geometry/%.cpp samples/geometry/shapes/shapes.h
	$(call msg,CXX,$<)
	@mkdir -p $(@D)
	$(Q)cd samples/geometry && $(CXX) $(SAMPLE_CXXFLAGS) -c $*.cpp -o $(abspath $@)

$(SO)/geometry-clang/%.o: samples/geometry/%.cpp samples/geometry/shapes/shapes.h
	$(call msg,CXX,$<)
	@mkdir -p $(@D)
	$(Q)cd samples/geometry && $(CLANGXX) $(SAMPLE_CXXFLAGS) -c $*.cpp -o $(abspath $@)

$(SO)/geometry-plain/%.o: samples/geometry/%.cpp samples/geometry/shapes/shapes.h
	$(call msg,CXX,$<)
	@mkdir -p $(@D)
	$(Q)cd samples/geometry && $(CXX) $(call PLAIN_FLAGS,$(SAMPLE_CXXFLAGS)) -c $*.cpp -o $(abspath $@)

$(SB)/geometry: $(GEO_OBJ) $(RT_SO_LNK)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CXX) -o $@ $(GEO_OBJ) $(LDFLAGS_ALL) $(RT_LINK) -pthread

$(SB)/geometry-clang: $(GEO_CLANG_OBJ) $(RT_SO_LNK)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CLANGXX) -o $@ $(GEO_CLANG_OBJ) $(LDFLAGS_ALL) $(RT_LINK) -pthread

$(SB)/geometry-plain: $(GEO_PLAIN_OBJ)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CXX) -o $@ $^ $(LDFLAGS_ALL) -pthread

# The plugin does not link the runtime: its hooks bind to the host's.
$(SO)/plugin/%.o: samples/plugin/%.c
	$(call msg,CC,$<)
	@mkdir -p $(@D)
	$(Q)cd samples/plugin && $(CC) $(SAMPLE_CFLAGS) -fPIC -c $*.c -o $(abspath $@)

$(SB)/libdiscounts.so: $(SO)/plugin/discounts/rules.o
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) -shared -o $@ $^ $(LDFLAGS_ALL)

$(SB)/host: $(SO)/plugin/host.o $(RT_SO_LNK)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) -o $@ $(SO)/plugin/host.o $(LDFLAGS_ALL) $(RT_LINK) -ldl -pthread
