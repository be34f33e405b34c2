/* test_rules.c: module paths, prefix matching at component boundaries,
 * include/exclude, departments and weights, with exact values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "internal.h"

static void module_path_is(const char *file, const char *want)
{
	char *got = cnsmp_rules_module_path(file);
	assert_string_equal(got, want);
	free(got);
}

static void a_module_path_is_the_file_without_extension_dotted(void **state)
{
	module_path_is("checkout/cart.c", "checkout.cart");
	module_path_is("geo/shape.cpp", "geo.shape");
	module_path_is("main.c", "main");
	module_path_is("a/b/c/d.cc", "a.b.c.d");
	module_path_is("Makefile", "Makefile");
}

static void leading_dot_and_dotdot_parts_are_dropped(void **state)
{
	module_path_is("./checkout/cart.c", "checkout.cart");
	module_path_is("../lib/util.c", "lib.util");
	module_path_is("a/./b//c.c", "a.b.c");
	module_path_is("/usr/include/stdio.h", "usr.include.stdio");
}

static void only_the_last_extension_of_the_file_goes(void **state)
{
	module_path_is("gen/parser.tab.c", "gen.parser.tab");
	module_path_is("v1.2/api.c", "v1.2.api");
	module_path_is("conf/.hidden", "conf..hidden");
	module_path_is("", "");
}

static void a_prefix_matches_at_component_boundaries(void **state)
{
	assert_true(cnsmp_rules_prefix_match("checkout", "checkout"));
	assert_true(cnsmp_rules_prefix_match("checkout", "checkout.cart.total"));
	assert_true(cnsmp_rules_prefix_match("checkout", "checkout::Cart::total"));
	assert_true(cnsmp_rules_prefix_match("checkout.cart", "checkout.cart.total"));
	assert_true(cnsmp_rules_prefix_match("geo.shape.geo::", "geo.shape.geo::area"));
	assert_false(cnsmp_rules_prefix_match("checkout", "checkoutx"));
	assert_false(cnsmp_rules_prefix_match("checkout", "checkoutx.cart"));
	assert_false(cnsmp_rules_prefix_match("checkout.cart", "checkout.carts.total"));
	assert_false(cnsmp_rules_prefix_match("checkout.cart.total", "checkout.cart"));
	assert_false(cnsmp_rules_prefix_match("", "checkout"));
	assert_false(cnsmp_rules_prefix_match("Checkout", "checkout"));
}

static char *include_checkout[] = { "checkout", "geo.shape.geo::Circle" };
static char *exclude_hot[] = { "checkout.hot" };

static void without_include_every_user_function_is_tracked(void **state)
{
	struct cnsmp_config cfg = { 0 };
	assert_true(cnsmp_rules_tracked(&cfg, "checkout.cart.total", 0));
	assert_true(cnsmp_rules_tracked(&cfg, "main.main", 0));
	assert_false(cnsmp_rules_tracked(&cfg, "usr.include.stdio.getchar", 1));
}

static void with_include_only_named_prefixes_are_tracked(void **state)
{
	struct cnsmp_config cfg = { .include_set = 1, .include = { 2, include_checkout } };
	assert_true(cnsmp_rules_tracked(&cfg, "checkout.cart.total", 0));
	assert_true(cnsmp_rules_tracked(&cfg, "geo.shape.geo::Circle::area", 0));
	assert_false(cnsmp_rules_tracked(&cfg, "checkoutx.cart.total", 0));
	assert_false(cnsmp_rules_tracked(&cfg, "payments.card.charge", 0));
	assert_false(cnsmp_rules_tracked(&cfg, "geo.shape.geo::Square::area", 0));
}

static void a_system_function_is_tracked_only_when_included_by_name(void **state)
{
	struct cnsmp_config cfg = { .include_set = 1, .include = { 2, include_checkout } };
	assert_true(cnsmp_rules_tracked(&cfg, "checkout.vendored.qsort", 1));
	assert_false(cnsmp_rules_tracked(&cfg, "usr.include.c++.12.bits.stl_vector.std::vector<int>::size", 1));
}

static void an_empty_include_tracks_nothing(void **state)
{
	struct cnsmp_config cfg = { .include_set = 1 };
	assert_false(cnsmp_rules_tracked(&cfg, "checkout.cart.total", 0));
}

static void exclude_wins_over_include(void **state)
{
	struct cnsmp_config cfg = { .include_set = 1, .include = { 2, include_checkout },
				    .exclude = { 1, exclude_hot } };
	assert_true(cnsmp_rules_tracked(&cfg, "checkout.cart.total", 0));
	assert_false(cnsmp_rules_tracked(&cfg, "checkout.hot", 0));
	assert_false(cnsmp_rules_tracked(&cfg, "checkout.hot.loop", 0));
	assert_true(cnsmp_rules_tracked(&cfg, "checkout.hotel.book", 0));
	cfg.include_set = 0;
	cfg.include.n = 0;
	assert_false(cnsmp_rules_tracked(&cfg, "checkout.hot.loop", 0));
	assert_true(cnsmp_rules_tracked(&cfg, "payments.card", 0));
}

static char *dept_prefix[] = { "checkout", "checkout.pay", "checkout.pay.refund" };
static char *dept_value[] = { "sales", "payments", "support" };
static double dept_number[] = { 0, 0, 0 };

static void the_longest_matching_prefix_names_the_department(void **state)
{
	struct cnsmp_config cfg = { .department = { 3, dept_prefix, dept_value, dept_number } };
	char buf[64];
	assert_string_equal(cnsmp_rules_department(&cfg, "checkout.cart.total", buf, sizeof(buf)), "sales");
	assert_string_equal(cnsmp_rules_department(&cfg, "checkout.pay.card", buf, sizeof(buf)), "payments");
	assert_string_equal(cnsmp_rules_department(&cfg, "checkout.pay.refund.full", buf, sizeof(buf)), "support");
	assert_string_equal(cnsmp_rules_department(&cfg, "checkout.payx.card", buf, sizeof(buf)), "sales");
}

static void the_default_department_is_the_first_component(void **state)
{
	struct cnsmp_config cfg = { 0 };
	char buf[64], small[4];
	assert_string_equal(cnsmp_rules_department(&cfg, "checkout.cart.total", buf, sizeof(buf)), "checkout");
	assert_string_equal(cnsmp_rules_department(&cfg, "geo::Circle::area", buf, sizeof(buf)), "geo");
	assert_string_equal(cnsmp_rules_department(&cfg, "main", buf, sizeof(buf)), "main");
	assert_string_equal(cnsmp_rules_department(&cfg, ".odd", buf, sizeof(buf)), "default");
	assert_string_equal(cnsmp_rules_department(&cfg, "", buf, sizeof(buf)), "default");
	assert_string_equal(cnsmp_rules_department(&cfg, "checkout.x", small, sizeof(small)), "che");
}

static char *weight_prefix[] = { "checkout", "checkout.log", "checkout" };
static char *weight_value[] = { "9", "0.5", "7" };
static double weight_number[] = { 9, 0.5, 7 };

static void the_longest_matching_prefix_gives_the_weight(void **state)
{
	struct cnsmp_config cfg = { .weights = { 2, weight_prefix, weight_value, weight_number } };
	assert_true(cnsmp_rules_weight(&cfg, "checkout.cart.total") == 9.0);
	assert_true(cnsmp_rules_weight(&cfg, "checkout.log.write") == 0.5);
	assert_true(cnsmp_rules_weight(&cfg, "checkout.logger.write") == 9.0);
	assert_true(cnsmp_rules_weight(&cfg, "payments.card") == 1.0);
}

static void a_later_entry_for_the_same_prefix_wins(void **state)
{
	struct cnsmp_config cfg = { .weights = { 3, weight_prefix, weight_value, weight_number } };
	assert_true(cnsmp_rules_weight(&cfg, "checkout.cart.total") == 7.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_module_path_is_the_file_without_extension_dotted),
		cmocka_unit_test(leading_dot_and_dotdot_parts_are_dropped),
		cmocka_unit_test(only_the_last_extension_of_the_file_goes),
		cmocka_unit_test(a_prefix_matches_at_component_boundaries),
		cmocka_unit_test(without_include_every_user_function_is_tracked),
		cmocka_unit_test(with_include_only_named_prefixes_are_tracked),
		cmocka_unit_test(a_system_function_is_tracked_only_when_included_by_name),
		cmocka_unit_test(an_empty_include_tracks_nothing),
		cmocka_unit_test(exclude_wins_over_include),
		cmocka_unit_test(the_longest_matching_prefix_names_the_department),
		cmocka_unit_test(the_default_department_is_the_first_component),
		cmocka_unit_test(the_longest_matching_prefix_gives_the_weight),
		cmocka_unit_test(a_later_entry_for_the_same_prefix_wins),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
