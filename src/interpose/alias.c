/*
 * The aliasing library: preloaded (LD_PRELOAD) into the second run of a build script,
 * the path check (src/wrapper/run_check/), which runs the script with every machine
 * root seen through an alias of another length (a symbolic link to it). Variables are
 * given the aliases by the wrapper; what the kernel resolves itself — the working
 * directory (getcwd), a path made real (realpath, canonicalize_file_name) and links
 * read (readlink: /proc/self/exe, /proc/self/cwd) — would still name the real roots.
 * This library tells those under the aliases too, so that a script cannot learn a
 * root's real path, and what it makes of it shows in the comparison.
 *
 * XCACHE_ALIAS_MAP holds lines "real<TAB>alias", most specific (longest) real first.
 *
 * It also takes compiles from the first run (XCACHE_CC_MEMO, a file the wrapper writes:
 * lines "C" starting a compile, then "w cwd", "a arg"..., "e NAME=value"... sorted,
 * "s first-run-object", "o object-to-write"): a program started with exactly a memo
 * compile's arguments, environment and working directory is not run; the first run's
 * object is copied where it would write, and nothing runs in its place (a child that
 * exits at once with 0, or the process exiting with 0 where it would exec). The wrapper
 * lists only compiles whose inputs the run did not make (see run_check/compiles.rs).
 *
 * The steps that made an archive (`ar cq`, then `ar s`) are listed the same way, each
 * with a line "k chain step": the first step copies the first run's archive, a later one
 * is taken only after the one before it and while the archive is still the first run's,
 * and copies nothing. Each step taken leaves a mark (`<memo>.chain-<chain>-<step>`) the
 * wrapper reads after the run: a chain begun and not finished leaves it unchecked.
 *
 * And it answers the run's version probes of its own compiler (XCACHE_RUSTC_QUERY: the
 * file holding `rustc --version`'s answer, the file holding `rustc -vV`'s, then the
 * compiler's paths, one a line): `<rustc> --version`, `-V`, `-vV`, `--version --verbose`
 * run `cat` of the answer instead of rustc. The wrapper gives them only for the
 * sysroot's own rustc, whose answers are built in and are the compiler identity it
 * keyed the run on.
 *
 * Unlike the observer, this library changes what calls return; it is never loaded into
 * a run whose results reach the user.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#define MAX_PAIRS 8

static char *reals[MAX_PAIRS];
static char *aliases[MAX_PAIRS];
static size_t n_pairs;

struct compile {
    char *cwd, *src, *dst;
    char **argv, **env;
    size_t argc, envc;
    /* Files of the first run's OUT_DIR the compile read (`first`) and the same names in
     * the second run's (`second`): the same bytes, or the compile is made; names it
     * looked for in vain there (`absent`): still absent, or the compile is made. */
    char **first, **second, **absent;
    size_t firstc, secondc, absentc;
    /* A step of an archive's making (`k chain step`): -1 for a compile. */
    int chain;
    size_t step;
    /* For the step that appends an archive's members (`m member`…): the members in
     * order; its arguments (`a`) end at the archive. */
    char **members;
    size_t memberc;
};

static struct compile *memo;
static size_t n_memo;

static int push(char ***list, size_t *n, char *v) {
    char **grown = realloc(*list, (*n + 2) * sizeof(char *));
    if (!grown) return -1;
    *list = grown;
    grown[(*n)++] = v;
    grown[*n] = NULL;
    return 0;
}

static void load_memo(void) {
    const char *path = getenv("XCACHE_CC_MEMO");
    if (!path) return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap + 1);
    for (ssize_t r; text && (r = read(fd, text + len, cap - len)) > 0;) {
        len += (size_t)r;
        if (len == cap) {
            char *grown = realloc(text, 2 * cap + 1);
            if (!grown) {
                free(text);
                text = NULL;
                break;
            }
            text = grown;
            cap *= 2;
        }
    }
    close(fd);
    if (!text) return;
    text[len] = '\0';
    char *save = NULL;
    struct compile *c = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strcmp(line, "C")) {
            struct compile *grown = realloc(memo, (n_memo + 1) * sizeof *memo);
            if (!grown) return;
            memo = grown;
            c = &memo[n_memo++];
            memset(c, 0, sizeof *c);
            c->chain = -1;
            continue;
        }
        if (!c || strlen(line) < 2 || line[1] != ' ') continue;
        char *v = line + 2;
        /* `\\` and `\n` back to what they stand for, in place. */
        char *w = v;
        for (char *r = v; *r; r++) {
            if (*r == '\\' && (r[1] == 'n' || r[1] == '\\')) {
                *w++ = r[1] == 'n' ? '\n' : '\\';
                r++;
            } else {
                *w++ = *r;
            }
        }
        *w = 0;
        switch (line[0]) {
        case 'w': c->cwd = v; break;
        case 's': c->src = v; break;
        case 'o': c->dst = v; break;
        case 'a': push(&c->argv, &c->argc, v); break;
        case 'e': push(&c->env, &c->envc, v); break;
        case 'f': push(&c->first, &c->firstc, v); break;
        case 'g': push(&c->second, &c->secondc, v); break;
        case 'n': push(&c->absent, &c->absentc, v); break;
        case 'm': push(&c->members, &c->memberc, v); break;
        case 'k': {
            int chain;
            size_t step;
            if (sscanf(v, "%d %zu", &chain, &step) == 2 && chain >= 0) {
                c->chain = chain;
                c->step = step;
            }
            break;
        }
        }
    }
}

