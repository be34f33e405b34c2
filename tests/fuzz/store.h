/* store.h: what the server's fuzz targets share: emptying the store
 * between inputs, so that a crash replays alone. */
#ifndef CODENSM_FUZZ_STORE_H
#define CODENSM_FUZZ_STORE_H

#include "server.h"

/* Every table a request can write to, emptied; the projects (and so the
 * keys the target made at start) and the probes a target made at start
 * (not automatic) are kept.  0, or -1 with err set. */
static inline int fuzz_empty_store(char err[SRV_ERRLEN])
{
	struct srv_store *st = srv_store_get(err);
	if (!st || srv_exec(st, "DELETE FROM functions; DELETE FROM buckets; DELETE FROM hist;"
			    " DELETE FROM edges; DELETE FROM incidents; DELETE FROM batches;"
			    " DELETE FROM usage; DELETE FROM flows; DELETE FROM probes WHERE auto = 1;"
			    " DELETE FROM probe_reports; DELETE FROM probe_log;"
			    " DELETE FROM probe_settings; DELETE FROM builds; DELETE FROM callers_seen;",
			    err) < 0)
		return -1;
	return 0;
}

#endif
