/* The native helper: one request in, one started sandbox (pid + pidfd) or one error record out.
 *
 * Python builds the whole request as plain data before the call. Two stages, neither of which runs
 * Python nor copies the Python process:
 *   stage 1, clone(CLONE_VM|CLONE_VFORK) on its own stack, stays in the host's user namespace: it
 *     joins the task's cgroups (or, on cgroup v2, clones stage 2 straight into the task's cgroup: no
 *     migration) and network namespace, clones stage 2, writes stage 2's uid/gid maps
 *     from outside its user namespace, enters stage 2's mount namespace to build the root there
 *     (tmpfs, idmapped layers, overlay, sysfs), lets stage 2 go and exits once stage 2 has exec'd;
 *   stage 2, clone(CLONE_VM|CLONE_PARENT|CLONE_NEW*) on a second stack, is the sandbox's pid 1: it
 *     waits for stage 1, mounts what belongs to its namespaces (/proc, /dev, /tmp, volumes, masks),
 *     pivots, drops privileges (user, capabilities, no_new_privs, seccomp) and execs init (init.c),
 *     which starts the task. */
#ifndef LXRUN_HELPER_H
#define LXRUN_HELPER_H

#include <stdint.h>
#include <sys/types.h>

#include "protocol.h"

enum lxrun_op {
	LXRUN_OP_HOST_MKDIR,  /* mkdir(target, mode) of a host path (chown to owner if set); existing is fine */
	LXRUN_OP_HOST_MOUNT,  /* mount(source, target, fstype, flags, data) with host paths */
	LXRUN_OP_HOST_BIND,   /* a clone of host tree source at host path target; attr may include IDMAP */
	LXRUN_OP_OPEN_ROOT,   /* the host path target becomes the new root: in-root targets resolve below it */
	LXRUN_OP_FS,          /* a new fstype filesystem (options in data, "k=v,flag") at an in-root target */
	LXRUN_OP_BIND,        /* a clone of the host tree at source at an in-root target (flags: MS_REC) */
	LXRUN_OP_REBIND,      /* the in-root target bound onto itself with attr set (read-only paths) */
	LXRUN_OP_MKDIR,       /* mkdir -p of an in-root target */
	LXRUN_OP_PIVOT,       /* make the opened root the process's root; the old root is detached */
	LXRUN_OP_HOST_WRITE,  /* a new file at host path target holding data, with mode (chown to owner if set) */
	LXRUN_OP_HOST_VOLUME, /* a clone of the host tree at source, opened with no symlink followed anywhere in
	                       * its path, at host path target (a staging point); attr may include IDMAP */
	LXRUN_OP_MOVE,        /* the mount staged at host path source moved onto an in-root target of its kind
	                       * (a directory onto a directory: else ENOTDIR; a file onto a non-directory: else EISDIR) */
	LXRUN_OP_HOST_MKNOD,  /* a character device `device` at host path target, with mode (chown to owner if set) */
	LXRUN_OP_SYMLINK,     /* a symlink at the in-root target whose text is source (its parent must exist) */
	LXRUN_OP_SET_ATTR,    /* attr set on the mount at the in-root target, that mount alone (no new mount) */
};

enum lxrun_create {
	LXRUN_CREATE_NONE,
	LXRUN_CREATE_DIR,   /* mkdir -p the in-root target if it is missing */
	LXRUN_CREATE_FILE,  /* create its parents and an empty file (a mount point for a file) */
	LXRUN_CREATE_SKIP,  /* a missing target means there is nothing to do (masks of optional paths) */
};

enum lxrun_net {
	LXRUN_NET_NEW,   /* a new network namespace, loopback up */
	LXRUN_NET_JOIN,  /* the namespace open at netns_fd, set up by the caller */
	LXRUN_NET_HOST,  /* the host's */
};

struct lxrun_step {
	int op;
	const char *source;
	const char *target;
	const char *fstype;
	const char *data;
	unsigned long flags;  /* MS_* */
	uint64_t attr;        /* MOUNT_ATTR_*; MOUNT_ATTR_IDMAP maps through the sandbox's user namespace */
	int create;
	unsigned int mode;
	int64_t owner;        /* HOST_MKDIR, HOST_WRITE, HOST_MKNOD: chown to this uid and gid; -1 keeps root;
	                       * LXRUN_OWNER_TASK_ROOT: the request's root_owner */
	uint64_t device;      /* HOST_MKNOD: makedev(major, minor) */
};

/* A step's owner that stands for the task's root, whichever uid range it drew (lxrun_request.root_owner):
 * steps that name it are the same for every task of a kind, built once. */
#define LXRUN_OWNER_TASK_ROOT (-2)

struct lxrun_rlimit {
	int resource;   /* RLIMIT_* */
	uint64_t soft;  /* RLIM_INFINITY for none */
	uint64_t hard;
};

