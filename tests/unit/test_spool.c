/* test_spool.c: spooled bodies come back oldest first, each exactly once,
 * and a failure stops the drain without losing anything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "internal.h"

static char root[256];

static int setup(void **state)
{
	snprintf(root, sizeof root, "/tmp/codensm-spool-test-XXXXXX");
	return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

/* Files in dir with the given suffix. */
static int count(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name), s = strlen(suffix);
		if (de->d_name[0] != '.' && l > s && strcmp(de->d_name + l - s, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

struct script {
	enum cnsmp_send_result answer[8];
	int calls;
	char seen[8][64];
};

static enum cnsmp_send_result fake_send(const char *body, void *arg)
{
	struct script *s = arg;
	snprintf(s->seen[s->calls], sizeof s->seen[0], "%s", body);
	return s->answer[s->calls++];
}

static void test_bodies_come_back_oldest_first_and_are_deleted(void **state)
{
	char dir[300];
	snprintf(dir, sizeof dir, "%s/a/b/spool", root); /* created on demand */
	assert_int_equal(cnsmp_spool_write(dir, "{\"n\":1}"), 0);
	assert_int_equal(cnsmp_spool_write(dir, "{\"n\":2}"), 0);
	assert_int_equal(cnsmp_spool_write(dir, "{\"n\":3}"), 0);
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(cnsmp_spool_pending(dir), 1);
	struct script s = {.answer = {CNSMP_SENT, CNSMP_SENT, CNSMP_SENT}};
	assert_int_equal(cnsmp_spool_drain(dir, fake_send, &s), 3);
	assert_int_equal(s.calls, 3);
	assert_string_equal(s.seen[0], "{\"n\":1}");
	assert_string_equal(s.seen[1], "{\"n\":2}");
	assert_string_equal(s.seen[2], "{\"n\":3}");
	assert_int_equal(count(dir, ".json"), 0);
	assert_int_equal(cnsmp_spool_pending(dir), 0);
	/* No lock file or tmp file is left behind. */
	DIR *d = opendir(dir);
	struct dirent *de;
	int entries = 0;
	while ((de = readdir(d)) != NULL)
		entries += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	assert_int_equal(entries, 0);
}

static void test_a_failure_stops_the_drain_and_keeps_the_rest(void **state)
{
	char dir[300];
	snprintf(dir, sizeof dir, "%s/stop", root);
	for (int i = 1; i <= 4; i++) {
		char b[16];
		snprintf(b, sizeof b, "{\"n\":%d}", i);
		assert_int_equal(cnsmp_spool_write(dir, b), 0);
	}
	struct script s = {.answer = {CNSMP_SENT, CNSMP_FAILED_UNSURE}};
	assert_int_equal(cnsmp_spool_drain(dir, fake_send, &s), 1);
	assert_int_equal(s.calls, 2);
	assert_int_equal(count(dir, ".json"), 3);
	/* Next time it starts with the body that failed, verbatim. */
	struct script t = {.answer = {CNSMP_SENT, CNSMP_FAILED_CLEAN}};
	assert_int_equal(cnsmp_spool_drain(dir, fake_send, &t), 1);
	assert_string_equal(t.seen[0], "{\"n\":2}");
	assert_string_equal(t.seen[1], "{\"n\":3}");
	struct script u = {.answer = {CNSMP_QUOTA}};
	assert_int_equal(cnsmp_spool_drain(dir, fake_send, &u), 0);
	assert_int_equal(count(dir, ".json"), 2);
}

static void test_a_rejected_body_is_kept_aside_and_never_resent(void **state)
{
	char dir[300];
	snprintf(dir, sizeof dir, "%s/rej", root);
	assert_int_equal(cnsmp_spool_write(dir, "{\"bad\":1}"), 0);
	assert_int_equal(cnsmp_spool_write(dir, "{\"good\":1}"), 0);
	struct script s = {.answer = {CNSMP_REJECTED, CNSMP_SENT}};
	assert_int_equal(cnsmp_spool_drain(dir, fake_send, &s), 1);
	assert_int_equal(s.calls, 2); /* a rejection does not stop the drain */
	assert_int_equal(count(dir, ".json"), 0);
	assert_int_equal(count(dir, ".rejected"), 1);
	struct script t = {.answer = {CNSMP_SENT}};
	assert_int_equal(cnsmp_spool_drain(dir, fake_send, &t), 0);
	assert_int_equal(t.calls, 0);
}

static void test_half_written_files_are_ignored(void **state)
{
	char dir[300], tmp[CNSMP_SPOOL_PATH], final[CNSMP_SPOOL_PATH];
	snprintf(dir, sizeof dir, "%s/tmp", root);
	int fd = cnsmp_spool_open(dir, tmp, final);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"half", 6), 6);
	/* The writer died here: no rename. */
	struct script s = {.answer = {CNSMP_SENT}};
	assert_int_equal(cnsmp_spool_drain(dir, fake_send, &s), 0);
	assert_int_equal(s.calls, 0);
	assert_int_equal(cnsmp_spool_pending(dir), 0);
	assert_int_equal(write(fd, "\":1}", 4), 4);
	assert_int_equal(cnsmp_spool_commit(fd, tmp, final), 0);
	assert_int_equal(cnsmp_spool_drain(dir, fake_send, &s), 1);
	assert_string_equal(s.seen[0], "{\"half\":1}");
}

static void test_missing_spool_is_nothing_to_drain(void **state)
{
	char dir[300];
	snprintf(dir, sizeof dir, "%s/never", root);
	struct script s = {.answer = {CNSMP_SENT}};
	assert_int_equal(cnsmp_spool_drain(dir, fake_send, &s), 0);
	assert_int_equal(cnsmp_spool_drain(NULL, fake_send, &s), 0);
	assert_int_equal(cnsmp_spool_write("/proc/no/such/dir", "{}"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bodies_come_back_oldest_first_and_are_deleted),
		cmocka_unit_test(test_a_failure_stops_the_drain_and_keeps_the_rest),
		cmocka_unit_test(test_a_rejected_body_is_kept_aside_and_never_resent),
		cmocka_unit_test(test_half_written_files_are_ignored),
		cmocka_unit_test(test_missing_spool_is_nothing_to_drain),
	};
	return cmocka_run_group_tests_name("spool", tests, setup, teardown);
}
