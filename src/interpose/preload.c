/*
 * The observer: a library cargo-xcache preloads (LD_PRELOAD) into every process of a
 * compile or a build-script run, to learn what the process tree reads — files, paths
 * probed in vain, directory listings, environment variables, programs it executes — and
 * what it writes. The wrapper turns the record into the inputs of the unit's key
 * (src/inputs): what the compiler, a proc-macro or a build script reads is an input,
 * declared or not.
 *
 * One line per event is appended to the file named by XCACHE_OBSERVE_LOG, with one
 * write(2) on a descriptor opened O_APPEND, so processes writing at once do not mix
 * their lines:
 *
 *     <pid> <op> <errno> <path or name, escaped>\n
 *
 * ops: I process start (path: the executable; errno field: parent pid)
 *      o opened for reading (after a tab, `rel` when named by a relative path)
 *      w opened for writing / created / removed / renamed
 *      s stat or access          d directory opened for listing
 *      l readlink                r realpath
 *      m mkdir                   e getenv (errno 0: set, 1: unset)
 *      E the environment read whole: a walk of the `environ` array (path: the object
 *        whose code walked it; after a tab, the function or its offset), or why the
 *        guard could not tell (path `?`)
 *      x becomes another program (exec)
 *      p starts a child running a program (posix_spawn, system, popen)
 *      X a child escapes observation (path: why)
 *      c a variable set or removed (path: its name; `*`: the environment cleared)
 *      a a compile of one file (or an archiver) started: its working directory and
 *        arguments
 *      A that process's environment
 *
 * A child escapes when it is started without this library in its environment, is not a
 * dynamically linked ELF (a static binary ignores LD_PRELOAD), or is set-user-ID. The
 * wrapper then treats the unit's reads as unknown.
 *
 * The library never changes what a call does: it calls the real function and records
 * its result; errno is preserved. It is C, not Rust, so that it can be loaded into any
 * process without a Rust runtime of its own.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <getopt.h>
#include <iconv.h>
#include <locale.h>
#include <netdb.h>
#include <nl_types.h>
#include <pthread.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <wordexp.h>
#include <alloca.h>
#include <stdint.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <elf.h>
#include <link.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;
char *gettext(const char *);
char *dgettext(const char *, const char *);
char *dcgettext(const char *, const char *, int);
char *ngettext(const char *, const char *, unsigned long);
char *dngettext(const char *, const char *, const char *, unsigned long);
char *dcngettext(const char *, const char *, const char *, unsigned long, int);
int __xpg_strerror_r(int, char *, size_t);

#define LOG_VAR "XCACHE_OBSERVE_LOG"
#define LOG_FD_MIN 777

static void guard_start(void);
static int log_fd = -1;
static dev_t log_dev;
static ino_t log_ino;
static char log_path[PATH_MAX];
static char self_path[PATH_MAX]; /* this library, to check a child's LD_PRELOAD */
static char exe_path[PATH_MAX];  /* the program this process runs */
/* Where a loaded object lies: from the page of its first loaded segment (where it is
 * mapped, dladdr's dli_fbase) to the end of its last. Which object an address is in is
 * answered from the loader's list of objects and their segments (`object_at`), not by
 * dladdr, which looks for the nearest symbol too: that takes milliseconds in an object
 * that exports many (rustc's librustc_driver, asked at each of its getenv calls; GCC's
 * cc1, which exports all of its own for plugins). */
struct span {
    uintptr_t lo, hi;
    const char *name; /* as the loader lists it: "" for the program */
};
static struct span program; /* the program's own */

static int in_program(const void *p) {
    return (uintptr_t)p >= program.lo && (uintptr_t)p < program.hi;
}

struct span_query {
    uintptr_t addr;
    int first_only, found;
    struct span span;
};

static int span_visit(struct dl_phdr_info *i, size_t size, void *data) {
    (void)size;
    struct span_query *q = data;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    int inside = 0;
    for (int k = 0; k < i->dlpi_phnum; k++) {
        const ElfW(Phdr) *ph = &i->dlpi_phdr[k];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t a = i->dlpi_addr + ph->p_vaddr;
        if (a < lo) lo = a;
        if (a + ph->p_memsz > hi) hi = a + ph->p_memsz;
        inside |= q->addr >= a && q->addr < a + ph->p_memsz;
    }
    if (hi <= lo || (!q->first_only && !inside)) return 0;
    q->span.lo = lo & ~((uintptr_t)getauxval(AT_PAGESZ) - 1);
    q->span.hi = hi;
    q->span.name = i->dlpi_name ? i->dlpi_name : "";
    q->found = 1;
    return 1;
}

/* The object whose loaded segments hold `p`, as dladdr's dli_fname and dli_fbase. */
static int object_at(const void *p, struct span *out) {
    struct span_query q = {.addr = (uintptr_t)p};
    dl_iterate_phdr(span_visit, &q);
    if (q.found) *out = q.span;
    return q.found;
}

/* The file an object was loaded from. The loader does not name the program itself by a
 * path (dladdr gives its argv[0], how it was started): it is named by the file it runs. */
static const char *object_name(const struct span *s) {
    if ((program.lo && s->lo == program.lo) || !strchr(s->name, '/')) return exe_path;
    return s->name;
}
static __thread int busy;        /* no records from inside the library itself */

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
 * run instead of compiling again when its own compile is the same (src/wrapper/run_check.rs).
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
 * so that the path check can take a whole archive (run_check.rs, `archives`). Which of
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

__attribute__((constructor)) static void observer_start(int argc, char **argv, char **envp) {
    open_log();
    Dl_info info;
    if (dladdr((void *)observer_start, &info) && info.dli_fname)
        snprintf(self_path, sizeof self_path, "%s", info.dli_fname);
    char exe[PATH_MAX];
    ssize_t n = syscall(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    snprintf(exe_path, sizeof exe_path, "%s", n > 0 ? exe : "?");
    /* The program is the first object the loader lists; its base is where its first
     * loaded segment starts, page-aligned (what dladdr gives as dli_fbase). */
    struct span_query q = {.first_only = 1};
    dl_iterate_phdr(span_visit, &q);
    if (q.found) program = q.span;
    note('I', (long)getppid(), n > 0 ? exe : "?");
    if (argv) note_compile(argc, argv, envp);
    guard_start();
}

#define REAL(name)                                                                     \
    static __typeof__(name) *real;                                                     \
    if (!real) real = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

static char op_of_flags(int flags) {
    return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) ? 'w' : 'o';
}

