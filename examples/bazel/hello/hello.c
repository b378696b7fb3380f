/*
 * The smallest ukbuild Multiboot application: it reports who booted it and
 * with what command line, then exits with status 0 (QEMU with
 * isa-debug-exit turns that into (0 << 1) | 1 = 1; the runner reports 0).
 */
#include "uk.h"

int uk_app_main(const char *cmdline, const char *loader_name)
{
	uk_puts("HELLO from ukbuild\n");
	uk_puts("LOADER: ");
	uk_puts(loader_name);
	uk_puts("\nCMDLINE: ");
	uk_puts(cmdline);
	uk_puts("\nBYE\n");
	return 0;
}
