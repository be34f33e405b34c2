/* test_symbols.c: addresses of this very program resolve to the names,
 * files and lines a user would see (fixtures under tests/unit/fixtures/,
 * built with their folder mapped to /src/shop, see tests/build.mk). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"

/* The fixtures' entry points (tests/unit/fixtures/). */
int cart_total(int price, int qty);
void *cart_helper_address(void);
void *geo_circle_area(void);
void *geo_scale_int(void);
void *geo_scale_double(void);
void *geo_max_int(void);
void *geo_hidden(void);
int plain_function(int x);
extern char __executable_start[];

static struct cnsmp_config cfg; /* zero: no source root, each unit's comp_dir */

/* Resolves addr and checks every field; file NULL means "no file". */
static void expect(void *addr, const struct cnsmp_config *c, int rc,
		   const char *name, const char *file, int line, int system)
{
	struct cnsmp_fninfo fi;
	assert_int_equal(cnsmp_symbols_resolve((uintptr_t)addr, c, &fi), rc);
	assert_string_equal(fi.name, name);
	if (file)
		assert_string_equal(fi.file, file);
	else
		assert_null(fi.file);
	assert_int_equal(fi.line, line);
	assert_int_equal(fi.system, system);
	assert_true(fi.entry == (uintptr_t)addr);
	assert_non_null(fi.module);
	cnsmp_fninfo_release(&fi);
}

static void a_c_function_is_named_by_its_file_under_the_comp_dir(void **state)
{
	expect((void *)cart_total, &cfg, 0, "checkout.cart.cart_total",
	       "checkout/cart.c", 5, 0);
}

static void a_static_function_is_named_the_same_way(void **state)
{
	expect(cart_helper_address(), &cfg, 0, "checkout.cart.cart_round",
	       "checkout/cart.c", 10, 0);
}

static void an_address_inside_a_function_names_that_function(void **state)
{
	struct cnsmp_fninfo fi;
	assert_int_equal(cnsmp_symbols_resolve((uintptr_t)cart_total + 4, &cfg, &fi), 0);
	assert_string_equal(fi.name, "checkout.cart.cart_total");
	assert_true(fi.entry == (uintptr_t)cart_total);
	cnsmp_fninfo_release(&fi);
}

static void the_source_root_replaces_the_comp_dir(void **state)
{
	struct cnsmp_config c = { .source_root = "/src" };
	expect((void *)cart_total, &c, 0, "shop.checkout.cart.cart_total",
	       "shop/checkout/cart.c", 5, 0);
}

static void a_file_outside_the_source_root_keeps_its_whole_path(void **state)
{
	struct cnsmp_config c = { .source_root = "/elsewhere/" };
	expect((void *)cart_total, &c, 0, "src.shop.checkout.cart.cart_total",
	       "/src/shop/checkout/cart.c", 5, 0);
}

static void a_cxx_member_is_qualified_by_its_namespace_and_class(void **state)
{
	expect(geo_circle_area(), &cfg, 0, "geo.shape.geo::Circle::area",
	       "geo/shape.cpp", 8, 0);
}

/* FNV-1a of _ZN3geo5scaleEi and _ZN3geo5scaleEd. */
static void overloads_get_the_hash_of_their_linkage_name(void **state)
{
	expect(geo_scale_int(), &cfg, 0, "geo.shape.geo::scale#b35c00bd",
	       "geo/shape.cpp", 13, 0);
	expect(geo_scale_double(), &cfg, 0, "geo.shape.geo::scale#a65bec46",
	       "geo/shape.cpp", 14, 0);
}

static void a_template_keeps_its_arguments(void **state)
{
	expect(geo_max_int(), &cfg, 0, "geo.shape.geo::max<int>",
	       "geo/shape.cpp", 16, 0);
}

static void an_anonymous_namespace_is_named_as_the_demangler_does(void **state)
{
	expect(geo_hidden(), &cfg, 0,
	       "geo.shape.geo::(anonymous namespace)::hidden", "geo/shape.cpp",
	       19, 0);
}

static void without_debug_info_the_symbol_table_names_it(void **state)
{
	expect((void *)plain_function, &cfg, 0, "test_symbols.plain_function",
	       NULL, 0, 0);
}

static void an_address_without_a_symbol_is_module_plus_offset(void **state)
{
	expect(__executable_start + 0x10, &cfg, 1, "test_symbols+0x10", NULL,
	       0, 0);
}