static mode_t mode_arg(int flags, va_list ap) {
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

/* ---- opening files ---------------------------------------------------------------- */

#define OPEN_FN(name)                                                                  \
    int name(const char *p, int flags, ...) {                                          \
        REAL(name);                                                                    \
        va_list ap;                                                                    \
        va_start(ap, flags);                                                           \
        mode_t m = mode_arg(flags, ap);                                                \
        va_end(ap);                                                                    \
        int rv = real(p, flags, m);                                                    \
        note(op_of_flags(flags), rv < 0 ? errno : 0, p);                               \
        return rv;                                                                     \
    }
OPEN_FN(open)
OPEN_FN(open64)

#define OPENAT_FN(name)                                                                \
    int name(int d, const char *p, int flags, ...) {                                   \
        REAL(name);                                                                    \
        va_list ap;                                                                    \
        va_start(ap, flags);                                                           \
        mode_t m = mode_arg(flags, ap);                                                \
        va_end(ap);                                                                    \
        int rv = real(d, p, flags, m);                                                 \
        note_at(op_of_flags(flags), rv < 0 ? errno : 0, d, p);                         \
        return rv;                                                                     \
    }
OPENAT_FN(openat)
OPENAT_FN(openat64)

/* The fortified entry points (_FORTIFY_SOURCE) for calls without a mode. */
int __open_2(const char *p, int flags) {
    REAL(__open_2);
    int rv = real(p, flags);
    note(op_of_flags(flags), rv < 0 ? errno : 0, p);
    return rv;
}
int __open64_2(const char *p, int flags) {
    REAL(__open64_2);
    int rv = real(p, flags);
    note(op_of_flags(flags), rv < 0 ? errno : 0, p);
    return rv;
}
int __openat_2(int d, const char *p, int flags) {
    REAL(__openat_2);
    int rv = real(d, p, flags);
    note_at(op_of_flags(flags), rv < 0 ? errno : 0, d, p);
    return rv;
}
int __openat64_2(int d, const char *p, int flags) {
    REAL(__openat64_2);
    int rv = real(d, p, flags);
    note_at(op_of_flags(flags), rv < 0 ? errno : 0, d, p);
    return rv;
}

int creat(const char *p, mode_t m) {
    REAL(creat);
    int rv = real(p, m);
    note('w', rv < 0 ? errno : 0, p);
    return rv;
}
int creat64(const char *p, mode_t m) {
    REAL(creat64);
    int rv = real(p, m);
    note('w', rv < 0 ? errno : 0, p);
    return rv;
}
/* mkstemp(3) and its kin create the file inside the C library, not through a call
 * above: recorded here, so that a temporary file a run makes (ar's `stXXXXXX` beside
 * the archive it writes) is known as made by the run, not taken for a path it probed.
 * Only the file made is recorded: the names tried before it are the library's. */
#define TEMP_FILE(name, params, args)                                                  \
    int name params {                                                                  \
        REAL(name);                                                                    \
        int rv = real args;                                                            \
        if (rv >= 0) note('w', 0, t);                                                  \
        return rv;                                                                     \
    }
TEMP_FILE(mkstemp, (char *t), (t))
TEMP_FILE(mkstemp64, (char *t), (t))
TEMP_FILE(mkostemp, (char *t, int fl), (t, fl))
TEMP_FILE(mkostemp64, (char *t, int fl), (t, fl))
TEMP_FILE(mkstemps, (char *t, int sl), (t, sl))
TEMP_FILE(mkstemps64, (char *t, int sl), (t, sl))
TEMP_FILE(mkostemps, (char *t, int sl, int fl), (t, sl, fl))
TEMP_FILE(mkostemps64, (char *t, int sl, int fl), (t, sl, fl))
char *mkdtemp(char *t) {
    REAL(mkdtemp);
    char *rv = real(t);
    if (rv) note('m', 0, rv);
    return rv;
}

static char op_of_mode(const char *mode) {
    return (mode && (strchr(mode, 'w') || strchr(mode, 'a') || strchr(mode, '+'))) ? 'w'
                                                                                  : 'o';
}
FILE *fopen(const char *p, const char *mode) {
    REAL(fopen);
    FILE *rv = real(p, mode);
    note(op_of_mode(mode), rv ? 0 : errno, p);
    return rv;
}
FILE *fopen64(const char *p, const char *mode) {
    REAL(fopen64);
    FILE *rv = real(p, mode);
    note(op_of_mode(mode), rv ? 0 : errno, p);
    return rv;
}
FILE *freopen(const char *p, const char *mode, FILE *f) {
    REAL(freopen);
    FILE *rv = real(p, mode, f);
    note(op_of_mode(mode), rv ? 0 : errno, p);
    return rv;
}
FILE *freopen64(const char *p, const char *mode, FILE *f) {
    REAL(freopen64);
    FILE *rv = real(p, mode, f);
    note(op_of_mode(mode), rv ? 0 : errno, p);
    return rv;
}

/* ---- asking about paths ----------------------------------------------------------- */

#define STAT_FN(name, st)                                                              \
    int name(const char *p, struct st *b) {                                            \
        REAL(name);                                                                    \
        int rv = real(p, b);                                                           \
        note('s', rv < 0 ? errno : 0, p);                                              \
        return rv;                                                                     \
    }
STAT_FN(stat, stat)
STAT_FN(stat64, stat64)
STAT_FN(lstat, stat)
STAT_FN(lstat64, stat64)

int fstatat(int d, const char *p, struct stat *b, int fl) {
    REAL(fstatat);
    int rv = real(d, p, b, fl);
    note_at('s', rv < 0 ? errno : 0, d, p);
    return rv;
}
int fstatat64(int d, const char *p, struct stat64 *b, int fl) {
    REAL(fstatat64);
    int rv = real(d, p, b, fl);
    note_at('s', rv < 0 ? errno : 0, d, p);
    return rv;
}
/* The stat entry points of binaries built against glibc before 2.33. */
int __xstat(int v, const char *p, struct stat *b) {
    REAL(__xstat);
    int rv = real(v, p, b);
    note('s', rv < 0 ? errno : 0, p);
    return rv;
}
int __xstat64(int v, const char *p, struct stat64 *b) {
    REAL(__xstat64);
    int rv = real(v, p, b);
    note('s', rv < 0 ? errno : 0, p);
    return rv;
}
int __lxstat(int v, const char *p, struct stat *b) {
    REAL(__lxstat);
    int rv = real(v, p, b);
    note('s', rv < 0 ? errno : 0, p);
    return rv;
}
int __lxstat64(int v, const char *p, struct stat64 *b) {
    REAL(__lxstat64);
    int rv = real(v, p, b);
    note('s', rv < 0 ? errno : 0, p);
    return rv;
}
int __fxstatat(int v, int d, const char *p, struct stat *b, int fl) {
    REAL(__fxstatat);
    int rv = real(v, d, p, b, fl);
    note_at('s', rv < 0 ? errno : 0, d, p);
    return rv;
}
int __fxstatat64(int v, int d, const char *p, struct stat64 *b, int fl) {
    REAL(__fxstatat64);
    int rv = real(v, d, p, b, fl);
    note_at('s', rv < 0 ? errno : 0, d, p);
    return rv;
}
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

int access(const char *p, int m) {
    REAL(access);
    int rv = real(p, m);
    note('s', rv < 0 ? errno : 0, p);
    return rv;
}
int faccessat(int d, const char *p, int m, int fl) {
    REAL(faccessat);
    int rv = real(d, p, m, fl);
    note_at('s', rv < 0 ? errno : 0, d, p);
    return rv;
}
int eaccess(const char *p, int m) {
    REAL(eaccess);
    int rv = real(p, m);
    note('s', rv < 0 ? errno : 0, p);
    return rv;
}
int euidaccess(const char *p, int m) {
    REAL(euidaccess);
    int rv = real(p, m);
    note('s', rv < 0 ? errno : 0, p);
    return rv;
}

ssize_t readlink(const char *p, char *buf, size_t n) {
    REAL(readlink);
    ssize_t rv = real(p, buf, n);
    note('l', rv < 0 ? errno : 0, p);
    return rv;
}
ssize_t readlinkat(int d, const char *p, char *buf, size_t n) {
    REAL(readlinkat);
    ssize_t rv = real(d, p, buf, n);
    note_at('l', rv < 0 ? errno : 0, d, p);
    return rv;
}
char *realpath(const char *p, char *resolved) {
    REAL(realpath);
    char *rv = real(p, resolved);
    note('r', rv ? 0 : errno, p);
    return rv;
}
char *__realpath_chk(const char *p, char *resolved, size_t n) {
    REAL(__realpath_chk);
    char *rv = real(p, resolved, n);
    note('r', rv ? 0 : errno, p);
    return rv;
}
ssize_t __readlink_chk(const char *p, char *buf, size_t n, size_t cap) {
    REAL(__readlink_chk);
    ssize_t rv = real(p, buf, n, cap);
    note('l', rv < 0 ? errno : 0, p);
    return rv;
}
char *canonicalize_file_name(const char *p) {
    REAL(canonicalize_file_name);
    char *rv = real(p);
    note('r', rv ? 0 : errno, p);
    return rv;
}

DIR *opendir(const char *p) {
    REAL(opendir);
    DIR *rv = real(p);
    note('d', rv ? 0 : errno, p);
    return rv;
}
DIR *fdopendir(int fd) {
    REAL(fdopendir);
    DIR *rv = real(fd);
    note_at('d', rv ? 0 : errno, fd, ".");
    return rv;
}

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

int mkdir(const char *p, mode_t m) {
    REAL(mkdir);
    int rv = real(p, m);
    note_mkdir(rv, AT_FDCWD, p);
    return rv;
}
int mkdirat(int d, const char *p, mode_t m) {
    REAL(mkdirat);
    int rv = real(d, p, m);
    note_mkdir(rv, d, p);
    return rv;
}
int unlink(const char *p) {
    REAL(unlink);
    int rv = real(p);
    note('w', rv < 0 ? errno : 0, p);
    return rv;
}
int unlinkat(int d, const char *p, int fl) {
    REAL(unlinkat);
    int rv = real(d, p, fl);
    note_at('w', rv < 0 ? errno : 0, d, p);
    return rv;
}
int rmdir(const char *p) {
    REAL(rmdir);
    int rv = real(p);
    note('w', rv < 0 ? errno : 0, p);
    return rv;
}
int rename(const char *a, const char *b) {
    REAL(rename);
    int rv = real(a, b);
    note('w', rv < 0 ? errno : 0, a);
    note('w', rv < 0 ? errno : 0, b);
    return rv;
}
int renameat(int da, const char *a, int db, const char *b) {
    REAL(renameat);
    int rv = real(da, a, db, b);
    note_at('w', rv < 0 ? errno : 0, da, a);
    note_at('w', rv < 0 ? errno : 0, db, b);
    return rv;
}
int renameat2(int da, const char *a, int db, const char *b, unsigned int fl) {
    REAL(renameat2);
    int rv = real(da, a, db, b, fl);
    note_at('w', rv < 0 ? errno : 0, da, a);
    note_at('w', rv < 0 ? errno : 0, db, b);
    return rv;
}
int link(const char *a, const char *b) {
    REAL(link);
    int rv = real(a, b);
    note('o', rv < 0 ? errno : 0, a);
    note('w', rv < 0 ? errno : 0, b);
    return rv;
}
int linkat(int da, const char *a, int db, const char *b, int fl) {
    REAL(linkat);
    int rv = real(da, a, db, b, fl);
    note_at('o', rv < 0 ? errno : 0, da, a);
    note_at('w', rv < 0 ? errno : 0, db, b);
    return rv;
}
int symlink(const char *target, const char *p) {
    REAL(symlink);
    int rv = real(target, p);
    note('w', rv < 0 ? errno : 0, p);
    return rv;
}
int symlinkat(const char *target, int d, const char *p) {
    REAL(symlinkat);
    int rv = real(target, d, p);
    note_at('w', rv < 0 ? errno : 0, d, p);
    return rv;
}
int truncate(const char *p, off_t n) {
    REAL(truncate);
    int rv = real(p, n);
    note('w', rv < 0 ? errno : 0, p);
    return rv;
}

/* ---- environment ------------------------------------------------------------------ */

/*
 * The environment guard. A process can read a variable without naming it: Rust's
 * `std::env::vars()`, a shell taking every variable into its own table, Python's
 * `os.environ` all walk the `environ` array. Such a read is an input like any other, so
 * the observer must see it. At start the library copies `environ` (the array of
 * pointers; the strings stay where they are) to pages of its own that nothing may read
 * (PROT_NONE) and points `environ` there; what the environment *is* lives in a readable
 * copy, the shadow, which this library's getenv and setenv use. Any other read of the
 * array faults; the fault handler records which object's code read it ('E', once per
 * object), lets that one instruction run (x86_64: the trap flag, then the pages are
 * closed again; elsewhere the pages stay open, and the record says so), and the process
 * goes on as if nothing happened.
 *
 * What reads the array besides a program enumerating it:
 * - the C library's own lookups by a name it does not tell (setlocale reads LC_ALL…):
 *   the functions known to do so are wrapped (below): the names they read are recorded
 *   and the pages opened for the call when the process has no other thread (else the
 *   call is stepped through). A lookup the library does not know is recorded as libc's
 *   read, which the wrapper takes as the whole environment read.
 * - the kernel, when a program starts another with `environ`: every exec and spawn
 *   passes the shadow instead (a fault cannot be taken in the kernel: the exec would
 *   fail with EFAULT). system(), popen() and wordexp() start `/bin/sh` with `environ`
 *   inside the C library: the pages are open for the call.
 * - the program's own signal handling: SIGSEGV and SIGTRAP handlers it installs are
 *   kept as the next in line (sigaction and signal answer as if they were installed),
 *   and they are never blocked.
 */
#define MAX_REGIONS 64
#define MAX_RECORDED 32
struct region {
    char **base;   /* the guarded array (what `environ` pointed to) */
    size_t bytes;  /* the mapping's length */
    char **shadow; /* the same array, readable */
};
static struct region regions[MAX_REGIONS];
static int n_regions;
static char **env_guard;  /* the guarded array `environ` points to now, if any */
static char **env_shadow; /* what it holds */
static size_t env_len;
static int guard_on;      /* 0: never set up or given up */
static int guard_step;    /* 1: faults are stepped through (x86_64); 0: pages opened */
static int open_calls;    /* calls that have the pages open now */
static int swap_calls;    /* calls that run with `environ` at the shadow (one thread) */
static char **swapped;    /* the guarded array `environ` pointed to before they began */
static volatile int threads_started;
static pthread_mutex_t env_mu = PTHREAD_MUTEX_INITIALIZER;
static __thread int stepping;    /* this thread runs one guarded instruction */
static __thread int libc_reading; /* inside a wrapped C library call */
static struct sigaction next_segv, next_trap; /* the program's own handlers */
static uintptr_t recorded[MAX_RECORDED]; /* which reads were recorded (see on_segv) */
static int n_recorded;
/* The main thread's signal stack, when the program had none: room for the fault handler
 * to ask the unwinder who called the code that read the environment. */
#define ALT_STACK_SIZE (64 * 1024)
static char alt_stack[ALT_STACK_SIZE] __attribute__((aligned(16)));
static volatile unsigned long env_generation = 1; /* counts changes to the environment */

static struct region *region_of(const void *addr) {
    for (int i = 0; i < n_regions; i++) {
        const char *b = (const char *)regions[i].base;
        if ((const char *)addr >= b && (const char *)addr < b + regions[i].bytes)
            return &regions[i];
    }
    return NULL;
}

static void regions_protect(int prot) {
    for (int i = 0; i < n_regions; i++)
        mprotect(regions[i].base, regions[i].bytes, prot);
}

/* The array to read for this process's environment: the shadow while `environ` is
 * guarded, else whatever the program made `environ`. */
static char *const *env_now(void) {
    struct region *r = environ ? region_of(environ) : NULL;
    return r ? r->shadow : environ;
}

/* The array to hand the kernel instead of `env`. */
static char *const *kernel_env(char *const *env) {
    struct region *r = env ? region_of(env) : NULL;
    return r ? r->shadow : env;
}

/* Puts a copy of `shadow` (`len` entries) behind a new guard and points `environ` at
 * it. With the lock held. */
static int guard_publish(char **shadow, size_t len) {
    if (n_regions == MAX_REGIONS) return -1;
    long page = sysconf(_SC_PAGESIZE);
    size_t bytes = ((len + 1) * sizeof(char *) + (size_t)page - 1) / (size_t)page * (size_t)page;
    char **g = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g == MAP_FAILED) return -1;
    memcpy(g, shadow, (len + 1) * sizeof(char *));
    regions[n_regions].base = g;
    regions[n_regions].bytes = bytes;
    regions[n_regions].shadow = shadow;
    n_regions++;
    if (!open_calls) mprotect(g, bytes, PROT_NONE);
    env_guard = g;
    env_shadow = shadow;
    env_len = len;
    environ = g;
    return 0;
}

