#ifndef _STDDEF_H_
#define _STDDEF_H_
#include <_rumprun_cdefs.h>
typedef __PTRDIFF_TYPE__ ptrdiff_t;
#ifndef __cplusplus
typedef __WCHAR_TYPE__ wchar_t;
#endif
typedef struct { long long __ll; long double __ld; } max_align_t;
#define offsetof(t, m) __builtin_offsetof(t, m)
#endif
