#ifndef _STRINGS_H_
#define _STRINGS_H_
#include <_rumprun_cdefs.h>
__BEGIN_DECLS
int strcasecmp(const char *, const char *);
int strncasecmp(const char *, const char *, size_t);
__END_DECLS
#endif
