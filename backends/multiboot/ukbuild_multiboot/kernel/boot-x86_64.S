/*
 * 64-bit kernel with a 32-bit Multiboot v1 entry.  The header uses the a.out
 * kludge (flag bit 16) so that loaders, QEMU -kernel included, load the file
 * by the addresses below instead of parsing the ELF64 headers.
 *
 * _start runs in 32-bit protected mode: it identity-maps the first GiB with
 * 2 MiB pages, enables PAE, sets EFER.LME, turns on paging and far-jumps to
 * 64-bit code, which calls uk_kernel_main(magic, mbi_addr).
 */
#include "multiboot.h"

#define MB_FLAGS (MULTIBOOT_MEMORY_INFO | MULTIBOOT_AOUT_KLUDGE)

#define CR0_PE    (1 << 0)
#define CR0_PG    (1 << 31)
#define CR4_PAE   (1 << 5)
#define MSR_EFER  0xc0000080
#define EFER_LME  (1 << 8)
#define PTE_P_W   0x003		/* present, writable */
#define PTE_P_W_PS 0x083	/* present, writable, 2 MiB page */

	.section .multiboot, "a"
	.align 4
mb_header:
	.long MULTIBOOT_HEADER_MAGIC
	.long MB_FLAGS
	.long -(MULTIBOOT_HEADER_MAGIC + MB_FLAGS)
	.long mb_header			/* header_addr */
	.long __image_start		/* load_addr */
	.long __load_end		/* load_end_addr */
	.long __bss_end			/* bss_end_addr */
	.long _start			/* entry_addr */

	.section .rodata
	.align 8
gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: data */
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.long gdt

	.section .bss
	.align 4096
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 4096
	.align 16
stack_bottom:
	.skip 16384
stack_top:
saved_magic:
	.skip 4
saved_mbi:
	.skip 4

	.text
	.code32
	.globl _start
	.type _start, @function
_start:
	cli
	cld
	movl %eax, saved_magic
	movl %ebx, saved_mbi
	movl $stack_top, %esp

	/* Clear the three tables (the loader zeroes .bss, but do not rely on it). */
	movl $pml4, %edi
	xorl %eax, %eax
	movl $(3 * 4096 / 4), %ecx
	rep stosl

	movl $pdpt + PTE_P_W, pml4
	movl $pd + PTE_P_W, pdpt
	movl $pd, %edi
	movl $PTE_P_W_PS, %eax
	movl $512, %ecx
1:	movl %eax, (%edi)
	addl $(2 << 20), %eax
	addl $8, %edi
	loop 1b

	movl $pml4, %eax
	movl %eax, %cr3
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_PE), %eax
	movl %eax, %cr0

	lgdt gdt_ptr
	ljmp $0x08, $long_mode

	.code64
long_mode:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	xorw %ax, %ax
	movw %ax, %fs
	movw %ax, %gs
	movq $stack_top, %rsp
	movl saved_magic(%rip), %edi	/* zero-extends into %rdi */
	movl saved_mbi(%rip), %esi
	call uk_kernel_main
2:	cli
	hlt
	jmp 2b
	.size _start, . - _start

	.section .note.GNU-stack, "", @progbits
