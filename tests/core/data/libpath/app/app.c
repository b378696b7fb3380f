#include <stdio.h>
#include <foo.h>

int main(void)
{
    printf("answer %d\n", foo_answer());
    return 0;
}
