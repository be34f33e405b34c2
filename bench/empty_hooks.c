/* empty_hooks.c: hooks that do nothing, built as a shared library like the
 * runtime, so the difference to the baseline is the floor of
 * -finstrument-functions itself: two calls through the PLT per call. */
#define NOINST __attribute__((no_instrument_function, visibility("default")))

NOINST void __cyg_profile_func_enter(void *fn, void *site)
{
	(void)fn;
	(void)site;
}

NOINST void __cyg_profile_func_exit(void *fn, void *site)
{
	(void)fn;
	(void)site;
}
