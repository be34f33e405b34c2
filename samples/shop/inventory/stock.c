/* inventory/stock.c: a shared stock counter the two workers update. */
#include <stdatomic.h>
#include "../shop.h"

static _Atomic long reserved;

int stock_reserve(int sku)
{
	atomic_fetch_add(&reserved, 1);
	return sku;
}

long stock_reserved(void)
{
	return atomic_load(&reserved);
}
