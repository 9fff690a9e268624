/* Escape attempts, run inside a task by tests/security/test_escapes.py.
 *
 *   attempts NAME [ARG]
 *
 * Each attempt tries one thing a task must not be able to do. It prints "blocked: <why>" and exits 0
 * when the sandbox stopped it, or "ESCAPED: <what>" and exits 1 when it got through. The attempts
 * that would succeed unprotected say more: "OTHER ERROR: <what>" and exit 3 when the call failed
 * with another errno than the block's (so the block did not stop it: it proves nothing), and
 * "PRECONDITION FAILED: <what>" and exit 4 when something the call needs to succeed is missing.
 * Built static by the test, so it runs on any stack. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

static int blocked(const char *what)
{
	printf("blocked: %s: %s\n", what, strerror(errno));
	return 0;
}

static int escaped(const char *what)
{
	printf("ESCAPED: %s\n", what);
	return 1;
}

/* A call that must fail: blocked if it did, escaped if it succeeded. */
#define MUST_FAIL(call, what) ((call) < 0 ? blocked(what) : escaped(what))

/* A call that only the block stops: it must fail with `block` (the errno of a missing capability or
 * of the seccomp profile), as any other errno means it failed before reaching the block. */
static int refused_with(long result, int block, const char *what)
{
	int error = errno;
	if (result >= 0)
		return escaped(what);
	if (error != block) {
		printf("OTHER ERROR: %s: %s, not %s\n", what, strerror(error), strerrorname_np(block));
		return 3;
	}
	return blocked(what);
}

static int precondition_failed(const char *what)
{
	printf("PRECONDITION FAILED: %s: %s\n", what, strerror(errno));
	return 4;
}

static int mount_tmpfs(void)
{
	/* /home is a directory of the base: mounting on it needs nothing but CAP_SYS_ADMIN. */
	struct stat st;
	if (stat("/home", &st) < 0 || !S_ISDIR(st.st_mode))
		return precondition_failed("/home is a directory");
	return refused_with(mount("none", "/home", "tmpfs", 0, NULL), EPERM, "mount");
}

static int pivot_root_to_tmp(void)
{
	/* Valid arguments: /tmp is a mount point (a tmpfs of its own) and put_old is beneath it. */
	struct stat root, tmp, old;
	if (stat("/", &root) < 0 || stat("/tmp", &tmp) < 0 || tmp.st_dev == root.st_dev)
		return precondition_failed("/tmp is a mount point");
	if ((mkdir("/tmp/put_old", 0700) < 0 && errno != EEXIST) || stat("/tmp/put_old", &old) < 0 || !S_ISDIR(old.st_mode))
		return precondition_failed("/tmp/put_old is a directory");
	return refused_with(syscall(SYS_pivot_root, "/tmp", "/tmp/put_old"), EPERM, "pivot_root");
}

static int load_module(void)
{
	/* A real descriptor of a regular file (this program: not a module, so nothing can load): the
	 * block comes first, past it the kernel would read the file and refuse it (ENOEXEC), or say it
	 * has no module support (ENOSYS). */
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return precondition_failed("a regular file to load");
	return refused_with(syscall(SYS_finit_module, fd, "", 0), EPERM, "loading a kernel module");
}

static int chroot_fd_escape(const char *marker)
{
	/* The classic: keep a descriptor of the root, chroot below it, walk up from the descriptor. */
	int outside = open("/", O_RDONLY | O_DIRECTORY);
	mkdir("/tmp/jail", 0700);
	if (chroot("/tmp/jail") == 0 && fchdir(outside) == 0) {
		for (int i = 0; i < 64; i++)
			(void)!chdir("..");
		(void)!chroot(".");
	}
	struct stat st;
	if (stat(marker, &st) == 0)
		return escaped("reached the host's root through an open descriptor");
	printf("blocked: the walk up stops at the sandbox's root\n");
	return 0;
}

static int read_file(const char *path, const char *what)
{
	char buf[64];
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return blocked(what);
	ssize_t n = read(fd, buf, sizeof buf);
	close(fd);
	if (n <= 0)
		return blocked(what);
	return escaped(what);
}

static int write_file(const char *path, const char *data, const char *what)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return blocked(what);
	ssize_t n = write(fd, data, strlen(data));
	close(fd);
	return n < 0 ? blocked(what) : escaped(what);
}

static int mknod_disk(void)
{
	/* The host's first virtio disk (253:0) and the first SCSI disk (8:0). */
	if (mknod("/tmp/disk", S_IFBLK | 0600, makedev(253, 0)) < 0 && mknod("/tmp/disk", S_IFBLK | 0600, makedev(8, 0)) < 0)
		return blocked("mknod of a block device");
	return read_file("/tmp/disk", "reading a disk through a new device node");
}

static int setuid_binary(const char *path)
{
	/* Run a setuid-root copy of ourselves as a non-root user: "whoami" reports the euid it got. */
	pid_t pid = fork();
	if (pid == 0) {
		execl(path, path, "whoami", (char *)NULL);
		_exit(127);
	}
	int status;
	waitpid(pid, &status, 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		printf("blocked: the setuid bit gave no privilege (no_new_privs)\n");
		return 0;
	}
	return escaped("a setuid binary raised the effective uid");
}

