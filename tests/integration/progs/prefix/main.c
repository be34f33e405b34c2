/* main.c: calls every function of pay/ and payx/ a known number of times:
 * pay_charge 3, payx_charge 5, refund_all 2 (refund 4 more: 2 per call),
 * refund 1 directly -> refund 5. */
#include <stdio.h>

int pay_charge(int x);
int refund(int x);
int refund_all(int x);
int payx_charge(int x);

int main(void)
{
	int s = 0;

	for (int i = 0; i < 3; i++)
		s += pay_charge(i);
	for (int i = 0; i < 5; i++)
		s += payx_charge(i);
	for (int i = 0; i < 2; i++)
		s += refund_all(i);
	s += refund(7);
	printf("prefix: %d\n", s);
	return 0;
}