static void note_env_all(const char *obj, const char *what);

/* Gives the guard up (too many changes): the environment stays as it is, readable, and
 * the record says a read could no longer be seen. With the lock held. */
static void guard_give_up(const char *why) {
    guard_on = 0;
    regions_protect(PROT_READ | PROT_WRITE);
    environ = env_shadow;
    note_env_all("?", why);
}

/* Lets a C library call that reads the environment for itself (or hands it to a child)
 * read it. Returns 0 when the call's faults are stepped through (other threads run), 1
 * when the pages were opened for it, 2 when `environ` points at the shadow for it.
 *
 * With one thread the last: `environ` at the shadow for the call, put back after, two
 * stores and no system call. gcc's cc1 asks gettext for every warning it considers
 * (120 000 times in one compile of SQLite's amalgamation), and opening and closing the
 * pages around each took two mprotect calls: a third of a second of the compile's system
 * time. What the call may read unseen is the same either way (the whole array, for the
 * call's length), and the names it reads are recorded before it. With other threads the
 * pointer cannot move (they would read the shadow unseen): the pages are opened, or the
 * faults stepped through, as before. */
static int guard_open_for_call(void) {
    if (!guard_on) return 0;
    if (threads_started && guard_step) {
        libc_reading++;
        return 0;
    }
    pthread_mutex_lock(&env_mu);
    struct region *r = environ ? region_of(environ) : NULL;
    if (!threads_started && (swap_calls > 0 || (r && !open_calls))) {
        if (swap_calls++ == 0) {
            swapped = environ;
            environ = r->shadow;
        }
        pthread_mutex_unlock(&env_mu);
        return 2;
    }
    if (open_calls++ == 0) regions_protect(PROT_READ | PROT_WRITE);
    pthread_mutex_unlock(&env_mu);
    if (threads_started) note_env_all("?", "the environment was open while other threads ran");
    return 1;
}