struct lxrun_request {
	int clone_flags;              /* stage 2: CLONE_NEWNS|NEWPID|NEWUTS|NEWIPC, and NEWUSER for a user ns */
	int net;                      /* enum lxrun_net, done by stage 1 and inherited by stage 2 */
	int netns_fd;
	const char *uid_map;          /* with CLONE_NEWUSER: written by stage 1, e.g. "0 100000 65536\n" */
	const char *gid_map;
	int new_cgroupns;             /* stage 2 unshares the cgroup namespace (after stage 1 joined) */
	const int *cgroup_fds;        /* open cgroup.procs files; stage 1 writes "0" to each */
	int n_cgroup_fds;
	int cgroup_dir_fd;            /* -1, or a cgroup2 directory stage 2 is born into (CLONE_INTO_CGROUP) */
	const struct lxrun_step *host_steps;  /* stage 1, inside stage 2's mount namespace */
	int n_host_steps;
	const struct lxrun_step *steps;       /* stage 2 */
	int n_steps;
	const char *hostname;         /* NULL keeps the parent's */
	const char *init_path;        /* the static init binary's host path, named in error records */
	int init_fd;                  /* its sealed copy (lxrun_seal_init), which stage 2 execs */
	char *const *init_argv;       /* { "lxrun-init", task argv..., NULL } */
	char *const *envp;
	const char *cwd;
	uid_t uid;
	gid_t gid;
	int drop_caps;                /* keep only `caps` in every set (bounding included); ambient cleared */
	uint64_t caps;
	int cap_last;                 /* /proc/sys/kernel/cap_last_cap */
	const void *seccomp_filter;   /* struct sock_filter[seccomp_len], NULL for none */
	int seccomp_len;
	int stdin_fd;
	int stdout_fd;
	int stderr_fd;
	int task_fd;                  /* -1, or a prepared sandbox's end of its task socket (init_argv has no
	                               * command: init waits there for its task, see protocol.h) */
	int detached;                 /* pid 1 outlives the caller (an OCI container: its engine's subreaper
	                               * inherits it): no parent-death signal */
	const gid_t *groups;          /* the task's supplementary groups (OCI additionalGids); none: n_groups 0 */
	int n_groups;
	const int *join_ns_fds;       /* namespaces stage 1 enters before it clones stage 2, which then makes */
	const int *join_ns_types;     /* none of those kinds (CLONE_NEWIPC, CLONE_NEWUTS: what each must be) */
	int n_join_ns;
	const struct lxrun_rlimit *rlimits;  /* set by stage 2 while it is still root (an OCI container's) */
	int n_rlimits;
	int64_t root_owner;           /* the host uid (and gid) of the task's root: LXRUN_OWNER_TASK_ROOT's; -1 root */
};

/* Where one spawn's time goes: the CLOCK_MONOTONIC nanoseconds at which each point was reached (0: not
 * reached), written by the caller and both stages (whose memory is the caller's until they exec). */
enum lxrun_mark {
	LXRUN_MARK_CALLED,         /* lxrun_spawn entered */
	LXRUN_MARK_STAGE1,         /* stage 1 runs */
	LXRUN_MARK_STAGE2,         /* stage 2 cloned: its namespaces exist */
	LXRUN_MARK_GO,             /* stage 1's host steps done (ids mapped, root assembled) */
	LXRUN_MARK_PIVOT,          /* stage 2's in-root steps done: pivot_root */
	LXRUN_MARK_PIVOTED,        /* the old root detached */
	LXRUN_MARK_EXEC,           /* user, capabilities, fds and seccomp set: init is exec'd */
	LXRUN_MARK_RETURNED,       /* init runs: back in the caller */
	LXRUN_MARKS
};

struct lxrun_child {
	pid_t pid;       /* the sandbox's pid 1, as seen from the caller (and the caller's child) */
	int pidfd;
	int status_fd;   /* init writes the task's wait status here */
	int64_t marks[LXRUN_MARKS];
};

/* 0 and *out filled, or -1 and *err filled; on -1 no process and no descriptor is left over. */
int lxrun_spawn(const struct lxrun_request *req, struct lxrun_child *out, struct lxrun_error *err);

/* A sealed, close-on-exec memfd copy of the file at path (mode 0511, no longer writable, growable or
 * shrinkable, seals sealed), made for lxrun_request.init_fd: what the sandbox's pid 1 is exec'd from,
 * so /proc/1/exe names no host file and no task can write to it (runc's fix for CVE-2019-5736).
 * The descriptor, or -errno. */
int lxrun_seal_init(const char *path);

/* 1 where stage 2 can be cloned into a cgroup (clone3 with CLONE_INTO_CGROUP on its own stack needs a
 * few lines of assembly, written for x86_64), else 0: then cgroup_dir_fd must be -1. */
int lxrun_can_clone_into_cgroup(void);

/* A new network namespace, as a close-on-exec descriptor (made by a CLONE_VM|CLONE_VFORK|CLONE_FILES
 * child, so the caller is never copied); -errno on failure. */
int lxrun_new_netns(void);

/* `lxrun-oci exec`'s process, already in a container's namespaces and cgroup: it takes req's cwd, user,
 * capabilities (caps, drop_caps), no_new_privs and seccomp filter, then execs init_argv (searched in the
 * PATH of envp). Returns only never: a failure is a record on error_fd, then exit 125 (126/127 for exec). */
void lxrun_exec_in_sandbox(const struct lxrun_request *req, int error_fd);

/* setns(2) for the calling thread only (Python 3.11 has no os.setns); 0 or -errno. */
int lxrun_setns(int fd, int nstype);

#endif
