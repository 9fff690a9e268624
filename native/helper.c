/* The native helper: two stages cloned with CLONE_VM on stacks of their own (see helper.h).
 *
 * Both stages share the caller's memory until they exec or exit, so they only read the request,
 * write to their own stacks (and stage 1 to the context) and make system calls. Every failure
 * becomes one lxrun_error record on a close-on-exec pipe; end-of-file on that pipe means the
 * task's command was executed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helper.h"

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

#define STAGE_STACK_SIZE (256 * 1024)
#define INIT_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
#define FS_OPTIONS_MAX 1024

struct stage_ctx {
	const struct lxrun_request *req;
	int error_fd;      /* write end of the error pipe (both stages) */
	int status_fd;     /* write end of the status pipe (stage 2 hands it to init) */
	int go_fd[2];      /* stage 1 -> stage 2: "your namespaces are ready" */
	int exec_fd[2];    /* stage 2 -> stage 1: end-of-file when stage 2 exec'd or died */
	int init_fd;
	int root_fd;
	int userns_fd;     /* stage 2's user namespace, for idmapped mounts */
	pid_t caller;      /* our caller's pid: stage 1 ends itself if it finds another parent */
	char *stage2_stack;
	pid_t stage2_pid;  /* set by stage 1, read by the caller after stage 1 exited */
	int64_t *marks;    /* the caller's lxrun_child.marks */
};

static void mark(const struct stage_ctx *ctx, enum lxrun_mark point)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ctx->marks[point] = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* Record a failure for the parent and end the stage. errno is read first: nothing may clobber it. */
static void __attribute__((noreturn)) stage_fail(const struct stage_ctx *ctx, int step, int index, const char *path)
{
	struct lxrun_error rec;
	memset(&rec, 0, sizeof rec);
	rec.err = errno;
	rec.step = step;
	rec.index = index;
	if (path)
		strncpy(rec.path, path, sizeof rec.path - 1);
	(void)!write(ctx->error_fd, &rec, sizeof rec);
	_exit(125);
}