static void guard_close_after_call(int opened) {
    if (!guard_on && !opened) return;
    if (!opened) {
        if (libc_reading) libc_reading--;
        return;
    }
    pthread_mutex_lock(&env_mu);
    if (opened == 2) {
        /* Put back only what this left: a guard given up, or `environ` moved back by a
         * thread started meanwhile, stays as it is. */
        struct region *r = swapped ? region_of(swapped) : NULL;
        if (--swap_calls == 0 && guard_on && r && environ == r->shadow) environ = swapped;
    } else if (--open_calls == 0 && guard_on) {
        regions_protect(PROT_NONE);
    }
    pthread_mutex_unlock(&env_mu);
}

static char *env_lookup(char *const *env, const char *name);

/* A variable read is recorded with the object whose code asked for it, so that the
 * compiler's own settings can be told from what a proc-macro reads in its process. */
static void note_env(const char *name, int set, void *caller) {
    struct span span;
    const char *obj = NULL;
    int in_main = 0;
    if (!busy && caller && in_program(caller)) {
        obj = exe_path;
        in_main = 1;
    } else if (!busy && caller && object_at(caller, &span)) {
        obj = object_name(&span);
    }
    /* PATH, when set, with the value this process saw: a C compiler driver's read of it
     * is a search for programs, keyed by what it finds (see classify). Read by the
     * program itself (a build script), with the chain of its calls that led to the read
     * (`obj @ +0x… +0x…`, as for a walk), so that the reader can tell a search for a
     * program by a known function (the `cc` crate's `Build::which`) from another use. */
    const char *path_now = set && !strcmp(name, "PATH") ? env_lookup(env_now(), "PATH") : NULL;
    if (path_now && in_main) {
        void *frames[48];
        /* The unwinder may load a library on first use: the observer's doing, unrecorded. */
        busy = 1;
        int n = backtrace(frames, 48);
        busy = 0;
        char what[PATH_MAX + 640];
        size_t len = (size_t)snprintf(what, sizeof what, "%s @", obj);
        for (int i = 0; i < n && len + 24 < sizeof what; i++) {
            if (!in_program(frames[i])) continue;
            len += (size_t)snprintf(what + len, sizeof what - len, " +0x%lx",
                                    (unsigned long)((uintptr_t)frames[i] - program.lo));
        }
        note_full('P', 0, AT_FDCWD, path_now, what);
    } else if (path_now)
        note_full('P', 0, AT_FDCWD, path_now, obj ? obj : "?");
    else
        note_full('e', set ? 0 : 1, AT_FDCWD, name, obj ? obj : "?");
}

/* The whole environment read by code of `obj` (`what`: the function, or why). Small on
 * the stack: it runs in the fault handler, maybe on a program's small signal stack. */
static void note_env_all(const char *obj, const char *what) {
    int saved = errno;
    int fd = log_desc();
    if (fd >= 0) {
        char line[1024];
        int n = snprintf(line, sizeof line, "%d E 0 ", (int)getpid());
        if (n > 0 && (size_t)n < sizeof line) {
            size_t len = (size_t)n + put_escaped(line + n, sizeof line - (size_t)n - 200, obj);
            line[len++] = '\t';
            len += put_escaped(line + len, sizeof line - len - 2, what);
            line[len++] = '\n';
            ssize_t w = write(fd, line, len);
            (void)w;
        }
    }
    errno = saved;
}

