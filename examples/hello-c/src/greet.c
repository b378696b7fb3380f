#include "greet.h"

/* The text every build of the example prints. */
const char *greeting(void)
{
    return "hello from ukbuild";
}
