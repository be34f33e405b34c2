/* pay/card.c: names that share text but not components with payx/. */
int pay_charge(int x)
{
	return x + 1;
}

int refund(int x)
{
	return x - 1;
}

int refund_all(int x)
{
	return refund(x) + refund(x);
}
