/* shop.h: the departments of the shop sample call each other through this. */
#ifndef SHOP_H
#define SHOP_H

/* checkout/order.c */
int place_order(int order);

/* checkout/cart.c */
long cart_total(int order);
long cart_add_item(int order, int item);

/* checkout/coupons.c */
long coupon_apply(long total);

/* payments/card.c */
int card_charge(long amount, int order);
int card_authorize(long amount, int order);

/* inventory/stock.c */
int stock_reserve(int sku);
long stock_reserved(void);

/* legacy/export.c */
int export_csv(long orders);
int export_xml(long orders);

#endif
