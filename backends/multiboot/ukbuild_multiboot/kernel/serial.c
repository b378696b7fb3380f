/* COM1 output and the ways to stop: isa-debug-exit, or halting forever. */
#include "uk.h"

#define COM1 0x3f8
#define DEBUG_EXIT_PORT 0xf4

static inline void outb(unsigned short port, unsigned char v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(unsigned short port, unsigned int v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline unsigned char inb(unsigned short port)
{
	unsigned char v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

void uk_serial_init(void)
{
	outb(COM1 + 1, 0x00); /* no interrupts */
	outb(COM1 + 3, 0x80); /* DLAB on */
	outb(COM1 + 0, 0x01); /* divisor 1: 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8N1, DLAB off */
	outb(COM1 + 2, 0xc7); /* FIFO on, cleared */
	outb(COM1 + 4, 0x03); /* DTR, RTS */
}

void uk_serial_write(const char *s, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		while (!(inb(COM1 + 5) & 0x20)) /* transmit holding register empty */
			;
		outb(COM1, (unsigned char)s[i]);
	}
}

void uk_puts(const char *s)
{
	unsigned long n = 0;
	while (s[n])
		n++;
	uk_serial_write(s, n);
}

void uk_put_dec(long v)
{
	char buf[24];
	int i = sizeof buf;
	/* Work on the negative value so that LONG_MIN needs no special case. */
	long neg = v < 0 ? v : -v;
	do {
		buf[--i] = (char)('0' - neg % 10);
		neg /= 10;
	} while (neg);
	if (v < 0)
		buf[--i] = '-';
	uk_serial_write(buf + i, sizeof buf - i);
}

void uk_halt(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

void uk_exit(int code)
{
	/* QEMU's isa-debug-exit exits with (code << 1) | 1; without it, halt. */
	outl(DEBUG_EXIT_PORT, (unsigned int)code);
	uk_halt();
}
