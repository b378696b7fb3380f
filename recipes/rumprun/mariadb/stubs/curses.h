/* Header of the dummy curses library (stubs/curses.c): only its presence is checked. */
#ifndef UKBUILD_STUB_CURSES_H
#define UKBUILD_STUB_CURSES_H
int tputs(const char *str, int affcnt, int (*putc_)(int));
int setupterm(const char *term, int fd, int *err);
#endif
