/*
 * Fake Solo5 virtio bindings, boot side: the Multiboot v1 header and the
 * 32-bit entry that switches to long mode and calls _start(mbi) in
 * bindings_virtio.c.  Modelled on the ukbuild Multiboot runtime
 * (backends/multiboot/ukbuild_multiboot/kernel/boot-x86_64.S), with what the
 * Solo5 bindings do on top of it: the recorded header fields (flags
 * 0x00010003, header at 0x100020, entry right after it), and FPU/SSE enabled
 * before any C runs, since Solo5 applications are compiled without -mno-sse.
 *
 * The linker script (solo5_virtio.lds) places .multiboot at 0x100020 and
 * .text.boot first in .text, and defines _edata (end of the loaded bytes)
 * and _end (end of .bss).
 */
#define MB_MAGIC        0x1BADB002
#define MB_FLAGS        0x00010003	/* page align, memory info, a.out kludge */
#define MB_LOADER_MAGIC 0x2BADB002

#define CR0_MP          (1 << 1)
#define CR0_EM          (1 << 2)
#define CR0_NE          (1 << 5)
#define CR0_PE          (1 << 0)
#define CR0_PG          (1 << 31)
#define CR4_PAE         (1 << 5)
#define CR4_OSFXSR      (1 << 9)
#define CR4_OSXMMEXCPT  (1 << 10)
#define MSR_EFER        0xc0000080
#define EFER_LME        (1 << 8)

	.section .multiboot, "a"
	.align 4
mb_header:
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)
	.long mb_header			/* header_addr */
	.long _stext			/* load_addr */
	.long _edata			/* load_end_addr */
	.long _end			/* bss_end_addr */
	.long _start32			/* entry_addr */

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
	.skip 16384
bootstack:

	.section .text.boot, "ax"
	.code32
	.globl _start32
	.type _start32, @function
_start32:
	cli
	cld
	cmpl $MB_LOADER_MAGIC, %eax
	jne 3f
	movl %ebx, %ebp			/* the Multiboot information */

	/* Zero .bss (loaders do, but do not rely on it), then map the first GiB 1:1. */
	movl $_edata, %edi
	movl $_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb
	movl $bootstack, %esp
	movl $pdpt + 3, pml4
	movl $pd + 3, pdpt
	movl $pd, %edi
	movl $0x83, %eax		/* present, writable, 2 MiB */
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
	ljmp $0x08, $2f

3:	cli				/* not started by a Multiboot loader */
	hlt
	jmp 3b

	.code64
2:	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	xorw %ax, %ax
	movw %ax, %fs
	movw %ax, %gs
	movq $bootstack, %rsp
	movl %ebp, %edi			/* the Multiboot information (zero-extended) */
	xorq %rbp, %rbp
	movq %cr0, %rax			/* FPU and SSE on */
	andq $~CR0_EM, %rax
	orq $(CR0_MP | CR0_NE), %rax
	movq %rax, %cr0
	movq %cr4, %rax
	orq $(CR4_OSFXSR | CR4_OSXMMEXCPT), %rax
	movq %rax, %cr4
	call _start
4:	cli
	hlt
	jmp 4b
	.size _start32, . - _start32

/* _newstack(stack top, function, argument): call function(argument) on a new stack. */
	.text
	.globl _newstack
	.type _newstack, @function
_newstack:
	movq %rdi, %rsp
	movq %rdx, %rdi
	pushq $0
	pushq $0
	call *%rsi
5:	cli
	hlt
	jmp 5b
	.size _newstack, . - _newstack

	.section .note.GNU-stack, "", @progbits
