/* lxrun-init: pid 1 of every sandbox.
 *
 *   lxrun-init COMMAND [ARGS...]
 *   lxrun-init                      (a prepared sandbox: the command arrives later, see protocol.h)
 *
 * Starts COMMAND (searched in the PATH of its environment, which is the task's), reaps every
 * zombie, forwards every catchable signal but SIGCHLD to the task, and when the task ends writes
 * its wait status to LXRUN_INIT_STATUS_FD and exits with the docker-style code (128+N on signal N).
 * A failed exec is reported as a record on LXRUN_INIT_ERROR_FD, exit 127 (not found) or 126.
 * lxrun trusts the record only where it agrees with this exit code, which the kernel reports.
 *
 * Non-dumpable from its first system call on (as runc's init is): the task runs as the same user,
 * so without this it could ptrace pid 1, read its memory or open its descriptors in /proc/1/fd
 * (the status pipe). The flag is inherited by the fork and reset by the task's exec, so the task
 * is as dumpable as under docker. lxrun execs this from a sealed memfd (helper.c), so no task holds a path to it.
 *
 * Freestanding (no libc, raw system calls, its own _start): it is exec'd by descriptor after the
 * root changed, so it must be static, and a static glibc's start-up alone costs ~0.3 ms here, more
 * than the rest of this program's work. Built with -nostdlib -static; see setup.py. */
#include <asm/ioctls.h>
#include <asm/unistd.h>
#include <linux/errno.h>
#include <linux/fcntl.h>
#include <linux/prctl.h>
#include <linux/wait.h>

#include "protocol.h"

#define SIGKILL 9
#define SIGCHLD 17
#define SIGSTOP 19
#define NSIG 64
#define SIG_SETMASK 2
#define SIGSET_BYTES 8
#define FD_CLOEXEC 1
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define PATH_BUF 4096

typedef unsigned long sigset_bits;

#if defined(__x86_64__)
__asm__(".text\n.globl _start\n_start:\n"
	"  xor %rbp, %rbp\n"
	"  mov %rsp, %rdi\n"
	"  and $-16, %rsp\n"
	"  call start_c\n"
	"  hlt\n");

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#elif defined(__aarch64__)
__asm__(".text\n.globl _start\n_start:\n"
	"  mov x29, #0\n"
	"  mov x30, #0\n"
	"  mov x0, sp\n"
	"  and x1, x0, #-16\n"
	"  mov sp, x1\n"
	"  bl start_c\n");

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
	return x0;
}
#else
#error "lxrun-init supports x86_64 and aarch64"
#endif

#define sys3(n, a, b, c) sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

