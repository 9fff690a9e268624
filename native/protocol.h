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

#endif