static char *env_lookup(char *const *env, const char *name) {
    size_t n = strlen(name);
    if (!env || !n) return NULL;
    for (char *const *e = env; *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

char *getenv(const char *name) {
    char *rv = env_lookup(env_now(), name);
    note_env(name, rv != NULL, __builtin_return_address(0));
    return rv;
}
char *secure_getenv(const char *name) {
    char *rv = getauxval(AT_SECURE) ? NULL : env_lookup(env_now(), name);
    note_env(name, rv != NULL, __builtin_return_address(0));
    return rv;
}

/* Changing the environment: done here, on a new shadow, so that `environ` stays
 * guarded. Like the C library, arrays and strings are never freed (a pointer another
 * thread got from getenv stays valid). */
static char **env_copy(char *const *env, size_t extra, size_t *len) {
    size_t n = 0;
    while (env && env[n]) n++;
    char **c = malloc((n + extra + 1) * sizeof(char *));
    if (!c) return NULL;
    for (size_t i = 0; i < n; i++) c[i] = env[i];
    c[n] = NULL;
    *len = n;
    return c;
}

/* A variable set or removed by the process (`c`, path: its name; `*` for all of them):
 * what a copy of the environment taken later holds is then no longer what the run
 * started with (see classify's use of the `cc` crate's copy). */
static void note_env_change(const char *name, size_t n) {
    char nm[256];
    size_t k = n < sizeof nm - 1 ? n : sizeof nm - 1;
    memcpy(nm, name, k);
    nm[k] = 0;
    note('c', 0, nm);
}

/* Replaces (or adds) the entry named by the first `n` bytes of `entry`, or removes every
 * such entry when `entry` is NULL; `keep`: leave an existing entry alone. */
static int env_change(const char *name, size_t n, char *entry, int keep) {
    pthread_mutex_lock(&env_mu);
    char *const *now = env_now();
    size_t len;
    char **c = env_copy(now, 1, &len);
    if (!c) {
        pthread_mutex_unlock(&env_mu);
        errno = ENOMEM;
        return -1;
    }
    size_t w = 0;
    int found = 0;
    for (size_t i = 0; i < len; i++) {
        int same = !strncmp(c[i], name, n) && c[i][n] == '=';
        if (same && (keep || (entry && !found))) {
            found = 1;
            c[w++] = keep ? c[i] : entry;
        } else if (!same) {
            c[w++] = c[i];
        }
    }
    if (!found && entry) c[w++] = entry;
    c[w] = NULL;
    env_generation++;
    int guarded = guard_on && (environ == env_guard || environ == NULL);
    if (guarded) {
        if (guard_publish(c, w) != 0) guard_give_up("too many changes to the environment");
    } else {
        environ = c;
    }
    pthread_mutex_unlock(&env_mu);
    note_env_change(name, n);
    return 0;
}

static int bad_name(const char *name) {
    return !name || !*name || strchr(name, '=');
}

int setenv(const char *name, const char *value, int overwrite) {
    if (bad_name(name)) {
        errno = EINVAL;
        return -1;
    }
    size_t n = strlen(name), v = strlen(value);
    char *entry = malloc(n + v + 2);
    if (!entry) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(entry, name, n);
    entry[n] = '=';
    memcpy(entry + n + 1, value, v + 1);
    return env_change(name, n, entry, !overwrite);
}
int unsetenv(const char *name) {
    if (bad_name(name)) {
        errno = EINVAL;
        return -1;
    }
    return env_change(name, strlen(name), NULL, 0);
}
int putenv(char *string) {
    const char *eq = strchr(string, '=');
    if (!eq) return unsetenv(string) == 0 || errno != EINVAL ? 0 : -1;
    return env_change(string, (size_t)(eq - string), string, 0);
}
int clearenv(void) {
    pthread_mutex_lock(&env_mu);
    if (guard_on && environ == env_guard) env_guard = NULL;
    environ = NULL;
    pthread_mutex_unlock(&env_mu);
    note_env_change("*", 1);
    return 0;
}

/* What the C library reads for itself, by name, in the calls below (glibc's sources). */
static const char *const LOCALE_VARS[] = {
    "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE", "LC_MONETARY",
    "LC_MESSAGES", "LC_PAPER", "LC_NAME", "LC_ADDRESS", "LC_TELEPHONE",
    "LC_MEASUREMENT", "LC_IDENTIFICATION", "LANG", "LOCPATH", NULL};
static const char *const TIME_VARS[] = {"TZ", "TZDIR", NULL};
static const char *const OPT_VARS[] = {"POSIXLY_CORRECT", NULL};
static const char *const TEXT_VARS[] = {"LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG",
                                        "NLSPATH", NULL};
static const char *const RESOLVER_VARS[] = {"RES_OPTIONS", "LOCALDOMAIN", "HOSTALIASES",
                                            NULL};
static const char *const ICONV_VARS[] = {"GCONV_PATH", NULL};

/* Each list is recorded once per process and environment (a change to the environment
 * records them again): a compiler calls gettext for every message it prepares. */
static void note_libc_reads(const char *const *names, void *caller) {
    static const char *const *done[16];
    static unsigned long done_gen[16];
    int slot = -1;
    for (int i = 0; i < 16; i++) {
        if (done[i] == names || !done[i]) {
            slot = i;
            break;
        }
    }
    if (slot >= 0 && done[slot] == names && done_gen[slot] == env_generation) return;
    char *const *env = env_now();
    for (const char *const *n = names; *n; n++)
        note_env(*n, env_lookup(env, *n) != NULL, caller);
    if (slot >= 0) {
        done[slot] = names;
        done_gen[slot] = env_generation;
    }
}

/* A wrapped C library call: its reads recorded by name, the pages open for it. */
#define LIBC_READER(ret, name, names, params, args)                                    \
    ret name params {                                                                  \
        REAL(name);                                                                    \
        note_libc_reads(names, __builtin_return_address(0));                           \
        int opened = guard_open_for_call();                                            \
        ret rv = real args;                                                            \
        guard_close_after_call(opened);                                                \
        return rv;                                                                     \
    }
#define LIBC_READER_VOID(name, names, params, args)                                    \
    void name params {                                                                 \
        REAL(name);                                                                    \
        note_libc_reads(names, __builtin_return_address(0));                           \
        int opened = guard_open_for_call();                                            \
        real args;                                                                     \
        guard_close_after_call(opened);                                                \
    }

LIBC_READER(char *, setlocale, LOCALE_VARS, (int c, const char *l), (c, l))
LIBC_READER(locale_t, newlocale, LOCALE_VARS, (int m, const char *l, locale_t b), (m, l, b))
LIBC_READER_VOID(tzset, TIME_VARS, (void), ())
LIBC_READER(struct tm *, localtime, TIME_VARS, (const time_t *t), (t))
LIBC_READER(struct tm *, localtime_r, TIME_VARS, (const time_t *t, struct tm *r), (t, r))
LIBC_READER(time_t, mktime, TIME_VARS, (struct tm *t), (t))
LIBC_READER(char *, ctime, TIME_VARS, (const time_t *t), (t))
LIBC_READER(char *, ctime_r, TIME_VARS, (const time_t *t, char *b), (t, b))
LIBC_READER(size_t, strftime, TIME_VARS,
            (char *s, size_t m, const char *f, const struct tm *t), (s, m, f, t))
LIBC_READER(int, getopt, OPT_VARS, (int c, char *const v[], const char *o), (c, v, o))
LIBC_READER(int, getopt_long, OPT_VARS,
            (int c, char *const v[], const char *o, const struct option *l, int *i),
            (c, v, o, l, i))
LIBC_READER(int, getopt_long_only, OPT_VARS,
            (int c, char *const v[], const char *o, const struct option *l, int *i),
            (c, v, o, l, i))
LIBC_READER(char *, gettext, TEXT_VARS, (const char *m), (m))
LIBC_READER(char *, dgettext, TEXT_VARS, (const char *d, const char *m), (d, m))
LIBC_READER(char *, dcgettext, TEXT_VARS, (const char *d, const char *m, int c), (d, m, c))
LIBC_READER(char *, ngettext, TEXT_VARS, (const char *a, const char *b, unsigned long n),
            (a, b, n))
LIBC_READER(char *, dngettext, TEXT_VARS,
            (const char *d, const char *a, const char *b, unsigned long n), (d, a, b, n))
LIBC_READER(char *, dcngettext, TEXT_VARS,
            (const char *d, const char *a, const char *b, unsigned long n, int c),
            (d, a, b, n, c))
LIBC_READER(char *, strerror, TEXT_VARS, (int e), (e))
LIBC_READER(char *, strerror_l, TEXT_VARS, (int e, locale_t l), (e, l))
LIBC_READER(char *, strerror_r, TEXT_VARS, (int e, char *b, size_t n), (e, b, n))
LIBC_READER(int, __xpg_strerror_r, TEXT_VARS, (int e, char *b, size_t n), (e, b, n))
LIBC_READER(char *, strsignal, TEXT_VARS, (int s), (s))
LIBC_READER_VOID(perror, TEXT_VARS, (const char *s), (s))
LIBC_READER_VOID(psignal, TEXT_VARS, (int s, const char *m), (s, m))
LIBC_READER(nl_catd, catopen, TEXT_VARS, (const char *n, int f), (n, f))
LIBC_READER(iconv_t, iconv_open, ICONV_VARS, (const char *t, const char *f), (t, f))
LIBC_READER(int, getaddrinfo, RESOLVER_VARS,
            (const char *n, const char *s, const struct addrinfo *h, struct addrinfo **r),
            (n, s, h, r))
LIBC_READER(struct hostent *, gethostbyname, RESOLVER_VARS, (const char *n), (n))

/* The program's own SIGSEGV and SIGTRAP handlers come after this library's: set and
 * asked as if they were installed. */
static struct sigaction *next_for(int sig) {
    if (!guard_on) return NULL;
    return sig == SIGSEGV ? &next_segv : sig == SIGTRAP ? &next_trap : NULL;
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    REAL(sigaction);
    struct sigaction *next = next_for(sig);
    if (!next) return real(sig, act, old);
    pthread_mutex_lock(&env_mu);
    if (old) *old = *next;
    if (act) *next = *act;
    pthread_mutex_unlock(&env_mu);
    return 0;
}

static sighandler_t set_next_handler(int sig, sighandler_t h) {
    struct sigaction *next = next_for(sig);
    pthread_mutex_lock(&env_mu);
    sighandler_t old = next->sa_handler; /* the union's other reading for SA_SIGINFO */
    memset(next, 0, sizeof *next);
    next->sa_handler = h;
    next->sa_flags = SA_RESTART;
    pthread_mutex_unlock(&env_mu);
    return old;
}
sighandler_t signal(int sig, sighandler_t h) {
    REAL(signal);
    if (!next_for(sig)) return real(sig, h);
    return set_next_handler(sig, h);
}
sighandler_t sysv_signal(int sig, sighandler_t h) {
    REAL(sysv_signal);
    if (!next_for(sig)) return real(sig, h);
    return set_next_handler(sig, h);
}
sighandler_t bsd_signal(int sig, sighandler_t h) {
    REAL(bsd_signal);
    if (!next_for(sig)) return real(sig, h);
    return set_next_handler(sig, h);
}

/* SIGSEGV and SIGTRAP are never blocked while the guard is on: a fault on a thread that
 * blocks them would end the process. */
static const sigset_t *unblocked(int how, const sigset_t *set, sigset_t *buf) {
    if (!guard_on || !set || how == SIG_UNBLOCK) return set;
    *buf = *set;
    sigdelset(buf, SIGSEGV);
    sigdelset(buf, SIGTRAP);
    return buf;
}
int sigprocmask(int how, const sigset_t *set, sigset_t *old) {
    REAL(sigprocmask);
    sigset_t buf;
    return real(how, unblocked(how, set, &buf), old);
}
int pthread_sigmask(int how, const sigset_t *set, sigset_t *old) {
    REAL(pthread_sigmask);
    sigset_t buf;
    return real(how, unblocked(how, set, &buf), old);
}

/* A process with other threads cannot have the pages opened for one of them. */
int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *), void *arg) {
    REAL(pthread_create);
    pthread_mutex_lock(&env_mu);
    /* A thread started inside a call that runs with `environ` at the shadow would read
     * it unseen: `environ` goes back to the guard, and the rest of the call faults like
     * any reader (recorded as the C library's read: the whole environment). */
    if (swap_calls > 0 && swapped && guard_on) {
        struct region *r = region_of(swapped);
        if (r && environ == r->shadow) environ = swapped;
    }
    threads_started = 1;
    pthread_mutex_unlock(&env_mu);
    return real(t, a, f, arg);
}
static void after_fork_child(void) { threads_started = 0; }

