/*
 * Fake Solo5 virtio bindings: what the real solo5_virtio.o provides to an
 * application, freestanding, for a guest that QEMU (-kernel, or SYSLINUX's
 * mboot.c32 -aout from a disk) starts through Multiboot.  boot_virtio.S
 * switches to long mode and calls _start(mbi) here.
 *
 * Real: the console (COM1, 115200 8N1, raw bytes), the command line (the
 * Multiboot one minus its first word, the name the loader gives the kernel),
 * the memory size from the Multiboot memory map (capped at 1 GiB), the stack
 * at the top of memory and the heap between _end and it, the TSC clock
 * calibrated against the PIT, solo5_exit/solo5_abort poking QEMU's
 * isa-debug-exit at port 0x501 (QEMU exits 83) and halting otherwise; the PCI
 * enumeration of virtio-net/virtio-blk devices (bus 0 to 255, the first of each
 * kind bound to the manifest's first device of that type), with the recorded
 * lines and aborts for a device the manifest lacks or a declared device that
 * is not attached.
 * Faked: the devices are not driven (no virtqueues; net/block acquire fail),
 * no interrupts (solo5_yield spins until its deadline), no ACPI power-off, and
 * the wall clock is the monotonic one (no RTC).
 */
#include "solo5.h"
#include "elf_abi.h"

#define VERSION "v0.12.1-7-g469c1a8"
#define COM1 0x3f8
#define MEM_START 0x100000
#define MAX_MEM 0x40000000ULL /* boot_virtio.S maps the first GiB */

/* What makes the binary a Solo5 executable: PT_INTERP, the ABI1 and OpenBSD notes. */
__attribute__((section(".interp"), used)) static const char interp[] = "/nonexistent/solo5/";

__attribute__((section(".note.solo5.abi"), aligned(4), used))
static const struct { struct solo5_nhdr h; struct abi1_info i; } abi1_note = {
    { sizeof(SOLO5_NOTE_NAME), sizeof(struct abi1_info), ABI1_NOTE_TYPE, SOLO5_NOTE_NAME },
    { ABI_TARGET, ABI_VERSION, { 0, 0 } },
};

__attribute__((section(".note.openbsd.ident"), aligned(4), used))
static const struct { uint32_t namesz, descsz, type; char name[8]; uint32_t desc; } openbsd_note = {
    8, 4, 1, "OpenBSD", 0,
};

struct multiboot_info {
    uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr, syms[4];
    uint32_t mmap_length, mmap_addr;
} __attribute__((packed));

struct multiboot_mmap_entry {
    uint32_t size;
    uint64_t addr, len;
    uint32_t type;
} __attribute__((packed));

#define MBI_MEM (1 << 0)
#define MBI_CMDLINE (1 << 2)
#define MBI_MMAP (1 << 6)

extern char _stext[], _etext[], _erodata[], _end[];
extern void _newstack(uint64_t stack, void (*fn)(void *), void *arg) __attribute__((noreturn));

uintptr_t __stack_chk_guard = 0x00000aff0a0d0000UL;

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static void halt(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}

static void serial_init(void)
{
    outb(COM1 + 1, 0x00); /* no interrupts */
    outb(COM1 + 3, 0x80); /* DLAB on */
    outb(COM1 + 0, 0x01); /* divisor 1: 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); /* 8N1, DLAB off */
    outb(COM1 + 2, 0xc7); /* FIFO on, cleared */
    outb(COM1 + 4, 0x03); /* DTR, RTS */
}

void solo5_console_write(const char *buf, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        while (!(inb(COM1 + 5) & 0x20)) /* transmit holding register empty */
            ;
        outb(COM1, (uint8_t)buf[i]);
    }
}

static size_t len(const char *s) { size_t n = 0; while (s[n]) n++; return n; }
static void puts_(const char *s) { solo5_console_write(s, len(s)); }

static void puthex(uint64_t v)
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

static void platform_exit(void)
{
    /* QEMU's isa-debug-exit at its default port: QEMU exits with (41 << 1) | 1 = 83. */
    outw(0x501, 41);
    puts_("Solo5: Halted\n");
    halt();
}

void solo5_exit(int status)
{
    puts_("Solo5: solo5_exit(");
    putdec(status);
    puts_(") called\n");
    platform_exit();
    for (;;) {}
}

void solo5_abort(void)
{
    puts_("Solo5: solo5_abort() called\n");
    platform_exit();
    for (;;) {}
}

void __stack_chk_fail(void)
{
    puts_("Solo5: ABORT: Stack corruption detected\n");
    solo5_abort();
}

/* The TSC, calibrated against PIT channel 2 (10 ms one-shot, its output read at port 0x61). */
static uint64_t tsc_base, tsc_freq;

