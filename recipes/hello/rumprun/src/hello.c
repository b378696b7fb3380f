/* Hello for Rumprun: an ordinary POSIX program; rumprun-bake turns it into a kernel. */
#include <stdio.h>

int main(int argc, char *argv[])
{
	printf("Hello, world! (rumprun C recipe)\n");
	for (int i = 1; i < argc; i++)
		printf("argv[%d] = %s\n", i, argv[i]);
	return 0;
}
