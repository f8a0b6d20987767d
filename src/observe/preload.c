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
 *      o opened for reading      w opened for writing / created / removed / renamed
 *      s stat or access          d directory opened for listing
 *      l readlink                r realpath
 *      m mkdir                   e getenv (errno 0: set, 1: unset)
 *      x becomes another program (exec)
 *      p starts a child running a program (posix_spawn, system, popen)
 *      X a child escapes observation (path: why)
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
#include <dlfcn.h>
#include <elf.h>
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

#define LOG_VAR "XCACHE_OBSERVE_LOG"
#define LOG_FD_MIN 777

static int log_fd = -1;
static dev_t log_dev;
static ino_t log_ino;
static char log_path[PATH_MAX];
static char self_path[PATH_MAX]; /* this library, to check a child's LD_PRELOAD */
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
    const char *p = env_in(environ, LOG_VAR);
    if (!p || strlen(p) >= sizeof log_path) return;
    strcpy(log_path, p);
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
    if (fd >= 0 && (op == 'e' || op == 'X' || path[0])) {
        char abs[2 * PATH_MAX];
        const char *full = path;
        if (op != 'e' && op != 'X' && path[0] != '/') {
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
        char line[4 * PATH_MAX + 64];
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

__attribute__((constructor)) static void observer_start(void) {
    open_log();
    Dl_info info;
    if (dladdr((void *)observer_start, &info) && info.dli_fname)
        snprintf(self_path, sizeof self_path, "%s", info.dli_fname);
    char exe[PATH_MAX];
    ssize_t n = syscall(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    note('I', (long)getppid(), n > 0 ? exe : "?");
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

/* A variable read is recorded with the object whose code asked for it, so that the
 * compiler's own settings can be told from what a proc-macro reads in its process. */
static void note_env(const char *name, int set, void *caller) {
    Dl_info info;
    const char *obj = NULL;
    if (!busy && caller && dladdr(caller, &info) && info.dli_fname) obj = info.dli_fname;
    note_full('e', set ? 0 : 1, AT_FDCWD, name, obj ? obj : "?");
}
char *getenv(const char *name) {
    REAL(getenv);
    char *rv = real(name);
    note_env(name, rv != NULL, __builtin_return_address(0));
    return rv;
}
char *secure_getenv(const char *name) {
    REAL(secure_getenv);
    char *rv = real(name);
    note_env(name, rv != NULL, __builtin_return_address(0));
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
 * executable file of that name in PATH (each place looked in vain is recorded). */
static void resolve_path(const char *file, char *out, size_t cap) {
    if (strchr(file, '/')) {
        snprintf(out, cap, "%s", file);
        return;
    }
    const char *path = env_in(environ, "PATH");
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
            return;
        }
        note('s', ENOENT, cand);
        if (!end) break;
        p = end + 1;
    }
}

int execve(const char *p, char *const argv[], char *const envp[]) {
    REAL(execve);
    note_run('x', p, envp);
    return real(p, argv, envp);
}
int execv(const char *p, char *const argv[]) {
    REAL(execv);
    note_run('x', p, environ);
    return real(p, argv);
}
int execvp(const char *f, char *const argv[]) {
    REAL(execvp);
    char p[PATH_MAX];
    resolve_path(f, p, sizeof p);
    note_run('x', p, environ);
    return real(f, argv);
}
int execvpe(const char *f, char *const argv[], char *const envp[]) {
    REAL(execvpe);
    char p[PATH_MAX];
    resolve_path(f, p, sizeof p);
    note_run('x', p, envp);
    return real(f, argv, envp);
}
int fexecve(int fd, char *const argv[], char *const envp[]) {
    REAL(fexecve);
    char fdp[64], p[PATH_MAX];
    snprintf(fdp, sizeof fdp, "/proc/self/fd/%d", fd);
    ssize_t n = syscall(SYS_readlinkat, AT_FDCWD, fdp, p, sizeof p - 1);
    p[n > 0 ? n : 0] = 0;
    note_run('x', n > 0 ? p : "?", envp);
    return real(fd, argv, envp);
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
    note_run('p', p, envp);
    return real(pid, p, fa, at, argv, envp);
}
int posix_spawnp(pid_t *pid, const char *f, const posix_spawn_file_actions_t *fa,
                 const posix_spawnattr_t *at, char *const argv[], char *const envp[]) {
    REAL(posix_spawnp);
    char p[PATH_MAX];
    resolve_path(f, p, sizeof p);
    note_run('p', p, envp);
    return real(pid, f, fa, at, argv, envp);
}
int system(const char *cmd) {
    REAL(system);
    if (cmd) note_run('p', "/bin/sh", environ);
    return real(cmd);
}
FILE *popen(const char *cmd, const char *mode) {
    REAL(popen);
    note_run('p', "/bin/sh", environ);
    return real(cmd, mode);
}