static void time_init(void)
{
    uint16_t count = 11932; /* 1193182 Hz / 100 */
    uint8_t gate = inb(0x61);
    outb(0x61, (gate & ~0x03) | 0x00); /* gate low, speaker off */
    outb(0x43, 0xb0);                  /* channel 2, lobyte/hibyte, mode 0 */
    outb(0x42, count & 0xff);
    outb(0x42, count >> 8);
    outb(0x61, (gate & ~0x02) | 0x01); /* gate high: counting starts */
    uint64_t t0 = rdtsc();
    for (unsigned long spins = 0; !(inb(0x61) & 0x20) && spins < 100000000UL; spins++)
        ;
    uint64_t t1 = rdtsc();
    tsc_freq = (t1 - t0) * 100;
    if (tsc_freq == 0)
        tsc_freq = 1000000000ULL;
    tsc_base = rdtsc();
    puts_("Solo5: Clock source: TSC, frequency estimate is ");
    putdec((long)tsc_freq);
    puts_(" Hz\n");
}

solo5_time_t solo5_clock_monotonic(void)
{
    uint64_t delta = rdtsc() - tsc_base;
    return (delta / tsc_freq) * 1000000000ULL + (delta % tsc_freq) * 1000000000ULL / tsc_freq;
}

solo5_time_t solo5_clock_wall(void) { return solo5_clock_monotonic(); }

void solo5_yield(solo5_time_t deadline, uintptr_t *ready_set)
{
    if (ready_set) *ready_set = 0;
    while (solo5_clock_monotonic() < deadline)
        __asm__ volatile("pause");
}

solo5_result_t solo5_net_acquire(const char *name, solo5_handle_t *handle, void *info)
{ (void)name; (void)handle; (void)info; return SOLO5_R_EUNSPEC; }
solo5_result_t solo5_block_acquire(const char *name, solo5_handle_t *handle, void *info)
{ (void)name; (void)handle; (void)info; return SOLO5_R_EUNSPEC; }

solo5_result_t solo5_set_tls_base(uintptr_t base)
{
    __asm__ volatile("wrmsr" : : "c"(0xc0000100), "a"((uint32_t)base), "d"((uint32_t)(base >> 32)));
    return SOLO5_R_OK;
}

/* The application's manifest (manifest.c from solo5-elftool gen-manifest), if it was linked in. */
struct mft_entry_ {
    char name[68];
    uint32_t type;
    uint8_t rest[32];
};
struct mft_note_ {
    struct solo5_nhdr h;
    uint32_t reserved, version, entries;
    struct mft_entry_ e[];
};
extern const struct mft_note_ __solo5_mft1_note __attribute__((weak));
#define MFT_BLOCK_BASIC 1
#define MFT_NET_BASIC 2
static uint8_t attached[64];

static void puthex2(unsigned v)
{
    char buf[3] = { "0123456789abcdef"[(v >> 4) & 0xf], "0123456789abcdef"[v & 0xf], 0 };
    puts_(buf);
}

static void pci_prefix(unsigned bus, unsigned dev)
{
    puts_("Solo5: PCI:");
    puthex2(bus);
    puts_(":");
    puthex2(dev);
    puts_(": ");
}

static int mft_bind(uint32_t type)
{
    const struct mft_note_ *m = &__solo5_mft1_note;
    if (!m)
        return -1;
    for (uint32_t i = 1; i < m->entries && i < sizeof(attached); i++)
        if (m->e[i].type == type && !attached[i]) {
            attached[i] = 1;
            return (int)i;
        }
    return -1;
}

static uint32_t pci_read(uint32_t addr, uint32_t reg)
{
    outl(0xcf8, addr | reg);
    return inl(0xcfc);
}

