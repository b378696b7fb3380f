/*
 * Hello for the ukbuild Multiboot runtime (backends/multiboot/ukbuild_multiboot/kernel/uk.h):
 * the runtime switches to 64-bit mode, sets up COM1 and calls uk_app_main with the
 * boot command line; the return value goes to QEMU's isa-debug-exit.
 */
#include "uk.h"

int uk_app_main(const char *cmdline, const char *loader_name)
{
	uk_puts("Hello, world! (multiboot C recipe)\n");
	uk_puts("booted by: ");
	uk_puts(loader_name);
	uk_puts("\ncommand line: ");
	uk_puts(cmdline);
	uk_puts("\n");
	return 0;
}
