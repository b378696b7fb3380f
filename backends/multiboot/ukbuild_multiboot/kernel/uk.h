/*
 * The ukbuild Multiboot runtime: what an application may call, and the one
 * function it must define.  Output goes to COM1 (0x3f8, 115200 8N1) as raw
 * bytes: no newline translation.
 */
#ifndef UK_H
#define UK_H

void uk_serial_write(const char *s, unsigned long n);
void uk_puts(const char *s); /* no newline added */
void uk_put_dec(long v);
void uk_exit(int code) __attribute__((noreturn)); /* writes code to isa-debug-exit port 0xf4, then halts */
void uk_halt(void) __attribute__((noreturn)); /* cli; hlt loop, never powers off */

/*
 * Defined by the application.  Both strings are never NULL: a boot loader
 * that passes no command line or no name gives "".  The return value is
 * passed to uk_exit().
 */
int uk_app_main(const char *cmdline, const char *loader_name);

/* Runtime-internal: kernel.c calls it before uk_app_main(). */
void uk_serial_init(void);

#endif /* UK_H */
