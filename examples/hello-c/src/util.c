#include <ctype.h>

#include "greet.h"

int shout(const char *text, char *out, int size)
{
    int n = 0;
    for (; text[n] && n < size - 1; n++)
        out[n] = (char)toupper((unsigned char)text[n]);
    out[n] = '\0';
    return n;
}
