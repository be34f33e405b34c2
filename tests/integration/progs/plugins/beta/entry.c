/* beta/entry.c: a plugin the loader dlopen()s, calls and dlclose()s; alpha
 * and beta have the same shape, so the second one loaded usually lands at
 * the address the first one left. */
static volatile long sink;

void beta_step(int i)
{
	sink += i;
}

long plugin_entry(int n)
{
	for (int i = 0; i < n; i++)
		beta_step(i);
	return sink;
}
