/* The native helper: one request in, one started sandbox (pid + pidfd) or one error record out.
 *
 * Python builds the whole request as plain data before the call; the child created by
 * clone(CLONE_VM|CLONE_VFORK) only makes system calls on its own stack, then execs the sandbox's
 * pid 1 (init.c), which starts the task. No Python runs in the child. */
#ifndef LXRUN_HELPER_H
#define LXRUN_HELPER_H

#include <stdint.h>
#include <sys/types.h>

#include "protocol.h"

enum lxrun_op {
	LXRUN_OP_HOST_MKDIR,  /* mkdir(target, mode) of a host path; an existing directory is fine */
	LXRUN_OP_HOST_MOUNT,  /* mount(source, target, fstype, flags, data) with host paths */
	LXRUN_OP_OPEN_ROOT,   /* the host path target becomes the new root: in-root targets resolve below it */
	LXRUN_OP_FS,          /* a new fstype filesystem (options in data, "k=v,flag") at an in-root target */
	LXRUN_OP_BIND,        /* a clone of the host tree at source at an in-root target (flags: MS_REC) */
	LXRUN_OP_MKDIR,       /* mkdir -p of an in-root target */
	LXRUN_OP_PIVOT,       /* make the opened root the process's root; the old root is detached */
};

enum lxrun_create {
	LXRUN_CREATE_NONE,
	LXRUN_CREATE_DIR,   /* mkdir -p the in-root target if it is missing */
	LXRUN_CREATE_FILE,  /* create its parents and an empty file (a mount point for a file) */
};

struct lxrun_step {
	int op;
	const char *source;
	const char *target;
	const char *fstype;
	const char *data;
	unsigned long flags;  /* MS_* */
	uint64_t attr;        /* MOUNT_ATTR_* applied to OP_FS and OP_BIND mounts */
	int create;
	unsigned int mode;
};

struct lxrun_request {
	int clone_flags;              /* CLONE_NEW* except CLONE_NEWCGROUP */
	int new_cgroupns;             /* unshare the cgroup namespace after joining the cgroups */
	const int *cgroup_fds;        /* open cgroup.procs files; the child writes "0" to each */
	int n_cgroup_fds;
	const struct lxrun_step *steps;
	int n_steps;
	const char *hostname;         /* NULL keeps the parent's */
	int loopback_up;
	const char *init_path;        /* the static init binary, opened before the root changes */
	char *const *init_argv;       /* { "lxrun-init", task argv..., NULL } */
	char *const *envp;
	const char *cwd;
	uid_t uid;
	gid_t gid;
	int stdin_fd;
	int stdout_fd;
	int stderr_fd;
};

struct lxrun_child {
	pid_t pid;       /* the sandbox's pid 1, as seen from the caller */
	int pidfd;
	int status_fd;   /* init writes the task's wait status here */
};

/* 0 and *out filled, or -1 and *err filled; on -1 no process and no descriptor is left over. */
int lxrun_spawn(const struct lxrun_request *req, struct lxrun_child *out, struct lxrun_error *err);

/* A new network namespace, as a close-on-exec descriptor (made by a CLONE_VM|CLONE_VFORK|CLONE_FILES
 * child, so the caller is never copied); -errno on failure. */
int lxrun_new_netns(void);

/* setns(2) for the calling thread only (Python 3.11 has no os.setns); 0 or -errno. */
int lxrun_setns(int fd, int nstype);

#endif
