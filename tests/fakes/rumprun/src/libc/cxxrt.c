/* The few C++ runtime entry points g++ output needs, for libc++.a. */
#include <stdlib.h>
#include <stdio.h>

void *__dso_handle = &__dso_handle;

void *_Znwm(size_t n) { return malloc(n); }
void *_Znam(size_t n) { return malloc(n); }
void _ZdlPv(void *p) { free(p); }
void _ZdaPv(void *p) { free(p); }
void _ZdlPvm(void *p, size_t n) { (void)n; free(p); }
void _ZdaPvm(void *p, size_t n) { (void)n; free(p); }

int __cxa_atexit(void (*fn)(void *), void *arg, void *dso)
{
	(void)fn, (void)arg, (void)dso;
	return 0;
}

int __cxa_guard_acquire(long long *g) { return !*(char *)g; }
void __cxa_guard_release(long long *g) { *(char *)g = 1; }
void __cxa_guard_abort(long long *g) { (void)g; }

void __cxa_pure_virtual(void)
{
	fputs("pure virtual method called\n", stderr);
	abort();
}
