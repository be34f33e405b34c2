/* one.c: a plugin for patcher's dl mode: lib_keep (tracked) and lib_skip
 * (excluded); two.c is another library with the same entry points at
 * other offsets, so that one loaded where the other was has different
 * code under each patched address. */
static volatile long sink;

__attribute__((noinline)) void lib_skip(void)
{
	sink += 2;
}

__attribute__((noinline)) void lib_keep(void)
{
	sink++;
}
