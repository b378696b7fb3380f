/* The C entry point: called by boot-<arch>.S with the Multiboot registers. */
#include "multiboot.h"
#include "uk.h"

void uk_kernel_main(unsigned int magic, unsigned int mbi_addr);

void uk_kernel_main(unsigned int magic, unsigned int mbi_addr)
{
	const char *cmdline = "";
	const char *loader_name = "";

	uk_serial_init();
	if (magic == MULTIBOOT_BOOTLOADER_MAGIC) {
		const struct multiboot_info *mbi =
			(const struct multiboot_info *)(unsigned long)mbi_addr;
		if ((mbi->flags & MULTIBOOT_INFO_CMDLINE) && mbi->cmdline)
			cmdline = (const char *)(unsigned long)mbi->cmdline;
		if ((mbi->flags & MULTIBOOT_INFO_BOOT_LOADER_NAME) && mbi->boot_loader_name)
			loader_name = (const char *)(unsigned long)mbi->boot_loader_name;
	} else {
		uk_puts("ukbuild: not started by a Multiboot loader (bad magic in %eax)\n");
	}
	uk_exit(uk_app_main(cmdline, loader_name));
}
