"""cffi builder (out-of-line API mode) for lxrun._native, the helper that starts sandboxes.

Constants are declared with `...` so their values come from the system headers at build time.
"""

from pathlib import Path

from cffi import FFI

# Relative to the project root, where setup.py runs the builder: setuptools refuses absolute paths.
NATIVE = Path("native")

CDEF = """
#define CLONE_NEWNS ...
#define CLONE_NEWPID ...
#define CLONE_NEWUTS ...
#define CLONE_NEWIPC ...
#define CLONE_NEWNET ...
#define CLONE_NEWCGROUP ...
#define MS_RDONLY ...
#define MS_NOSUID ...
#define MS_NODEV ...
#define MS_NOEXEC ...
#define MS_BIND ...
#define MS_REC ...
#define MS_PRIVATE ...
#define MOUNT_ATTR_RDONLY ...
#define MOUNT_ATTR_NOSUID ...
#define MOUNT_ATTR_NODEV ...
#define MOUNT_ATTR_NOEXEC ...
#define LXRUN_ERROR_PATH_MAX ...

enum lxrun_op { LXRUN_OP_HOST_MKDIR, LXRUN_OP_HOST_MOUNT, LXRUN_OP_OPEN_ROOT, LXRUN_OP_FS, LXRUN_OP_BIND,
                LXRUN_OP_MKDIR, LXRUN_OP_PIVOT, ... };
enum lxrun_create { LXRUN_CREATE_NONE, LXRUN_CREATE_DIR, LXRUN_CREATE_FILE, ... };
enum lxrun_step_code { LXRUN_STEP_SPAWN, LXRUN_STEP_OPEN_INIT, LXRUN_STEP_CGROUP, LXRUN_STEP_CGROUPNS,
                       LXRUN_STEP_HOSTNAME, LXRUN_STEP_LOOPBACK, LXRUN_STEP_MOUNT, LXRUN_STEP_WORKDIR,
                       LXRUN_STEP_USER, LXRUN_STEP_STDIO, LXRUN_STEP_EXEC_INIT, LXRUN_STEP_EXEC,
                       LXRUN_STEP_INIT, ... };

struct lxrun_error { int step; int index; int err; char path[]; ...; };

struct lxrun_step {
    int op;
    const char *source;
    const char *target;
    const char *fstype;
    const char *data;
    unsigned long flags;
    uint64_t attr;
    int create;
    unsigned int mode;
    ...;
};

struct lxrun_request {
    int clone_flags;
    int new_cgroupns;
    const int *cgroup_fds;
    int n_cgroup_fds;
    const struct lxrun_step *steps;
    int n_steps;
    const char *hostname;
    int loopback_up;
    const char *init_path;
    char *const *init_argv;
    char *const *envp;
    const char *cwd;
    uint32_t uid;
    uint32_t gid;
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
    ...;
};

struct lxrun_child { int pid; int pidfd; int status_fd; ...; };

int lxrun_spawn(const struct lxrun_request *req, struct lxrun_child *out, struct lxrun_error *err);
int lxrun_new_netns(void);
int lxrun_setns(int fd, int nstype);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "lxrun._native",
    '#include "helper.h"\n#include <sched.h>\n#include <sys/mount.h>',
    sources=[str(NATIVE / "helper.c")],
    include_dirs=[str(NATIVE)],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-D_GNU_SOURCE"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
