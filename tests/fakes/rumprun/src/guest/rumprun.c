/*
 * Fake Rumprun guest: what runs instead of NetBSD and the rump kernels.
 *
 * It prints the recorded Rumprun boot transcript around the baked programs,
 * reads the Rumprun JSON config from the kernel command line (the loose
 * format the `rumprun` launcher writes: repeated keys, trailing and doubled
 * commas), runs each baked program's main() (rumprun_main1..8) with the
 * config's argv and environment, prints the recorded exit lines and halts
 * without powering off, as real Rumprun does.
 *
 * Compiled with -mgeneral-regs-only: SSE is off until uk_app_main() turns it on.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "uk.h"

typedef int (*mainfn)(int, char **);

void __rumprun_enable_sse(void);
int __rumprun_call_on_stack(mainfn fn, int argc, char **argv, void *sp);
void __rumprun_console_write(int fd, const char *buf, size_t n);
void __rumprun_exit(int status) __attribute__((noreturn));
void *__rumprun_sbrk(size_t n);
void rumprun_platefs(const char **dirs, size_t ndirs, const void *files, size_t nfiles);

extern char **environ;
extern char __bss_end[];
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);

/* hw_generic's component list overrides this (its memory line differs). */
__attribute__((weak)) int __rumprun_fake_memory_kb = 30528;

/* Real images have a TLS segment; this keeps one in the fake. */
__thread char __rumprun_tls_placeholder[32];

/* Program slots: bake renames each input's main to rumprun_main<i>. */
static int rumprun_main_none(int argc, char **argv)
{
	(void)argc, (void)argv;
	return 0;
}
#define SLOT(n) int rumprun_main##n(int, char **) __attribute__((weak, alias("rumprun_main_none")));
SLOT(1) SLOT(2) SLOT(3) SLOT(4) SLOT(5) SLOT(6) SLOT(7) SLOT(8)
static mainfn const slots[8] = {
	rumprun_main1, rumprun_main2, rumprun_main3, rumprun_main4,
	rumprun_main5, rumprun_main6, rumprun_main7, rumprun_main8,
};

#define APP_STACK_SIZE (512 * 1024)
#define HEAP_SIZE (6 * 1024 * 1024)
static char app_stack[APP_STACK_SIZE] __attribute__((aligned(16)));
static char *heap_next = __bss_end;

void *__rumprun_sbrk(size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (heap_next + n > __bss_end + HEAP_SIZE)
		return NULL;
	char *p = heap_next;
	heap_next += n;
	return p;
}

/* The NetBSD console turns \n into \r\n; so does this one. */
void __rumprun_console_write(int fd, const char *buf, size_t n)
{
	(void)fd;
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			uk_serial_write(buf + start, i - start);
			uk_serial_write("\r\n", 2);
			start = i + 1;
		}
	}
	uk_serial_write(buf + start, n - start);
}

static jmp_buf exit_jb;
static int exit_status;
static int in_program;

__attribute__((noreturn)) static void halt_sequence(void)
{
	printf("rump kernel halting...\n"
	    "syncing disks... done\n"
	    "unmounting file systems...\n"
	    "unmounted tmpfs on /tmp type tmpfs\n"
	    "unmounted rumpfs on / type rumpfs\n"
	    "unmounting done\n"
	    "halted\n");
	uk_halt();
}

void __rumprun_exit(int status)
{
	if (in_program) {
		exit_status = status;
		longjmp(exit_jb, 1);
	}
	printf("\n=== _exit(%d) called ===\n", status);
	halt_sequence();
}

/* cookfs objects register their files here; the fake keeps no file system. */
void rumprun_platefs(const char **dirs, size_t ndirs, const void *files, size_t nfiles)
{
	(void)dirs, (void)ndirs, (void)files, (void)nfiles;
}

/* --- PCI: enough to print the recorded probe lines and find virtio devices */

