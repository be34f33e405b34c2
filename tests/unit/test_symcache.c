/* test_symcache.c: the symbol index cache's folder stays bounded: least
 * recently used files go first, a load counts as a use, a dead writer's
 * tmp file goes after an hour, and nothing else in the folder is touched.
 * (Reading and writing indexes, and damaged files: test_symbols.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"

static char dir[] = "/tmp/codensm-symcache-prune-XXXXXX";

static void file(const char *name, size_t size, time_t age)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	for (size_t i = 0; i < size; i++)
		fputc('x', f);
	assert_int_equal(fclose(f), 0);
	struct timespec t[2] = {{time(NULL) - age, 0}, {time(NULL) - age, 0}};
	assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
}

static int exists(const char *name)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static time_t age_of(const char *name)
{
	char path[256];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	assert_int_equal(stat(path, &st), 0);
	return time(NULL) - st.st_mtime;
}

static void the_least_recently_used_go_first(void **state)
{
	assert_non_null(mkdtemp(dir));
	file("a.idx", 1000, 300);
	file("a.exits", 600, 250); /* decoded.c's, beside the index */
	file("b.idx", 1000, 200);
	file("c.idx", 1000, 100);
	file("notes.txt", 5000, 900);  /* not ours */
	file("x.exits.txt", 5000, 900); /* nor this */
	file(".tmp-dead-1", 10, 7200); /* a writer that died */
	file(".tmp-live-2", 10, 0);    /* one writing now */
	cnsmp_symcache_prune(dir, 2500);
	assert_false(exists("a.idx") || exists("a.exits"));
	assert_true(exists("b.idx") && exists("c.idx") && exists("notes.txt") &&
		    exists("x.exits.txt"));
	assert_false(exists(".tmp-dead-1"));
	assert_true(exists(".tmp-live-2"));
	cnsmp_symcache_prune(dir, 2000); /* exactly at the bound: kept */
	assert_true(exists("b.idx") && exists("c.idx"));
	cnsmp_symcache_prune(dir, 0);
	assert_false(exists("b.idx") || exists("c.idx"));
	assert_true(exists("notes.txt") && exists("x.exits.txt") && exists(".tmp-live-2"));
}

static void a_load_is_a_use(void **state)
{
	struct cnsmp_func f = {.name = "app.main", .file = "main.c", .line = 3, .entry = 0x40};
	struct cnsmp_range r = {0x40, 0x80, 0};
	struct cnsmp_index x = {.f = &f, .nf = 1, .r = &r, .nr = 1, .user = 1};
	assert_int_equal(cnsmp_symcache_store(dir, "old.idx", &x), 0);
	assert_int_equal(cnsmp_symcache_store(dir, "new.idx", &x), 0);
	struct timespec t[2] = {{time(NULL) - 600, 0}, {time(NULL) - 600, 0}};
	char path[256];
	snprintf(path, sizeof path, "%s/old.idx", dir);
	assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
	snprintf(path, sizeof path, "%s/new.idx", dir);
	t[0].tv_sec = t[1].tv_sec = time(NULL) - 300;
	assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
	struct cnsmp_index *y = cnsmp_symcache_load(dir, "old.idx", NULL, NULL);
	assert_non_null(y);
	assert_string_equal(y->f[0].name, "app.main");
	cnsmp_index_free(y);
	int refused = 1;
	assert_null(cnsmp_symcache_load(dir, "none.idx", NULL, &refused));
	assert_int_equal(refused, 0); /* not there: nothing refused */
	assert_true(age_of("old.idx") < 60);
	struct stat st;
	snprintf(path, sizeof path, "%s/old.idx", dir);
	assert_int_equal(stat(path, &st), 0);
	/* room for one: the one not loaded goes */
	cnsmp_symcache_prune(dir, (uint64_t)st.st_size * 3 / 2);
	assert_true(exists("old.idx"));
	assert_false(exists("new.idx"));
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* What symbols.c needs from a loaded index, field by field, including
 * where the DWARF addresses lie against the load address. */
static void every_field_comes_back(void **state)
{
	struct cnsmp_func f[2] = {
		{.name = "app.main", .file = "main.c", .line = 3, .entry = 0x40},
		{.name = "usr.include.stdio.getc", .file = NULL, .line = 0, .system = 1, .entry = 0x90},
	};
	struct cnsmp_range r[3] = {{0x40, 0x80, 0}, {0x90, 0x98, 1}, {0x200, 0x210, 0}};
	struct cnsmp_index x = {.f = f, .nf = 2, .r = r, .nr = 3, .user = 1,
				.delta = (uint64_t)-0x1000};
	assert_int_equal(cnsmp_symcache_store(dir, "all.idx", &x), 0);
	struct cnsmp_index *y = cnsmp_symcache_load(dir, "all.idx", "/src", NULL);
	assert_non_null(y);
	assert_int_equal(y->nf, 2);
	assert_int_equal(y->nr, 3);
	assert_int_equal(y->user, 1);
	assert_true(y->delta == (uint64_t)-0x1000);
	assert_string_equal(y->root, "/src");
	for (int i = 0; i < 2; i++) {
		assert_string_equal(y->f[i].name, f[i].name);
		if (f[i].file)
			assert_string_equal(y->f[i].file, f[i].file);
		else
			assert_null(y->f[i].file);
		assert_int_equal(y->f[i].line, f[i].line);
		assert_int_equal(y->f[i].system, f[i].system);
		assert_true(y->f[i].entry == f[i].entry);
	}
	for (int i = 0; i < 3; i++)
		assert_true(y->r[i].low == r[i].low && y->r[i].high == r[i].high &&
			    y->r[i].func == r[i].func);
	cnsmp_index_free(y);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_least_recently_used_go_first),
		cmocka_unit_test(a_load_is_a_use),
		cmocka_unit_test(every_field_comes_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
