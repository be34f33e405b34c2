/* discounts/rules.c: a plugin the host loads with dlopen(): one entry
 * point, plugin_run(n), that applies rule_apply n times. */
long rule_apply(long price, int n)
{
	return n % 3 == 0 ? price - price / 20 : price;
}

long plugin_run(int n)
{
	long sum = 0;

	for (int i = 0; i < n; i++)
		sum += rule_apply(1000 + i, i);
	return sum;
}