static inline void outl(unsigned short port, unsigned int v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline unsigned int inl(unsigned short port)
{
	unsigned int v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline unsigned char inb(unsigned short port)
{
	unsigned char v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static unsigned int pci_read(int dev, int fn, int off)
{
	outl(0xcf8, 0x80000000u | (unsigned)dev << 11 | (unsigned)fn << 8 | (unsigned)(off & 0xfc));
	return inl(0xcfc);
}

static const char *pci_class_name(unsigned int cls)
{
	switch (cls >> 16) {
	case 0x0600: return "host bridge";
	case 0x0601: return "ISA bridge";
	case 0x0101: return "IDE mass storage";
	case 0x0680: return "miscellaneous bridge";
	case 0x0200: return "ethernet network";
	case 0x0300: return "VGA display";
	case 0x0401: return "audio multimedia";
	case 0x0c03: return "USB serial bus";
	default: return "unknown";
	}
}

static int n_virtio, n_ld, n_vioif;

static void pci_probe(void)
{
	printf("mainbus0 (root)\n"
	    "pci0 at mainbus0 bus 0\n"
	    "pci0: i/o space, memory space enabled, rd/line, rd/mult, wr/inv ok\n");
	for (int dev = 0; dev < 32; dev++) {
		for (int fn = 0; fn < 8; fn++) {
			unsigned int id = pci_read(dev, fn, 0);
			if ((id & 0xffff) == 0xffff) {
				if (fn == 0)
					break;
				continue;
			}
			unsigned int vendor = id & 0xffff, product = id >> 16;
			unsigned int cls = pci_read(dev, fn, 8);
			unsigned int rev = cls & 0xff;
			unsigned short io = (unsigned short)(pci_read(dev, fn, 0x10) & ~3u);
			if (vendor == 0x1af4 && (product == 0x1001 || product == 0x1000)) {
				int v = n_virtio++;
				printf("virtio%d at pci0 dev %d function %d\n", v, dev, fn);
				if (product == 0x1001) {
					unsigned long sectors = inl(io + 0x14) | (unsigned long)inl(io + 0x18) << 32;
					printf("virtio%d: Virtio Block Device (rev. 0x%02x)\n", v, rev);
					printf("ld%d at virtio%d: Features: 0x10000254\n", n_ld, v);
					printf("ld%d: %lu KB, %lu cyl, 64 head, 32 sec, 512 bytes/sect x %lu sectors\n",
					    n_ld, sectors / 2, sectors / 2048, sectors);
					n_ld++;
				} else {
					unsigned char mac[6];
					for (int i = 0; i < 6; i++)
						mac[i] = inb(io + 0x14 + i);
					printf("virtio%d: Virtio Network Device (rev. 0x%02x)\n", v, rev);
					printf("vioif%d at virtio%d: Ethernet address %02x:%02x:%02x:%02x:%02x:%02x\n",
					    n_vioif++, v, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
				}
			} else {
				printf("vendor %04x product %04x (%s, revision 0x%02x) at pci0 dev %d function %d not configured\n",
				    vendor, product, pci_class_name(cls), rev, dev, fn);
			}
			if (fn == 0 && !(pci_read(dev, 0, 0xc) & 0x800000))
				break;
		}
	}
}

/* --- the JSON config, parsed as loosely as Rumprun's own parser */

struct rc_entry {
	char *bin;
	char **argv;
	int argc;
};

static char *cfg_argv0 = "rumprun";
static char **cfg_argv;
static int cfg_argc;
static struct rc_entry rc[8];
static int n_rc = -1; /* -1: no "rc" key */
static const char *p;
static int array_depth;

__attribute__((noreturn)) static void bootstrap_failed(void)
{
	printf("=== bootstrap failed\n");
	halt_sequence();
}

static void skip_space(void)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
}

/* Commas separate items; doubled ones are accepted, except inside arrays. */
static void skip_separators(void)
{
	int commas = 0;
	for (;; p++) {
		skip_space();
		if (*p != ',')
			break;
		if (++commas == 2 && array_depth) {
			printf("FATAL TRAP: page fault at 0x332562 (0xc)\n");
			uk_halt();
		}
	}
}

__attribute__((noreturn)) static void parse_error(void)
{
	printf("rumprun: error parsing json config\n");
	bootstrap_failed();
}

static char *parse_string(void)
{
	skip_space();
	if (*p != '"')
		parse_error();
	const char *start = ++p;
	while (*p && *p != '"')
		p++;
	if (!*p)
		parse_error();
	char *s = strndup(start, (size_t)(p - start));
	p++;
	return s;
}

static void expect(char c)
{
	skip_space();
	if (*p != c)
		parse_error();
	p++;
}

static void skip_value(void);

static void skip_container(char open, char close)
{
	expect(open);
	if (open == '[')
		array_depth++;
	for (;;) {
		skip_separators();
		if (*p == close) {
			p++;
			break;
		}
		if (open == '{') {
			free(parse_string());
			expect(':');
		}
		skip_value();
	}
	if (open == '[')
		array_depth--;
}

static void skip_value(void)
{
	skip_space();
	if (*p == '"')
		free(parse_string());
	else if (*p == '{')
		skip_container('{', '}');
	else if (*p == '[')
		skip_container('[', ']');
	else if (*p && *p != ',' && *p != '}' && *p != ']')
		while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n')
			p++;
	else
		parse_error();
}

/* argv from a whitespace-separated string: quoting is not interpreted. */
static char **split_words(char *s, int *argc)
{
	char **argv = calloc(strlen(s) / 2 + 2, sizeof *argv);
	int n = 0;
	for (char *w = s; *w;) {
		while (*w == ' ' || *w == '\t')
			*w++ = 0;
		if (!*w)
			break;
		argv[n++] = w;
		while (*w && *w != ' ' && *w != '\t')
			w++;
	}
	*argc = n;
	return argv;
}

static void parse_blk(void)
{
	char *path = "", *fstype = "", *mountpoint = "";
	expect('{');
	for (;;) {
		skip_separators();
		if (*p == '}') {
			p++;
			break;
		}
		char *key = parse_string();
		expect(':');
		skip_space();
		if (*p != '"') {
			skip_value();
			continue;
		}
		char *val = parse_string();
		if (!strcmp(key, "path"))
			path = val;
		else if (!strcmp(key, "fstype"))
			fstype = val;
		else if (!strcmp(key, "mountpoint"))
			mountpoint = val;
	}
	if (!*mountpoint)
		return;
	if (strcmp(fstype, "blk")) {
		printf("rumprun: unknown fstype \"%s\"\n", fstype);
		bootstrap_failed();
	}
	int unit = -1;
	if (!strncmp(path, "/dev/ld", 7))
		unit = atoi(path + 7);
	if (unit < 0 || unit >= n_ld) {
		printf("rumprun: failed to mount fs type \"blk\" from \"%s\" to \"%s\"\n", path, mountpoint);
		bootstrap_failed();
	}
}

static void parse_rc(void)
{
	expect('[');
	array_depth++;
	n_rc = 0;
	for (;;) {
		skip_separators();
		if (*p == ']') {
			p++;
			break;
		}
		struct rc_entry *e = &rc[n_rc < 8 ? n_rc : 7];
		e->argv = calloc(64, sizeof *e->argv);
		expect('{');
		for (;;) {
			skip_separators();
			if (*p == '}') {
				p++;
				break;
			}
			char *key = parse_string();
			expect(':');
			if (!strcmp(key, "bin")) {
				e->bin = parse_string();
			} else if (!strcmp(key, "argv")) {
				expect('[');
				array_depth++;
				for (;;) {
					skip_separators();
					if (*p == ']') {
						p++;
						break;
					}
					char *a = parse_string();
					if (e->argc < 62)
						e->argv[1 + e->argc++] = a;
				}
				array_depth--;
			} else {
				skip_value();
			}
		}
		if (!e->bin)
			e->bin = "rumprun";
		e->argv[0] = e->bin;
		e->argc++;
		if (n_rc < 8)
			n_rc++;
	}
	array_depth--;
}

static void parse_config(const char *cmdline)
{
	p = strchr(cmdline, '{');
	if (!p) {
		printf("rumprun: could not find start of json.  no config?\n");
		return;
	}
	p++;
	for (;;) {
		skip_separators();
		if (*p == '}' || !*p)
			break;
		char *key = parse_string();
		expect(':');
		if (!strcmp(key, "cmdline")) {
			char *s = parse_string();
			cfg_argv = split_words(s, &cfg_argc);
		} else if (!strcmp(key, "env")) {
			putenv(parse_string());
		} else if (!strcmp(key, "hostname")) {
			free(parse_string());
		} else if (!strcmp(key, "net")) {
			skip_value();
		} else if (!strcmp(key, "blk")) {
			parse_blk();
		} else if (!strcmp(key, "rc")) {
			parse_rc();
		} else {
			printf("rumprun: no match for key \"%s\"\n", key);
			bootstrap_failed();
		}
	}
	if (cfg_argc > 0)
		cfg_argv0 = cfg_argv[0];
}

/* --- running the programs */

static void run_program(mainfn fn, char *argv0, int argc, char **argv)
{
	printf("\n=== calling \"%s\" main() ===\n\n", argv0);
	if (!setjmp(exit_jb)) {
		in_program = 1;
		int rv = __rumprun_call_on_stack(fn, argc, argv, app_stack + APP_STACK_SIZE);
		printf("\n=== main() of \"%s\" returned %d ===\n", argv0, rv);
		exit(rv);
	}
	in_program = 0;
	if (exit_status)
		printf("\n=== ERROR: _exit(%d) called ===\n", exit_status);
	else
		printf("\n=== _exit(0) called ===\n");
}

int uk_app_main(const char *cmdline, const char *loader_name)
{
	(void)loader_name;
	__rumprun_enable_sse();
	printf("rump kernel bare metal bootstrap\n\n"
	    "WARNING: Processor claims to not support invariant TSC.\n"
	    "x86_initclocks(): TSC frequency estimate is 2893500000 Hz\n"
	    "x86_initclocks(): Using TSC for timekeeping\n"
	    "Copyright (c) 1996, 1997, 1998, 1999, 2000, 2001, 2002, 2003, 2004, 2005,\n"
	    "    2006, 2007, 2008, 2009, 2010, 2011, 2012, 2013, 2014, 2015, 2016\n"
	    "    The NetBSD Foundation, Inc.  All rights reserved.\n"
	    "Copyright (c) 1982, 1986, 1989, 1991, 1993\n"
	    "    The Regents of the University of California.  All rights reserved.\n\n"
	    "NetBSD 7.99.34 (RUMP-ROAST)\n"
	    "total memory = %d KB\n"
	    "timecounter: Timecounters tick every 10.000 msec\n"
	    "timecounter: Timecounter \"clockinterrupt\" frequency 100 Hz quality 0\n"
	    "cpu0 at thinair0: rump virtual cpu\n"
	    "root file system type: rumpfs\n"
	    "kern.module.path=/stand/amd64/7.99.34/modules\n", __rumprun_fake_memory_kb);
	pci_probe();
	printf("timecounter: Timecounter \"bmktc\" frequency 1000000000 Hz quality 100\n"
	    "mounted tmpfs on /tmp\n");

	for (void (**ctor)(void) = __init_array_start; ctor < __init_array_end; ctor++)
		(*ctor)();

	parse_config(cmdline);

	int nprogs = 0;
	while (nprogs < 8 && slots[nprogs] != rumprun_main_none)
		nprogs++;
	if (n_rc < 0) {
		char *none[] = { cfg_argv0, NULL };
		for (int i = 0; i < nprogs; i++)
			run_program(slots[i], cfg_argv0, cfg_argc ? cfg_argc : 1, cfg_argc ? cfg_argv : none);
	} else {
		for (int i = 0; i < nprogs && i < n_rc; i++)
			run_program(slots[i], rc[i].bin, rc[i].argc, rc[i].argv);
		printf("out of argv entries\n");
	}
	halt_sequence();
}