static void an_address_in_no_module_is_unknown_plus_address(void **state)
{
	/* A stack address belongs to no ELF module, in every build: mapping a
	 * page at a fixed address instead trips ThreadSanitizer's mmap checks. */
	char here = 0;
	uintptr_t p = (uintptr_t)&here;
	char want[64];
	snprintf(want, sizeof(want), "unknown+0x%lx", (unsigned long)p);
	struct cnsmp_fninfo fi;
	assert_int_equal(cnsmp_symbols_resolve(p, &cfg, &fi), 1);
	assert_string_equal(fi.name, want);
	assert_null(fi.file);
	cnsmp_fninfo_release(&fi);
}

/* ---- inventory ---------------------------------------------------------- */

struct seen {
	int cart_total, cart_round, area, scale_overloads, runtime, total;
	uintptr_t cart_total_entry;
};

static void count(const struct cnsmp_fninfo *fi, void *arg)
{
	struct seen *s = arg;
	s->total++;
	if (!strcmp(fi->name, "checkout.cart.cart_total")) {
		s->cart_total++;
		s->cart_total_entry = fi->entry;
		assert_string_equal(fi->file, "checkout/cart.c");
		assert_int_equal(fi->line, 5);
	}
	s->cart_round += !strcmp(fi->name, "checkout.cart.cart_round");
	s->area += !strcmp(fi->name, "geo.shape.geo::Circle::area");
	s->scale_overloads += !strncmp(fi->name, "geo.shape.geo::scale#", 21);
	s->runtime += strstr(fi->name, "cnsmp_") != NULL ||
		      strstr(fi->name, "runtime.src") != NULL;
	if (getenv("TEST_SYMBOLS_VERBOSE"))
		printf("# %s %s:%d%s\n", fi->name, fi->file ? fi->file : "-",
		       fi->line, fi->system ? " (system)" : "");
}

static void the_inventory_lists_every_user_function_once(void **state)
{
	struct seen s = { 0 };
	size_t n = cnsmp_symbols_inventory(&cfg, count, &s);
	assert_int_equal(n, s.total);
	assert_int_equal(s.cart_total, 1);
	assert_int_equal(s.cart_round, 1);
	assert_int_equal(s.area, 1);
	assert_int_equal(s.scale_overloads, 2);
	assert_true(s.cart_total_entry == (uintptr_t)cart_total);
	assert_int_equal(s.runtime, 0); /* the runtime is never the user's code */

	struct seen again = { 0 };
	assert_int_equal(cnsmp_symbols_inventory(&cfg, count, &again), 0);
}

static void the_inventory_of_a_file_uses_the_files_addresses(void **state)
{
	struct seen s = { 0 };
	char self[4096];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(len > 0);
	self[len] = '\0';
	size_t n = cnsmp_symbols_inventory_file(self, &cfg, count, &s);
	assert_int_equal(n, s.total);
	assert_int_equal(s.cart_total, 1);
	assert_int_equal(s.scale_overloads, 2);
	/* PIE: the file's address is the running one minus the load bias */
	assert_true(s.cart_total_entry ==
		    (uintptr_t)cart_total - (uintptr_t)__executable_start);
}

static void a_missing_file_has_an_empty_inventory(void **state)
{
	struct seen s = { 0 };
	assert_int_equal(cnsmp_symbols_inventory_file("/nonexistent/app", &cfg, count, &s), 0);
	assert_int_equal(s.total, 0);
}

static void names_survive_a_refresh(void **state)
{
	cnsmp_symbols_refresh();
	expect((void *)cart_total, &cfg, 0, "checkout.cart.cart_total",
	       "checkout/cart.c", 5, 0);
}

/* ---- the index cache ---------------------------------------------------- */

/* The index files in dir that name cart_total (the test program's: a
 * sanitizer's runtime may bring its own); the first one's name into key. */
static int cache_files(const char *dir, char *key, size_t len)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "cd '%s' && grep -l -a checkout/cart.c -- * 2>/dev/null", dir);
	FILE *ls = popen(cmd, "r");
	assert_non_null(ls);
	int n = 0;
	char line[512];
	while (fgets(line, sizeof line, ls)) {
		line[strcspn(line, "\n")] = '\0';
		if (n++ == 0)
			snprintf(key, len, "%s", line);
	}
	pclose(ls);
	return n;
}

/* Empties dir, and removes it too if `too`. */
static void remove_dir(const char *dir, int too)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, too ? "rm -rf '%s'" : "rm -f '%s'/*", dir);
	assert_int_equal(system(cmd), 0);
}

struct listing {
	char text[1 << 22];
	size_t n;
};

static void list_fn(const struct cnsmp_fninfo *fi, void *arg)
{
	struct listing *l = arg;
	if (l->n < sizeof l->text)
		l->n += (size_t)snprintf(l->text + l->n, sizeof l->text - l->n,
					 "%s %s %d %d %lx\n", fi->name, fi->file ? fi->file : "-",
					 fi->line, fi->system, (unsigned long)fi->entry);
}

