/* What the helper (helper.c), the sandbox's pid 1 (init.c) and Python agree on. */
#ifndef LXRUN_PROTOCOL_H
#define LXRUN_PROTOCOL_H

/* Where a setup failure happened; Python turns the number into a step name. */
enum lxrun_step_code {
	LXRUN_STEP_SPAWN = 1,   /* pipe2/mmap/clone in the calling process */
	LXRUN_STEP_CGROUP,      /* joining a task cgroup (write "0" to tasks or cgroup.procs) */
	LXRUN_STEP_CGROUPNS,    /* unshare(CLONE_NEWCGROUP) after joining */
	LXRUN_STEP_HOSTNAME,
	LXRUN_STEP_LOOPBACK,
	LXRUN_STEP_MOUNT,       /* one of the ordered mount steps; index says which */
	LXRUN_STEP_WORKDIR,
	LXRUN_STEP_USER,        /* setgroups/setgid/setuid */
	LXRUN_STEP_STDIO,
	LXRUN_STEP_EXEC_INIT,
	LXRUN_STEP_EXEC,        /* the task's own command, reported by init's child */
	LXRUN_STEP_INIT,        /* init itself (fork) */
	LXRUN_STEP_NETNS,       /* a new network namespace, or joining the one given */
	LXRUN_STEP_USERNS,      /* writing the sandbox's uid_map/gid_map, opening its namespaces */
	LXRUN_STEP_SYNC,        /* the two stages handing over to each other */
	LXRUN_STEP_CAPS,        /* dropping capabilities (bounding set, capset, ambient) */
	LXRUN_STEP_NO_NEW_PRIVS,
	LXRUN_STEP_SECCOMP,
	LXRUN_STEP_JOIN_NS,     /* joining an ipc or uts namespace given by path (an OCI container's) */
	LXRUN_STEP_RLIMIT,      /* setrlimit of one of the request's rlimits; index says which */
};

#define LXRUN_ERROR_PATH_MAX 256

/* One failure record; the whole struct is written with a single write(2) so it arrives whole. */
struct lxrun_error {
	int step;
	int index;   /* mount step index for LXRUN_STEP_MOUNT (host steps first, then the sandbox's), else -1 */
	int err;     /* errno */
	char path[LXRUN_ERROR_PATH_MAX];
};

/* File descriptors init finds already open when it starts. */
#define LXRUN_INIT_ERROR_FD 3   /* failure records; end-of-file at the parent means exec succeeded */
#define LXRUN_INIT_STATUS_FD 4  /* init writes the task's wait status (an int) here before it exits */
#define LXRUN_INIT_TASK_FD 5    /* a prepared sandbox's: its task arrives here, failure records go back */

/* A prepared sandbox's init, started without a command, closes its error descriptor (its start is done)
 * and waits on LXRUN_INIT_TASK_FD, a SOCK_SEQPACKET socket, for one message: this header, then
 * `length` bytes holding argc then envc NUL-terminated strings, with the task's stdin, stdout and
 * stderr as SCM_RIGHTS. A failure to exec the task comes back on the socket as a struct lxrun_error;
 * end-of-file there means the task's command runs. */
#define LXRUN_TASK_MAGIC 0x7478726cU  /* "lrxt" */
#define LXRUN_TASK_MAX 131072         /* bytes of argv and environment a message may carry */
#define LXRUN_TASK_STRINGS 8192       /* argv and environment entries a message may carry */

struct lxrun_task_header {
	unsigned int magic;
	unsigned int argc;
	unsigned int envc;
	unsigned int length;
};

#endif
