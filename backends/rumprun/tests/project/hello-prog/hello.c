#include <stdio.h>
#include <stdlib.h>
#include "nonce.h"

/* Prints a nonce of its own, one from the library, its argv and GREETING;
 * returns its last argument as the exit status. */
int main(int argc, char **argv)
{
	const char *greeting = getenv("GREETING");

	printf("program nonce: %s\n", "@PROGRAM_NONCE@");
	printf("library nonce: %s\n", nonce_of_library());
	for (int i = 0; i < argc; i++)
		printf("argv[%d]=%s\n", i, argv[i]);
	printf("GREETING=%s\n", greeting ? greeting : "(unset)");
	return argc > 1 ? atoi(argv[argc - 1]) : 0;
}
