const char *nonce_of_library(void);
