/* test_registry.c: address -> entry: first sight decides once, names share
 * ids, forgotten ranges are first sights again, the guardrail drops. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "hooks.h"

static char *exclude_list[] = {"payments"};

static void an_unknown_address_is_not_found(void **state)
{
	assert_null(cnsmp_registry_find(0x10000));
}

static void a_first_sight_is_published_with_its_name_and_id(void **state)
{
	uint32_t before = cnsmp_registry_count();
	struct cnsmp_fn *f = cnsmp_registry_add(0x10000, "checkout.cart.total",
						NULL, -1.0);
	assert_non_null(f);
	assert_ptr_equal(cnsmp_registry_find(0x10000), f);
	assert_int_equal(f->addr, 0x10000);
	assert_string_equal(f->name, "checkout.cart.total");
	assert_string_equal(f->department, "checkout"); /* first component */
	assert_true(f->weight == 1.0);
	assert_int_equal(atomic_load(&f->state), CNSMP_FN_TRACKED);
	assert_int_equal(f->id, before);
	assert_int_equal(cnsmp_registry_count(), before + 1);
	assert_ptr_equal(cnsmp_registry_get(f->id), f);
	/* A second add of the same address is the same entry. */
	assert_ptr_equal(cnsmp_registry_add(0x10000, "other.name", NULL, -1.0), f);
}

static void two_addresses_with_one_name_share_the_id(void **state)
{
	struct cnsmp_fn *a = cnsmp_registry_add(0x20000, "inventory.stock.take",
						NULL, -1.0);
	uint32_t count = cnsmp_registry_count();
	struct cnsmp_fn *b = cnsmp_registry_add(0x20100, "inventory.stock.take",
						NULL, -1.0);
	assert_ptr_not_equal(a, b);
	assert_int_equal(a->id, b->id);
	assert_int_equal(cnsmp_registry_count(), count);
	assert_ptr_equal(cnsmp_registry_get(a->id), a);
}

static void overrides_set_department_and_weight(void **state)
{
	struct cnsmp_fn *f = cnsmp_registry_add(0x30000, "payments.charge",
						"money", 9.5);
	assert_string_equal(f->department, "money");
	assert_true(f->weight == 9.5);
	assert_null(cnsmp_registry_get(CNSMP_MAX_TRACKED));
}

static void forgetting_a_range_makes_its_addresses_first_sights(void **state)
{
	struct cnsmp_fn *in1 = cnsmp_registry_add(0x40000, "plugin.a", NULL, -1.0);
	cnsmp_registry_add(0x40ff0, "plugin.b", NULL, -1.0);
	struct cnsmp_fn *out = cnsmp_registry_add(0x41000, "host.c", NULL, -1.0);
	cnsmp_registry_forget_range(0x40000, 0x41000);
	assert_null(cnsmp_registry_find(0x40000));
	assert_null(cnsmp_registry_find(0x40ff0));
	assert_ptr_equal(cnsmp_registry_find(0x41000), out);
	/* The next library at that address has other names: no stale name;
	 * a name seen before keeps its id (ids index counters). */
	struct cnsmp_fn *again = cnsmp_registry_add(0x40000, "plugin2.z", NULL, -1.0);
	assert_ptr_not_equal(again, in1);
	assert_string_equal(again->name, "plugin2.z");
	assert_int_not_equal(again->id, in1->id);
	struct cnsmp_fn *back = cnsmp_registry_add(0x40ff0, "plugin.a", NULL, -1.0);
	assert_int_equal(back->id, in1->id);
	/* The old entry still names its id for the flusher; it is taken back
	 * for the reloaded function, so reloads do not grow memory. */
	assert_string_equal(cnsmp_registry_get(in1->id)->name, "plugin.a");
	assert_ptr_equal(back, in1);
	assert_int_equal(back->addr, 0x40ff0);
	assert_ptr_equal(cnsmp_registry_find(0x40ff0), in1);
}

