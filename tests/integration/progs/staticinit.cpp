/* staticinit.cpp: tracked calls before main and after a shutdown.
 * A static object's constructor (Early::Early) calls early_work 50 times
 * before main; main calls during 20 times, codensm_shutdown(), then
 * after_shutdown 30 times (not counted: counting stopped), codensm_init()
 * and after_reinit 40 times.  Linked with the static runtime, the static
 * initialiser runs before the runtime's own constructor.
 * Exact: Early::Early 1, early_work 50, during 20, after_reinit 40, no
 * after_shutdown. */
#include <cstdio>
#include "codensm.h"

static volatile long sink;

int early_work(int i)
{
	sink += i;
	return i;
}

struct Early {
	int n = 0;
	Early()
	{
		for (int i = 0; i < 50; i++)
			n += early_work(i) >= 0;
	}
};
static Early early;

void during(int i)
{
	sink += i;
}

void after_shutdown(int i)
{
	sink += i;
}

void after_reinit(int i)
{
	sink += i;
}

int main()
{
	for (int i = 0; i < 20; i++)
		during(i);
	codensm_shutdown();
	for (int i = 0; i < 30; i++)
		after_shutdown(i);
	struct codensm_options o = {};
	int rc = codensm_init(&o);
	for (int i = 0; i < 40; i++)
		after_reinit(i);
	std::printf("staticinit: early %d, init %d\n", early.n, rc);
	return 0;
}
