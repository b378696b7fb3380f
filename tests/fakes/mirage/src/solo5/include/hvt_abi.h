/* Fake: the hvt hypercall ABI is not modelled (the fake guest uses Linux system calls). */
#define HVT_ABI_VERSION 2