static int close_keeping_errno(int fd)
{
	int saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* ------------------------------------------------------------------ mounts */

static int openat2_in_root(int root_fd, const char *path, int flags)
{
	struct open_how how;
	memset(&how, 0, sizeof how);
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	while (*path == '/')
		path++;
	if (*path == '\0')
		path = ".";
	return (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
}

/* Open path below root_fd with symlinks resolved inside the root, creating it and its parents
 * when asked. On failure, failed holds the path (relative to the root) that could not be made. */
static int open_in_root(int root_fd, const char *path, int create, unsigned int mode, char *failed)
{
	int fd = openat2_in_root(root_fd, path, O_PATH);
	if (fd >= 0)
		return fd;
	if (errno != ENOENT || (create != LXRUN_CREATE_DIR && create != LXRUN_CREATE_FILE))
		goto fail;

	char parent_path[PATH_MAX];
	strncpy(parent_path, path, sizeof parent_path - 1);
	parent_path[sizeof parent_path - 1] = '\0';
	char *slash = strrchr(parent_path, '/');
	const char *name = slash ? path + (slash - parent_path) + 1 : path;
	if (slash)
		*slash = '\0';
	else
		parent_path[0] = '\0';
	int parent = open_in_root(root_fd, parent_path, LXRUN_CREATE_DIR, 0755, failed);
	if (parent < 0)
		return -1;
	int rc;
	if (create == LXRUN_CREATE_FILE) {
		rc = openat(parent, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode);
		if (rc >= 0)
			close(rc);
	} else {
		rc = mkdirat(parent, name, mode);
	}
	int saved = errno;
	close(parent);
	errno = saved;
	if (rc < 0 && errno != EEXIST)
		goto fail;
	fd = openat2_in_root(root_fd, path, O_PATH);
	if (fd >= 0)
		return fd;
fail:
	strncpy(failed, path, PATH_MAX - 1);
	failed[PATH_MAX - 1] = '\0';
	return -1;
}

/* Apply "key=value" and "flag" options, comma-separated, to an fsopen context. */
static int configure_fs(int fs, const char *options)
{
	char opts[FS_OPTIONS_MAX];
	strncpy(opts, options ? options : "", sizeof opts - 1);
	opts[sizeof opts - 1] = '\0';
	char *save = NULL;
	for (char *opt = strtok_r(opts, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(opt, '=');
		int rc;
		if (eq) {
			*eq = '\0';
			rc = fsconfig(fs, FSCONFIG_SET_STRING, opt, eq + 1, 0);
		} else {
			rc = fsconfig(fs, FSCONFIG_SET_FLAG, opt, NULL, 0);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* fsopen + fsconfig + fsmount: a new, still detached filesystem mount. */
static int make_fs(const struct lxrun_step *s)
{
	int fs = fsopen(s->fstype, FSOPEN_CLOEXEC);
	if (fs < 0)
		return -1;
	if (configure_fs(fs, s->data) < 0 ||
	    (s->source && fsconfig(fs, FSCONFIG_SET_STRING, "source", s->source, 0) < 0) ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return close_keeping_errno(fs);
	int mnt = fsmount(fs, FSMOUNT_CLOEXEC, (unsigned int)s->attr);
	if (mnt < 0)
		return close_keeping_errno(fs);
	close(fs);
	return mnt;
}

/* open_tree(OPEN_TREE_CLONE) of dirfd/path, with its attributes (an idmap included) set while detached. */
static int clone_tree(const struct stage_ctx *ctx, int dirfd, const char *path, const struct lxrun_step *s)
{
	unsigned int recursive = (s->flags & MS_REC) ? AT_RECURSIVE : 0;
	unsigned int empty = path[0] == '\0' ? AT_EMPTY_PATH : 0;
	int tree = open_tree(dirfd, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | recursive | empty);
	if (tree < 0 || s->attr == 0)
		return tree;
	struct mount_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.attr_set = s->attr;
	if (s->attr & MOUNT_ATTR_IDMAP)
		attr.userns_fd = (uint64_t)ctx->userns_fd;
	if (mount_setattr(tree, "", AT_EMPTY_PATH | recursive, &attr, sizeof attr) < 0)
		return close_keeping_errno(tree);
	return tree;
}

static int attach(int mnt, int dirfd, const char *path, unsigned int flags)
{
	int rc = move_mount(mnt, "", dirfd, path, MOVE_MOUNT_F_EMPTY_PATH | flags);
	return rc < 0 ? close_keeping_errno(mnt) : close(mnt);
}

/* HOST_VOLUME: the source opened without following a symlink anywhere in its path (a task may have
 * planted one where it could write), then cloned from that very descriptor, so what was checked is what
 * gets mounted; ro and idmap are set while it is detached, then it waits at the staging point. */
static int stage_volume(const struct stage_ctx *ctx, const struct lxrun_step *s)
{
	struct open_how how;
	memset(&how, 0, sizeof how);
	how.flags = O_PATH | O_CLOEXEC;
	how.resolve = RESOLVE_NO_SYMLINKS;
	int source = (int)syscall(SYS_openat2, AT_FDCWD, s->source, &how, sizeof how);
	if (source < 0)
		return -1;
	int mnt = clone_tree(ctx, source, "", s);
	close_keeping_errno(source);
	if (mnt < 0)
		return -1;
	return attach(mnt, AT_FDCWD, s->target, 0);
}

/* MOVE: the staged mount onto its in-root target, which must be of the same kind (the kernel would only
 * say EINVAL). On failure, failed holds the path that failed. */
static int move_staged(const struct stage_ctx *ctx, const struct lxrun_step *s, char *failed)
{
	strncpy(failed, s->target, PATH_MAX - 1);
	failed[PATH_MAX - 1] = '\0';
	int mnt = open_tree(AT_FDCWD, s->source, OPEN_TREE_CLOEXEC);
	if (mnt < 0)
		return -1;
	int target = open_in_root(ctx->root_fd, s->target, s->create, s->mode, failed);
	if (target < 0)
		return close_keeping_errno(mnt);
	struct stat from, onto;
	int rc = fstat(mnt, &from) < 0 || fstat(target, &onto) < 0 ? -1 : 0;
	if (rc == 0 && S_ISDIR(from.st_mode) != S_ISDIR(onto.st_mode)) {
		errno = S_ISDIR(from.st_mode) ? ENOTDIR : EISDIR;
		rc = -1;
	}
	if (rc == 0)
		rc = attach(mnt, target, "", MOVE_MOUNT_T_EMPTY_PATH);
	else
		close_keeping_errno(mnt);
	close_keeping_errno(target);
	return rc;
}

/* Whom a host step chowns to: its owner, the task's root standing for the request's; -1: nobody (keeps root). */
static int64_t step_owner(const struct lxrun_request *req, const struct lxrun_step *s)
{
	return s->owner == LXRUN_OWNER_TASK_ROOT ? req->root_owner : s->owner;
}

/* HOST_WRITE: a file that did not exist (O_EXCL, no symlink followed), all of data in it. */
static int write_new_file(const struct lxrun_step *s, int64_t owner)
{
	int fd = open(s->target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, s->mode);
	if (fd < 0)
		return -1;
	size_t left = strlen(s->data);
	const char *at = s->data;
	while (left > 0) {
		ssize_t n = write(fd, at, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return close_keeping_errno(fd);
		}
		at += n;
		left -= (size_t)n;
	}
	if (owner >= 0 && fchown(fd, (uid_t)owner, (gid_t)owner) < 0)
		return close_keeping_errno(fd);
	return close(fd);
}

/* HOST_MKNOD: a node with exactly `mode` (mknod's is cut by the caller's umask). */
static int make_node(const struct lxrun_step *s, int64_t owner)
{
	if (mknod(s->target, S_IFCHR | s->mode, (dev_t)s->device) < 0 || chmod(s->target, s->mode) < 0)
		return -1;
	if (owner >= 0 && chown(s->target, (uid_t)owner, (gid_t)owner) < 0)
		return -1;
	return 0;
}

/* SYMLINK: the link made in its parent as resolved inside the root. */
static int make_symlink_in_root(int root_fd, const struct lxrun_step *s, char *failed)
{
	char parent_path[PATH_MAX];
	strncpy(parent_path, s->target, sizeof parent_path - 1);
	parent_path[sizeof parent_path - 1] = '\0';
	char *slash = strrchr(parent_path, '/');
	if (!slash) {
		errno = EINVAL;
		return -1;
	}
	*slash = '\0';
	int parent = open_in_root(root_fd, parent_path, LXRUN_CREATE_NONE, 0, failed);
	if (parent < 0)
		return -1;
	int rc = symlinkat(s->source, parent, slash + 1);
	close_keeping_errno(parent);
	return rc;
}

/* SET_ATTR: mount_setattr on the mount whose root the in-root target is. */
static int set_attr_in_root(int root_fd, const struct lxrun_step *s, char *failed)
{
	int target = open_in_root(root_fd, s->target, LXRUN_CREATE_NONE, 0, failed);
	if (target < 0)
		return -1;
	struct mount_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.attr_set = s->attr;
	int rc = mount_setattr(target, "", AT_EMPTY_PATH, &attr, sizeof attr);
	close_keeping_errno(target);
	return rc;
}

static void run_step(struct stage_ctx *ctx, const struct lxrun_step *s, int index, char *buf)
{
	int mnt = -1;
	int target;
	switch (s->op) {
	case LXRUN_OP_HOST_MKDIR: {
		int64_t owner = step_owner(ctx->req, s);
		if (mkdir(s->target, s->mode) < 0 && errno != EEXIST)
			stage_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
		if (owner >= 0 && chown(s->target, (uid_t)owner, (gid_t)owner) < 0)
			stage_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
		return;
	}
	case LXRUN_OP_HOST_WRITE:
		if (write_new_file(s, step_owner(ctx->req, s)) < 0)
			stage_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
		return;
	case LXRUN_OP_HOST_MKNOD:
		if (make_node(s, step_owner(ctx->req, s)) < 0)
			stage_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
		return;
	case LXRUN_OP_SYMLINK:
		if (make_symlink_in_root(ctx->root_fd, s, buf) < 0)
			stage_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
		return;
	case LXRUN_OP_SET_ATTR:
		if (set_attr_in_root(ctx->root_fd, s, buf) < 0)
			stage_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
		return;
	case LXRUN_OP_HOST_MOUNT:
		if (mount(s->source, s->target, s->fstype, s->flags, s->data) < 0)
			stage_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
		return;
	case LXRUN_OP_HOST_BIND:
		mnt = clone_tree(ctx, AT_FDCWD, s->source, s);
		if (mnt < 0 || attach(mnt, AT_FDCWD, s->target, 0) < 0)
			stage_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
		return;
	case LXRUN_OP_HOST_VOLUME:
		if (stage_volume(ctx, s) < 0)
			stage_fail(ctx, LXRUN_STEP_MOUNT, index, s->source);
		return;
	case LXRUN_OP_MOVE:
		if (move_staged(ctx, s, buf) < 0)
			stage_fail(ctx, LXRUN_STEP_MOUNT, index, buf);
		return;
	case LXRUN_OP_OPEN_ROOT:
		ctx->root_fd = open(s->target, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (ctx->root_fd < 0)
			stage_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
		return;
	case LXRUN_OP_PIVOT:
		mark(ctx, LXRUN_MARK_PIVOT);
		/* Detaching the old root waits for an RCU grace period, as every unmount does: the one wait
		 * left on this path, since the task must never see the host's tree. */
		if (fchdir(ctx->root_fd) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 ||
		    chdir("/") < 0)
			stage_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
		mark(ctx, LXRUN_MARK_PIVOTED);
		return;
	case LXRUN_OP_MKDIR:
		target = open_in_root(ctx->root_fd, s->target, LXRUN_CREATE_DIR, s->mode, buf);
		if (target < 0)
			stage_fail(ctx, LXRUN_STEP_MOUNT, index, buf);
		close(target);
		return;
	case LXRUN_OP_FS:
	case LXRUN_OP_BIND:
		break;
	case LXRUN_OP_REBIND:
		target = open_in_root(ctx->root_fd, s->target, s->create, 0, buf);
		if (target < 0 && errno == ENOENT && s->create == LXRUN_CREATE_SKIP)
			return;
		if (target < 0)
			stage_fail(ctx, LXRUN_STEP_MOUNT, index, buf);
		mnt = clone_tree(ctx, target, "", &(struct lxrun_step){ .attr = s->attr, .flags = s->flags });
		if (mnt < 0 || attach(mnt, target, "", MOVE_MOUNT_T_EMPTY_PATH) < 0)
			stage_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
		close(target);
		return;
	default:
		errno = EINVAL;
		stage_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
	}
	/* FS and BIND: the target first, so a skipped one never makes a mount. Closing a mount that was
	 * never attached makes the kernel wait for an RCU grace period (milliseconds here). */
	target = open_in_root(ctx->root_fd, s->target, s->create, s->mode, buf);
	if (target < 0 && errno == ENOENT && s->create == LXRUN_CREATE_SKIP)
		return;
	if (target < 0)
		stage_fail(ctx, LXRUN_STEP_MOUNT, index, buf);
	mnt = s->op == LXRUN_OP_FS ? make_fs(s) : clone_tree(ctx, AT_FDCWD, s->source, s);
	if (mnt < 0)
		stage_fail(ctx, LXRUN_STEP_MOUNT, index, s->op == LXRUN_OP_BIND ? s->source : s->target);
	if (attach(mnt, target, "", MOVE_MOUNT_T_EMPTY_PATH) < 0)
		stage_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
	close(target);
}

/* ------------------------------------------------------------------ stage 2: the sandbox's pid 1 */

/* Put stdio on 0-2 and the two pipes on the fd numbers init expects; everything else closes at exec. */
static void arrange_fds(struct stage_ctx *ctx)
{
	const struct lxrun_request *req = ctx->req;
	int wanted[6] = { req->stdin_fd, req->stdout_fd, req->stderr_fd, ctx->error_fd, ctx->status_fd, req->task_fd };
	int count = req->task_fd >= 0 ? 6 : 5;
	int moved[6];
	/* Copy everything above the target range first, so no dup2 overwrites a source still needed: the
	 * init binary's descriptor too, which may well be 3 or 4 when the caller's threads churn theirs. */
	ctx->init_fd = fcntl(ctx->init_fd, F_DUPFD_CLOEXEC, 10);
	if (ctx->init_fd < 0)
		stage_fail(ctx, LXRUN_STEP_STDIO, -1, NULL);
	/* And the exec pipe's end: stage 1 leaves the memory we run on at its end-of-file, which must come
	 * with our exec, not with a dup2 over its number (a low one: stage 1's table is nearly empty). */
	if (fcntl(ctx->exec_fd[1], F_DUPFD_CLOEXEC, 10) < 0)
		stage_fail(ctx, LXRUN_STEP_STDIO, -1, NULL);
	for (int i = 0; i < count; i++) {
		moved[i] = fcntl(wanted[i], F_DUPFD_CLOEXEC, 10);
		if (moved[i] < 0)
			stage_fail(ctx, LXRUN_STEP_STDIO, -1, NULL);
	}
	ctx->error_fd = moved[3];
	for (int i = 0; i < count; i++) {
		if (dup2(moved[i], i) < 0)
			stage_fail(ctx, LXRUN_STEP_STDIO, -1, NULL);
	}
	ctx->error_fd = LXRUN_INIT_ERROR_FD;
	if (close_range((unsigned int)count, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		stage_fail(ctx, LXRUN_STEP_STDIO, -1, NULL);
}

/* Keep only req->caps: out of the bounding set first (that needs CAP_SETPCAP), then the user, then
 * permitted/effective/inheritable for root (a non-root user lost them all in setuid, as in docker). */
static void drop_capabilities_and_become_user(struct stage_ctx *ctx)
{
	const struct lxrun_request *req = ctx->req;
	if (req->drop_caps) {
		for (int cap = 0; cap <= req->cap_last; cap++) {
			if (!(req->caps & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
				stage_fail(ctx, LXRUN_STEP_CAPS, cap, "bounding set");
		}
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
			stage_fail(ctx, LXRUN_STEP_CAPS, -1, "ambient set");
	}
	/* Raw system calls, not glibc's: its setuid family makes every thread of the process change too, and
	 * it finds them in memory we share with the caller, so it would signal each of the caller's threads
	 * (~1 us each: a runner with hundreds of tasks in flight has hundreds). We are one thread. */
	if (syscall(SYS_setgroups, (size_t)req->n_groups, req->groups) < 0 || syscall(SYS_setgid, req->gid) < 0 ||
	    syscall(SYS_setuid, req->uid) < 0)
		stage_fail(ctx, LXRUN_STEP_USER, -1, NULL);
	if (req->drop_caps && req->uid == 0) {
		/* What we hold caps the set (a runner without, say, CAP_SYS_RESOURCE can't hand it out). */
		struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
		struct __user_cap_data_struct data[2];
		if (syscall(SYS_capget, &header, data) < 0)
			stage_fail(ctx, LXRUN_STEP_CAPS, -1, "capget");
		for (int i = 0; i < 2; i++)
			data[i].effective = data[i].permitted = data[i].inheritable =
				data[i].permitted & (uint32_t)(req->caps >> (32 * i));
		if (syscall(SYS_capset, &header, data) < 0)
			stage_fail(ctx, LXRUN_STEP_CAPS, -1, "capset");
	}
}

/* Pid 1 dies with the process that started it, unless it is detached (an OCI container outlives `create`). */
static void die_with_caller(const struct lxrun_request *req)
{
	if (!req->detached)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static int stage2_main(void *arg)
{
	/* A copy of our own: stage 1 keeps using the shared context (our fds are numbered alike). */
	struct stage_ctx self = *(struct stage_ctx *)arg;
	struct stage_ctx *ctx = &self;
	const struct lxrun_request *req = ctx->req;
	char buf[PATH_MAX];
	char go;

	/* Signals stay blocked (the caller blocked them all) until init decides what to wait for. */
	die_with_caller(req);
	close(ctx->go_fd[1]);
	close(ctx->exec_fd[0]);
	if (read(ctx->go_fd[0], &go, 1) != 1)
		_exit(125);  /* stage 1 failed and reported why */
	if (req->new_cgroupns && unshare(CLONE_NEWCGROUP) < 0)
		stage_fail(ctx, LXRUN_STEP_CGROUPNS, -1, NULL);
	if (req->hostname && sethostname(req->hostname, strlen(req->hostname)) < 0)
		stage_fail(ctx, LXRUN_STEP_HOSTNAME, -1, req->hostname);
	for (int i = 0; i < req->n_steps; i++)
		run_step(ctx, &req->steps[i], req->n_host_steps + i, buf);
	if (req->cwd && chdir(req->cwd) < 0)
		stage_fail(ctx, LXRUN_STEP_WORKDIR, -1, req->cwd);
	/* Before the task's user: a process of another user takes limits only from CAP_SYS_RESOURCE. */
	for (int i = 0; i < req->n_rlimits; i++) {
		struct rlimit limit = {req->rlimits[i].soft, req->rlimits[i].hard};
		if (setrlimit(req->rlimits[i].resource, &limit) < 0)
			stage_fail(ctx, LXRUN_STEP_RLIMIT, i, NULL);
	}
	drop_capabilities_and_become_user(ctx);
	/* A change of credentials clears the parent-death signal: set it again. */
	die_with_caller(req);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		stage_fail(ctx, LXRUN_STEP_NO_NEW_PRIVS, -1, NULL);
	arrange_fds(ctx);
	/* The filter goes on last, so that even a strict profile can't break the steps above. */
	if (req->seccomp_filter) {
		struct sock_fprog prog = { .len = (unsigned short)req->seccomp_len,
					   .filter = (struct sock_filter *)req->seccomp_filter };
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
			stage_fail(ctx, LXRUN_STEP_SECCOMP, -1, NULL);
	}
	mark(ctx, LXRUN_MARK_EXEC);
	syscall(SYS_execveat, ctx->init_fd, "", req->init_argv, req->envp, AT_EMPTY_PATH);
	stage_fail(ctx, LXRUN_STEP_EXEC_INIT, -1, req->init_path);
}

/* ------------------------------------------------------------------ stage 1: the host side */

static void loopback_up(struct stage_ctx *ctx)
{
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
	if (sock < 0 || ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
		stage_fail(ctx, LXRUN_STEP_LOOPBACK, -1, "lo");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
		stage_fail(ctx, LXRUN_STEP_LOOPBACK, -1, "lo");
	close(sock);
}

static void write_sysctl(struct stage_ctx *ctx, const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, strlen(value)) != (ssize_t)strlen(value))
		stage_fail(ctx, LXRUN_STEP_NETNS, -1, path);
	close(fd);
}

/* The namespace is the task's alone, but owned by the host's user namespace, where the task holds no
 * capability: let it ping without raw sockets and bind low ports, as docker does for its containers. */
static void open_up_network(struct stage_ctx *ctx)
{
	write_sysctl(ctx, "/proc/sys/net/ipv4/ping_group_range", "0 2147483647");
	write_sysctl(ctx, "/proc/sys/net/ipv4/ip_unprivileged_port_start", "0");
}

static void enter_network(struct stage_ctx *ctx)
{
	const struct lxrun_request *req = ctx->req;
	if (req->net == LXRUN_NET_NEW) {
		if (unshare(CLONE_NEWNET) < 0)
			stage_fail(ctx, LXRUN_STEP_NETNS, -1, NULL);
		loopback_up(ctx);
		open_up_network(ctx);
	} else if (req->net == LXRUN_NET_JOIN) {
		if (setns(req->netns_fd, CLONE_NEWNET) < 0)
			stage_fail(ctx, LXRUN_STEP_NETNS, -1, NULL);
		open_up_network(ctx);
	}
}

/* An OCI container's ipc and uts namespaces given by path (a Kubernetes pod's, `docker run --ipc
 * container:X`): entered here, so stage 2, cloned without those flags, is born in them. */
static void join_namespaces(struct stage_ctx *ctx)
{
	const struct lxrun_request *req = ctx->req;
	for (int i = 0; i < req->n_join_ns; i++)
		if (setns(req->join_ns_fds[i], req->join_ns_types[i]) < 0)
			stage_fail(ctx, LXRUN_STEP_JOIN_NS, i, NULL);
}

static void join_cgroups(struct stage_ctx *ctx)
{
	const struct lxrun_request *req = ctx->req;
	for (int i = 0; i < req->n_cgroup_fds; i++) {
		if (write(req->cgroup_fds[i], "0", 1) != 1)
			stage_fail(ctx, LXRUN_STEP_CGROUP, i, NULL);
	}
}

/* clone3(2) with the child on a stack of its own, sharing our memory: the child must not return
 * into this function's frame, so it calls fn(arg) and exits from the assembly. */
struct clone3_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
		set_tid_size, cgroup;
};

#if defined(__x86_64__)
static pid_t clone3_on_stack(struct clone3_args *args, int (*fn)(void *), void *arg)
{
	long ret;
	register int (*fn_reg)(void *) __asm__("r12") = fn;  /* callee-saved: the syscall keeps them */
	register void *arg_reg __asm__("r13") = arg;
	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "xor %%ebp, %%ebp\n\t"  /* the child: a fresh stack, nothing to unwind to */
			 "mov %%r13, %%rdi\n\t"
			 "call *%%r12\n\t"
			 "mov %%eax, %%edi\n\t"
			 "mov %[exit_nr], %%eax\n\t"
			 "syscall\n\t"
			 "hlt\n"
			 "1:\n\t"
			 : "=a"(ret)
			 : "0"((long)SYS_clone3), "D"(args), "S"(sizeof *args), "r"(fn_reg), "r"(arg_reg),
			   [exit_nr] "i"(SYS_exit)
			 : "rcx", "r11", "memory");
	if (ret < 0) {
		errno = (int)-ret;
		return -1;
	}
	return (pid_t)ret;
}
#define HAVE_CLONE3_ON_STACK 1
#else
#define HAVE_CLONE3_ON_STACK 0
#endif

int lxrun_can_clone_into_cgroup(void)
{
	return HAVE_CLONE3_ON_STACK;
}

/* CLONE_PARENT: stage 2 is the caller's child, so the caller can wait for it after we are gone. */
static pid_t spawn_stage2(struct stage_ctx *ctx)
{
	const struct lxrun_request *req = ctx->req;
	uint64_t flags = CLONE_VM | CLONE_PARENT | (uint64_t)(unsigned int)req->clone_flags;
	pid_t pid;
	if (req->cgroup_dir_fd < 0) {
		pid = clone(stage2_main, ctx->stage2_stack + STAGE_STACK_SIZE, (int)flags, ctx);
		if (pid < 0)
			stage_fail(ctx, LXRUN_STEP_SPAWN, -1, "clone");
		return pid;
	}
#if HAVE_CLONE3_ON_STACK
	/* Born in its cgroup: no migration, so no wait on the cgroup core's threadgroup lock. */
	struct clone3_args args = {
		.flags = flags | CLONE_INTO_CGROUP,
		.stack = (uint64_t)(uintptr_t)ctx->stage2_stack,
		.stack_size = STAGE_STACK_SIZE,
		.cgroup = (uint64_t)req->cgroup_dir_fd,
	};
	pid = clone3_on_stack(&args, stage2_main, ctx);
#else
	errno = ENOSYS;
	pid = -1;
#endif
	if (pid < 0)
		stage_fail(ctx, LXRUN_STEP_CGROUP, -1, "clone3(CLONE_INTO_CGROUP)");
	return pid;
}

static void write_map(struct stage_ctx *ctx, const char *file, const char *map)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)ctx->stage2_pid, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, map, strlen(map)) != (ssize_t)strlen(map))
		stage_fail(ctx, LXRUN_STEP_USERNS, -1, path);
	close(fd);
}

/* Enter stage 2's mount namespace (and note its user namespace) to build the root there. */
static void enter_stage2_mounts(struct stage_ctx *ctx)
{
	char path[64];
	if (ctx->req->clone_flags & CLONE_NEWUSER) {
		snprintf(path, sizeof path, "/proc/%d/ns/user", (int)ctx->stage2_pid);
		ctx->userns_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (ctx->userns_fd < 0)
			stage_fail(ctx, LXRUN_STEP_USERNS, -1, path);
	}
	snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)ctx->stage2_pid);
	int mnt_ns = open(path, O_RDONLY | O_CLOEXEC);
	if (mnt_ns < 0 || setns(mnt_ns, CLONE_NEWNS) < 0)
		stage_fail(ctx, LXRUN_STEP_USERNS, -1, path);
	close(mnt_ns);
}

/* Stage 1 starts on the caller's descriptor table (CLONE_FILES): a runner with hundreds of tasks in
 * flight holds thousands of descriptors, and each of them copied into both stages' tables and closed
 * again at stage 2's exec and stage 1's exit cost every start ~1 us (0.6 ms with 200 tasks in flight).
 * So stage 1 takes a table of its own holding only the stages' descriptors, under the numbers the
 * caller gave them: in a small table by copying it up to the highest of them and closing the rest,
 * in a large one by starting empty and fetching each (pidfd_getfd), where the caller lets us. The
 * caller is suspended meanwhile (CLONE_VFORK) and no other thread of it closes descriptors it did
 * not open. */
#define MAX_STAGE_FDS 64
#define FETCH_ABOVE 128  /* highest number from which fetching ~10 beats copying and closing them all */

/* Whether pidfd_getfd may take the caller's descriptors (ptrace rights, which an LSM or Yama can
 * withhold): asked once per process, before our table is anything but the caller's. 0: not asked. */
static int fetch_allowed;

static int can_fetch(const struct stage_ctx *ctx, int fd)
{
	int parent = (int)syscall(SYS_pidfd_open, ctx->caller, 0);
	if (parent < 0)
		return -1;
	int probe = (int)syscall(SYS_pidfd_getfd, parent, fd, 0);
	if (probe >= 0)
		close(probe);
	close(parent);
	return probe >= 0 ? 1 : -1;
}

/* An empty table of our own, then `kept` (ascending, each >= 0) fetched from the caller under their
 * own numbers: each lands on the lowest free number, which is below its own while the lower ones are
 * in place, and is moved up. Until the error pipe is back a failure can't be reported: _exit(125)
 * with no record (the caller then finds no stage 2 and fails the spawn). */
static void fetch_descriptors(struct stage_ctx *ctx, const int *kept, int n)
{
	if (close_range(0, ~0U, CLOSE_RANGE_UNSHARE) < 0)
		stage_fail(ctx, LXRUN_STEP_SPAWN, -1, "close_range(CLOSE_RANGE_UNSHARE)");
	int parent = (int)syscall(SYS_pidfd_open, ctx->caller, 0);
	if (parent < 0)
		_exit(125);
	int high = fcntl(parent, F_DUPFD_CLOEXEC, kept[n - 1] + 1);
	if (high < 0)
		_exit(125);
	close(parent);
	for (int i = 0; i < n; i++) {
		if (i > 0 && kept[i] == kept[i - 1])
			continue;
		int got = (int)syscall(SYS_pidfd_getfd, high, kept[i], 0);
		if (got < 0 || (got != kept[i] && (dup3(got, kept[i], O_CLOEXEC) < 0 || close(got) < 0)))
			_exit(125);
	}
	close(high);
}

static void copy_and_close(struct stage_ctx *ctx, const int *kept, int n)
{
	if (close_range((unsigned int)kept[n - 1] + 1, ~0U, CLOSE_RANGE_UNSHARE) < 0)
		stage_fail(ctx, LXRUN_STEP_SPAWN, -1, "close_range(CLOSE_RANGE_UNSHARE)");
	int next = 0;
	for (int i = 0; i < n; i++) {
		if (kept[i] > next && close_range((unsigned int)next, (unsigned int)kept[i] - 1, 0) < 0)
			stage_fail(ctx, LXRUN_STEP_SPAWN, -1, "close_range");
		if (kept[i] >= next)
			next = kept[i] + 1;
	}
}

static void own_descriptor_table(struct stage_ctx *ctx)
{
	const struct lxrun_request *req = ctx->req;
	int given[] = { ctx->error_fd, ctx->status_fd, ctx->init_fd, req->stdin_fd, req->stdout_fd, req->stderr_fd,
			req->task_fd, req->netns_fd, req->cgroup_dir_fd };
	int kept[MAX_STAGE_FDS];
	int n = 0;
	if (req->n_cgroup_fds + req->n_join_ns > MAX_STAGE_FDS - (int)(sizeof given / sizeof given[0])) {
		errno = E2BIG;
		stage_fail(ctx, LXRUN_STEP_SPAWN, -1, "descriptors for the stages");
	}
	for (unsigned int i = 0; i < sizeof given / sizeof given[0]; i++)
		if (given[i] >= 0)
			kept[n++] = given[i];
	for (int i = 0; i < req->n_cgroup_fds; i++)
		kept[n++] = req->cgroup_fds[i];
	for (int i = 0; i < req->n_join_ns; i++)
		kept[n++] = req->join_ns_fds[i];
	for (int i = 1; i < n; i++) {  /* ascending */
		int fd = kept[i], at = i;
		for (; at > 0 && kept[at - 1] > fd; at--)
			kept[at] = kept[at - 1];
		kept[at] = fd;
	}
	if (kept[n - 1] >= FETCH_ABOVE) {
		if (fetch_allowed == 0)
			fetch_allowed = can_fetch(ctx, ctx->error_fd);
		if (fetch_allowed > 0) {
			fetch_descriptors(ctx, kept, n);
			return;
		}
	}
	copy_and_close(ctx, kept, n);
}

static int stage1_main(void *arg)
{
	struct stage_ctx *ctx = arg;
	const struct lxrun_request *req = ctx->req;
	char buf[PATH_MAX];
	char eof;

	/* If the caller dies, so do we, and then stage 2 (its go pipe ends): nothing outlives a killed runner. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != ctx->caller)
		_exit(125);  /* it died before the line above */
	mark(ctx, LXRUN_MARK_STAGE1);
	own_descriptor_table(ctx);

	/* Made here, in our own descriptor table, so only the two stages hold them: our caller, suspended
	 * until we exit, must not keep the exec pipe open or we would wait for its end forever. */
	if (pipe2(ctx->go_fd, O_CLOEXEC) < 0 || pipe2(ctx->exec_fd, O_CLOEXEC) < 0)
		stage_fail(ctx, LXRUN_STEP_SYNC, -1, NULL);
	if (req->cgroup_dir_fd < 0)
		join_cgroups(ctx);
	enter_network(ctx);
	join_namespaces(ctx);
	ctx->stage2_pid = spawn_stage2(ctx);
	mark(ctx, LXRUN_MARK_STAGE2);
	close(ctx->go_fd[0]);
	close(ctx->exec_fd[1]);
	if (req->clone_flags & CLONE_NEWUSER) {
		write_map(ctx, "uid_map", req->uid_map);
		write_map(ctx, "gid_map", req->gid_map);
	}
	enter_stage2_mounts(ctx);
	for (int i = 0; i < req->n_host_steps; i++)
		run_step(ctx, &req->host_steps[i], i, buf);
	mark(ctx, LXRUN_MARK_GO);
	if (write(ctx->go_fd[1], "g", 1) != 1)
		stage_fail(ctx, LXRUN_STEP_SYNC, -1, NULL);
	/* Stage 2 runs on memory our caller frees once we exit: wait until it exec'd or died. From here
	 * on nothing may set errno, which both stages share. */
	while (read(ctx->exec_fd[0], &eof, 1) > 0)
		;
	_exit(0);
}

/* ------------------------------------------------------------------ the caller */

static void fill_error(struct lxrun_error *err, int step, int error)
{
	memset(err, 0, sizeof *err);
	err->step = step;
	err->index = -1;
	err->err = error;
}

static void close_if_open(int fd)
{
	if (fd >= 0)
		close(fd);
}

static void reap(pid_t pid)
{
	while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
		;
}

/* Wait for end-of-file (the task exec'd) or a failure record on the error pipe. */
static int await_exec(int error_fd, struct lxrun_error *err)
{
	struct lxrun_error rec;
	ssize_t n;
	do
		n = read(error_fd, &rec, sizeof rec);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return 0;
	if (n == (ssize_t)sizeof rec)
		*err = rec;
	else
		fill_error(err, LXRUN_STEP_SPAWN, n < 0 ? errno : EPROTO);
	return -1;
}

/* Run stage 1 to its end; it returns when stage 1 exited (CLONE_VFORK), having started stage 2 or not. */
static int run_stage1(struct stage_ctx *ctx, struct lxrun_error *err)
{
	char *stacks = mmap(NULL, 2 * STAGE_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
			    -1, 0);
	if (stacks == MAP_FAILED) {
		fill_error(err, LXRUN_STEP_SPAWN, errno);
		return -1;
	}
	ctx->stage2_stack = stacks + STAGE_STACK_SIZE;
	/* With every signal blocked no handler of the caller's can run on the stages' stacks. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t stage1 = clone(stage1_main, stacks + STAGE_STACK_SIZE, CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, ctx);
	int saved = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (stage1 > 0)
		reap(stage1);
	munmap(stacks, 2 * STAGE_STACK_SIZE);
	if (stage1 < 0) {
		fill_error(err, LXRUN_STEP_SPAWN, saved);
		return -1;
	}
	return 0;
}

int lxrun_spawn(const struct lxrun_request *req, struct lxrun_child *out, struct lxrun_error *err)
{
	int error_pipe[2] = { -1, -1 };
	int status_pipe[2] = { -1, -1 };
	struct stage_ctx ctx = {
		.req = req, .go_fd = { -1, -1 }, .exec_fd = { -1, -1 }, .init_fd = req->init_fd, .root_fd = AT_FDCWD,
		.userns_fd = -1, .stage2_pid = -1, .caller = getpid(), .marks = out->marks,
	};
	memset(out->marks, 0, sizeof out->marks);
	mark(&ctx, LXRUN_MARK_CALLED);
	/* init_fd stays open for the caller's life: one closed and its number reused must not be exec'd. */
	int seals = fcntl(req->init_fd, F_GET_SEALS);
	if (seals < 0 || (seals & INIT_SEALS) != INIT_SEALS) {
		fill_error(err, LXRUN_STEP_EXEC_INIT, seals < 0 ? errno : EBADF);
		goto fail;
	}
	if (pipe2(error_pipe, O_CLOEXEC) < 0 || pipe2(status_pipe, O_CLOEXEC) < 0) {
		fill_error(err, LXRUN_STEP_SPAWN, errno);
		goto fail;
	}
	ctx.error_fd = error_pipe[1];
	ctx.status_fd = status_pipe[1];
	int started = run_stage1(&ctx, err);
	close(error_pipe[1]);
	close(status_pipe[1]);
	error_pipe[1] = status_pipe[1] = -1;
	if (started < 0 || await_exec(error_pipe[0], err) < 0) {
		/* Stage 2 (or init) may still run: end and reap it. */
		if (ctx.stage2_pid > 0) {
			kill(ctx.stage2_pid, SIGKILL);
			reap(ctx.stage2_pid);
		}
		goto fail;
	}
	int pidfd = (int)syscall(SYS_pidfd_open, ctx.stage2_pid, 0);
	if (pidfd < 0) {
		fill_error(err, LXRUN_STEP_SPAWN, errno);
		kill(ctx.stage2_pid, SIGKILL);
		reap(ctx.stage2_pid);
		goto fail;
	}
	close(error_pipe[0]);
	out->pid = ctx.stage2_pid;
	out->pidfd = pidfd;
	out->status_fd = status_pipe[0];
	mark(&ctx, LXRUN_MARK_RETURNED);
	return 0;

fail:
	close_if_open(error_pipe[0]);
	close_if_open(error_pipe[1]);
	close_if_open(status_pipe[0]);
	close_if_open(status_pipe[1]);
	return -1;
}

/* ------------------------------------------------------------------ the sealed init binary */

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

/* MFD_EXEC where the kernel knows it (6.3+: with vm.memfd_noexec=1 a memfd is otherwise not executable). */
static int executable_memfd(void)
{
	unsigned int flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	int fd = memfd_create("lxrun-init", flags | MFD_EXEC);
	if (fd < 0 && errno == EINVAL)
		fd = memfd_create("lxrun-init", flags);
	return fd;
}

static int copy_all(int from, int to)
{
	for (;;) {
		ssize_t n = sendfile(to, from, NULL, 1 << 20);
		if (n == 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

int lxrun_seal_init(const char *path)
{
	int src = open(path, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return -errno;
	int fd = executable_memfd();
	/* 0511: only the host's root reads it, so a task in a user namespace, which can't, execs it as
	 * non-dumpable with its mm owned by the host's user namespace (as runc's copy is made). */
	int rc = fd < 0 || copy_all(src, fd) < 0 || fchmod(fd, 0511) < 0 ? -errno : 0;
	close(src);
	if (rc == 0) {
		(void)fcntl(fd, F_ADD_SEALS, F_SEAL_EXEC);  /* no chmod +w later either, where the kernel has it */
		if (fcntl(fd, F_ADD_SEALS, INIT_SEALS) < 0)
			rc = -errno;
	}
	if (rc < 0 && fd >= 0)
		close(fd);
	return rc < 0 ? rc : fd;
}

/* ------------------------------------------------------------------ namespaces for the caller */

static int new_netns_child(void *arg)
{
	int *result = arg;
	if (unshare(CLONE_NEWNET) < 0) {
		*result = -errno;
		_exit(1);
	}
	int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	*result = fd < 0 ? -errno : fd;
	_exit(0);
}

int lxrun_new_netns(void)
{
	int result = -EIO;
	char *stack = mmap(NULL, STAGE_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return -errno;
	/* CLONE_FILES: the descriptor the child opens lands in the caller's table. */
	pid_t pid = clone(new_netns_child, stack + STAGE_STACK_SIZE, CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &result);
	int saved = errno;
	munmap(stack, STAGE_STACK_SIZE);
	if (pid < 0)
		return -saved;
	reap(pid);
	return result;
}

void lxrun_exec_in_sandbox(const struct lxrun_request *req, int error_fd)
{
	struct stage_ctx ctx = { .req = req, .error_fd = error_fd };
	if (req->cwd && chdir(req->cwd) < 0)
		stage_fail(&ctx, LXRUN_STEP_WORKDIR, -1, req->cwd);
	drop_capabilities_and_become_user(&ctx);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		stage_fail(&ctx, LXRUN_STEP_NO_NEW_PRIVS, -1, NULL);
	if (req->seccomp_filter) {
		struct sock_fprog prog = { .len = (unsigned short)req->seccomp_len,
					   .filter = (struct sock_filter *)req->seccomp_filter };
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
			stage_fail(&ctx, LXRUN_STEP_SECCOMP, -1, NULL);
	}
	environ = (char **)req->envp;  /* execvp searches the PATH of the process's own environment */
	execvp(req->init_argv[0], req->init_argv);
	int failed = errno;
	struct lxrun_error rec;
	fill_error(&rec, LXRUN_STEP_EXEC, failed);
	strncpy(rec.path, req->init_argv[0], sizeof rec.path - 1);
	(void)!write(error_fd, &rec, sizeof rec);
	_exit(failed == ENOENT ? 127 : 126);
}

int lxrun_setns(int fd, int nstype)
{
	return setns(fd, nstype) < 0 ? -errno : 0;
}
