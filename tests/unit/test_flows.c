/* test_flows.c: the runtime reads `codensm analyze`'s file for a build-id
 * (or the binary's .codensm.flows section) and keeps, per function, the
 * entry rebuilt from checked fields only; anything else never survives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"

#define GOOD "{\"name\":\"shop.cart.cart_sum\",\"nodes\":[{\"type\":\"start\"},{\"type\":\"loop\"}," \
	     "{\"type\":\"decision\"},{\"type\":\"block\"},{\"type\":\"end\"}]," \
	     "\"edges\":[[0,1],[1,2],[2,3],[3,4]],\"decisions\":1,\"loops\":1,\"returns\":1," \
	     "\"nodes_count\":5,\"lines\":6,\"calls_out\":[\"shop.cart.item_price\"],\"has_tests\":true}"

static struct cnsmp_flows *parse(const char *doc, size_t *dropped)
{
	return cnsmp_flows_parse(doc, strlen(doc), dropped);
}

static void a_valid_entry_is_kept_byte_for_byte(void **state)
{
	size_t dropped = 99;
	struct cnsmp_flows *f = parse("{\"format\":1,\"build_id\":\"ab\",\"flows\":[" GOOD "]}", &dropped);
	assert_non_null(f);
	assert_int_equal(cnsmp_flows_count(f), 1);
	assert_int_equal(dropped, 0);
	assert_string_equal(cnsmp_flows_find(f, "shop.cart.cart_sum"), GOOD);
	assert_null(cnsmp_flows_find(f, "shop.cart"));
	cnsmp_flows_free(f);
}

static void unknown_fields_never_survive(void **state)
{
	const char *doc = "{\"format\":1,\"flows\":[{\"source\":\"int x = 42;\",\"name\":\"a.f\","
			  "\"nodes\":[{\"type\":\"start\",\"label\":\"x = 42\"},{\"type\":\"end\"}],"
			  "\"edges\":[[0,1]],\"decisions\":0,\"loops\":0,\"returns\":1,\"nodes_count\":2,"
			  "\"lines\":3,\"calls_out\":[],\"has_tests\":false}]}";
	struct cnsmp_flows *f = parse(doc, NULL);
	assert_non_null(f);
	assert_string_equal(cnsmp_flows_find(f, "a.f"),
			    "{\"name\":\"a.f\",\"nodes\":[{\"type\":\"start\"},{\"type\":\"end\"}],"
			    "\"edges\":[[0,1]],\"decisions\":0,\"loops\":0,\"returns\":1,\"nodes_count\":2,"
			    "\"lines\":3,\"calls_out\":[],\"has_tests\":false}");
	cnsmp_flows_free(f);
}

static void entries_failing_a_check_are_dropped_and_counted(void **state)
{
	const char *doc = "{\"format\":1,\"flows\":["
		/* a node kind that is not one of the six */
		"{\"name\":\"a.kind\",\"nodes\":[{\"type\":\"source\"}],\"edges\":[],\"decisions\":0,"
		"\"loops\":0,\"returns\":0,\"nodes_count\":1,\"lines\":1,\"calls_out\":[],\"has_tests\":false},"
		/* an edge to a node that does not exist */
		"{\"name\":\"a.edge\",\"nodes\":[{\"type\":\"start\"}],\"edges\":[[0,1]],\"decisions\":0,"
		"\"loops\":0,\"returns\":0,\"nodes_count\":1,\"lines\":1,\"calls_out\":[],\"has_tests\":false},"
		/* nodes_count disagreeing with the nodes */
		"{\"name\":\"a.count\",\"nodes\":[{\"type\":\"start\"}],\"edges\":[],\"decisions\":0,"
		"\"loops\":0,\"returns\":0,\"nodes_count\":2,\"lines\":1,\"calls_out\":[],\"has_tests\":false},"
		/* a negative count */
		"{\"name\":\"a.neg\",\"nodes\":[{\"type\":\"start\"}],\"edges\":[],\"decisions\":-1,"
		"\"loops\":0,\"returns\":0,\"nodes_count\":1,\"lines\":1,\"calls_out\":[],\"has_tests\":false},"
		/* a callee that is not a string */
		"{\"name\":\"a.call\",\"nodes\":[{\"type\":\"start\"}],\"edges\":[],\"decisions\":0,"
		"\"loops\":0,\"returns\":0,\"nodes_count\":1,\"lines\":1,\"calls_out\":[7],\"has_tests\":false},"
		GOOD "]}";
	size_t dropped = 0;
	struct cnsmp_flows *f = parse(doc, &dropped);
	assert_non_null(f);
	assert_int_equal(cnsmp_flows_count(f), 1);
	assert_int_equal(dropped, 5);
	assert_non_null(cnsmp_flows_find(f, "shop.cart.cart_sum"));
	assert_null(cnsmp_flows_find(f, "a.kind"));
	cnsmp_flows_free(f);
}

