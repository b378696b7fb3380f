/* Fake Solo5 public API (a subset of Solo5 v0.12's solo5.h) for the ukbuild test double. */
#ifndef SOLO5_H
#define SOLO5_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef enum {
    SOLO5_R_OK,
    SOLO5_R_AGAIN,
    SOLO5_R_EINVAL,
    SOLO5_R_EUNSPEC
} solo5_result_t;

struct solo5_start_info {
    const char *cmdline;
    uintptr_t heap_start;
    size_t heap_size;
};

typedef uint64_t solo5_time_t;
typedef uint64_t solo5_handle_t;

int solo5_app_main(const struct solo5_start_info *info);
void solo5_exit(int status) __attribute__((noreturn));
void solo5_abort(void) __attribute__((noreturn));
void solo5_console_write(const char *buf, size_t size);
solo5_time_t solo5_clock_monotonic(void);
solo5_time_t solo5_clock_wall(void);
void solo5_yield(solo5_time_t deadline, uintptr_t *ready_set);
solo5_result_t solo5_net_acquire(const char *name, solo5_handle_t *handle, void *info);
solo5_result_t solo5_block_acquire(const char *name, solo5_handle_t *handle, void *info);
solo5_result_t solo5_set_tls_base(uintptr_t base);

#endif
