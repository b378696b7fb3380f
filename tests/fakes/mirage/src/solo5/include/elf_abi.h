/* Fake Solo5 ELF note layout (ABI1), as recorded in toolchain-contract.md §2.4. */
#ifndef ELF_ABI_H
#define ELF_ABI_H

#include <stdint.h>

#define SOLO5_NOTE_NAME "Solo5"
#define ABI1_NOTE_TYPE 0x31494241 /* "ABI1" */
#define MFT1_NOTE_TYPE 0x3154464d /* "MFT1" */

enum abi_target { ABI_TARGET_HVT = 1, ABI_TARGET_SPT = 2, ABI_TARGET_VIRTIO = 3,
                  ABI_TARGET_MUEN = 4, ABI_TARGET_XEN = 6 };

struct solo5_nhdr {
    uint32_t n_namesz, n_descsz, n_type;
    char name[8];
};

struct abi1_info {
    uint32_t abi_target;
    uint32_t abi_version;
    uint32_t reserved[2];
};

#endif
