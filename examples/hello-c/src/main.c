#include <stdio.h>

#include "greet.h"

int main(void)
{
    char loud[64];
    shout(greeting(), loud, sizeof loud);
    printf("%s\n%s!\n", greeting(), loud);
    return 0;
}
