"""The Multiboot backend: a freestanding C runtime for Multiboot v1 kernels and its checks."""