static void pci_enumerate(void)
{
    int nets = 0, blks = 0;
    for (uint32_t bus = 0; bus < 256; bus++) {
        for (uint32_t dev = 0; dev < 32; dev++) {
            uint32_t addr = (1U << 31) | (bus << 16) | (dev << 11);
            if ((pci_read(addr, 0) & 0xffff) != 0x1af4)
                continue;
            unsigned subsys = pci_read(addr, 0x2c) >> 16;
            unsigned base = pci_read(addr, 0x10) & 0xfffc;
            unsigned irq = pci_read(addr, 0x3c) & 0xff;
            if (subsys != 1 && subsys != 2) {
                pci_prefix(bus, dev);
                puts_("unknown virtio device (0x");
                puthex(subsys);
                puts_(")\n");
                continue;
            }
            pci_prefix(bus, dev);
            puts_(subsys == 1 ? "virtio-net device, base=" : "virtio-block device, base=");
            puthex(base);
            puts_(", irq=");
            putdec(irq);
            puts_("\n");
            if ((subsys == 1 ? nets++ : blks++) > 0) {
                pci_prefix(bus, dev);
                puts_("not configured\n");
                continue;
            }
            if (mft_bind(subsys == 1 ? MFT_NET_BASIC : MFT_BLOCK_BASIC) < 0) {
                puts_(subsys == 1 ? "Solo5: Virtio net: PCI:" : "Solo5: Virtio blk: PCI:");
                puthex2(bus);
                puts_(":");
                puthex2(dev);
                puts_(" not in manifest\nPCI enumeration failed. Aborting.\n");
                solo5_abort();
            }
            /* Legacy virtio I/O registers: host features at +0, device config at +0x14. */
            uint32_t features = inl((uint16_t)base);
            pci_prefix(bus, dev);
            if (subsys == 2) {
                uint64_t sectors = inl((uint16_t)(base + 0x14)) | ((uint64_t)inl((uint16_t)(base + 0x18)) << 32);
                puts_("configured, capacity=");
                putdec((long)sectors);
                puts_(" sectors, features=");
            } else {
                puts_("configured, mac=");
                for (int i = 0; i < 6; i++) {
                    puthex2(inb((uint16_t)(base + 0x14 + i)));
                    if (i < 5) puts_(":");
                }
                puts_(", features=");
            }
            puthex(features);
            puts_("\n");
        }
    }
    const struct mft_note_ *m = &__solo5_mft1_note;
    for (uint32_t i = 1; m && i < m->entries && i < sizeof(attached); i++)
        if (!attached[i]) {
            puts_("Solo5: Device '");
            puts_(m->e[i].name);
            puts_(m->e[i].type == MFT_NET_BASIC ? "' of type NET_BASIC not attached." :
                  "' of type BLOCK_BASIC not attached.");
            puts_("Solo5: All declared devices must be attached. Aborting.\n");
            solo5_abort();
        }
}

static void map_line(const char *label, uint64_t lo, uint64_t hi)
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
static uint64_t mem_size;

static void start2(void *arg)
{
    (void)arg;
    static struct solo5_start_info si;
    uint64_t heap = ((uint64_t)_end + 0xfff) & ~0xfffULL;
    puts_("Solo5: Bindings version " VERSION "\n");
    puts_("Solo5: Memory map: ");
    putdec((long)(mem_size >> 20));
    puts_(" MB addressable:\n");
    map_line("  reserved", 0, (uint64_t)_stext - 1);
    map_line("      text", (uint64_t)_stext, (uint64_t)_etext - 1);
    map_line("    rodata", (uint64_t)_etext, (uint64_t)_erodata - 1);
    map_line("      data", (uint64_t)_erodata, (uint64_t)_end - 1);
    puts_("Solo5:       heap >= ");
    puthex(heap);
    puts_(" < stack < ");
    puthex(mem_size);
    puts_("\n");
    time_init();
    pci_enumerate();
    si.cmdline = cmdline;
    si.heap_start = heap;
    si.heap_size = mem_size - heap;
    solo5_exit(solo5_app_main(&si));
}

/* Called by boot_virtio.S in long mode, on the boot stack, with the Multiboot information. */
__attribute__((used)) void _start(const struct multiboot_info *mi)
{
    serial_init();
    /* Copy the command line first: the loader put it somewhere after _end, in the future heap. */
    size_t n = 0;
    if (mi->flags & MBI_CMDLINE) {
        const char *p = (const char *)(uintptr_t)mi->cmdline;
        while (*p && *p != ' ') p++; /* skip the kernel's name */
        if (*p == ' ') p++;
        while (*p && n + 1 < sizeof(cmdline)) cmdline[n++] = *p++;
        if (*p) puts_("Solo5: warning: command line too long, truncated\n");
    }
    cmdline[n] = 0;
    if (mi->flags & MBI_MMAP) {
        for (uint32_t off = 0; off < mi->mmap_length;) {
            const struct multiboot_mmap_entry *m = (const void *)(uintptr_t)(mi->mmap_addr + off);
            if (m->addr == MEM_START && m->type == 1)
                mem_size = m->addr + m->len;
            off += m->size + sizeof(m->size);
        }
    }
    if (mem_size == 0 && (mi->flags & MBI_MEM))
        mem_size = MEM_START + ((uint64_t)mi->mem_upper << 10);
    if (mem_size > MAX_MEM)
        mem_size = MAX_MEM;
    mem_size &= ~0xfffULL;
    if (((uint64_t)_end + 0x80000) > mem_size) {
        puts_("Solo5: PANIC: Not enough memory\n");
        solo5_abort();
    }
    _newstack(mem_size, start2, 0);
}
