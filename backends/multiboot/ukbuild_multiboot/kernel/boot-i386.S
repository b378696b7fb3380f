/*
 * 32-bit Multiboot v1 entry.  The boot loader enters in protected mode with
 * paging off, %eax = MULTIBOOT_BOOTLOADER_MAGIC and %ebx = the info address.
 */
#include "multiboot.h"

#define MB_FLAGS MULTIBOOT_MEMORY_INFO

	.section .multiboot, "a"
	.align 4
	.long MULTIBOOT_HEADER_MAGIC
	.long MB_FLAGS
	.long -(MULTIBOOT_HEADER_MAGIC + MB_FLAGS)

	.section .bss
	.align 16
stack_bottom:
	.skip 16384
stack_top:

	.text
	.globl _start
	.type _start, @function
_start:
	cli
	cld
	movl $stack_top, %esp
	pushl %ebx			/* mbi_addr */
	pushl %eax			/* magic */
	call uk_kernel_main
1:	cli
	hlt
	jmp 1b
	.size _start, . - _start

	.section .note.GNU-stack, "", @progbits
