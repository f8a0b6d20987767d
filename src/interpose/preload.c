/*
 * The observer: a library cargo-xcache preloads (LD_PRELOAD) into every process of a
 * compile or a build-script run, to learn what the process tree reads — files, paths
 * probed in vain, directory listings, environment variables, programs it executes — and
 * what it writes. The wrapper turns the record into the inputs of the unit's key
 * (src/observe): what the compiler, a proc-macro or a build script reads is an input,
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
 *
 * The parts (preload/, included below as one translation unit, so that what is
 * internal stays static): record.c, the log and its records; objects.c, which loaded
 * object an address lies in; files.c, the calls that open, ask about or change files;
 * env_guard.c, the environment guard and the variables read or set by name;
 * libc_reads.c, the C library's own reads by name; faults.c, the guard's fault
 * handling; programs.c, exec, spawn and the shell.
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

/* The parts, in an order where each calls only the parts before it. */
#include "preload/record.c"
#include "preload/objects.c"
#include "preload/files.c"
#include "preload/env_guard.c"
#include "preload/libc_reads.c"
#include "preload/faults.c"
#include "preload/programs.c"

/* At load: the log opened, the process's start recorded (and its compile, when it is
 * one), the environment guard set up. */
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
