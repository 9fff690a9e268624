/* The native helper: clone(CLONE_VM|CLONE_VFORK) a child that sets the sandbox up and execs init.
 *
 * The child shares the caller's memory until it execs, so it only reads the request, writes to
 * its own stack and makes system calls. Every failure becomes one lxrun_error record on a
 * close-on-exec pipe; end-of-file on that pipe means the task's command was executed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include "helper.h"

#define CHILD_STACK_SIZE (256 * 1024)
#define FS_OPTIONS_MAX 1024

struct child_ctx {
	const struct lxrun_request *req;
	int error_fd;
	int status_fd;
	int init_fd;
	int root_fd;
};

/* Record a failure for the parent and end the child. errno is read first: nothing may clobber it. */
static void __attribute__((noreturn)) child_fail(const struct child_ctx *ctx, int step, int index, const char *path)
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
	if (errno != ENOENT || create == LXRUN_CREATE_NONE)
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

static int close_keeping_errno(int fd)
{
	int saved = errno;
	close(fd);
	errno = saved;
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

/* open_tree(OPEN_TREE_CLONE) of a host path, with its mount attributes set before it is attached. */
static int clone_tree(const struct lxrun_step *s)
{
	unsigned int recursive = (s->flags & MS_REC) ? AT_RECURSIVE : 0;
	int tree = open_tree(AT_FDCWD, s->source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | recursive);
	if (tree < 0 || s->attr == 0)
		return tree;
	struct mount_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.attr_set = s->attr;
	if (mount_setattr(tree, "", AT_EMPTY_PATH | recursive, &attr, sizeof attr) < 0)
		return close_keeping_errno(tree);
	return tree;
}

static void run_step(struct child_ctx *ctx, int index, char *buf)
{
	const struct lxrun_step *s = &ctx->req->steps[index];
	int mnt = -1;
	switch (s->op) {
	case LXRUN_OP_HOST_MKDIR:
		if (mkdir(s->target, s->mode) < 0 && errno != EEXIST)
			child_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
		return;
	case LXRUN_OP_HOST_MOUNT:
		if (mount(s->source, s->target, s->fstype, s->flags, s->data) < 0)
			child_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
		return;
	case LXRUN_OP_OPEN_ROOT:
		ctx->root_fd = open(s->target, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (ctx->root_fd < 0)
			child_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
		return;
	case LXRUN_OP_PIVOT:
		if (fchdir(ctx->root_fd) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 ||
		    chdir("/") < 0)
			child_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
		return;
	case LXRUN_OP_MKDIR:
		mnt = open_in_root(ctx->root_fd, s->target, LXRUN_CREATE_DIR, s->mode, buf);
		if (mnt < 0)
			child_fail(ctx, LXRUN_STEP_MOUNT, index, buf);
		close(mnt);
		return;
	case LXRUN_OP_FS:
		mnt = make_fs(s);
		break;
	case LXRUN_OP_BIND:
		mnt = clone_tree(s);
		break;
	default:
		errno = EINVAL;
		child_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
	}
	if (mnt < 0)
		child_fail(ctx, LXRUN_STEP_MOUNT, index, s->op == LXRUN_OP_BIND ? s->source : s->target);
	int target = open_in_root(ctx->root_fd, s->target, s->create, s->mode, buf);
	if (target < 0)
		child_fail(ctx, LXRUN_STEP_MOUNT, index, buf);
	if (move_mount(mnt, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		child_fail(ctx, LXRUN_STEP_MOUNT, index, s->target);
	close(target);
	close(mnt);
}

static void loopback_up(struct child_ctx *ctx)
{
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
	if (sock < 0 || ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
		child_fail(ctx, LXRUN_STEP_LOOPBACK, -1, "lo");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
		child_fail(ctx, LXRUN_STEP_LOOPBACK, -1, "lo");
	close(sock);
}

/* Put stdio on 0-2 and the two pipes on the fd numbers init expects; everything else closes at exec. */
static void arrange_fds(struct child_ctx *ctx)
{
	const struct lxrun_request *req = ctx->req;
	int wanted[5] = { req->stdin_fd, req->stdout_fd, req->stderr_fd, ctx->error_fd, ctx->status_fd };
	int moved[5];
	/* Copy everything above the target range first, so no dup2 overwrites a source still needed. */
	for (int i = 0; i < 5; i++) {
		moved[i] = fcntl(wanted[i], F_DUPFD_CLOEXEC, 10);
		if (moved[i] < 0)
			child_fail(ctx, LXRUN_STEP_STDIO, -1, NULL);
	}
	ctx->error_fd = moved[3];
	for (int i = 0; i < 5; i++) {
		if (dup2(moved[i], i) < 0)
			child_fail(ctx, LXRUN_STEP_STDIO, -1, NULL);
	}
	ctx->error_fd = LXRUN_INIT_ERROR_FD;
	if (close_range(5, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		child_fail(ctx, LXRUN_STEP_STDIO, -1, NULL);
}

static void join_cgroups(struct child_ctx *ctx)
{
	const struct lxrun_request *req = ctx->req;
	for (int i = 0; i < req->n_cgroup_fds; i++) {
		if (write(req->cgroup_fds[i], "0", 1) != 1)
			child_fail(ctx, LXRUN_STEP_CGROUP, i, NULL);
	}
	if (req->new_cgroupns && unshare(CLONE_NEWCGROUP) < 0)
		child_fail(ctx, LXRUN_STEP_CGROUPNS, -1, NULL);
}

static int child_main(void *arg)
{
	struct child_ctx *ctx = arg;
	const struct lxrun_request *req = ctx->req;
	char buf[PATH_MAX];

	/* Signals stay blocked (the parent blocked them all) until init decides what to wait for. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	ctx->init_fd = open(req->init_path, O_PATH | O_CLOEXEC);
	if (ctx->init_fd < 0)
		child_fail(ctx, LXRUN_STEP_OPEN_INIT, -1, req->init_path);
	join_cgroups(ctx);
	if (req->hostname && sethostname(req->hostname, strlen(req->hostname)) < 0)
		child_fail(ctx, LXRUN_STEP_HOSTNAME, -1, req->hostname);
	if (req->loopback_up)
		loopback_up(ctx);
	for (int i = 0; i < req->n_steps; i++)
		run_step(ctx, i, buf);
	if (req->cwd && chdir(req->cwd) < 0)
		child_fail(ctx, LXRUN_STEP_WORKDIR, -1, req->cwd);
	if (setgroups(0, NULL) < 0 || setgid(req->gid) < 0 || setuid(req->uid) < 0)
		child_fail(ctx, LXRUN_STEP_USER, -1, NULL);
	/* A change of credentials clears the parent-death signal: set it again. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	arrange_fds(ctx);
	syscall(SYS_execveat, ctx->init_fd, "", req->init_argv, req->envp, AT_EMPTY_PATH);
	child_fail(ctx, LXRUN_STEP_EXEC_INIT, -1, req->init_path);
}

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

/* clone the child on a stack of its own; returns when it has exec'd init or died (CLONE_VFORK). */
static pid_t start_child(struct child_ctx *ctx, int *pidfd)
{
	char *stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return -1;
	/* With every signal blocked no handler of the caller's can run on the child's stack. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = clone(child_main, stack + CHILD_STACK_SIZE,
			  CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD | ctx->req->clone_flags, ctx, pidfd);
	int saved = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	munmap(stack, CHILD_STACK_SIZE);
	errno = saved;
	return pid;
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

int lxrun_spawn(const struct lxrun_request *req, struct lxrun_child *out, struct lxrun_error *err)
{
	int error_pipe[2] = { -1, -1 };
	int status_pipe[2] = { -1, -1 };
	int pidfd = -1;
	pid_t pid = -1;
	if (pipe2(error_pipe, O_CLOEXEC) < 0 || pipe2(status_pipe, O_CLOEXEC) < 0) {
		fill_error(err, LXRUN_STEP_SPAWN, errno);
		goto fail;
	}
	struct child_ctx ctx = {
		.req = req, .error_fd = error_pipe[1], .status_fd = status_pipe[1], .init_fd = -1, .root_fd = AT_FDCWD,
	};
	pid = start_child(&ctx, &pidfd);
	if (pid < 0)
		fill_error(err, LXRUN_STEP_SPAWN, errno);
	close(error_pipe[1]);
	close(status_pipe[1]);
	error_pipe[1] = status_pipe[1] = -1;
	if (pid < 0)
		goto fail;
	if (await_exec(error_pipe[0], err) < 0) {
		/* The sandbox's pid 1 may still run (the task's exec failed): end and reap it. */
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
			;
		goto fail;
	}
	close(error_pipe[0]);
	out->pid = pid;
	out->pidfd = pidfd;
	out->status_fd = status_pipe[0];
	return 0;

fail:
	close_if_open(error_pipe[0]);
	close_if_open(error_pipe[1]);
	close_if_open(status_pipe[0]);
	close_if_open(status_pipe[1]);
	close_if_open(pidfd);
	return -1;
}

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
	char *stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return -errno;
	/* CLONE_FILES: the descriptor the child opens lands in the caller's table. */
	pid_t pid = clone(new_netns_child, stack + CHILD_STACK_SIZE, CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &result);
	int saved = errno;
	munmap(stack, CHILD_STACK_SIZE);
	if (pid < 0)
		return -saved;
	while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
		;
	return result;
}

int lxrun_setns(int fd, int nstype)
{
	return setns(fd, nstype) < 0 ? -errno : 0;
}
