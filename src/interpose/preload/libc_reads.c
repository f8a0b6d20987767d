/* Part of the observer (src/interpose/preload.c, which includes it; not compiled
 * alone): the C library calls that read variables by a name they
 * do not tell, recorded by name with the guard open for the call. */

/* Declared here: the headers declare these only under some feature macros. */
char *gettext(const char *);
char *dgettext(const char *, const char *);
char *dcgettext(const char *, const char *, int);
char *ngettext(const char *, const char *, unsigned long);
char *dngettext(const char *, const char *, const char *, unsigned long);
char *dcngettext(const char *, const char *, const char *, unsigned long, int);
int __xpg_strerror_r(int, char *, size_t);


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
