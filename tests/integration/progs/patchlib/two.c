/* two.c: the other plugin for patcher's dl mode (see one.c). */
static volatile long sink;

__attribute__((noinline)) void lib_keep(void)
{
	sink += 7;
}

__attribute__((noinline)) void lib_pad(void)
{
	sink *= 3;
}

__attribute__((noinline)) void lib_skip(void)
{
	sink += 11;
}