/* Passes a signal on to the program's handler, or to the default action. */
static void pass_on(int sig, siginfo_t *info, void *uc, struct sigaction *next) {
    if (next->sa_flags & SA_SIGINFO) {
        if (next->sa_sigaction) {
            next->sa_sigaction(sig, info, uc);
            return;
        }
    } else if (next->sa_handler != SIG_DFL && next->sa_handler != SIG_IGN) {
        next->sa_handler(sig);
        return;
    }
    /* The default: put it back and let the fault happen again, or the trap end the
     * process as it would have. */
    REAL(sigaction);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    real(sig, &dfl, NULL);
    if (sig == SIGTRAP) raise(SIGTRAP);
}

/* The name of the function at `ip` in the object at `base` for the record: its dynamic
 * symbol, or else its offset in the object (for addr2line). */
static const char *symbol_at(void *ip, uintptr_t base, char *buf, size_t size) {
    Dl_info info;
    if (ip && dladdr(ip, &info) && info.dli_sname) return info.dli_sname;
    snprintf(buf, size, "+0x%lx", (unsigned long)((uintptr_t)ip - base));
    return buf;
}

/* A read of the environment by code at `ip` of `obj` (whose loaded segments `span`
 * spans), recorded with the chain of calls in that object that led to it
 * (`sym @ +0x… +0x…`, innermost first), so that the reader can tell a walk that only
 * builds a child's environment (Rust's `Command`, which hands every variable to the
 * child, where they are observed) from one that reads them. Once per distinct chain.
 * Only on our own signal stack: the unwinder needs room. */
__attribute__((noinline)) static void note_env_walk(const char *obj, void *ip,
                                                     const struct span *span) {
    void *frames[48];
    int n = backtrace(frames, 48);
    char chain[640];
    size_t len = 0;
    uint64_t h = 1469598103934665603ULL ^ span->lo;
    for (int i = 0; i < n && len + 24 < sizeof chain; i++) {
        uintptr_t f = (uintptr_t)frames[i];
        if (f < span->lo || f >= span->hi) continue;
        uintptr_t off = f - span->lo;
        len += (size_t)snprintf(chain + len, sizeof chain - len, " +0x%lx", (unsigned long)off);
        h = (h ^ off) * 1099511628211ULL;
    }
    chain[len] = 0;
    for (int i = 0; i < n_recorded; i++)
        if (recorded[i] == (uintptr_t)h) return;
    if (n_recorded < MAX_RECORDED) recorded[n_recorded++] = (uintptr_t)h;
    /* Named only once recorded: dladdr's search for the symbol is slow. */
    char where[32], what[768];
    snprintf(what, sizeof what, "%s @%s", symbol_at(ip, span->lo, where, sizeof where), chain);
    note_env_all(obj, what);
}

