/* A dummy curses library: MariaDB's CMake insists on one (for the command-line client's line
 * editor), but only the server is built and baked.  Nothing here is ever called. */
int tputs(const char *str, int affcnt, int (*putc_)(int)) { (void)str; (void)affcnt; (void)putc_; return -1; }
int setupterm(const char *term, int fd, int *err) { (void)term; (void)fd; if (err) *err = 0; return -1; }
int tgetent(char *bp, const char *name) { (void)bp; (void)name; return -1; }
int vidattr(unsigned long attrs) { (void)attrs; return -1; }
