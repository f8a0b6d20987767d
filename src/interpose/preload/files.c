/* Part of the observer (src/interpose/preload.c, which includes it; not compiled
 * alone): calls that open, ask about or change files, and load code. */

static char op_of_flags(int flags) {
    return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) ? 'w' : 'o';
}

static mode_t mode_arg(int flags, va_list ap) {
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

/* ---- opening files ---------------------------------------------------------------- */

/* open(2) and its kin take a mode only when they may create: read here, passed on. */
#define OPEN_VARIADIC(name, params, args, dir)                                         \
    int name params {                                                                  \
        REAL(name);                                                                    \
        va_list ap;                                                                    \
        va_start(ap, flags);                                                           \
        mode_t m = mode_arg(flags, ap);                                                \
        va_end(ap);                                                                    \
        int rv = real args;                                                            \
        note_at(op_of_flags(flags), rv < 0 ? errno : 0, dir, p);                       \
        return rv;                                                                     \
    }
OPEN_VARIADIC(open, (const char *p, int flags, ...), (p, flags, m), AT_FDCWD)
OPEN_VARIADIC(open64, (const char *p, int flags, ...), (p, flags, m), AT_FDCWD)
OPEN_VARIADIC(openat, (int d, const char *p, int flags, ...), (d, p, flags, m), d)
OPEN_VARIADIC(openat64, (int d, const char *p, int flags, ...), (d, p, flags, m), d)

/* The fortified entry points (_FORTIFY_SOURCE) for calls without a mode. */
ON_PATH(int, __open_2, (const char *p, int flags), (p, flags), FAILS_NEG, op_of_flags(flags))
ON_PATH(int, __open64_2, (const char *p, int flags), (p, flags), FAILS_NEG, op_of_flags(flags))
ON_PATH_AT(int, __openat_2, (int d, const char *p, int flags), (d, p, flags), FAILS_NEG,
           op_of_flags(flags))
ON_PATH_AT(int, __openat64_2, (int d, const char *p, int flags), (d, p, flags), FAILS_NEG,
           op_of_flags(flags))

ON_PATH(int, creat, (const char *p, mode_t m), (p, m), FAILS_NEG, 'w')
ON_PATH(int, creat64, (const char *p, mode_t m), (p, m), FAILS_NEG, 'w')
/* mkstemp(3) and its kin create the file inside the C library, not through a call
 * above: recorded here, so that a temporary file a run makes (ar's `stXXXXXX` beside
 * the archive it writes) is known as made by the run, not taken for a path it probed.
 * Only the file made is recorded: the names tried before it are the library's. */
#define TEMP_FILE(name, params, args)                                                  \
    INTERPOSE(int, name, params, args, FAILS_NEG, if (rv >= 0) note('w', 0, t))
TEMP_FILE(mkstemp, (char *t), (t))
TEMP_FILE(mkstemp64, (char *t), (t))
TEMP_FILE(mkostemp, (char *t, int fl), (t, fl))
TEMP_FILE(mkostemp64, (char *t, int fl), (t, fl))
TEMP_FILE(mkstemps, (char *t, int sl), (t, sl))
TEMP_FILE(mkstemps64, (char *t, int sl), (t, sl))
TEMP_FILE(mkostemps, (char *t, int sl, int fl), (t, sl, fl))
TEMP_FILE(mkostemps64, (char *t, int sl, int fl), (t, sl, fl))
INTERPOSE(char *, mkdtemp, (char *t), (t), FAILS_NULL, if (rv) note('m', 0, rv))

static char op_of_mode(const char *mode) {
    return (mode && (strchr(mode, 'w') || strchr(mode, 'a') || strchr(mode, '+'))) ? 'w'
                                                                                  : 'o';
}
ON_PATH(FILE *, fopen, (const char *p, const char *mode), (p, mode), FAILS_NULL,
        op_of_mode(mode))
ON_PATH(FILE *, fopen64, (const char *p, const char *mode), (p, mode), FAILS_NULL,
        op_of_mode(mode))
ON_PATH(FILE *, freopen, (const char *p, const char *mode, FILE *f), (p, mode, f), FAILS_NULL,
        op_of_mode(mode))
ON_PATH(FILE *, freopen64, (const char *p, const char *mode, FILE *f), (p, mode, f),
        FAILS_NULL, op_of_mode(mode))

/* ---- asking about paths ----------------------------------------------------------- */

ON_PATH(int, stat, (const char *p, struct stat *b), (p, b), FAILS_NEG, 's')
ON_PATH(int, stat64, (const char *p, struct stat64 *b), (p, b), FAILS_NEG, 's')
ON_PATH(int, lstat, (const char *p, struct stat *b), (p, b), FAILS_NEG, 's')
ON_PATH(int, lstat64, (const char *p, struct stat64 *b), (p, b), FAILS_NEG, 's')
ON_PATH_AT(int, fstatat, (int d, const char *p, struct stat *b, int fl), (d, p, b, fl),
           FAILS_NEG, 's')
ON_PATH_AT(int, fstatat64, (int d, const char *p, struct stat64 *b, int fl), (d, p, b, fl),
           FAILS_NEG, 's')
/* The stat entry points of binaries built against glibc before 2.33. */
ON_PATH(int, __xstat, (int v, const char *p, struct stat *b), (v, p, b), FAILS_NEG, 's')
ON_PATH(int, __xstat64, (int v, const char *p, struct stat64 *b), (v, p, b), FAILS_NEG, 's')
ON_PATH(int, __lxstat, (int v, const char *p, struct stat *b), (v, p, b), FAILS_NEG, 's')
ON_PATH(int, __lxstat64, (int v, const char *p, struct stat64 *b), (v, p, b), FAILS_NEG, 's')
ON_PATH_AT(int, __fxstatat, (int v, int d, const char *p, struct stat *b, int fl),
           (v, d, p, b, fl), FAILS_NEG, 's')
ON_PATH_AT(int, __fxstatat64, (int v, int d, const char *p, struct stat64 *b, int fl),
           (v, d, p, b, fl), FAILS_NEG, 's')
/* Rust's standard library asks statx first (looked up with dlsym, so this is found). */
int statx(int d, const char *p, int fl, unsigned int mask, struct statx *b) {
    REAL(statx);
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    int rv = real(d, p, fl, mask, b);
    /* std probes whether statx exists with a null path (`try_statx`): nothing read.
       The header declares `p` nonnull, so the check goes through a volatile copy the
       compiler cannot assume away. */
    const char *volatile path = p;
    if (path && path[0]) note_at('s', rv < 0 ? errno : 0, d, p);
    return rv;
}

ON_PATH(int, access, (const char *p, int m), (p, m), FAILS_NEG, 's')
ON_PATH_AT(int, faccessat, (int d, const char *p, int m, int fl), (d, p, m, fl), FAILS_NEG, 's')
ON_PATH(int, eaccess, (const char *p, int m), (p, m), FAILS_NEG, 's')
ON_PATH(int, euidaccess, (const char *p, int m), (p, m), FAILS_NEG, 's')

ON_PATH(ssize_t, readlink, (const char *p, char *buf, size_t n), (p, buf, n), FAILS_NEG, 'l')
ON_PATH_AT(ssize_t, readlinkat, (int d, const char *p, char *buf, size_t n), (d, p, buf, n),
           FAILS_NEG, 'l')
ON_PATH(char *, realpath, (const char *p, char *resolved), (p, resolved), FAILS_NULL, 'r')
ON_PATH(char *, __realpath_chk, (const char *p, char *resolved, size_t n), (p, resolved, n),
        FAILS_NULL, 'r')
ON_PATH(ssize_t, __readlink_chk, (const char *p, char *buf, size_t n, size_t cap),
        (p, buf, n, cap), FAILS_NEG, 'l')
ON_PATH(char *, canonicalize_file_name, (const char *p), (p), FAILS_NULL, 'r')

ON_PATH(DIR *, opendir, (const char *p), (p), FAILS_NULL, 'd')
INTERPOSE(DIR *, fdopendir, (int fd), (fd), FAILS_NULL, note_at('d', err, fd, "."))

/* ---- changing the file system ----------------------------------------------------- */

/* A directory made is an output; one that was there already was probed. */
static void note_mkdir(int rv, int d, const char *p) {
    int err = errno;
    if (rv == 0)
        note_at('m', 0, d, p);
    else
        note_at('s', err == EEXIST ? 0 : err, d, p);
    errno = err;
}

INTERPOSE(int, mkdir, (const char *p, mode_t m), (p, m), FAILS_NEG, note_mkdir(rv, AT_FDCWD, p))
INTERPOSE(int, mkdirat, (int d, const char *p, mode_t m), (d, p, m), FAILS_NEG,
          note_mkdir(rv, d, p))
ON_PATH(int, unlink, (const char *p), (p), FAILS_NEG, 'w')
ON_PATH_AT(int, unlinkat, (int d, const char *p, int fl), (d, p, fl), FAILS_NEG, 'w')
ON_PATH(int, rmdir, (const char *p), (p), FAILS_NEG, 'w')
/* Calls that name two paths: `a` (renamed, or linked to) and `b` (made). */
#define TWO_PATHS(name, params, args, op_a, da, db)                                    \
    INTERPOSE(int, name, params, args, FAILS_NEG,                                      \
              note_at(op_a, err, da, a);                                               \
              note_at('w', err, db, b))
TWO_PATHS(rename, (const char *a, const char *b), (a, b), 'w', AT_FDCWD, AT_FDCWD)
TWO_PATHS(renameat, (int da, const char *a, int db, const char *b), (da, a, db, b), 'w', da,
          db)
TWO_PATHS(renameat2, (int da, const char *a, int db, const char *b, unsigned int fl),
          (da, a, db, b, fl), 'w', da, db)
TWO_PATHS(link, (const char *a, const char *b), (a, b), 'o', AT_FDCWD, AT_FDCWD)
TWO_PATHS(linkat, (int da, const char *a, int db, const char *b, int fl), (da, a, db, b, fl),
          'o', da, db)
ON_PATH(int, symlink, (const char *target, const char *p), (target, p), FAILS_NEG, 'w')
ON_PATH_AT(int, symlinkat, (const char *target, int d, const char *p), (target, d, p),
           FAILS_NEG, 'w')
ON_PATH(int, truncate, (const char *p, off_t n), (p, n), FAILS_NEG, 'w')

/* ---- the auxiliary vector -------------------------------------------------------- */

/* What the kernel tells a process about the machine: the CPU's capabilities and
 * platform name are the CPU's description, recorded as a read of it. */
unsigned long getauxval(unsigned long type) {
    REAL(getauxval);
    unsigned long rv = real(type);
    if (type == AT_HWCAP || type == AT_HWCAP2 || type == AT_PLATFORM || type == AT_BASE_PLATFORM)
        note('o', 0, "/proc/cpuinfo");
    return rv;
}

/* ---- loading code ----------------------------------------------------------------- */

void *dlopen(const char *p, int fl) {
    REAL(dlopen);
    void *rv = real(p, fl);
    if (p && strchr(p, '/')) note('o', rv ? 0 : ENOENT, p);
    return rv;
}
