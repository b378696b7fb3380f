/* Modelled on Solo5's tests/test_hello: prints its command line, SUCCESS for "Hello_Solo5". */
#include "solo5.h"

static size_t strlen_(const char *s)
{
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

static int streq(const char *a, const char *b)
{
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}

static void puts_(const char *s)
{
    solo5_console_write(s, strlen_(s));
}

int solo5_app_main(const struct solo5_start_info *si)
{
    puts_("\n**** Solo5 standalone test_hello ****\n\n");
    puts_("Hello, World\nCommand line is: '");
    puts_(si->cmdline);
    puts_("'\n");
    if (streq(si->cmdline, "Hello_Solo5")) {
        puts_("SUCCESS\n");
        return 0;
    }
    return 3;
}
