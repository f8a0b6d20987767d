/* Part of the observer (src/interpose/preload.c, which includes it; not compiled
 * alone): the guard's fault handling: the SIGSEGV and SIGTRAP handlers,
 * the program's own handlers kept next in line, and the guard's start. */

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
