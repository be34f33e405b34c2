/* checkout/cart.c: the items of an order and their price. */
#include "../shop.h"

/* Order n holds n % 3 + 1 items, so a run of N orders adds a known number. */
long cart_total(int order)
{
	long total = 0;

	for (int item = 0; item < order % 3 + 1; item++)
		total += cart_add_item(order, item);
	return total;
}

/* Price in cents of one item; reserves it in the stock first. */
long cart_add_item(int order, int item)
{
	int sku = (order * 7 + item * 13) % 100;

	stock_reserve(sku);
	return 100 + sku * 5;
}
