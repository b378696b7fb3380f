/*
 * Fake Solo5 bindings: what the real solo5_<abi>.o provides to an application,
 * implemented with Linux system calls so that the fake tender can run the
 * unikernel as a host process (every ABI but virtio, whose bindings are
 * freestanding: bindings_virtio.c).  Compiled once per ABI with
 * -DABI_TARGET=N -DABI_VERSION=V [-DMULTIBOOT_OFFSET] [-DBANNER].
 *
 * The fake tender starts the binary with argv = { kernel, MEM_MB, ARGS... }.
 */
#include "solo5.h"
#include "elf_abi.h"

#define VERSION "v0.12.1-7-g469c1a8"

/* What makes the binary a Solo5 executable: PT_INTERP, the ABI1 and OpenBSD notes. */
__attribute__((section(".interp"), used)) static const char interp[] = "/nonexistent/solo5/";

#if ABI_TARGET
__attribute__((section(".note.solo5.abi"), aligned(4), used))
static const struct { struct solo5_nhdr h; struct abi1_info i; } abi1_note = {
    { sizeof(SOLO5_NOTE_NAME), sizeof(struct abi1_info), ABI1_NOTE_TYPE, SOLO5_NOTE_NAME },
    { ABI_TARGET, ABI_VERSION, { 0, 0 } },
};

__attribute__((section(".note.openbsd.ident"), aligned(4), used))
static const struct { uint32_t namesz, descsz, type; char name[8]; uint32_t desc; } openbsd_note = {
    8, 4, 1, "OpenBSD", 0,
};
#endif

#ifdef MULTIBOOT
/* A Multiboot v1 header (flags 0x00010003, a.out kludge), as the virtio and xen bindings carry. */
__attribute__((section(".multiboot"), aligned(4), used))
static const uint32_t multiboot_header[8] = {
    0x1BADB002, 0x00010003, -(0x1BADB002 + 0x00010003), 0x100000, 0x100000, 0, 0, 0x100000,
};
#endif

extern char _stext[], _etext[], _erodata[], _edata[], _end[];

uintptr_t __stack_chk_guard = 0x00000aff0a0d0000UL;

