#ifndef _ERRNO_H_
#define _ERRNO_H_
#include <_rumprun_cdefs.h>
__BEGIN_DECLS
extern int errno;
__END_DECLS
#define EPERM 1
#define ENOENT 2
#define EIO 5
#define EBADF 9
#define ENOMEM 12
#define EACCES 13
#define EINVAL 22
#define ERANGE 34
#define ENOSYS 78
#endif
