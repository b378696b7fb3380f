#ifndef _SETJMP_H_
#define _SETJMP_H_
#include <_rumprun_cdefs.h>
typedef long jmp_buf[8];
__BEGIN_DECLS
int setjmp(jmp_buf) __attribute__((returns_twice));
void longjmp(jmp_buf, int) __attribute__((noreturn));
__END_DECLS
#endif
