/* legacy/export.c: old report formats.  export_csv runs once per process,
 * export_xml never: the dashboard shows them as underused / never called. */
#include "../shop.h"

int export_csv(long orders)
{
	return orders > 0;
}

int export_xml(long orders)
{
	return orders > 0;
}