static void on_segv(int sig, siginfo_t *info, void *ucv) {
    int saved = errno;
    if (!guard_on || !region_of(info->si_addr)) {
        errno = saved;
        pass_on(sig, info, ucv, &next_segv);
        return;
    }
    ucontext_t *uc = ucv;
    void *ip = NULL;
#if defined(__x86_64__)
    ip = (void *)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    ip = (void *)uc->uc_mcontext.pc;
#endif
    struct span span = {0, 0, ""};
    int known = ip && object_at(ip, &span);
    /* The program itself is named by its path, not by how it was started. */
    const char *obj = known ? object_name(&span) : "?";
    if (!libc_reading) {
        char probe;
        int room = &probe >= alt_stack && &probe < alt_stack + sizeof alt_stack;
        if (room && known)
            note_env_walk(obj, ip, &span);
        else {
            int seen = 0;
            for (int i = 0; i < n_recorded; i++) seen |= recorded[i] == span.lo;
            if (!seen) {
                if (n_recorded < MAX_RECORDED) recorded[n_recorded++] = span.lo;
                char where[32];
                note_env_all(obj, known ? symbol_at(ip, span.lo, where, sizeof where) : "?");
            }
        }
    }
#if defined(__x86_64__)
    if (guard_step) {
        stepping = 1;
        regions_protect(PROT_READ | PROT_WRITE);
        uc->uc_mcontext.gregs[REG_EFL] |= 0x100; /* the trap flag: one instruction */
        errno = saved;
        return;
    }
#endif
    /* No way to step: the pages stay open; the record says reads went unseen after. */
    guard_on = 0;
    regions_protect(PROT_READ | PROT_WRITE);
    note_env_all("?", "the environment guard was opened for good");
    errno = saved;
}

static void on_trap(int sig, siginfo_t *info, void *ucv) {
#if defined(__x86_64__)
    if (stepping) {
        ucontext_t *uc = ucv;
        stepping = 0;
        uc->uc_mcontext.gregs[REG_EFL] &= ~0x100L;
        if (guard_on && !open_calls) regions_protect(PROT_NONE);
        return;
    }
#endif
    pass_on(sig, info, ucv, &next_trap);
}

static void guard_start(void) {
    if (log_fd < 0 || !environ) return;
    const char *off = env_in(environ, "XCACHE_OBSERVE_ENV_GUARD");
    if (off && !strcmp(off, "0")) return;
    size_t len;
    char **shadow = env_copy(environ, 0, &len);
    if (!shadow) return;
    REAL(sigaction);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = on_segv;
    if (real(SIGSEGV, &sa, &next_segv) != 0) return;
    sa.sa_sigaction = on_trap;
    if (real(SIGTRAP, &sa, &next_trap) != 0) {
        real(SIGSEGV, &next_segv, NULL);
        return;
    }
#if defined(__x86_64__)
    guard_step = 1;
#endif
    /* A signal stack for the main thread when it has none (a Rust program keeps one it
     * finds), so the handler can unwind. */
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_DISABLE)) {
        stack_t ss;
        memset(&ss, 0, sizeof ss);
        ss.ss_sp = alt_stack;
        ss.ss_size = sizeof alt_stack;
        sigaltstack(&ss, NULL);
    }
    pthread_atfork(NULL, NULL, after_fork_child);
    pthread_mutex_lock(&env_mu);
    guard_on = 1;
    if (guard_publish(shadow, len) != 0) guard_on = 0;
    pthread_mutex_unlock(&env_mu);
}

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

/* ---- starting programs ------------------------------------------------------------ */

/* Whether the program at `path` will load this library: a dynamically linked ELF (or a
 * script whose interpreter is one), not set-user-ID. `depth` bounds script chains. */
static int raw_stat(const char *p, struct stat *st) {
    return (int)syscall(SYS_newfstatat, AT_FDCWD, p, st, 0);
}

static const char *unobservable(const char *path, int depth) {
    struct stat st;
    if (raw_stat(path, &st) != 0) return NULL; /* the exec fails: nothing runs */
    if (st.st_mode & (S_ISUID | S_ISGID)) return "set-user-ID program";
    int fd = raw_open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return NULL;
    unsigned char head[256];
    ssize_t n = read(fd, head, sizeof head);
    if (n >= 2 && head[0] == '#' && head[1] == '!') {
        close(fd);
        if (depth > 3) return "script interpreter chain too long";
        char interp[256];
        size_t i = 2, j = 0;
        while (i < (size_t)n && (head[i] == ' ' || head[i] == '\t')) i++;
        while (i < (size_t)n && head[i] != ' ' && head[i] != '\t' && head[i] != '\n' &&
               j + 1 < sizeof interp)
            interp[j++] = (char)head[i++];
        interp[j] = 0;
        note('o', 0, path);
        note('p', 0, interp);
        return interp[0] ? unobservable(interp, depth + 1) : NULL;
    }
    if (n < (ssize_t)sizeof(Elf64_Ehdr) || memcmp(head, ELFMAG, SELFMAG)) {
        close(fd);
        return NULL; /* not ELF: the kernel refuses it, or a shell runs it */
    }
    const char *why = "statically linked program";
    if (head[EI_CLASS] == ELFCLASS64) {
        Elf64_Ehdr eh;
        memcpy(&eh, head, sizeof eh);
        for (int k = 0; k < eh.e_phnum; k++) {
            Elf64_Phdr ph;
            if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (Elf64_Off)k * eh.e_phentsize)) !=
                (ssize_t)sizeof ph)
                break;
            if (ph.p_type == PT_INTERP) {
                why = NULL;
                break;
            }
        }
    } else if (head[EI_CLASS] == ELFCLASS32) {
        Elf32_Ehdr eh;
        memcpy(&eh, head, sizeof eh);
        why = "32-bit program";
        for (int k = 0; k < eh.e_phnum; k++) {
            Elf32_Phdr ph;
            if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (Elf32_Off)k * eh.e_phentsize)) !=
                (ssize_t)sizeof ph)
                break;
            if (ph.p_type == PT_INTERP) {
                /* A 32-bit process cannot load this 64-bit library. */
                break;
            }
        }
    }
    close(fd);
    return why;
}

/* Records a program about to run with environment `env` (`op`: 'x' in this process,
 * 'p' in a child), and whether it escapes. */
static void note_run(char op, const char *path, char *const *env) {
    if (busy) return;
    note(op, 0, path);
    const char *why = NULL;
    const char *pre = env_in(env, "LD_PRELOAD");
    const char *logv = env_in(env, LOG_VAR);
    if (!pre || !self_path[0] || !strstr(pre, self_path) || !logv || strcmp(logv, log_path))
        why = "started without the observer in its environment";
    else
        why = unobservable(path, 0);
    if (why) {
        char msg[PATH_MAX + 128];
        snprintf(msg, sizeof msg, "%s: %s", path, why);
        note('X', 0, msg);
    }
}

/* The program execvp(3) would run: `file` itself if it names a path, else the first
 * executable file of that name in PATH (each place looked in vain is recorded, then the
 * lookup: `L`, its name and the PATH it searched).
 * Returns 0 when no such file was found. */
