/* payx/card.c: "pay" must not select this module ("payx" != "pay"). */
int payx_charge(int x)
{
	return x * 2;
}
