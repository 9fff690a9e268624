/* The kernel's floor under lxrun's start-up paths, with no Python and no lxrun: benchmarks/floor.py
 * builds and runs this and prints the figures next to each other.
 *
 *   floor MODE TRUE ROUNDS
 *
 * prints one duration in nanoseconds per round, each the time from the caller's first system call to
 * its reap of what it started, with TRUE (a path to a `true`) as the command:
 *   spawn         posix_spawn + waitpid: what subprocess.run does (vfork, exec, exit, wait).
 *   handover      a process started before the round (untimed) and left idle 2 ms, as a pool's pid 1
 *                 waits, gets one byte on a socket, forks, the child execs TRUE; it waits for it, writes
 *                 its status to a pipe and exits; the caller reads the status and reaps it. The design
 *                 of a warm sandbox's hand-over, without the sandbox.
 *   handover-ahead the same, but the waiting process forked its child before the round: the child
 *                 gets the byte and execs TRUE; the waiting process reports its status as before.
 *   handover-exec the same, but the waiting process execs TRUE itself: the least any hand-over costs.
 *   namespaces    clone into new user, mount, pid, net, uts, ipc and cgroup namespaces (bwrap
 *                 --unshare-all's set), the child execs TRUE from the host's tree: what the namespaces
 *                 alone cost a cold start, before any mount. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void reap(pid_t pid)
{
	int status;
	if (waitpid(pid, &status, __WALL) != pid || status != 0) {
		fprintf(stderr, "floor: child %d ended with status %d\n", pid, status);
		exit(1);
	}
}

static long long spawn_once(char *true_path)
{
	char *argv[] = { true_path, NULL };
	long long start = now_ns();
	pid_t pid;
	if (posix_spawn(&pid, true_path, NULL, NULL, argv, environ) != 0)
		die("posix_spawn");
	reap(pid);
	return now_ns() - start;
}

enum handover { FORK_AT_HANDOVER, FORKED_AHEAD, EXEC_IN_PLACE };

/* Wait for one byte on `sock`, then exec TRUE. */
static void __attribute__((noreturn)) exec_on_byte(int sock, char *true_path)
{
	char byte;
	char *argv[] = { true_path, NULL };
	if (read(sock, &byte, 1) != 1)
		_exit(2);
	execv(true_path, argv);
	_exit(127);
}

/* The waiting process: the command (forked at the byte or ahead of it, or exec'd in place), then its
 * status. */
static void waiter(int sock, int status_fd, char *true_path, enum handover how)
{
	pid_t task;
	if (how == EXEC_IN_PLACE)
		exec_on_byte(sock, true_path);
	if (how == FORK_AT_HANDOVER) {
		char byte;
		if (read(sock, &byte, 1) != 1)
			_exit(2);
	}
	task = fork();
	if (task == 0 && how == FORKED_AHEAD)
		exec_on_byte(sock, true_path);
	if (task == 0) {
		char *argv[] = { true_path, NULL };
		execv(true_path, argv);
		_exit(127);
	}
	int status;
	waitpid(task, &status, 0);
	if (write(status_fd, &status, sizeof status) != sizeof status)
		_exit(2);
	_exit(0);
}

static long long handover_once(char *true_path, enum handover how)
{
	int sockets[2], status_pipe[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sockets) || pipe2(status_pipe, O_CLOEXEC))
		die("socketpair");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0)
		waiter(sockets[1], status_pipe[1], true_path, how);
	close(sockets[1]);
	close(status_pipe[1]);
	usleep(2000); /* prepared ahead: the waiter sleeps in read() when its task comes */
	long long start = now_ns();
	if (write(sockets[0], "x", 1) != 1)
		die("write");
	if (how != EXEC_IN_PLACE) {
		int status;
		if (read(status_pipe[0], &status, sizeof status) != sizeof status || status != 0)
			die("status");
	}
	reap(pid);
	long long took = now_ns() - start;
	close(sockets[0]);
	close(status_pipe[0]);
	return took;
}

static char child_stack[64 * 1024] __attribute__((aligned(16)));

static int exec_true(void *true_path)
{
	char *argv[] = { true_path, NULL };
	execv(true_path, argv);
	return 127;
}

static long long namespaces_once(char *true_path)
{
	int flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC |
		    CLONE_NEWCGROUP | SIGCHLD;
	long long start = now_ns();
	pid_t pid = clone(exec_true, child_stack + sizeof child_stack, flags, true_path);
	if (pid < 0)
		die("clone");
	reap(pid);
	return now_ns() - start;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: floor spawn|handover|handover-ahead|handover-exec|namespaces TRUE ROUNDS\n");
		return 2;
	}
	int rounds = atoi(argv[3]);
	for (int i = 0; i < rounds; i++) {
		long long took;
		if (!strcmp(argv[1], "spawn"))
			took = spawn_once(argv[2]);
		else if (!strcmp(argv[1], "handover"))
			took = handover_once(argv[2], FORK_AT_HANDOVER);
		else if (!strcmp(argv[1], "handover-exec"))
			took = handover_once(argv[2], EXEC_IN_PLACE);
		else if (!strcmp(argv[1], "handover-ahead"))
			took = handover_once(argv[2], FORKED_AHEAD);
		else if (!strcmp(argv[1], "namespaces"))
			took = namespaces_once(argv[2]);
		else {
			fprintf(stderr, "floor: unknown mode %s\n", argv[1]);
			return 2;
		}
		printf("%lld\n", took);
	}
	return 0;
}
