/*
 * The aliasing library: preloaded (LD_PRELOAD) into the second run of a build script,
 * the path check (src/wrapper/run_check.rs), which runs the script with every machine
 * root seen through an alias of another length (a symbolic link to it). Variables are
 * given the aliases by the wrapper; what the kernel resolves itself — the working
 * directory (getcwd), a path made real (realpath, canonicalize_file_name) and links
 * read (readlink: /proc/self/exe, /proc/self/cwd) — would still name the real roots.
 * This library tells those under the aliases too, so that a script cannot learn a
 * root's real path, and what it makes of it shows in the comparison.
 *
 * XCACHE_ALIAS_MAP holds lines "real<TAB>alias", most specific (longest) real first.
 * Unlike the observer, this library changes what calls return; it is never loaded into
 * a run whose results reach the user.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PAIRS 8

static char *reals[MAX_PAIRS];
static char *aliases[MAX_PAIRS];
static size_t n_pairs;

__attribute__((constructor)) static void load_map(void) {
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
