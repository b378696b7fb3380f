#include <stdio.h>
#include "config.h"
#include "greet.h"

const char *greet(const char *who)
{
	static char buf[128];
#ifdef HAVE_FORK
	const char *fork = "yes";
#else
	const char *fork = "no";
#endif
	snprintf(buf, sizeof buf, "greetings, %s (sizeof(long)=%d, fork=%s)", who, SIZEOF_LONG, fork);
	return buf;
}
