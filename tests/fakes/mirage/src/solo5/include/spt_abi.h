/* Fake: the spt ABI is not modelled (the fake guest uses Linux system calls). */
#define SPT_ABI_VERSION 2