static int nested_user_namespace(void)
{
	if (unshare(CLONE_NEWUSER) == 0)
		return escaped("unshare(CLONE_NEWUSER)");
	blocked("unshare(CLONE_NEWUSER)");
	long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0)
		_exit(0);
	return pid < 0 ? blocked("clone(CLONE_NEWUSER)") : escaped("clone(CLONE_NEWUSER)");
}

static int symlink_into_read_only(const char *ro_dir)
{
	char link_path[512], target[512];
	snprintf(link_path, sizeof link_path, "%s/link", ro_dir);
	if (symlink("/etc/passwd", link_path) == 0)
		return escaped("a symlink created in a read-only volume");
	blocked("a symlink in a read-only volume");
	snprintf(target, sizeof target, "%s/data", ro_dir);
	if (link(target, "/tmp/hardlink") == 0)
		return write_file("/tmp/hardlink", "x", "writing a read-only volume's file through a hard link");
	blocked("a hard link to a read-only volume's file");
	/* Reopen a read-only descriptor for writing through /proc/self/fd. */
	int fd = open(target, O_RDONLY);
	char proc_path[64];
	snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", fd);
	return write_file(proc_path, "x", "reopening a read-only volume's file for writing");
}

static int fill_tmp(void)
{
	static char block[1 << 20];
	memset(block, 'x', sizeof block);
	int fd = open("/tmp/fill", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	for (int mib = 0; mib < 2048; mib++) {
		if (write(fd, block, sizeof block) < 0) {
			unlink("/tmp/fill");
			return blocked("filling /tmp");
		}
	}
	unlink("/tmp/fill");
	return escaped("wrote 2 GiB to /tmp");
}

/* The sandbox's pid 1 (lxrun-init) runs as the task's user: reading its memory, its executable or its
 * descriptors (status_fd is its status pipe) and tracing it must all fail. Each found open is used
 * as an attacker would: a status claiming exit 42 goes into the pipe. */
static int trace_init(const char *status_fd)
{
	int result = 0;
	char path[64], exe[256];
	snprintf(path, sizeof path, "/proc/1/fd/%s", status_fd);
	int fd = open(path, O_WRONLY);
	int forged = 42 << 8;
	if (fd < 0)
		blocked("opening pid 1's status pipe");
	else
		result = escaped(write(fd, &forged, sizeof forged) == sizeof forged ? "wrote pid 1's status pipe"
									       : "opened pid 1's status pipe");
	/* Opening it is the check (the access mode of ptrace): reading offset 0 fails anyway (unmapped). */
	fd = open("/proc/1/mem", O_RDONLY);
	if (fd < 0)
		blocked("opening pid 1's memory");
	else
		result = escaped("opening pid 1's memory");
	if (readlink("/proc/1/exe", exe, sizeof exe) < 0)
		blocked("reading /proc/1/exe");
	else
		result = escaped("reading /proc/1/exe");
	if (ptrace(PTRACE_SEIZE, 1, 0, 0) < 0)
		blocked("PTRACE_SEIZE of pid 1");
	else
		result = escaped("PTRACE_SEIZE of pid 1");
	return result;
}

/* With the right to trace pid 1 (CAP_SYS_PTRACE over it): write a status claiming exit 42 into its
 * status pipe, then exit 0. */
static int forge_status(const char *status_fd)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/1/fd/%s", status_fd);
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return precondition_failed("opening pid 1's status pipe");
	int forged = 42 << 8;
	if (write(fd, &forged, sizeof forged) != sizeof forged)
		return precondition_failed("writing pid 1's status pipe");
	printf("forged exit 42\n");
	return 0;
}

/* With the right to trace pid 1: print what /proc/1/exe names and whether it is sealed against every
 * change (memfd seals), then try to write to the file. */
static int init_exe(void)
{
	char exe[256];
	ssize_t n = readlink("/proc/1/exe", exe, sizeof exe - 1);
	if (n < 0)
		return precondition_failed("reading /proc/1/exe");
	exe[n] = '\0';
	printf("exe: %s\n", exe);
	int all = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
	int reader = open("/proc/1/exe", O_RDONLY);
	int seals = reader < 0 ? -1 : fcntl(reader, F_GET_SEALS);
	printf("%s\n", seals >= 0 && (seals & all) == all ? "sealed" : "not sealed");
	int fd = open("/proc/1/exe", O_WRONLY);
	if (fd < 0)
		return blocked("opening pid 1's executable for writing");
	if (write(fd, "\x7f", 1) < 0)
		return blocked("writing pid 1's executable");
	return escaped("wrote pid 1's executable");
}

