/* main.c: the shop sample: N orders (argv[1], default 1000) shared by two
 * worker threads (even orders on one, odd on the other), then one summary
 * line on stdout that is the same with and without instrumentation.
 *
 * For N orders the workload is exact (integer division):
 *   place_order, cart_total, card_charge, card_authorize: N calls each
 *   cart_add_item, stock_reserve: sum of (n % 3 + 1) for n < N
 *   coupon_apply: (N + 3) / 4;  card_authorize errors: N / 50
 *   export_csv: 1;  export_xml: 0;  worker: 2 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "shop.h"

struct worker {
	int first, orders;
	long paid;
};

static void *worker(void *arg)
{
	struct worker *w = arg;

	for (int n = w->first; n < w->orders; n += 2)
		w->paid += place_order(n);
	return NULL;
}

int main(int argc, char **argv)
{
	int orders = argc > 1 ? atoi(argv[1]) : 1000;
	struct worker w[2] = { { 0, orders, 0 }, { 1, orders, 0 } };
	pthread_t t[2];

	if (orders < 0) {
		fprintf(stderr, "shop: bad order count '%s'\n", argv[1]);
		return 2;
	}
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, worker, &w[i]) != 0) {
			fprintf(stderr, "shop: cannot start a worker\n");
			return 1;
		}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	long paid = w[0].paid + w[1].paid;
	printf("shop: orders=%d paid=%ld declined=%ld items=%ld exported=%d\n",
	       orders, paid, orders - paid, stock_reserved(), export_csv(orders));
	return 0;
}
