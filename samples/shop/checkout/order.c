/* checkout/order.c: one order from cart to payment, the shop's top call. */
#include "../shop.h"

/* Returns 1 when the order was paid, 0 when the card was declined. */
int place_order(int order)
{
	long total = cart_total(order);

	if (order % 4 == 0)
		total = coupon_apply(total);
	return card_charge(total, order);
}