/* The compiler may emit calls to these for struct copies and zeroing. */
void *memset(void *dst, int c, unsigned long n)
{
	unsigned char *d = dst;
	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

void *memcpy(void *dst, const void *src, unsigned long n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}

static unsigned long str_len(const char *s)
{
	unsigned long n = 0;
	while (s[n])
		n++;
	return n;
}

static void __attribute__((noreturn)) exit_now(int code)
{
	for (;;)
		sys3(__NR_exit_group, code, 0, 0);
}

/* Where failure records go: the error pipe, or for a prepared sandbox the socket its task came on. */
static int error_fd = LXRUN_INIT_ERROR_FD;

static void report(int step, long neg_errno, const char *path)
{
	struct lxrun_error rec;
	memset(&rec, 0, sizeof rec);
	rec.step = step;
	rec.index = -1;
	rec.err = (int)-neg_errno;
	unsigned long n = str_len(path);
	if (n > sizeof rec.path - 1)
		n = sizeof rec.path - 1;
	memcpy(rec.path, path, n);
	sys3(__NR_write, error_fd, &rec, sizeof rec);
}

static const char *find_env(char **envp, const char *name)
{
	unsigned long len = str_len(name);
	for (; *envp; envp++) {
		const char *e = *envp;
		unsigned long i = 0;
		while (i < len && e[i] == name[i])
			i++;
		if (i == len && e[i] == '=')
			return e + len + 1;
	}
	return 0;
}

/* execvp without a shell fallback: the first hit in PATH; EACCES if only unexecutable files were found. */
static long exec_path(char **argv, char **envp)
{
	const char *file = argv[0];
	for (const char *c = file; *c; c++) {
		if (*c == '/')
			return sys3(__NR_execve, file, argv, envp);
	}
	const char *path = find_env(envp, "PATH");
	if (!path)
		path = DEFAULT_PATH;
	unsigned long file_len = str_len(file);
	long result = -ENOENT;
	char buf[PATH_BUF];
	for (const char *dir = path;; dir++) {
		const char *end = dir;
		while (*end && *end != ':')
			end++;
		unsigned long dir_len = (unsigned long)(end - dir);
		if (dir_len == 0) {
			buf[0] = '.';
			dir_len = 1;
		} else if (dir_len < PATH_BUF) {
			memcpy(buf, dir, dir_len);
		}
		if (dir_len + 1 + file_len < PATH_BUF) {
			buf[dir_len] = '/';
			memcpy(buf + dir_len + 1, file, file_len + 1);
			long rc = sys3(__NR_execve, buf, argv, envp);
			if (rc == -EACCES)
				result = rc;
			else if (rc != -ENOENT && rc != -ENOTDIR)
				return rc;
		}
		if (!*end)
			return result;
		dir = end;
	}
}

/* A task whose stdin is a terminal (only a pty of its own: lxrun relays the caller's through pipes)
 * takes it as its controlling terminal, so Ctrl-C becomes SIGINT and job control works. It must
 * lead its session already. On a pipe or /dev/null this fails (ENOTTY) and changes nothing. */
static void take_controlling_terminal(void)
{
	sys3(__NR_ioctl, 0, TIOCSCTTY, 0);
}

static void __attribute__((noreturn)) exec_task(char **argv, char **envp)
{
	/* Dispositions the caller ignored (Python ignores SIGPIPE) survive exec: give the task defaults. */
	unsigned long default_action[4] = { 0, 0, 0, 0 };
	for (int sig = 1; sig <= NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			sys4(__NR_rt_sigaction, sig, default_action, 0, SIGSET_BYTES);
	}
	sigset_bits none = 0;
	sys4(__NR_rt_sigprocmask, SIG_SETMASK, &none, 0, SIGSET_BYTES);
	/* Its own session and process group, as a container's main process has. */
	sys3(__NR_setsid, 0, 0, 0);
	take_controlling_terminal();
	long rc = exec_path(argv, envp);
	report(LXRUN_STEP_EXEC, rc, argv[0]);
	exit_now(rc == -ENOENT ? 127 : 126);
}

/* The kernel's struct msghdr and cmsghdr (LP64), as this program has no libc to declare them. */
struct io_vec {
	void *base;
	unsigned long length;
};
struct message_header {
	void *name;
	int name_length;
	struct io_vec *iov;
	unsigned long iov_count;
	void *control;
	unsigned long control_length;
	unsigned int flags;
};
struct control_header {
	unsigned long length;
	int level;
	int type;
};
#define SOL_SOCKET 1
#define SCM_RIGHTS 1
#define MSG_CMSG_CLOEXEC 0x40000000
#define STDIO_FDS 3
#define O_WRONLY_CLOEXEC (O_WRONLY | O_CLOEXEC)

/* An OCI container's process stands where runc puts it, as its pid 1: the kernel gives a pid 1 only the
 * signals it catches (docker stop of a `sleep` waits its timeout, then kills). Set by await_start. */
static int as_pid1;

/* Whether `task` has a handler for `sig`: the SigCgt mask in its /proc status (fails closed: no). */
static int catches(long task, long sig)
{
	char path[32] = "/proc/";
	char digits[12];
	int n = 0;
	for (unsigned long v = (unsigned long)task; n == 0 || v; v /= 10)
		digits[n++] = (char)('0' + v % 10);
	int at = 6;
	while (n)
		path[at++] = digits[--n];
	memcpy(path + at, "/status", 8);
	static char status[4096];
	long fd = sys4(__NR_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	long length = sys3(__NR_read, fd, status, sizeof status - 1);
	sys3(__NR_close, fd, 0, 0);
	if (length <= 0)
		return 0;
	status[length] = '\0';
	static const char key[] = "\nSigCgt:\t";
	for (char *line = status; *line; line++) {
		int i = 0;
		while (key[i] && line[i] == key[i])
			i++;
		if (key[i])
			continue;
		unsigned long mask = 0;
		for (char *hex = line + i; *hex && *hex != '\n'; hex++)
			mask = mask << 4 | (unsigned long)(*hex <= '9' ? *hex - '0' : *hex - 'a' + 10);
		return (mask >> (sig - 1)) & 1;
	}
	return 0;
}

/* A created OCI container's start signal (runc's exec fifo): `fifo` is an O_PATH descriptor of a FIFO;
 * opening it for writing blocks until `lxrun-oci start` opens it for reading. From then on it is where
 * failure records go (the task's exec closes it: the reader's end-of-file means the command runs). */
static void await_start(int fifo)
{
	char path[32] = "/proc/self/fd/";
	char digits[12];
	int n = 0;
	for (unsigned int v = (unsigned int)fifo; n == 0 || v; v /= 10)
		digits[n++] = (char)('0' + v % 10);
	for (int i = 0; i < n; i++)
		path[14 + i] = digits[n - 1 - i];
	path[14 + n] = '\0';
	long fd;
	do
		fd = sys4(__NR_openat, AT_FDCWD, path, O_WRONLY_CLOEXEC, 0);
	while (fd == -EINTR);
	if (fd < 0) {
		report(LXRUN_STEP_INIT, fd, "exec fifo");
		exit_now(125);
	}
	sys3(__NR_close, fifo, 0, 0);
	sys3(__NR_close, error_fd, 0, 0);
	error_fd = (int)fd;
	as_pid1 = 1;
}

static char task_strings[LXRUN_TASK_MAX + 1];
static char *task_pointers[LXRUN_TASK_STRINGS + 2];

/* A prepared sandbox: wait for the task (protocol.h), put its stdio on 0-2 and return its argv and
 * environment (pointers into task_strings). End-of-file (the sandbox is being released): exit. */
static char **receive_task(char ***envp)
{
	struct lxrun_task_header header;
	struct io_vec iov[2] = { { &header, sizeof header }, { task_strings, LXRUN_TASK_MAX } };
	unsigned long control[(sizeof(struct control_header) + (STDIO_FDS + 1) * sizeof(int) + 7) / 8 + 1];
	struct message_header message = { 0, 0, iov, 2, control, sizeof control, 0 };
	long n;
	do
		n = sys3(__NR_recvmsg, LXRUN_INIT_TASK_FD, &message, MSG_CMSG_CLOEXEC);
	while (n == -EINTR);
	if (n == 0)
		exit_now(0);
	struct control_header *fds_header = (struct control_header *)control;
	int *fds = (int *)(fds_header + 1);
	if (n < 0 || (unsigned long)n < sizeof header || header.magic != LXRUN_TASK_MAGIC ||
	    header.length != (unsigned long)n - sizeof header || (message.flags & ~MSG_CMSG_CLOEXEC) ||
	    message.control_length < sizeof *fds_header || fds_header->level != SOL_SOCKET ||
	    fds_header->type != SCM_RIGHTS ||
	    (fds_header->length != sizeof *fds_header + STDIO_FDS * sizeof(int) &&
	     fds_header->length != sizeof *fds_header + (STDIO_FDS + 1) * sizeof(int)) ||
	    header.argc == 0 || header.argc + header.envc > LXRUN_TASK_STRINGS) {
		report(LXRUN_STEP_INIT, n < 0 ? n : -EPROTO, "task message");
		exit_now(125);
	}
	/* Every string ends inside the message, and there are exactly argc + envc of them. */
	unsigned int count = 0;
	for (unsigned int at = 0, start = 0; at < header.length; at++) {
		if (task_strings[at] == '\0') {
			if (count < header.argc + header.envc)
				task_pointers[count + (count >= header.argc)] = task_strings + start;
			count++;
			start = at + 1;
		}
	}
	if (count != header.argc + header.envc || task_strings[header.length - 1] != '\0') {
		report(LXRUN_STEP_INIT, -EPROTO, "task message");
		exit_now(125);
	}
	task_pointers[header.argc] = 0;
	task_pointers[header.argc + 1 + header.envc] = 0;
	for (int i = 0; i < STDIO_FDS; i++) {
		if (sys3(__NR_dup3, fds[i], i, 0) < 0) {  /* 0-2 are taken: never the same number */
			report(LXRUN_STEP_STDIO, -EBADF, "task stdio");
			exit_now(125);
		}
		sys3(__NR_close, fds[i], 0, 0);
	}
	if (fds_header->length == sizeof *fds_header + (STDIO_FDS + 1) * sizeof(int))
		await_start(fds[STDIO_FDS]);
	*envp = task_pointers + header.argc + 1;
	return task_pointers;
}

/* The docker-style code, which lxrun checks the status record against (see task_status.py). */
static int exit_code(int status)
{
	int sig = status & 0x7f;
	if (sig == 0)
		return (status >> 8) & 0xff;
	return 128 + sig;
}

void __attribute__((noreturn, used)) start_c(long *sp)
{
	long rc = sys3(__NR_prctl, PR_SET_DUMPABLE, 0, 0);
	if (rc < 0) {
		report(LXRUN_STEP_INIT, rc, "prctl(PR_SET_DUMPABLE)");
		exit_now(125);
	}
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	if (argc < 1)
		exit_now(125);

	sigset_bits all = ~0UL;
	sys4(__NR_rt_sigprocmask, SIG_SETMASK, &all, 0, SIGSET_BYTES);
	unsigned long default_action[4] = { 0, 0, 0, 0 };
	sys4(__NR_rt_sigaction, SIGCHLD, default_action, 0, SIGSET_BYTES);
	sys3(__NR_fcntl, LXRUN_INIT_ERROR_FD, F_SETFD, FD_CLOEXEC);
	sys3(__NR_fcntl, LXRUN_INIT_STATUS_FD, F_SETFD, FD_CLOEXEC);
	char **command = argv + 1;
	if (argc == 1) {
		/* Prepared: our start is done (the caller sees end-of-file), the task comes on its socket. */
		sys3(__NR_fcntl, LXRUN_INIT_TASK_FD, F_SETFD, FD_CLOEXEC);
		sys3(__NR_close, LXRUN_INIT_ERROR_FD, 0, 0);
		error_fd = LXRUN_INIT_TASK_FD;
		command = receive_task(&envp);
	}

	long task = sys6(__NR_clone, SIGCHLD, 0, 0, 0, 0, 0);
	if (task == 0)
		exec_task(command, envp);
	if (task < 0) {
		report(LXRUN_STEP_INIT, task, "fork");
		exit_now(125);
	}
	sys3(__NR_close, error_fd, 0, 0);

	for (;;) {
		unsigned char info[128];
		long sig = sys4(__NR_rt_sigtimedwait, &all, info, 0, SIGSET_BYTES);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			if (!as_pid1 || catches(task, sig))
				sys3(__NR_kill, task, sig, 0);
			continue;
		}
		int status;
		long pid;
		while ((pid = sys4(__NR_wait4, -1, &status, WNOHANG, 0)) > 0) {
			if (pid != task)
				continue;
			sys3(__NR_write, LXRUN_INIT_STATUS_FD, &status, sizeof status);
			exit_now(exit_code(status));
		}
	}
}
