/*
 * The part of the fake Rumprun image that real rumprun.o calls .bootstrap:
 * a Multiboot v1 header with the a.out kludge (flags 0x00010003, as recorded)
 * at the very start of the image, so loaders find it before the ukbuild
 * runtime's own header.  The page after it is reserved only so that the
 * section has the recorded size (0x1020).
 *
 * Also here: turning on SSE (the shared runtime leaves it off; compiled
 * programs need it) and the helper that runs a main() on its own stack.
 * This file deliberately has no .note.GNU-stack section: real rumprun.o has
 * none either, so bakes print ld's "requires executable stack" warning.
 */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00010003

	.section .bootstrap, "ax"
	.align 4
	.globl __rumprun_mbheader
__rumprun_mbheader:
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)
	.long __rumprun_mbheader	/* header_addr */
	.long __image_start		/* load_addr */
	.long __load_end		/* load_end_addr */
	.long __bss_end			/* bss_end_addr */
	.long _start			/* entry_addr */
	.skip 0x1000

/* int __rumprun_call_on_stack(int (*fn)(int, char **), int argc, char **argv, void *sp) */
	.text
	.globl __rumprun_call_on_stack
	.type __rumprun_call_on_stack, @function
__rumprun_call_on_stack:
	pushq %rbp
	movq %rsp, %rbp
	movq %rcx, %rsp
	movq %rdi, %rax
	movl %esi, %edi
	movq %rdx, %rsi
	call *%rax
	movq %rbp, %rsp
	popq %rbp
	ret
	.size __rumprun_call_on_stack, . - __rumprun_call_on_stack

/* void __rumprun_enable_sse(void): CR0.EM off, CR0.MP on, CR4.OSFXSR|OSXMMEXCPT on. */
	.globl __rumprun_enable_sse
	.type __rumprun_enable_sse, @function
__rumprun_enable_sse:
	movq %cr0, %rax
	andq $~(1 << 2), %rax
	orq $(1 << 1), %rax
	movq %rax, %cr0
	movq %cr4, %rax
	orq $(3 << 9), %rax
	movq %rax, %cr4
	ret
	.size __rumprun_enable_sse, . - __rumprun_enable_sse