static void inventory_of(const struct cnsmp_config *c, struct listing *l)
{
	cnsmp_symbols_shutdown(); /* forgets what was inventoried, and the session */
	l->n = 0;
	l->text[0] = '\0';
	assert_true(cnsmp_symbols_inventory(c, list_fn, l) > 5);
	assert_true(l->n < sizeof l->text);
}

static char cache_dir[] = "/tmp/codensm-symcache-XXXXXX";

static void the_cache_gives_every_function_as_dwarf_does(void **state)
{
	assert_non_null(mkdtemp(cache_dir));
	struct cnsmp_config c = { .symbol_cache = cache_dir };
	static struct listing dwarf, written, read;
	char key[512];
	inventory_of(&cfg, &dwarf);
	assert_int_equal(cache_files(cache_dir, key, sizeof key), 0);
	inventory_of(&c, &written);
	assert_int_equal(cache_files(cache_dir, key, sizeof key), 1);
	inventory_of(&c, &read);
	assert_string_equal(written.text, dwarf.text);
	assert_string_equal(read.text, dwarf.text);
	cnsmp_symbols_shutdown();
}

/* Changing a name in the file and seeing it come back proves the file is
 * what the second session read, not DWARF again. */
static void a_second_session_reads_the_cache_file(void **state)
{
	struct cnsmp_config c = { .symbol_cache = cache_dir };
	char key[512];
	assert_int_equal(cache_files(cache_dir, key, sizeof key), 1);
	struct cnsmp_index *x = cnsmp_symcache_load(cache_dir, key, NULL, NULL);
	assert_non_null(x);
	size_t hit = 0;
	for (size_t i = 0; i < x->nf; i++)
		if (x->f[i].name && !strcmp(x->f[i].name, "checkout.cart.cart_total")) {
			free(x->f[i].name);
			x->f[i].name = strdup("from.the.cache");
			hit++;
		}
	assert_int_equal(hit, 1);
	assert_int_equal(cnsmp_symcache_store(cache_dir, key, x), 0);
	cnsmp_index_free(x);
	cnsmp_symbols_refresh();
	expect((void *)cart_total, &c, 0, "from.the.cache", "checkout/cart.c", 5, 0);
	/* another source root is another file, made from DWARF */
	struct cnsmp_config rooted = { .symbol_cache = cache_dir, .source_root = "/src" };
	expect((void *)cart_total, &rooted, 0, "shop.checkout.cart.cart_total",
	       "shop/checkout/cart.c", 5, 0);
	assert_int_equal(cache_files(cache_dir, key, sizeof key), 2);
	cnsmp_symbols_refresh();
	remove_dir(cache_dir, 0);
}

/* Damaged in any way: read from DWARF again, and the file written anew. */
static void a_damaged_cache_file_is_replaced(void **state)
{
	struct cnsmp_config c = { .symbol_cache = cache_dir };
	char key[512], path[4200];
	cnsmp_symbols_refresh();
	expect((void *)cart_total, &c, 0, "checkout.cart.cart_total", "checkout/cart.c", 5, 0);
	assert_int_equal(cache_files(cache_dir, key, sizeof key), 1);
	snprintf(path, sizeof path, "%s/%s", cache_dir, key);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	static unsigned char good[1 << 20];
	size_t len = fread(good, 1, sizeof good, f);
	fclose(f);
	assert_true(len > 100 && len < sizeof good);
	for (int how = 0; how < 7; how++) {
		static unsigned char bad[1 << 20];
		size_t n = len;
		memcpy(bad, good, len);
		switch (how) {
		case 0: n = len - 1; break;                 /* cut short */
		case 1: bad[len / 2] ^= 0x40; break;        /* one bit */
		case 2: n = 0; break;                       /* empty */
		case 3: memset(bad + 8, 0xff, 4); break;    /* 4 billion functions */
		case 4: bad[7] = '1'; break;                /* the previous format */
		case 5: memcpy(bad + len, "x", 1), n = len + 1; break; /* trailing byte */
		case 6: memset(bad, 0, len); break;         /* zeros */
		}
		f = fopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(bad, 1, n, f), n);
		fclose(f);
		int refused = 0;
		assert_null(cnsmp_symcache_load(cache_dir, key, NULL, &refused));
		assert_int_equal(refused, 1); /* there, but not used */
		cnsmp_symbols_refresh();
		expect((void *)cart_total, &c, 0, "checkout.cart.cart_total", "checkout/cart.c", 5, 0);
		struct cnsmp_index *x = cnsmp_symcache_load(cache_dir, key, NULL, &refused);
		assert_non_null(x); /* written again, whole */
		assert_int_equal(refused, 0);
		cnsmp_index_free(x);
	}
	cnsmp_symbols_refresh();
}

