/* stdio.h for the fake Rumprun sysroot: unbuffered output to the console. */
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <errno.h>
#include "platform.h"

struct __rumprun_file {
	int fd;
};

static struct __rumprun_file files[3] = { {0}, {1}, {2} };
FILE *stdin = &files[0];
FILE *stdout = &files[1];
FILE *stderr = &files[2];

struct sink {
	char *buf;	/* NULL: write to fd */
	size_t cap;
	size_t len;
	int fd;
};

static void emit(struct sink *k, const char *s, size_t n)
{
	if (k->buf) {
		for (size_t i = 0; i < n; i++, k->len++)
			if (k->len + 1 < k->cap)
				k->buf[k->len] = s[i];
	} else {
		__rumprun_console_write(k->fd, s, n);
		k->len += n;
	}
}

static void pad(struct sink *k, char c, int n)
{
	while (n-- > 0)
		emit(k, &c, 1);
}

static void format(struct sink *k, const char *fmt, va_list ap)
{
	char tmp[72];
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			const char *e = strchr(fmt, '%');
			size_t n = e ? (size_t)(e - fmt) : strlen(fmt);
			emit(k, fmt, n);
			fmt += n - 1;
			continue;
		}
		int left = 0, zero = 0, plus = 0, space = 0, alt = 0, width = 0, prec = -1, lng = 0;
		for (;; fmt++) {
			char f = fmt[1];
			if (f == '-') left = 1;
			else if (f == '0') zero = 1;
			else if (f == '+') plus = 1;
			else if (f == ' ') space = 1;
			else if (f == '#') alt = 1;
			else break;
		}
		fmt++;
		if (*fmt == '*') {
			width = va_arg(ap, int);
			if (width < 0)
				left = 1, width = -width;
			fmt++;
		} else {
			while (*fmt >= '0' && *fmt <= '9')
				width = width * 10 + (*fmt++ - '0');
		}
		if (*fmt == '.') {
			fmt++;
			prec = 0;
			if (*fmt == '*') {
				prec = va_arg(ap, int);
				fmt++;
			} else {
				while (*fmt >= '0' && *fmt <= '9')
					prec = prec * 10 + (*fmt++ - '0');
			}
		}
		for (;; fmt++) {
			if (*fmt == 'l') lng++;
			else if (*fmt == 'z' || *fmt == 'j' || *fmt == 't') lng = 2;
			else if (*fmt != 'h') break;
		}
		char c = *fmt;
		if (!c)
			break;
		const char *s;
		size_t n;
		char sign = 0;
		if (c == 's') {
			s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			n = prec >= 0 ? strnlen(s, (size_t)prec) : strlen(s);
		} else if (c == 'c') {
			tmp[0] = (char)va_arg(ap, int);
			s = tmp;
			n = 1;
		} else if (c == 'd' || c == 'i' || c == 'u' || c == 'x' || c == 'X' || c == 'o' || c == 'p') {
			uint64_t v;
			unsigned base = c == 'x' || c == 'X' || c == 'p' ? 16 : c == 'o' ? 8 : 10;
			if (c == 'p') {
				v = (uintptr_t)va_arg(ap, void *);
				alt = 1;
			} else if (c == 'd' || c == 'i') {
				int64_t sv = lng ? va_arg(ap, long) : va_arg(ap, int);
				if (sv < 0) {
					sign = '-';
					v = -(uint64_t)sv;
				} else {
					v = (uint64_t)sv;
					sign = plus ? '+' : space ? ' ' : 0;
				}
			} else {
				v = lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
			}
			const char *digits = c == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
			char *e = tmp + sizeof tmp;
			char *p = e;
			do {
				*--p = digits[v % base];
				v /= base;
			} while (v);
			if (prec >= 0) {
				zero = 0;
				while (e - p < prec)
					*--p = '0';
			}
			if (alt && base == 16 && (c == 'p' || !(p[0] == '0' && e - p == 1))) {
				*--p = c == 'X' ? 'X' : 'x';
				*--p = '0';
			}
			s = p;
			n = (size_t)(e - p);
		} else {
			tmp[0] = c;
			s = tmp;
			n = 1;
		}
		int fill = width - (int)n - (sign ? 1 : 0);
		if (!left && !zero)
			pad(k, ' ', fill);
		if (sign)
			emit(k, &sign, 1);
		if (!left && zero)
			pad(k, '0', fill);
		emit(k, s, n);
		if (left)
			pad(k, ' ', fill);
	}
}

int vsnprintf(char *buf, size_t cap, const char *fmt, va_list ap)
{
	struct sink k = { buf, cap, 0, -1 };
	format(&k, fmt, ap);
	if (cap)
		buf[k.len < cap ? k.len : cap - 1] = 0;
	return (int)k.len;
}

int vsprintf(char *buf, const char *fmt, va_list ap)
{
	return vsnprintf(buf, SIZE_MAX, fmt, ap);
}

int snprintf(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	return n;
}

int sprintf(char *buf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, SIZE_MAX, fmt, ap);
	va_end(ap);
	return n;
}

int vfprintf(FILE *f, const char *fmt, va_list ap)
{
	struct sink k = { NULL, 0, 0, f->fd };
	format(&k, fmt, ap);
	return (int)k.len;
}

int vprintf(const char *fmt, va_list ap)
{
	return vfprintf(stdout, fmt, ap);
}

int fprintf(FILE *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vfprintf(f, fmt, ap);
	va_end(ap);
	return n;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vfprintf(stdout, fmt, ap);
	va_end(ap);
	return n;
}

int fputs(const char *s, FILE *f)
{
	__rumprun_console_write(f->fd, s, strlen(s));
	return 0;
}

int puts(const char *s)
{
	fputs(s, stdout);
	return fputc('\n', stdout);
}

int fputc(int c, FILE *f)
{
	char ch = (char)c;
	__rumprun_console_write(f->fd, &ch, 1);
	return (unsigned char)ch;
}

int putc(int c, FILE *f)
{
	return fputc(c, f);
}

int putchar(int c)
{
	return fputc(c, stdout);
}

size_t fwrite(const void *p, size_t size, size_t n, FILE *f)
{
	__rumprun_console_write(f->fd, p, size * n);
	return n;
}

int fflush(FILE *f)
{
	(void)f;
	return 0;
}

int fileno(FILE *f)
{
	return f->fd;
}

void perror(const char *s)
{
	if (s && *s)
		fprintf(stderr, "%s: ", s);
	fprintf(stderr, "%s\n", strerror(errno));
}
