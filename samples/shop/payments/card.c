/* payments/card.c: charging a card; the bank declines every 50th order.
 *
 * A declined authorisation is marked with codensm_error(), so the runtime
 * counts an error of card_authorize and records the incident chain
 * place_order -> card_charge -> card_authorize.  The reference is weak so
 * that the same source builds without the runtime (the plain variant). */
#include "../shop.h"
#include "codensm.h"

#pragma weak codensm_error

int card_authorize(long amount, int order)
{
	if (order % 50 == 49) {
		if (codensm_error)
			codensm_error();
		return 0;
	}
	return amount > 0;
}

int card_charge(long amount, int order)
{
	return card_authorize(amount, order);
}
