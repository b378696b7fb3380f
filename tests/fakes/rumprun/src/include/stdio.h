#ifndef _STDIO_H_
#define _STDIO_H_
#include <_rumprun_cdefs.h>
#include <stdarg.h>
typedef struct __rumprun_file FILE;
#define EOF (-1)
#define BUFSIZ 1024
__BEGIN_DECLS
extern FILE *stdin;
extern FILE *stdout;
extern FILE *stderr;
int printf(const char *, ...) __attribute__((format(printf, 1, 2)));
int fprintf(FILE *, const char *, ...) __attribute__((format(printf, 2, 3)));
int sprintf(char *, const char *, ...) __attribute__((format(printf, 2, 3)));
int snprintf(char *, size_t, const char *, ...) __attribute__((format(printf, 3, 4)));
int vprintf(const char *, va_list);
int vfprintf(FILE *, const char *, va_list);
int vsprintf(char *, const char *, va_list);
int vsnprintf(char *, size_t, const char *, va_list);
int puts(const char *);
int fputs(const char *, FILE *);
int putchar(int);
int fputc(int, FILE *);
int putc(int, FILE *);
size_t fwrite(const void *, size_t, size_t, FILE *);
int fflush(FILE *);
int fileno(FILE *);
void perror(const char *);
__END_DECLS
#endif