static void redecide_applies_a_new_exclude_and_keeps_ids(void **state)
{
	struct cnsmp_fn *f = cnsmp_registry_add(0x50000, "payments.refund",
						NULL, -1.0);
	uint32_t id = f->id;
	assert_int_equal(atomic_load(&f->state), CNSMP_FN_TRACKED);
	cnsmp_cfg.exclude.n = 1;
	cnsmp_cfg.exclude.prefix = exclude_list;
	cnsmp_registry_redecide();
	assert_int_equal(atomic_load(&f->state), CNSMP_FN_EXCLUDED);
	struct cnsmp_fn *g = cnsmp_registry_add(0x50100, "payments.void", NULL, -1.0);
	assert_int_equal(atomic_load(&g->state), CNSMP_FN_EXCLUDED);
	assert_int_equal(g->id, CNSMP_NO_ID);
	cnsmp_cfg.exclude.n = 0;
	cnsmp_registry_redecide();
	assert_int_equal(atomic_load(&f->state), CNSMP_FN_TRACKED);
	assert_int_equal(f->id, id);
	assert_int_equal(atomic_load(&g->state), CNSMP_FN_TRACKED);
	assert_ptr_equal(cnsmp_registry_get(g->id), g);
}

static void the_table_grows_past_its_first_size(void **state)
{
	for (uintptr_t i = 0; i < 100000; i++)
		assert_non_null(cnsmp_registry_add(0x1000000 + 16 * i,
						   "bulk.same", NULL, -1.0));
	for (uintptr_t i = 0; i < 100000; i++) {
		struct cnsmp_fn *f = cnsmp_registry_find(0x1000000 + 16 * i);
		assert_non_null(f);
		assert_int_equal(f->addr, 0x1000000 + 16 * i);
	}
}

/* Runs last: it uses up the ids. */
static void names_past_the_guardrail_are_dropped(void **state)
{
	char name[32];
	uint32_t start = cnsmp_registry_count();
	for (uint32_t i = start; i < CNSMP_MAX_TRACKED; i++) {
		snprintf(name, sizeof name, "many.f%u", i);
		struct cnsmp_fn *f = cnsmp_registry_add(0x9000000 + 16 * i, name,
							NULL, -1.0);
		assert_int_equal(atomic_load(&f->state), CNSMP_FN_TRACKED);
		assert_int_equal(f->id, i);
	}
	struct cnsmp_fn *f = cnsmp_registry_add(0xa000000, "many.one_too_many",
						NULL, -1.0);
	assert_int_equal(atomic_load(&f->state), CNSMP_FN_DROPPED);
	assert_int_equal(cnsmp_registry_count(), CNSMP_MAX_TRACKED);
	/* A name that already has an id is still tracked. */
	f = cnsmp_registry_add(0xa000100, "checkout.cart.total", NULL, -1.0);
	assert_int_equal(atomic_load(&f->state), CNSMP_FN_TRACKED);
}

/* The name table (8,192 slots, indexed by the hash's low bits) spreads
 * 4,000 names that differ only inside an 8-byte word as a random function
 * would (about 3,160 distinct slots): a word-wise hash must fold its high
 * bits down for that. */
static void name_hashes_spread_over_the_table(void **state)
{
	static unsigned char used[8192];
	unsigned distinct = 0;
	char name[64];
	memset(used, 0, sizeof used);
	for (int i = 0; i < 4000; i++) {
		snprintf(name, sizeof name, "svc.mod.f%04d.handler_x", i);
		size_t slot = (size_t)cnsmp_hash_str(name) & 8191;
		distinct += !used[slot];
		used[slot] = 1;
	}
	if (distinct < 3000)
		fail_msg("4,000 names fill %u of 8,192 slots, expected about 3,160", distinct);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(an_unknown_address_is_not_found),
		cmocka_unit_test(a_first_sight_is_published_with_its_name_and_id),
		cmocka_unit_test(two_addresses_with_one_name_share_the_id),
		cmocka_unit_test(overrides_set_department_and_weight),
		cmocka_unit_test(forgetting_a_range_makes_its_addresses_first_sights),
		cmocka_unit_test(redecide_applies_a_new_exclude_and_keeps_ids),
		cmocka_unit_test(the_table_grows_past_its_first_size),
		cmocka_unit_test(names_past_the_guardrail_are_dropped),
		cmocka_unit_test(name_hashes_spread_over_the_table),
	};
	return cmocka_run_group_tests_name("registry", tests, NULL, NULL);
}
