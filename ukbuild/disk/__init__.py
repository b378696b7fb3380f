"""Bootable outputs for Multiboot kernels: raw BIOS disk images and El Torito ISOs."""
