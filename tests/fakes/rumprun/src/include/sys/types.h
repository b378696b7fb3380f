#ifndef _SYS_TYPES_H_
#define _SYS_TYPES_H_
#include <_rumprun_cdefs.h>
#include <stdint.h>
#endif