static int resolve_path(const char *file, char *out, size_t cap) {
    if (strchr(file, '/')) {
        snprintf(out, cap, "%s", file);
        return 1;
    }
    const char *path = env_lookup(env_now(), "PATH");
    if (!path) path = "/bin:/usr/bin";
    snprintf(out, cap, "%s", file);
    const char *p = path;
    while (1) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char cand[PATH_MAX];
        if (len == 0)
            snprintf(cand, sizeof cand, "%s", file);
        else
            snprintf(cand, sizeof cand, "%.*s/%s", (int)len, p, file);
        int ok = (int)syscall(SYS_faccessat, AT_FDCWD, cand, X_OK, 0) == 0;
        struct stat st;
        if (ok && raw_stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
            snprintf(out, cap, "%s", cand);
            note_full('L', 0, AT_FDCWD, file, path);
            return 1;
        }
        note('s', ENOENT, cand);
        if (!end) break;
        p = end + 1;
    }
    note_full('L', ENOENT, AT_FDCWD, file, path);
    return 0;
}

/* execvpe(3) as the C library does it, with PATH from this process's environment and
 * `envp` handed to the kernel as it is: a file that is not an executable format runs
 * under /bin/sh; a place that refuses access does not end the search. */
static int exec_search(const char *file, char *const argv[], char *const envp[]) {
    REAL(execve);
    if (!*file) {
        errno = ENOENT;
        return -1;
    }
    if (strchr(file, '/')) {
        real(file, argv, envp);
        if (errno == ENOEXEC) goto shell_file;
        return -1;
    }
    const char *path = env_lookup(env_now(), "PATH");
    if (!path) path = "/bin:/usr/bin";
    int eacces = 0;
    for (const char *p = path;; p++) {
        const char *end = strchrnul(p, ':');
        char cand[PATH_MAX];
        if (end == p)
            snprintf(cand, sizeof cand, "%s", file);
        else
            snprintf(cand, sizeof cand, "%.*s/%s", (int)(end - p), p, file);
        real(cand, argv, envp);
        if (errno == ENOEXEC) {
            file = cand;
            goto shell_file;
        }
        if (errno == EACCES)
            eacces = 1;
        else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ENODEV &&
                 errno != ETIMEDOUT)
            return -1;
        if (!*end) break;
        p = end;
    }
    if (eacces) errno = EACCES;
    return -1;
shell_file:;
    {
        int argc = 0;
        while (argv[argc]) argc++;
        char **sh = alloca((size_t)(argc + 2) * sizeof(char *));
        sh[0] = (char *)"/bin/sh";
        sh[1] = (char *)file;
        for (int i = 1; i <= argc; i++) sh[i + 1] = argv[i];
        if (argc == 0) sh[2] = NULL;
        real("/bin/sh", sh, envp);
        return -1;
    }
}

int execve(const char *p, char *const argv[], char *const envp[]) {
    REAL(execve);
    char *const *env = kernel_env(envp);
    note_run('x', p, env);
    return real(p, argv, env);
}
int execv(const char *p, char *const argv[]) {
    REAL(execve);
    char *const *env = kernel_env(environ);
    note_run('x', p, env);
    return real(p, argv, env);
}
int execvp(const char *f, char *const argv[]) {
    char p[PATH_MAX];
    char *const *env = kernel_env(environ);
    resolve_path(f, p, sizeof p);
    note_run('x', p, env);
    return exec_search(f, argv, env);
}
int execvpe(const char *f, char *const argv[], char *const envp[]) {
    char p[PATH_MAX];
    char *const *env = kernel_env(envp);
    resolve_path(f, p, sizeof p);
    note_run('x', p, env);
    return exec_search(f, argv, env);
}
int fexecve(int fd, char *const argv[], char *const envp[]) {
    REAL(fexecve);
    char fdp[64], p[PATH_MAX];
    char *const *env = kernel_env(envp);
    snprintf(fdp, sizeof fdp, "/proc/self/fd/%d", fd);
    ssize_t n = syscall(SYS_readlinkat, AT_FDCWD, fdp, p, sizeof p - 1);
    p[n > 0 ? n : 0] = 0;
    note_run('x', n > 0 ? p : "?", env);
    return real(fd, argv, env);
}

#define MAX_ARGS 1024
/* execl and friends: collect the arguments, then go through the array forms. */
int execl(const char *p, const char *arg, ...) {
    char *argv[MAX_ARGS];
    int i = 0;
    va_list ap;
    va_start(ap, arg);
    argv[i++] = (char *)arg;
    while (i < MAX_ARGS - 1 && (argv[i] = va_arg(ap, char *))) i++;
    argv[i] = NULL;
    va_end(ap);
    return execv(p, argv);
}
int execlp(const char *f, const char *arg, ...) {
    char *argv[MAX_ARGS];
    int i = 0;
    va_list ap;
    va_start(ap, arg);
    argv[i++] = (char *)arg;
    while (i < MAX_ARGS - 1 && (argv[i] = va_arg(ap, char *))) i++;
    argv[i] = NULL;
    va_end(ap);
    return execvp(f, argv);
}
int execle(const char *p, const char *arg, ...) {
    char *argv[MAX_ARGS];
    int i = 0;
    va_list ap;
    va_start(ap, arg);
    argv[i++] = (char *)arg;
    while (i < MAX_ARGS - 1 && (argv[i] = va_arg(ap, char *))) i++;
    argv[i] = NULL;
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    return execve(p, argv, envp);
}

int posix_spawn(pid_t *pid, const char *p, const posix_spawn_file_actions_t *fa,
                const posix_spawnattr_t *at, char *const argv[], char *const envp[]) {
    REAL(posix_spawn);
    char *const *env = kernel_env(envp);
    note_run('p', p, env);
    return real(pid, p, fa, at, argv, env);
}
/* The search is done here: the C library's would read PATH in the child, from the
 * guarded array. */
int posix_spawnp(pid_t *pid, const char *f, const posix_spawn_file_actions_t *fa,
                 const posix_spawnattr_t *at, char *const argv[], char *const envp[]) {
    REAL(posix_spawn);
    char p[PATH_MAX];
    char *const *env = kernel_env(envp);
    if (!*f || !resolve_path(f, p, sizeof p)) return ENOENT;
    note_run('p', p, env);
    return real(pid, p, fa, at, argv, env);
}
/* These start /bin/sh with `environ` inside the C library: the pages are open for the
 * call. */
int system(const char *cmd) {
    REAL(system);
    if (cmd) note_run('p', "/bin/sh", kernel_env(environ));
    int opened = guard_open_for_call();
    int rv = real(cmd);
    guard_close_after_call(opened);
    return rv;
}
FILE *popen(const char *cmd, const char *mode) {
    REAL(popen);
    note_run('p', "/bin/sh", kernel_env(environ));
    int opened = guard_open_for_call();
    FILE *rv = real(cmd, mode);
    guard_close_after_call(opened);
    return rv;
}
int wordexp(const char *w, wordexp_t *r, int f) {
    REAL(wordexp);
    if (!(f & WRDE_NOCMD)) note_run('p', "/bin/sh", kernel_env(environ));
    int opened = guard_open_for_call();
    int rv = real(w, r, f);
    guard_close_after_call(opened);
    return rv;
}
