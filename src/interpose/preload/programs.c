/* Part of the observer (src/interpose/preload.c, which includes it; not compiled
 * alone): starting programs: exec, spawn and the shell, and whether
 * the program started is observed. */

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

/* An exec by path: recorded, then the real execve with the kernel's view of `env`. */
static int exec_noted(const char *p, char *const argv[], char *const *env) {
    REAL(execve);
    note_run('x', p, env);
    return real(p, argv, env);
}
/* An exec by name: the program the search would find recorded, then the search. */
static int exec_search_noted(const char *f, char *const argv[], char *const *env) {
    char p[PATH_MAX];
    resolve_path(f, p, sizeof p);
    note_run('x', p, env);
    return exec_search(f, argv, env);
}
int execve(const char *p, char *const argv[], char *const envp[]) {
    return exec_noted(p, argv, kernel_env(envp));
}
int execv(const char *p, char *const argv[]) { return exec_noted(p, argv, kernel_env(environ)); }
int execvp(const char *f, char *const argv[]) {
    return exec_search_noted(f, argv, kernel_env(environ));
}
int execvpe(const char *f, char *const argv[], char *const envp[]) {
    return exec_search_noted(f, argv, kernel_env(envp));
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
/* execl and friends: the arguments collected (from `first` to the null one, at most
 * MAX_ARGS - 1), then the array forms. `ap` goes on after the null (execle's envp). */
static void collect_args(char **argv, const char *first, va_list *ap) {
    int i = 0;
    argv[i++] = (char *)first;
    while (i < MAX_ARGS - 1 && (argv[i] = va_arg(*ap, char *))) i++;
    argv[i] = NULL;
}
int execl(const char *p, const char *arg, ...) {
    char *argv[MAX_ARGS];
    va_list ap;
    va_start(ap, arg);
    collect_args(argv, arg, &ap);
    va_end(ap);
    return execv(p, argv);
}
int execlp(const char *f, const char *arg, ...) {
    char *argv[MAX_ARGS];
    va_list ap;
    va_start(ap, arg);
    collect_args(argv, arg, &ap);
    va_end(ap);
    return execvp(f, argv);
}
int execle(const char *p, const char *arg, ...) {
    char *argv[MAX_ARGS];
    va_list ap;
    va_start(ap, arg);
    collect_args(argv, arg, &ap);
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
 * call. `starts` says whether the call starts the shell. */
#define SHELL_CALL(type, name, params, args, starts)                                   \
    type name params {                                                                 \
        REAL(name);                                                                    \
        if (starts) note_run('p', "/bin/sh", kernel_env(environ));                     \
        int opened = guard_open_for_call();                                            \
        type rv = real args;                                                           \
        guard_close_after_call(opened);                                                \
        return rv;                                                                     \
    }
SHELL_CALL(int, system, (const char *cmd), (cmd), cmd)
SHELL_CALL(FILE *, popen, (const char *cmd, const char *mode), (cmd, mode), 1)
SHELL_CALL(int, wordexp, (const char *w, wordexp_t *r, int f), (w, r, f), !(f & WRDE_NOCMD))