static long sys(long n, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

static size_t len(const char *s) { size_t n = 0; while (s[n]) n++; return n; }
static void puts_(const char *s) { solo5_console_write(s, len(s)); }

static void puthex(uintptr_t v)
{
    char buf[19] = "0x";
    int n = 2, shift = 60;
    while (shift > 0 && ((v >> shift) & 0xf) == 0) shift -= 4;
    for (; shift >= 0; shift -= 4) buf[n++] = "0123456789abcdef"[(v >> shift) & 0xf];
    buf[n] = 0;
    puts_(buf);
}

static void putdec(long v)
{
    char buf[24];
    int n = sizeof(buf) - 1;
    int neg = v < 0;
    unsigned long u = neg ? -(unsigned long)v : (unsigned long)v;
    buf[n] = 0;
    do { buf[--n] = '0' + u % 10; u /= 10; } while (u);
    if (neg) buf[--n] = '-';
    puts_(buf + n);
}

void solo5_console_write(const char *buf, size_t size) { sys(1, 1, (long)buf, (long)size, 0, 0, 0); }

void solo5_exit(int status)
{
    puts_("Solo5: solo5_exit(");
    putdec(status);
    puts_(") called\n");
    sys(231, status, 0, 0, 0, 0, 0);
    for (;;) {}
}

void solo5_abort(void)
{
    puts_("Solo5: solo5_abort() called\n");
    sys(231, 255, 0, 0, 0, 0, 0);
    for (;;) {}
}

void __stack_chk_fail(void)
{
    puts_("Solo5: ABORT: Stack corruption detected\n");
    sys(231, 255, 0, 0, 0, 0, 0);
    for (;;) {}
}

solo5_time_t solo5_clock_monotonic(void)
{
    struct { long s, ns; } ts;
    sys(228, 1, (long)&ts, 0, 0, 0, 0);
    return (solo5_time_t)ts.s * 1000000000ULL + ts.ns;
}

solo5_time_t solo5_clock_wall(void)
{
    struct { long s, ns; } ts;
    sys(228, 0, (long)&ts, 0, 0, 0, 0);
    return (solo5_time_t)ts.s * 1000000000ULL + ts.ns;
}

void solo5_yield(solo5_time_t deadline, uintptr_t *ready_set)
{
    struct { long s, ns; } ts;
    solo5_time_t now = solo5_clock_monotonic();
    if (ready_set) *ready_set = 0;
    if (deadline > now) {
        ts.s = (deadline - now) / 1000000000ULL;
        ts.ns = (deadline - now) % 1000000000ULL;
        sys(35, (long)&ts, 0, 0, 0, 0, 0);
    }
}

/* Devices are declared and checked by the fake tender, but carry no I/O. */
solo5_result_t solo5_net_acquire(const char *name, solo5_handle_t *handle, void *info)
{ (void)name; (void)handle; (void)info; return SOLO5_R_EUNSPEC; }
solo5_result_t solo5_block_acquire(const char *name, solo5_handle_t *handle, void *info)
{ (void)name; (void)handle; (void)info; return SOLO5_R_EUNSPEC; }
solo5_result_t solo5_set_tls_base(uintptr_t base) { (void)base; return SOLO5_R_OK; }

static void map_line(const char *label, uintptr_t lo, uintptr_t hi)
{
    puts_("Solo5: ");
    puts_(label);
    puts_(" @ (");
    puthex(lo);
    puts_(" - ");
    puthex(hi);
    puts_(")\n");
}

static char cmdline[8192];

__attribute__((used)) void solo5__fake_start(long *sp)
{
    int argc = (int)sp[0];
    char **argv = (char **)(sp + 1);
    long mem = 512;
    size_t n = 0;
    if (argc > 1) {
        mem = 0;
        for (const char *p = argv[1]; *p; p++) mem = mem * 10 + (*p - '0');
    }
    for (int i = 2; i < argc; i++) {
        for (const char *p = argv[i]; *p && n + 2 < sizeof(cmdline); p++) cmdline[n++] = *p;
        if (i + 1 < argc) cmdline[n++] = ' ';
    }
    cmdline[n] = 0;
#ifdef BANNER
    puts_("            |      ___|\n"
          "  __|  _ \\  |  _ \\ __ \\\n"
          "\\__ \\ (   | | (   |  ) |\n"
          "____/\\___/ _|\\___/____/\n");
#endif
    uintptr_t top = (uintptr_t)mem << 20;
    uintptr_t heap = ((uintptr_t)_end + 0xfff) & ~(uintptr_t)0xfff;
    puts_("Solo5: Bindings version " VERSION "\n");
    puts_("Solo5: Memory map: ");
    putdec(mem);
    puts_(" MB addressable:\n");
    map_line("  reserved", 0, (uintptr_t)_stext - 1);
    map_line("      text", (uintptr_t)_stext, (uintptr_t)_etext - 1);
    map_line("    rodata", (uintptr_t)_etext, (uintptr_t)_erodata - 1);
    map_line("      data", (uintptr_t)_erodata, heap - 1);
    puts_("Solo5:       heap >= ");
    puthex(heap);
    puts_(" < stack < ");
    puthex(top);
    puts_("\n");
    /* The heap: anonymous memory, at most 64 MiB of it (MAP_NORESERVE). */
    size_t heap_size = (top > heap ? top - heap : 0);
    if (heap_size > (64UL << 20)) heap_size = 64UL << 20;
    long p = sys(9, 0, (long)heap_size, 3, 0x22 | 0x4000, -1, 0);
    struct solo5_start_info si = { cmdline, p < 0 ? 0 : (uintptr_t)p, p < 0 ? 0 : heap_size };
    solo5_exit(solo5_app_main(&si));
}

__asm__(".text\n"
        ".globl _start\n"
        "_start:\n"
        "  xor %rbp, %rbp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call solo5__fake_start\n"
        "  hlt\n");