static int whoami(void)
{
	return geteuid() == 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	const char *name = argv[1];
	const char *arg = argc > 2 ? argv[2] : "";
	setvbuf(stdout, NULL, _IONBF, 0);

	if (!strcmp(name, "mount"))
		return mount_tmpfs();
	if (!strcmp(name, "umount"))
		return MUST_FAIL(umount2("/proc", MNT_DETACH), "umount /proc");
	if (!strcmp(name, "pivot_root"))
		return pivot_root_to_tmp();
	if (!strcmp(name, "chroot_fd_escape"))
		return chroot_fd_escape(arg);
	if (!strcmp(name, "ptrace_host"))
		return MUST_FAIL(ptrace(PTRACE_ATTACH, atoi(arg), 0, 0), "ptrace of a host process");
	if (!strcmp(name, "trace_init"))
		return trace_init(arg);
	if (!strcmp(name, "forge_status"))
		return forge_status(arg);
	if (!strcmp(name, "init_exe"))
		return init_exe();
	if (!strcmp(name, "kill_host"))
		return MUST_FAIL(kill(atoi(arg), SIGKILL), "kill of a host process");
	if (!strcmp(name, "kcore"))
		return read_file("/proc/kcore", "reading /proc/kcore");
	if (!strcmp(name, "init_module"))
		return load_module();
	if (!strcmp(name, "reboot"))
		return MUST_FAIL(syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_CAD_OFF, 0),
				 "reboot");
	if (!strcmp(name, "sysrq"))
		return write_file("/proc/sysrq-trigger", "h", "sysrq");
	if (!strcmp(name, "set_clock")) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		return MUST_FAIL(clock_settime(CLOCK_REALTIME, &now), "setting the clock");
	}
	if (!strcmp(name, "mknod_disk"))
		return mknod_disk();
	if (!strcmp(name, "vsock"))
		/* vsock has no network namespace: it reaches the host's vsock ports and the hypervisor. */
		return refused_with(socket(AF_VSOCK, SOCK_STREAM, 0), EPERM, "an AF_VSOCK socket");
	if (!strcmp(name, "raw_socket"))
		return MUST_FAIL(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), "a raw socket");
	if (!strcmp(name, "write_proc_sys"))
		return write_file("/proc/sys/kernel/core_pattern", "|/tmp/x", "writing /proc/sys");
	if (!strcmp(name, "write_sys"))
		return write_file("/sys/kernel/uevent_helper", "/tmp/x", "writing /sys");
	if (!strcmp(name, "root_cgroup")) {
		/* No cgroupfs inside; mounting one to reach the root cgroup must fail too. */
		mkdir("/tmp/cg", 0700);
		if (mount("cgroup2", "/tmp/cg", "cgroup2", 0, NULL) == 0)
			return write_file("/tmp/cg/cgroup.procs", "0", "moving into the root cgroup");
		return blocked("mounting cgroupfs to leave the task's cgroup");
	}
	if (!strcmp(name, "setuid_binary"))
		return setuid_binary(arg);
	if (!strcmp(name, "whoami"))
		return whoami();
	if (!strcmp(name, "keyctl"))
		return MUST_FAIL(syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "lxrun"), "keyctl");
	if (!strcmp(name, "bpf")) {
		union bpf_attr attr;
		memset(&attr, 0, sizeof attr);
		attr.map_type = BPF_MAP_TYPE_ARRAY;
		attr.key_size = 4;
		attr.value_size = 4;
		attr.max_entries = 1;
		return MUST_FAIL(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr), "bpf");
	}
	if (!strcmp(name, "perf_event_open")) {
		struct perf_event_attr attr;
		memset(&attr, 0, sizeof attr);
		attr.size = sizeof attr;
		attr.type = PERF_TYPE_SOFTWARE;
		attr.config = PERF_COUNT_SW_CPU_CLOCK;
		return MUST_FAIL(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0), "perf_event_open");
	}
	if (!strcmp(name, "nested_userns"))
		return nested_user_namespace();
	if (!strcmp(name, "ro_volume_links"))
		return symlink_into_read_only(arg);
	if (!strcmp(name, "fill_tmp"))
		return fill_tmp();
	if (!strcmp(name, "setns"))
		return MUST_FAIL(setns(open("/proc/self/ns/mnt", O_RDONLY), 0), "setns");
	if (!strcmp(name, "open_by_handle_at")) {
		char buf[sizeof(struct file_handle) + 8];
		struct file_handle *handle = (struct file_handle *)buf;
		handle->handle_bytes = 8;
		handle->handle_type = 1;
		memset(handle->f_handle, 0, 8);
		return MUST_FAIL(syscall(SYS_open_by_handle_at, AT_FDCWD, handle, O_RDONLY), "open_by_handle_at");
	}
	if (!strcmp(name, "userfaultfd"))
		return MUST_FAIL(syscall(SYS_userfaultfd, 0), "userfaultfd");
	if (!strcmp(name, "sethostname_host")) {
		/* The task's own UTS namespace aside, the call itself needs CAP_SYS_ADMIN. */
		return MUST_FAIL(sethostname("evil", 4), "sethostname");
	}
	fprintf(stderr, "unknown attempt %s\n", name);
	return 2;
}
