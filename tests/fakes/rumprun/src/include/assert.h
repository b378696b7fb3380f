#include <_rumprun_cdefs.h>
#undef assert
#ifdef NDEBUG
#define assert(e) ((void)0)
#else
__BEGIN_DECLS
void __assert13(const char *, int, const char *, const char *) __attribute__((noreturn));
__END_DECLS
#define assert(e) ((e) ? (void)0 : __assert13(__FILE__, __LINE__, __func__, #e))
#endif
