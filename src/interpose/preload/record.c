/* Part of the observer (src/interpose/preload.c, which includes it; not compiled
 * alone): the log, and the records one event writes to it. */


#define LOG_VAR "XCACHE_OBSERVE_LOG"
#define LOG_FD_MIN 777

static __thread int busy;        /* no records from inside the library itself */
static int log_fd = -1;
static dev_t log_dev;
static ino_t log_ino;
static char log_path[PATH_MAX];
static char self_path[PATH_MAX]; /* this library, to check a child's LD_PRELOAD */
static char exe_path[PATH_MAX];  /* the program this process runs */

/* Reads a variable from `env` without calling getenv (which is interposed). */
static const char *env_in(char *const *env, const char *name) {
    size_t n = strlen(name);
    for (char *const *e = env; e && *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

static int raw_open(const char *p, int flags, mode_t mode) {
    return (int)syscall(SYS_openat, AT_FDCWD, p, flags, mode);
}

static void open_log(void) {
    if (!log_path[0]) {
        const char *p = env_in(environ, LOG_VAR);
        if (!p || strlen(p) >= sizeof log_path) return;
        strcpy(log_path, p);
    }
    int fd = raw_open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return;
    /* A high descriptor: programs that reuse low numbers must not write into it. */
    int high = fcntl(fd, F_DUPFD_CLOEXEC, LOG_FD_MIN);
    if (high >= 0) {
        close(fd);
        fd = high;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return;
    }
    log_dev = st.st_dev;
    log_ino = st.st_ino;
    log_fd = fd;
}

/* The log descriptor, checked to be still ours (a program may have closed it and got
 * the number back for a file of its own). */
static int log_desc(void) {
    if (!log_path[0]) return -1;
    struct stat st;
    if (log_fd >= 0 && fstat(log_fd, &st) == 0 && st.st_dev == log_dev &&
        st.st_ino == log_ino)
        return log_fd;
    log_fd = -1;
    open_log();
    return log_fd;
}

static size_t put_escaped(char *out, size_t cap, const char *s) {
    size_t n = 0;
    for (; *s && n + 2 < cap; s++) {
        char c = *s;
        if (c == '\\' || c == '\n' || c == '\t') {
            out[n++] = '\\';
            out[n++] = c == '\n' ? 'n' : c == '\t' ? 't' : '\\';
        } else {
            out[n++] = c;
        }
    }
    return n;
}

/* Appends one line. `dirfd` resolves a relative path of an *at() call; `extra`, when
 * given, follows the path after a tab (the object that asked for a variable). */
static void note_full(char op, long err, int dirfd, const char *path, const char *extra) {
    if (busy || !path) return;
    busy = 1;
    int saved = errno;
    int fd = log_desc();
    /* Records whose "path" is a name or a value, not a path to make absolute. */
    int named = op == 'e' || op == 'E' || op == 'X' || op == 'L' || op == 'P' || op == 'c' ||
                op == 'a' || op == 'A';
    if (fd >= 0 && (named || path[0])) {
        char abs[2 * PATH_MAX];
        const char *full = path;
        if (!named && path[0] != '/') {
            char base[PATH_MAX];
            ssize_t blen = -1;
            if (dirfd == AT_FDCWD) {
                if (getcwd(base, sizeof base)) blen = (ssize_t)strlen(base);
            } else {
                char fdp[64];
                snprintf(fdp, sizeof fdp, "/proc/self/fd/%d", dirfd);
                blen = syscall(SYS_readlinkat, AT_FDCWD, fdp, base, sizeof base - 1);
                if (blen >= 0) base[blen] = 0;
            }
            if (blen >= 0) {
                snprintf(abs, sizeof abs, "%s/%s", base, path);
                full = abs;
            }
        }
        /* A file opened by a relative name: a compiler's __FILE__ names no root then. */
        if (!extra && op == 'o' && path[0] != '/') extra = "rel";
        char line[8 * PATH_MAX + 64];
        int n = snprintf(line, sizeof line, "%d %c %ld ", (int)getpid(), op, err);
        if (n > 0) {
            size_t len = (size_t)n + put_escaped(line + n, sizeof line - (size_t)n - 2, full);
            if (extra && len + 2 < sizeof line) {
                line[len++] = '\t';
                len += put_escaped(line + len, sizeof line - len - 1, extra);
            }
            line[len++] = '\n';
            ssize_t w = write(fd, line, len);
            (void)w;
        }
    }
    errno = saved;
    busy = 0;
}

static void note_at(char op, long err, int dirfd, const char *path) {
    note_full(op, err, dirfd, path, NULL);
}

static void note(char op, long err, const char *path) { note_at(op, err, AT_FDCWD, path); }

/* A process shaped like a compile of one file (`-c`, `-o FILE`): its working directory
 * and arguments (`a`) and its environment (`A`), each a count and then the fields,
 * separated by 0x1f, so that a build script's path check can take the object from this
 * run instead of compiling again when its own compile is the same (src/wrapper/run_check/).
 * Within a field, 0x1f is written 0x1b '1' and 0x1b is written twice (cargo's encoded
 * flags are separated by 0x1f); the line's own escapes cover newlines and tabs (a
 * package's description may hold several lines). A record too long for one line is
 * left out. */
static void note_fields(char op, const char *first, char **list) {
    size_t n = 0, len = 0;
    const char *only[2] = {first, NULL};
    char **lists[2] = {(char **)only, list};
    for (int l = first ? 0 : 1; l < 2; l++)
        for (char **p = lists[l]; p && *p; p++) {
            for (const char *c = *p; *c; c++) len += (*c == 0x1f || *c == 0x1b) ? 2 : 1;
            len++;
            n++;
        }
    if (len + 32 > 8 * PATH_MAX) return;
    char *buf = malloc(len + 32);
    if (!buf) return;
    size_t at = (size_t)snprintf(buf, 32, "%zu", n);
    for (int l = first ? 0 : 1; l < 2; l++)
        for (char **p = lists[l]; p && *p; p++) {
            buf[at++] = 0x1f;
            for (const char *c = *p; *c; c++) {
                if (*c == 0x1f || *c == 0x1b) {
                    buf[at++] = 0x1b;
                    buf[at++] = *c == 0x1f ? '1' : 0x1b;
                } else {
                    buf[at++] = *c;
                }
            }
        }
    buf[at] = 0;
    note(op, 0, buf);
    free(buf);
}

/* An archiver (`ar`, `gcc-ar`, `x86_64-linux-gnu-ar`, …): its arguments are noted too,
 * so that the path check can take a whole archive (run_check/compiles.rs, `archives`). Which of
 * its forms can be taken is decided there. */
static int is_archiver(int argc, char **argv) {
    if (argc < 3 || !argv[0]) return 0;
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    size_t n = strlen(base);
    return !strcmp(base, "ar") || (n > 3 && !strcmp(base + n - 3, "-ar"));
}

static void note_compile(int argc, char **argv, char **envp) {
    int c = 0, o = 0;
    for (int i = 1; i < argc && argv[i]; i++) {
        if (!strcmp(argv[i], "-c")) c = 1;
        if (!strcmp(argv[i], "-o") && i + 1 < argc) o = 1;
    }
    if ((!c || !o) && !is_archiver(argc, argv)) return;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return;
    note_fields('a', cwd, argv);
    note_fields('A', NULL, envp);
}


#define REAL(name)                                                                     \
    static __typeof__(name) *real;                                                     \
    if (!real) real = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

/* The shape of most interposers: the real call, then what it named recorded. `failed`
 * tests the result `rv`; `notes` records with `err`, the call's errno where it failed
 * and 0 where it did not. The caller gets the real result and errno (a record keeps
 * errno). */
#define INTERPOSE(type, name, params, args, failed, notes)                             \
    type name params {                                                                 \
        REAL(name);                                                                    \
        type rv = real args;                                                           \
        long err = (failed) ? errno : 0;                                               \
        (void)err;                                                                     \
        notes;                                                                         \
        return rv;                                                                     \
    }
/* How a call tells failure: a negative number, or a null pointer. */
#define FAILS_NEG (rv < 0)
#define FAILS_NULL (!rv)
/* A call that names one path, relative to the working directory or to directory `d`. */
#define ON_PATH(type, name, params, args, failed, op)                                  \
    INTERPOSE(type, name, params, args, failed, note(op, err, p))
#define ON_PATH_AT(type, name, params, args, failed, op)                               \
    INTERPOSE(type, name, params, args, failed, note_at(op, err, d, p))
