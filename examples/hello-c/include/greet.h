#ifndef GREET_H
#define GREET_H

const char *greeting(void);
int shout(const char *text, char *out, int size);

#endif
