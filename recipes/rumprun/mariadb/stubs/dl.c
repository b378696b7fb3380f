/* An empty libdl.a: MariaDB links -ldl, which Rumprun's sysroot does not have (it cannot load
 * code at run time; dlopen is answered "no" for configure). */
