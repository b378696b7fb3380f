/*
 * What the fake libc needs from the platform.  The guest runtime (rumprun.o)
 * defines these at bake time; pseudolinkstubs.o defines stand-ins for the
 * ferment-time stub link.
 */
#ifndef RUMPRUN_FAKE_PLATFORM_H
#define RUMPRUN_FAKE_PLATFORM_H
#include <stddef.h>
void __rumprun_console_write(int fd, const char *buf, size_t n);
void __rumprun_exit(int status) __attribute__((noreturn));
void *__rumprun_sbrk(size_t n);
#endif