/* The memo is read when a program is first started (or a process forks, `fork` below),
 * not when a process starts: the memo of a large C library is megabytes, and most
 * processes of a run (the compilers, the `true` standing in for them) start none.
 * 0: unread, 1: being read, 2: read. */
static int memo_state;

/* Reads the memo once; true when it has been read. A thread that finds another reading
 * it waits for it (at most two seconds); a child forked while its parent was reading it
 * never sees the read end, and goes without (its compiles are made). */
static int memo_ready(void) {
    int expected = 0;
    if (__atomic_compare_exchange_n(&memo_state, &expected, 1, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        load_memo();
        __atomic_store_n(&memo_state, 2, __ATOMIC_RELEASE);
        return 1;
    }
    for (int i = 0; i < 2000 && __atomic_load_n(&memo_state, __ATOMIC_ACQUIRE) != 2; i++)
        usleep(1000);
    return __atomic_load_n(&memo_state, __ATOMIC_ACQUIRE) == 2;
}

/* Variables a compile's environment is compared without (run_check/memo.rs, NOT_COMPARED). */
static const char *const not_compared[] = {
    "LD_PRELOAD=", "XCACHE_OBSERVE_LOG=", "XCACHE_ALIAS_MAP=", "XCACHE_CC_MEMO=", "XCACHE_RUSTC_QUERY=",
    "CARGO_MAKEFLAGS=", "MAKEFLAGS=", "MFLAGS=", NULL,
};

static int compared(const char *e) {
    for (const char *const *n = not_compared; *n; n++)
        if (!strncmp(e, *n, strlen(*n))) return 0;
    return 1;
}

static int by_text(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The memo compile started with exactly these arguments, environment and working
 * directory (told under the aliases, as getcwd tells it here), if any. */
static const struct compile *memo_compile(char *const argv[], char *const envp[]) {
    if (!memo_ready() || !n_memo || !argv || !envp) return NULL;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return NULL;
    size_t argc = 0, all = 0, envc = 0;
    while (argv[argc]) argc++;
    while (envp[all]) all++;
    char **sorted = malloc((all + 1) * sizeof(char *));
    if (!sorted) return NULL;
    for (size_t i = 0; i < all; i++)
        if (compared(envp[i])) sorted[envc++] = envp[i];
    qsort(sorted, envc, sizeof(char *), by_text);
    const struct compile *found = NULL;
    for (size_t i = 0; i < n_memo && !found; i++) {
        const struct compile *c = &memo[i];
        /* An archive's appending step is matched on its arguments up to the archive;
         * its members are `taken`'s to check. */
        int appends = c->memberc > 0;
        if (!c->cwd || !c->src || !c->dst || c->envc != envc) continue;
        if (appends ? argc <= c->argc : c->argc != argc) continue;
        if (strcmp(c->cwd, cwd)) continue;
        size_t k = 0;
        while (k < c->argc && !strcmp(c->argv[k], argv[k])) k++;
        if (k < c->argc) continue;
        k = 0;
        while (k < envc && !strcmp(c->env[k], sorted[k])) k++;
        if (k == envc) found = c;
    }
    free(sorted);
    return found;
}

/* Copies the first run's object where the compile writes: 0 when done. */
static int take_object(const struct compile *c) {
    int in = open(c->src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -1;
    int out = open(c->dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return -1;
    }
    int rc = 0;
    /* The kernel's copy first (no pass through this process's memory; a reflink where
     * the file system has them); from where it stopped, by reads and writes. */
    for (ssize_t r; (r = copy_file_range(in, NULL, out, NULL, 1 << 30, 0)) != 0;)
        if (r < 0) break;
    char buf[1 << 16];
    for (ssize_t r; (r = read(in, buf, sizeof buf)) != 0;) {
        if (r < 0 || write(out, buf, (size_t)r) != r) {
            rc = -1;
            break;
        }
    }
    close(in);
    if (close(out) != 0) rc = -1;
    return rc;
}

/* What stands in for a taken compile: nothing, and success. A child that exits at once
 * (posix_spawn's error number, 0 on success), as /bin/true would but without starting a
 * program (1.6 ms with this library preloaded, dozens of times in a C library's run). */
static int spawn_nothing(pid_t *pid) {
    pid_t c = vfork();
    if (c < 0) return errno;
    if (c == 0) _exit(0);
    if (pid) *pid = c;
    return 0;
}
#define CAT_PROGRAM "/bin/cat"

/* XCACHE_RUSTC_QUERY, read when the library is loaded: the two answers' files and the
 * paths the compiler is started by. */
static char *query_files[2];
static char *query_programs[4];
static size_t n_query_programs;

static void load_query(void) {
    const char *v = getenv("XCACHE_RUSTC_QUERY");
    char *text = v ? strdup(v) : NULL;
    if (!text) return;
    char *save = NULL;
    size_t i = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
        if (i < 2)
            query_files[i] = line;
        else if (n_query_programs < sizeof query_programs / sizeof *query_programs)
            query_programs[n_query_programs++] = line;
    }
}

/* The file holding the answer to the version probe `p argv…`, or NULL when it is none
 * (another program, other arguments). */
static const char *query_answer(const char *p, char *const argv[]) {
    if (!p || !argv || !argv[0] || !argv[1] || !query_files[1]) return NULL;
    int known = 0;
    for (size_t i = 0; i < n_query_programs; i++)
        if (!strcmp(p, query_programs[i])) known = 1;
    if (!known) return NULL;
    const char *a = argv[1], *b = argv[2];
    int version = !strcmp(a, "--version") || !strcmp(a, "-V");
    if (!b) {
        if (version) return query_files[0];
        if (!strcmp(a, "-vV") || !strcmp(a, "-Vv")) return query_files[1];
        return NULL;
    }
    if (!argv[3] && version && (!strcmp(b, "--verbose") || !strcmp(b, "-v"))) return query_files[1];
    return NULL;
}

/* `cat answer`, the program that stands in for a version probe. */
static int answered(const char *p, char *const argv[], char *cat_argv[3]) {
    const char *answer = query_answer(p, argv);
    if (!answer || access(CAT_PROGRAM, X_OK) != 0) return 0;
    cat_argv[0] = "cat";
    cat_argv[1] = (char *)answer;
    cat_argv[2] = NULL;
    return 1;
}

/* Whether the files at `a` and `b` are regular files with the same bytes. */
static int same_bytes(const char *a, const char *b) {
    int fa = open(a, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fa < 0) return 0;
    int fb = open(b, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fb < 0) {
        close(fa);
        return 0;
    }
    struct stat sa, sb;
    int same = fstat(fa, &sa) == 0 && fstat(fb, &sb) == 0 && S_ISREG(sa.st_mode) &&
               S_ISREG(sb.st_mode) && sa.st_size == sb.st_size;
    char ba[1 << 15], bb[1 << 15];
    while (same) {
        ssize_t ra = read(fa, ba, sizeof ba);
        if (ra <= 0) {
            same = ra == 0 && read(fb, bb, 1) == 0;
            break;
        }
        ssize_t got = 0;
        while (got < ra) {
            ssize_t rb = read(fb, bb + got, (size_t)(ra - got));
            if (rb <= 0) break;
            got += rb;
        }
        same = got == ra && memcmp(ba, bb, (size_t)ra) == 0;
    }
    close(fa);
    close(fb);
    return same;
}

/* What the compile read of what the run made is as it was in the first run. */
static int inputs_same(const struct compile *c) {
    if (c->firstc != c->secondc) return 0;
    for (size_t i = 0; i < c->firstc; i++)
        if (!same_bytes(c->first[i], c->second[i])) return 0;
    struct stat st;
    for (size_t i = 0; i < c->absentc; i++)
        if (lstat(c->absent[i], &st) == 0) return 0;
    return 1;
}

/* A mark of what was taken of an archive's making: `<memo>.chain-<n>-<step>` for a step,
 * `<memo>.chain-<n>-at-<count>` for the members appended so far (`at` set): whether it
 * is there, or, with `make`, whether this call made it (it was not there before). The
 * wrapper reads them after the run: a chain begun and not finished leaves the run
 * unchecked. */
static int chain_mark(const struct compile *c, const char *at, size_t n, int make) {
    const char *memo_path = getenv("XCACHE_CC_MEMO");
    char p[PATH_MAX];
    if (!memo_path ||
        snprintf(p, sizeof p, "%s.chain-%d-%s%zu", memo_path, c->chain, at, n) >= (int)sizeof p)
        return 0;
    if (!make) {
        struct stat st;
        return lstat(p, &st) == 0;
    }
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return 0;
    close(fd);
    return 1;
}

#define step_mark(c, step, make) chain_mark(c, "", step, make)

/* A batch of an archive's members (`argv` past the archive): taken when it is the next
 * part of the first run's members, in order — the first batch while the archive is still
 * absent, each later one after the batch before it was taken. Nothing is written until
 * the last member has come: then the first run's archive is put in place. */
static int batch_taken(const struct compile *c, char *const argv[]) {
    size_t n = 0;
    while (argv[c->argc + n]) n++;
    for (size_t at = 0; at + n <= c->memberc; at++) {
        size_t k = 0;
        while (k < n && !strcmp(c->members[at + k], argv[c->argc + k])) k++;
        if (k < n) continue;
        if (at == 0 ? !inputs_same(c) : !chain_mark(c, "at-", at, 0)) continue;
        if (!chain_mark(c, "at-", at + n, 1)) return 0;
        if (at + n < c->memberc) return 1;
        /* Members given in more than one batch are compared again: one may have changed
         * since the first batch (a single batch was compared just above). */
        return (at == 0 || inputs_same(c)) && step_mark(c, 0, 1) && take_object(c) == 0;
    }
    return 0;
}

/* The memo compile these arguments start, once its object is in place. A step of an
 * archive's making is taken in order only: the first puts the first run's archive in
 * place (marked before, so that a copy that fails is seen), each later one only after
 * the step before it was taken and with the archive still the first run's, and does
 * nothing more. */
static int taken(char *const argv[], char *const envp[]) {
    const struct compile *c = memo_compile(argv, envp);
    if (!c) return 0;
    if (c->memberc) return batch_taken(c, argv);
    if (!inputs_same(c)) return 0;
    if (c->chain < 0) return take_object(c) == 0;
    if (c->step == 0) return step_mark(c, 0, 1) && take_object(c) == 0;
    return step_mark(c, c->step - 1, 0) && same_bytes(c->src, c->dst) && step_mark(c, c->step, 1);
}

__attribute__((constructor)) static void load_map(void) {
    load_query();
    const char *map = getenv("XCACHE_ALIAS_MAP");
    if (!map) return;
    char *copy = strdup(map);
    if (!copy) return;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line && n_pairs < MAX_PAIRS;
         line = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = '\0';
        reals[n_pairs] = line;
        aliases[n_pairs] = tab + 1;
        n_pairs++;
    }
}

/* The alias of `p` (a NUL-terminated path) if it lies under a real root, written to
 * `out` (of `cap` bytes): its length, or 0 when nothing applies, or -1 when it does
 * not fit. */
static ssize_t rewrite(const char *p, size_t len, char *out, size_t cap) {
    for (size_t i = 0; i < n_pairs; i++) {
        size_t rl = strlen(reals[i]);
        if (len < rl || memcmp(p, reals[i], rl) != 0) continue;
        if (len > rl && p[rl] != '/') continue;
        size_t al = strlen(aliases[i]);
        size_t total = al + (len - rl);
        if (total + 1 > cap) return -1;
        memmove(out + al, p + rl, len - rl);
        memcpy(out, aliases[i], al);
        out[total] = '\0';
        return (ssize_t)total;
    }
    return 0;
}

#define REAL(name) \
    static __typeof__(name) *real_##name; \
    if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

char *getcwd(char *buf, size_t size) {
    REAL(getcwd);
    char tmp[PATH_MAX];
    char *rv = real_getcwd(tmp, sizeof tmp);
    if (!rv) return real_getcwd(buf, size);
    char out[PATH_MAX];
    ssize_t n = rewrite(tmp, strlen(tmp), out, sizeof out);
    const char *res = n > 0 ? out : tmp;
    size_t need = strlen(res) + 1;
    if (!buf) {
        size_t cap = size > need ? size : need;
        buf = malloc(cap);
        if (!buf) {
            errno = ENOMEM;
            return NULL;
        }
    } else if (size < need) {
        errno = ERANGE;
        return NULL;
    }
    memcpy(buf, res, need);
    return buf;
}

char *get_current_dir_name(void) { return getcwd(NULL, 0); }

static char *rewrite_resolved(char *rv, char *given) {
    if (!rv) return rv;
    char out[PATH_MAX];
    ssize_t n = rewrite(rv, strlen(rv), out, sizeof out);
    if (n <= 0) return rv;
    if (given) {
        memcpy(given, out, (size_t)n + 1);
        return given;
    }
    char *fresh = strdup(out);
    if (!fresh) return rv;
    free(rv);
    return fresh;
}

char *realpath(const char *p, char *resolved) {
    REAL(realpath);
    return rewrite_resolved(real_realpath(p, resolved), resolved);
}

char *__realpath_chk(const char *p, char *resolved, size_t n) {
    (void)n;
    REAL(realpath);
    return rewrite_resolved(real_realpath(p, resolved), resolved);
}

char *canonicalize_file_name(const char *p) {
    REAL(canonicalize_file_name);
    return rewrite_resolved(real_canonicalize_file_name(p), NULL);
}

static ssize_t rewrite_link(ssize_t rv, char *buf, size_t n) {
    if (rv <= 0) return rv;
    char tmp[PATH_MAX + 1];
    size_t len = (size_t)rv < PATH_MAX ? (size_t)rv : PATH_MAX;
    memcpy(tmp, buf, len);
    tmp[len] = '\0';
    char out[PATH_MAX];
    ssize_t m = rewrite(tmp, len, out, sizeof out);
    if (m <= 0) return rv;
    size_t copy = (size_t)m < n ? (size_t)m : n;
    memcpy(buf, out, copy);
    return (ssize_t)copy;
}

ssize_t readlink(const char *p, char *buf, size_t n) {
    REAL(readlink);
    return rewrite_link(real_readlink(p, buf, n), buf, n);
}

ssize_t readlinkat(int d, const char *p, char *buf, size_t n) {
    REAL(readlinkat);
    return rewrite_link(real_readlinkat(d, p, buf, n), buf, n);
}

ssize_t __readlink_chk(const char *p, char *buf, size_t n, size_t cap) {
    (void)cap;
    REAL(readlink);
    return rewrite_link(real_readlink(p, buf, n), buf, n);
}

/* A process that forks to start programs reads the memo before it forks, once, and its
 * children have it: read in each child instead, a C library's memo (hundreds of
 * kilobytes for zstd's 45 compiles) was read and parsed once per compile. */
pid_t fork(void) {
    REAL(fork);
    if (__atomic_load_n(&memo_state, __ATOMIC_ACQUIRE) == 0 && getenv("XCACHE_CC_MEMO")) memo_ready();
    return real_fork();
}

/* posix_spawn and posix_spawnp: a compile answered from the memo spawns `cat` printing
 * the answer instead; one taken whole spawns nothing. */
#define SPAWN(name)                                                                     \
    int name(pid_t *pid, const char *f, const posix_spawn_file_actions_t *fa,           \
             const posix_spawnattr_t *at, char *const argv[], char *const envp[]) {     \
        REAL(name);                                                                     \
        char *cat_argv[3];                                                              \
        if (answered(f, argv, cat_argv))                                                \
            return real_##name(pid, CAT_PROGRAM, fa, at, cat_argv, envp);               \
        if (taken(argv, envp)) return spawn_nothing(pid);                               \
        return real_##name(pid, f, fa, at, argv, envp);                                 \
    }
SPAWN(posix_spawn)
SPAWN(posix_spawnp)

/* Before an exec: a compile answered from the memo becomes `cat` printing the answer
 * (1, `*rv` its result); a process that would become a compile taken whole ends as the
 * compile would, with 0. 0: neither, the exec goes on. */
static int exec_answered(const char *f, char *const argv[], char *const envp[], int *rv) {
    REAL(execve);
    char *cat_argv[3];
    if (answered(f, argv, cat_argv)) {
        *rv = real_execve(CAT_PROGRAM, cat_argv, envp);
        return 1;
    }
    if (taken(argv, envp)) _exit(0);
    return 0;
}

int execve(const char *p, char *const argv[], char *const envp[]) {
    REAL(execve);
    int rv;
    if (exec_answered(p, argv, envp, &rv)) return rv;
    return real_execve(p, argv, envp);
}

int execv(const char *p, char *const argv[]) { return execve(p, argv, environ); }

int execvpe(const char *f, char *const argv[], char *const envp[]) {
    REAL(execvpe);
    int rv;
    if (exec_answered(f, argv, envp, &rv)) return rv;
    return real_execvpe(f, argv, envp);
}

int execvp(const char *f, char *const argv[]) { return execvpe(f, argv, environ); }
