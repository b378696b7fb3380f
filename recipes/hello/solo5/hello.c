/* Hello for Solo5 (include/solo5/solo5.h): freestanding, no libc; the return value is the exit status. */
#include "solo5.h"

static void puts_(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    solo5_console_write(s, n);
}

int solo5_app_main(const struct solo5_start_info *si)
{
    puts_("Hello, world! (Solo5 C recipe)\n");
    puts_("command line: ");
    puts_(si->cmdline);
    puts_("\n");
    return 0;
}