static void an_unwritable_cache_changes_no_name(void **state)
{
	struct cnsmp_config c = { .symbol_cache = "/proc/codensm-cannot-be-made" };
	cnsmp_symbols_refresh();
	expect((void *)cart_total, &c, 0, "checkout.cart.cart_total", "checkout/cart.c", 5, 0);
	cnsmp_symbols_refresh();
	remove_dir(cache_dir, 1);
}

/* The runtime is linked in statically, so its malloc and realloc can be
 * made to fail (libdw's own, in its shared library, are not touched).
 * fail_at = N: the Nth call from now returns NULL; 0: never. */
static long fail_at, allocations;
void *__real_malloc(size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n)
{
	allocations++;
	return fail_at && --fail_at == 0 ? NULL : __real_malloc(n);
}
void *__wrap_realloc(void *p, size_t n)
{
	allocations++;
	return fail_at && --fail_at == 0 ? NULL : __real_realloc(p, n);
}

static int idx_files(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '\\.idx$'", dir);
	FILE *ls = popen(cmd, "r");
	assert_non_null(ls);
	int n = -1;
	assert_int_equal(fscanf(ls, "%d", &n), 1);
	pclose(ls);
	return n;
}

/* Memory running out at any point of naming: a file in the cache, if one
 * is written, is the whole index (an index short of some functions would
 * stand for the build in every later run). */
static void an_index_built_short_of_memory_is_never_cached(void **state)
{
	char dir[] = "/tmp/codensm-symcache-oom-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct cnsmp_config c = { .symbol_cache = dir };
	static struct listing dwarf, cached;
	inventory_of(&cfg, &dwarf);
	cnsmp_symbols_refresh();
	long before = allocations;
	struct cnsmp_fninfo fi;
	assert_int_equal(cnsmp_symbols_resolve((uintptr_t)cart_total, &c, &fi), 0);
	cnsmp_fninfo_release(&fi);
	long full = allocations - before; /* building, storing, naming */
	assert_true(full > 50);
	int refused = 0;
	for (long k = 1; k <= full; k += full / 97 + 1) {
		remove_dir(dir, 0);
		cnsmp_symbols_refresh();
		fail_at = k;
		if (cnsmp_symbols_resolve((uintptr_t)cart_total, &c, &fi) >= 0)
			cnsmp_fninfo_release(&fi);
		int failed = fail_at == 0;
		fail_at = 0;
		if (idx_files(dir) > 0) {
			inventory_of(&c, &cached); /* the file's, and DWARF for the rest */
			assert_string_equal(cached.text, dwarf.text);
		} else {
			refused += failed;
		}
	}
	assert_true(refused > 10); /* the failures did land in the building */
	cnsmp_symbols_refresh();
	remove_dir(dir, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_c_function_is_named_by_its_file_under_the_comp_dir),
		cmocka_unit_test(a_static_function_is_named_the_same_way),
		cmocka_unit_test(an_address_inside_a_function_names_that_function),
		cmocka_unit_test(the_source_root_replaces_the_comp_dir),
		cmocka_unit_test(a_file_outside_the_source_root_keeps_its_whole_path),
		cmocka_unit_test(a_cxx_member_is_qualified_by_its_namespace_and_class),
		cmocka_unit_test(overloads_get_the_hash_of_their_linkage_name),
		cmocka_unit_test(a_template_keeps_its_arguments),
		cmocka_unit_test(an_anonymous_namespace_is_named_as_the_demangler_does),
		cmocka_unit_test(without_debug_info_the_symbol_table_names_it),
		cmocka_unit_test(an_address_without_a_symbol_is_module_plus_offset),
		cmocka_unit_test(an_address_in_no_module_is_unknown_plus_address),
		cmocka_unit_test(the_inventory_lists_every_user_function_once),
		cmocka_unit_test(the_inventory_of_a_file_uses_the_files_addresses),
		cmocka_unit_test(a_missing_file_has_an_empty_inventory),
		cmocka_unit_test(names_survive_a_refresh),
		cmocka_unit_test(the_cache_gives_every_function_as_dwarf_does),
		cmocka_unit_test(a_second_session_reads_the_cache_file),
		cmocka_unit_test(a_damaged_cache_file_is_replaced),
		cmocka_unit_test(an_unwritable_cache_changes_no_name),
		cmocka_unit_test(an_index_built_short_of_memory_is_never_cached),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	cnsmp_symbols_shutdown();
	return rc;
}
