#include <stdio.h>
#include "config.h"
#include "nonce.h"

const char *nonce_of_library(void)
{
	static char buf[160];
#ifdef HAVE_FORK
	const char *fork = "yes";
#else
	const char *fork = "no";
#endif
	snprintf(buf, sizeof buf, "%s (sizeof(long)=%d, fork=%s)", "@LIBRARY_NONCE@", SIZEOF_LONG, fork);
	return buf;
}
