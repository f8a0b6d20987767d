/* Part of the observer (src/interpose/preload.c, which includes it; not compiled
 * alone): the environment guard, and the variables a process
 * gets or sets by name. */

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
