/*
 * The parts of the Multiboot v1 specification the ukbuild runtime uses.
 * Shared by the C code and the boot assembly (guarded by __ASSEMBLER__).
 */
#ifndef UK_MULTIBOOT_H
#define UK_MULTIBOOT_H

#define MULTIBOOT_HEADER_MAGIC      0x1BADB002 /* in the kernel image */
#define MULTIBOOT_BOOTLOADER_MAGIC  0x2BADB002 /* in %eax at entry */

/* Header flags. */
#define MULTIBOOT_PAGE_ALIGN        (1 << 0)
#define MULTIBOOT_MEMORY_INFO       (1 << 1)
#define MULTIBOOT_AOUT_KLUDGE       (1 << 16) /* load addresses in the header */

/* Multiboot information flags. */
#define MULTIBOOT_INFO_CMDLINE          (1 << 2)
#define MULTIBOOT_INFO_BOOT_LOADER_NAME (1 << 9)

#ifndef __ASSEMBLER__

/* The Multiboot information structure; all addresses are 32-bit physical. */
struct multiboot_info {
	unsigned int flags;
	unsigned int mem_lower;
	unsigned int mem_upper;
	unsigned int boot_device;
	unsigned int cmdline;
	unsigned int mods_count;
	unsigned int mods_addr;
	unsigned int syms[4];
	unsigned int mmap_length;
	unsigned int mmap_addr;
	unsigned int drives_length;
	unsigned int drives_addr;
	unsigned int config_table;
	unsigned int boot_loader_name;
} __attribute__((packed));

#endif /* __ASSEMBLER__ */
#endif /* UK_MULTIBOOT_H */
