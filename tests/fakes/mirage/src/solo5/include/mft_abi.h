/* Fake Solo5 manifest note layout (MFT1): 12 + 104 x entries bytes of desc. */
#ifndef MFT_ABI_H
#define MFT_ABI_H

#include "elf_abi.h"

#define MFT_VERSION 1
#define MFT_NAME_SIZE 68

enum mft_type { MFT_DEV_BLOCK_BASIC = 1, MFT_DEV_NET_BASIC = 2, MFT_RESERVED_FIRST = 0x40000000 };

struct mft_entry {
    char name[MFT_NAME_SIZE];
    uint32_t type;
    uint8_t rest[32];
};

struct mft1_desc {
    uint32_t reserved;
    uint32_t version;
    uint32_t entries;
    struct mft_entry e[MFT_ENTRIES];
};

struct mft1_note {
    struct solo5_nhdr h;
    struct mft1_desc m;
};

#define MFT1_NOTE_DECLARE_BEGIN \
    const struct mft1_note __solo5_mft1_note \
    __attribute__((section(".note.solo5.manifest"), aligned(4), used)) = { \
        .h = { .n_namesz = sizeof(SOLO5_NOTE_NAME), .n_descsz = sizeof(struct mft1_desc), \
               .n_type = MFT1_NOTE_TYPE, .name = SOLO5_NOTE_NAME }, \
        .m =
#define MFT1_NOTE_DECLARE_END };

#endif