static void a_document_that_is_not_an_analysis_gives_null(void **state)
{
	assert_null(parse("{\"flows\":[]}", NULL));              /* no format */
	assert_null(parse("{\"format\":2,\"flows\":[]}", NULL)); /* a future format */
	assert_null(parse("[1,2]", NULL));
	assert_null(parse("{\"format\":1,\"flows\":[", NULL));
}

static char tmpdir[] = "/tmp/test_flows.XXXXXX";

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void the_file_is_found_by_build_id(void **state)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/0123abcd.json", tmpdir);
	write_file(path, "{\"format\":1,\"flows\":[" GOOD "]}");
	struct cnsmp_flows *f = cnsmp_flows_load(tmpdir, "0123abcd", NULL, NULL);
	assert_int_equal(cnsmp_flows_count(f), 1);
	cnsmp_flows_free(f);
	assert_null(cnsmp_flows_load(tmpdir, "ffff", NULL, NULL));
	unlink(path);
}

static void without_a_file_the_binarys_section_is_read(void **state)
{
	char json[256], copy[256], cmd[1024];
	snprintf(json, sizeof(json), "%s/flows.json", tmpdir);
	snprintf(copy, sizeof(copy), "%s/prog", tmpdir);
	write_file(json, "{\"format\":1,\"flows\":[" GOOD "]}");
	snprintf(cmd, sizeof(cmd), "cp /proc/%d/exe %s && objcopy --add-section .codensm.flows=%s %s",
		 (int)getpid(), copy, json, copy);
	assert_int_equal(system(cmd), 0);
	struct cnsmp_flows *f = cnsmp_flows_load(tmpdir, "0000", copy, NULL);
	assert_int_equal(cnsmp_flows_count(f), 1);
	assert_string_equal(cnsmp_flows_find(f, "shop.cart.cart_sum"), GOOD);
	cnsmp_flows_free(f);
	snprintf(cmd, sizeof(cmd), "/proc/%d/exe", (int)getpid());
	assert_null(cnsmp_flows_load(NULL, NULL, cmd, NULL)); /* no section */
	unlink(json);
	unlink(copy);
}

static char *fake_env(const char *name)
{
	if (!strcmp(name, "XDG_CACHE_HOME"))
		return "/c";
	return NULL;
}

static char *home_only(const char *name)
{
	return !strcmp(name, "HOME") ? "/home/u" : NULL;
}

static void the_folder_is_beside_the_symbol_cache(void **state)
{
	char *d = cnsmp_flows_default_dir(fake_env);
	assert_string_equal(d, "/c/codensm/flows");
	free(d);
	d = cnsmp_flows_default_dir(home_only);
	assert_string_equal(d, "/home/u/.cache/codensm/flows");
	free(d);
}

static void a_module_is_looked_up_by_its_build_id_once(void **state)
{
	char exe[256], cmd[512], want[160] = "", id[160], path[512];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	snprintf(cmd, sizeof(cmd), "readelf -n %s | sed -n 's/.*Build ID: //p'", exe);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(want, sizeof(want), p));
	pclose(p);
	want[strcspn(want, "\n")] = '\0';
	assert_int_equal(cnsmp_flows_build_id(exe, id, sizeof(id)), 0);
	assert_string_equal(id, want);

	snprintf(path, sizeof(path), "%s/%s.json", tmpdir, id);
	write_file(path, "{\"format\":1,\"flows\":[" GOOD "]}");
	assert_string_equal(cnsmp_flows_lookup(tmpdir, exe, "shop.cart.cart_sum"), GOOD);
	assert_null(cnsmp_flows_lookup(tmpdir, exe, "shop.cart.other"));
	unlink(path); /* read once: the module's flows stay until a reset */
	assert_string_equal(cnsmp_flows_lookup(tmpdir, exe, "shop.cart.cart_sum"), GOOD);
	cnsmp_flows_reset();
	assert_null(cnsmp_flows_lookup(tmpdir, exe, "shop.cart.cart_sum"));
	assert_null(cnsmp_flows_lookup(tmpdir, "/nonexistent/lib.so", "shop.cart.cart_sum"));
	cnsmp_flows_reset();
}

int main(void)
{
	if (!mkdtemp(tmpdir))
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_valid_entry_is_kept_byte_for_byte),
		cmocka_unit_test(unknown_fields_never_survive),
		cmocka_unit_test(entries_failing_a_check_are_dropped_and_counted),
		cmocka_unit_test(a_document_that_is_not_an_analysis_gives_null),
		cmocka_unit_test(the_file_is_found_by_build_id),
		cmocka_unit_test(without_a_file_the_binarys_section_is_read),
		cmocka_unit_test(the_folder_is_beside_the_symbol_cache),
		cmocka_unit_test(a_module_is_looked_up_by_its_build_id_once),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(tmpdir);
	return r;
}
