const char *greet(const char *who);
