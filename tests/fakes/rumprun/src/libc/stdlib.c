/* stdlib.h and unistd.h for the fake Rumprun sysroot. */
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include "platform.h"

int errno;
char **environ;

/* Bump allocator: free() never returns memory.  Each block keeps its size. */
void *malloc(size_t n)
{
	size_t *p = __rumprun_sbrk(((n + 15) & ~(size_t)15) + 16);
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p[0] = n;
	return p + 2;
}

void free(void *p)
{
	(void)p;
}

void *calloc(size_t n, size_t size)
{
	void *p = malloc(n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

void *realloc(void *old, size_t n)
{
	void *p = malloc(n);
	if (p && old) {
		size_t had = ((size_t *)old)[-2];
		memcpy(p, old, had < n ? had : n);
	}
	return p;
}

#define MAX_ATEXIT 32
static void (*atexit_fns[MAX_ATEXIT])(void);
static int n_atexit;

int atexit(void (*fn)(void))
{
	if (n_atexit == MAX_ATEXIT)
		return -1;
	atexit_fns[n_atexit++] = fn;
	return 0;
}

void exit(int status)
{
	while (n_atexit)
		atexit_fns[--n_atexit]();
	__rumprun_exit(status);
}

void _exit(int status)
{
	__rumprun_exit(status);
}

void _Exit(int status)
{
	__rumprun_exit(status);
}

void abort(void)
{
	fputs("abort() called\n", stderr);
	__rumprun_exit(134);
}

void __assert13(const char *file, int line, const char *fn, const char *expr)
{
	fprintf(stderr, "assertion \"%s\" failed: file \"%s\", line %d, function \"%s\"\n",
	    expr, file, line, fn);
	abort();
}

char *getenv(const char *name)
{
	size_t n = strlen(name);
	for (char **e = environ; e && *e; e++)
		if (!strncmp(*e, name, n) && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static int env_slot(const char *name, size_t n)
{
	int i = 0;
	for (; environ && environ[i]; i++)
		if (!strncmp(environ[i], name, n) && environ[i][n] == '=')
			return i;
	return -1 - i;
}

int putenv(char *entry)
{
	char *eq = strchr(entry, '=');
	if (!eq) {
		errno = EINVAL;
		return -1;
	}
	int i = env_slot(entry, (size_t)(eq - entry));
	if (i >= 0) {
		environ[i] = entry;
		return 0;
	}
	int count = -1 - i;
	char **grown = malloc((size_t)(count + 2) * sizeof *grown);
	if (!grown)
		return -1;
	if (count)
		memcpy(grown, environ, (size_t)count * sizeof *grown);
	grown[count] = entry;
	grown[count + 1] = NULL;
	environ = grown;
	return 0;
}

int setenv(const char *name, const char *value, int overwrite)
{
	if (!overwrite && getenv(name))
		return 0;
	size_t n = strlen(name), v = strlen(value);
	char *entry = malloc(n + v + 2);
	if (!entry)
		return -1;
	memcpy(entry, name, n);
	entry[n] = '=';
	memcpy(entry + n + 1, value, v + 1);
	return putenv(entry);
}

int unsetenv(const char *name)
{
	int i = env_slot(name, strlen(name));
	if (i >= 0)
		for (; environ[i]; i++)
			environ[i] = environ[i + 1];
	return 0;
}

unsigned long long strtoull(const char *s, char **end, int base)
{
	const char *p = s;
	unsigned long long v = 0;
	int neg = 0, any = 0;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if ((base == 0 || base == 16) && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		p += 2;
		base = 16;
	} else if (base == 0) {
		base = *p == '0' ? 8 : 10;
	}
	for (;; p++, any = 1) {
		int d;
		if (isdigit((unsigned char)*p))
			d = *p - '0';
		else if (isalpha((unsigned char)*p))
			d = tolower((unsigned char)*p) - 'a' + 10;
		else
			break;
		if (d >= base)
			break;
		v = v * (unsigned)base + (unsigned)d;
	}
	if (end)
		*end = (char *)(any ? p : s);
	return neg ? -v : v;
}

long long strtoll(const char *s, char **end, int base)
{
	return (long long)strtoull(s, end, base);
}

unsigned long strtoul(const char *s, char **end, int base)
{
	return (unsigned long)strtoull(s, end, base);
}

long strtol(const char *s, char **end, int base)
{
	return (long)strtoull(s, end, base);
}

int atoi(const char *s)
{
	return (int)strtol(s, NULL, 10);
}

long atol(const char *s)
{
	return strtol(s, NULL, 10);
}

int abs(int v)
{
	return v < 0 ? -v : v;
}

long labs(long v)
{
	return v < 0 ? -v : v;
}

static unsigned long rand_state = 1;

void srand(unsigned int seed)
{
	rand_state = seed;
}

int rand(void)
{
	rand_state = rand_state * 1103515245 + 12345;
	return (int)((rand_state >> 16) & RAND_MAX);
}

void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	char *b = base;
	char tmp[256];
	/* Insertion sort: small inputs only; elements up to 256 bytes. */
	for (size_t i = 1; i < n && size <= sizeof tmp; i++)
		for (size_t j = i; j > 0 && cmp(b + (j - 1) * size, b + j * size) > 0; j--) {
			memcpy(tmp, b + j * size, size);
			memcpy(b + j * size, b + (j - 1) * size, size);
			memcpy(b + (j - 1) * size, tmp, size);
		}
}

ssize_t write(int fd, const void *buf, size_t n)
{
	if (fd != 1 && fd != 2) {
		errno = EBADF;
		return -1;
	}
	__rumprun_console_write(fd, buf, n);
	return (ssize_t)n;
}

ssize_t read(int fd, void *buf, size_t n)
{
	(void)fd, (void)buf, (void)n;
	return 0;
}

int close(int fd)
{
	(void)fd;
	return 0;
}

pid_t getpid(void)
{
	return 1;
}

/* Like Rumprun: the symbols exist so that configure link checks pass, but nothing forks. */
pid_t fork(void)
{
	errno = ENOSYS;
	return -1;
}

int execve(const char *path, char *const argv[], char *const envp[])
{
	(void)path, (void)argv, (void)envp;
	errno = ENOSYS;
	return -1;
}

unsigned int sleep(unsigned int s)
{
	(void)s;
	return 0;
}

int gethostname(char *buf, size_t n)
{
	strncpy(buf, "rumprun", n);
	return 0;
}
