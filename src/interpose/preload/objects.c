/* Part of the observer (src/interpose/preload.c, which includes it; not compiled
 * alone): which loaded object an address lies in, and its file. */

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
