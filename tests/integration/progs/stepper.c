/* stepper: a library of the user's, for roamer.c. */
static volatile long sink;

void stride(int i)
{
	sink += i;
}
