#include "foo.h"

int foo_answer(void)
{
    return 42; /* __FILE__ would name the build directory: */
}

const char *foo_file = __FILE__;
