/* Stub link only: stand-ins for the guest runtime, and the need for main(). */
#include <stddef.h>
int main(int, char **);
void _want_main(void)
{
	main(0, NULL);
}

void _start(void)
{
	_want_main();
}

void __rumprun_console_write(int fd, const char *buf, size_t n)
{
	(void)fd, (void)buf, (void)n;
}

void __rumprun_exit(int status)
{
	(void)status;
	for (;;)
		;
}

void *__rumprun_sbrk(size_t n)
{
	(void)n;
	return NULL;
}

void rumprun_platefs(const char **dirs, size_t ndirs, const void *files, size_t nfiles)
{
	(void)dirs, (void)ndirs, (void)files, (void)nfiles;
}
