#ifndef _CTYPE_H_
#define _CTYPE_H_
#include <_rumprun_cdefs.h>
__BEGIN_DECLS
int isdigit(int);
int isxdigit(int);
int isalpha(int);
int isalnum(int);
int isspace(int);
int isupper(int);
int islower(int);
int isprint(int);
int ispunct(int);
int toupper(int);
int tolower(int);
__END_DECLS
#endif
