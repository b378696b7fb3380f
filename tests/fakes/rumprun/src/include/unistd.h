#ifndef _UNISTD_H_
#define _UNISTD_H_
#include <_rumprun_cdefs.h>
#define STDIN_FILENO 0
#define STDOUT_FILENO 1
#define STDERR_FILENO 2
__BEGIN_DECLS
ssize_t write(int, const void *, size_t);
ssize_t read(int, void *, size_t);
int close(int);
void _exit(int) __attribute__((noreturn));
pid_t getpid(void);
pid_t fork(void);
int execve(const char *, char *const[], char *const[]);
unsigned int sleep(unsigned int);
int gethostname(char *, size_t);
__END_DECLS
#endif
