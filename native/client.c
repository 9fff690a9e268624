/* lxrun-client: the `lxrun` command's native front, and the relay to `lxrun serve`.
 *
 *   lxrun exec [OPTIONS] ...           installed as `lxrun`: with --socket PATH among exec's options
 *                                      or LXRUN_SOCKET set, relays the task to the server at PATH;
 *                                      anything else execs the Python command line, lxrun-python,
 *                                      beside this file (so no socket, nothing changes)
 *   lxrun-client --relay PATH exec-options...   what the Python command line execs when it is
 *                                      reached with a socket configured (never falls back)
 *
 * The relay sends exec's raw options, the environment, the umask, and four descriptors (stdin,
 * stdout, stderr, the working directory) in one request; the server parses them with the command
 * line's own option table and runs the task on those descriptors, so output never passes through
 * here. While the task runs, every signal `lxrun exec` would forward is passed on (blocked here,
 * read from a signalfd). --result-json's file is made and renamed here, at the server's request,
 * with this process's own credentials: the server (root) only writes into the descriptor.
 * The wire format is lxrun/cli/serve/wire.py's. Linked statically: no dynamic loader at start. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SOCKET_ENV "LXRUN_SOCKET"
#define PYTHON_ENTRY "lxrun-python"
#define MAX_REQUEST (4u << 20) /* wire.py's MAX_REQUEST */
#define MAX_FRAME 65536u       /* the largest frame the server sends */
#define EXIT_FAILED 125

/* Frame types (wire.py's): client to server, then server to client. */
enum { REQUEST = 'Q', SIGNAL = 'S', PREPARED = 'P', RENAMED = 'N' };
enum { PREPARE = 'p', RENAME = 'n', EXIT = 'x' };
/* --result-json preparation outcomes (wire.py's PrepareStatus). */
enum { PREP_OK = 0, PREP_NO_DIR = 1, PREP_LINK = 2, PREP_NOT_FILE = 3, PREP_FAILED = 4 };

struct frame_header {
	uint32_t type;
	uint32_t length;
};

/* exec's options that take no value: a unit test checks this against exec_options.py's table. */
static const char *const FLAG_OPTIONS[] = {"--interactive", "--tty", "--keep", "--stats", "--help", NULL};
static const char SHORT_FLAGS[] = "ith";

static const char *socket_path;
static int result_dir = -1;
static char *result_temp; /* the temp file made for --result-json, until renamed */

static void fail(const char *what, const char *reason)
{
	fprintf(stderr, "lxrun: %s %s: %s\n", what, socket_path, reason);
	exit(EXIT_FAILED);
}

static int is_negative_number(const char *arg) /* a value, as argparse takes it: -1, -0.5, -.5 */
{
	int digits = 0, dot = 0;
	for (const char *p = arg + 1; *p; p++) {
		if (*p == '.' && !dot)
			dot = 1;
		else if (*p >= '0' && *p <= '9')
			digits++;
		else
			return 0;
	}
	return digits > 0;
}

static int is_flag(const char *name, size_t length)
{
	for (const char *const *flag = FLAG_OPTIONS; *flag; flag++)
		if (strlen(*flag) == length && strncmp(*flag, name, length) == 0)
			return 1;
	return 0;
}

/* --socket's value among exec's options, read as exec_options.py's Scan reads them: up to `--` or
 * the command's first word. NULL when it isn't there. */
static const char *find_socket(char **args)
{
	for (int i = 0; args[i]; i++) {
		const char *arg = args[i];
		if (strcmp(arg, "--") == 0 || arg[0] != '-' || strcmp(arg, "-") == 0 || is_negative_number(arg))
			return NULL;
		if (arg[1] == '-') {
			const char *equals = strchr(arg, '=');
			size_t length = equals ? (size_t)(equals - arg) : strlen(arg);
			if (length == 8 && strncmp(arg, "--socket", 8) == 0)
				return equals ? equals + 1 : args[i + 1];
			if (!equals && !is_flag(arg, length) && args[i + 1])
				i++;
			continue;
		}
		for (const char *c = arg + 1; *c; c++) {
			if (strchr(SHORT_FLAGS, *c))
				continue;
			if (c[1] == '\0' && args[i + 1])
				i++; /* -e KEY=VAL: the value is the next argument */
			break;
		}
	}
	return NULL;
}

static void launch_python(char **argv)
{
	static char path[4096];
	ssize_t length = readlink("/proc/self/exe", path, sizeof(path) - sizeof(PYTHON_ENTRY) - 1);
	char *slash = length > 0 ? memrchr(path, '/', (size_t)length) : NULL;
	if (!slash) {
		fprintf(stderr, "lxrun: launcher /proc/self/exe: %s\n", strerror(length < 0 ? errno : ENOENT));
		exit(EXIT_FAILED);
	}
	strcpy(slash + 1, PYTHON_ENTRY);
	execv(path, argv);
	fprintf(stderr, "lxrun: launcher %s: %s (the Python command line belongs beside lxrun)\n", path,
		strerror(errno));
	exit(EXIT_FAILED);
}

static void send_frame(int sock, uint32_t type, const void *payload, uint32_t length, const int *fds, int nfds)
{
	struct frame_header header = {type, length};
	struct iovec iov[2] = {{&header, sizeof(header)}, {(void *)payload, length}};
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = length ? 2 : 1};
	if (nfds) {
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cmsg), fds, nfds * sizeof(int));
	}
	size_t left = sizeof(header) + length;
	while (left) { /* the descriptors go with the first bytes */
		ssize_t sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
		if (sent < 0 && errno == EINTR)
			continue;
		if (sent < 0)
			return; /* the server went away: its reply (or end of file) says what happened */
		left -= (size_t)sent;
		msg.msg_control = NULL;
		msg.msg_controllen = 0;
		while (sent > 0) {
			size_t used = (size_t)sent < msg.msg_iov->iov_len ? (size_t)sent : msg.msg_iov->iov_len;
			msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + used;
			msg.msg_iov->iov_len -= used;
			sent -= (ssize_t)used;
			if (msg.msg_iov->iov_len == 0) {
				msg.msg_iov++;
				msg.msg_iovlen--;
			}
		}
	}
}

static int read_all(int sock, void *buf, size_t length)
{
	for (size_t done = 0; done < length;) {
		ssize_t got = read(sock, (char *)buf + done, length - done);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		done += (size_t)got;
	}
	return 0;
}

static void reply_status(int sock, uint32_t type, int32_t status, int32_t error, int fd)
{
	int32_t payload[2] = {status, error};
	send_frame(sock, type, payload, sizeof(payload), &fd, fd >= 0 ? 1 : 0);
}

/* What result_file.py's local_prepare does, as this process: check and clear the destination,
 * make the temp file beside it. The directory stays open until the rename. */
static void prepare(int sock, char *payload, uint32_t length)
{
	char *dir = payload, *end = payload + length;
	char *name = memchr(dir, '\0', (size_t)(end - dir));
	char *temp = name ? memchr(name + 1, '\0', (size_t)(end - name - 1)) : NULL;
	if (!temp || !memchr(temp + 1, '\0', (size_t)(end - temp - 1)) || result_dir >= 0)
		fail("--socket", "a malformed request from the server");
	name++, temp++;
	struct stat found;
	int fd = -1;
	result_dir = open(*dir ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (result_dir < 0)
		return reply_status(sock, PREPARED, PREP_NO_DIR, errno, -1);
	if (fstatat(result_dir, name, &found, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISLNK(found.st_mode))
			return reply_status(sock, PREPARED, PREP_LINK, 0, -1);
		if (!S_ISREG(found.st_mode))
			return reply_status(sock, PREPARED, PREP_NOT_FILE, 0, -1);
		if (unlinkat(result_dir, name, 0) < 0 && errno != ENOENT)
			return reply_status(sock, PREPARED, PREP_FAILED, errno, -1);
	} else if (errno != ENOENT) {
		return reply_status(sock, PREPARED, PREP_FAILED, errno, -1);
	}
	fd = openat(result_dir, temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return reply_status(sock, PREPARED, PREP_FAILED, errno, -1);
	result_temp = strdup(temp);
	reply_status(sock, PREPARED, PREP_OK, 0, fd);
	close(fd);
}

static void rename_result(int sock, char *payload, uint32_t length)
{
	char *name = payload;
	if (!result_temp || length == 0 || payload[length - 1] != '\0')
		fail("--socket", "a malformed request from the server");
	if (renameat(result_dir, result_temp, result_dir, name) < 0)
		return reply_status(sock, RENAMED, PREP_FAILED, errno, -1);
	free(result_temp);
	result_temp = NULL;
	reply_status(sock, RENAMED, PREP_OK, 0, -1);
}

static void drop_result(void) /* an unrenamed temp file is never left behind */
{
	if (result_temp)
		unlinkat(result_dir, result_temp, 0);
}

/* Every signal `lxrun exec` forwards (exec_cmd.py's NOT_FORWARDED left out; a unit test compares). */
static void forwarded(sigset_t *set)
{
	static const int NOT_FORWARDED[] = {SIGKILL, SIGSTOP, SIGCHLD, SIGPIPE, SIGSEGV, SIGBUS,
					    SIGFPE,  SIGILL,  SIGTRAP, SIGSYS,  SIGTTIN, SIGTTOU};
	sigfillset(set); /* glibc leaves out its own two real-time signals, as Python's valid_signals */
	for (size_t i = 0; i < sizeof(NOT_FORWARDED) / sizeof(*NOT_FORWARDED); i++)
		sigdelset(set, NOT_FORWARDED[i]);
}

static char *build_request(char **args, uint32_t *length)
{
	extern char **environ;
	uint32_t argc = 0, envc = 0;
	size_t size = 3 * sizeof(uint32_t);
	for (; args[argc]; argc++)
		size += strlen(args[argc]) + 1;
	for (; environ[envc]; envc++)
		size += strlen(environ[envc]) + 1;
	if (size > MAX_REQUEST) {
		fprintf(stderr, "lxrun: request: is larger than %u MiB (arguments and environment)\n", MAX_REQUEST >> 20);
		exit(EXIT_FAILED);
	}
	char *payload = malloc(size), *at = payload + 3 * sizeof(uint32_t);
	mode_t mask = umask(0);
	umask(mask);
	uint32_t counts[3] = {argc, envc, (uint32_t)mask};
	if (!payload)
		fail("--socket", strerror(ENOMEM));
	memcpy(payload, counts, sizeof(counts));
	for (uint32_t i = 0; i < argc; i++)
		at = stpcpy(at, args[i]) + 1;
	for (uint32_t i = 0; i < envc; i++)
		at = stpcpy(at, environ[i]) + 1;
	*length = (uint32_t)size;
	return payload;
}

static int relay(char **args)
{
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	if (strlen(socket_path) >= sizeof(address.sun_path))
		fail("--socket", "is longer than a socket address takes (107 bytes)");
	strcpy(address.sun_path, socket_path);
	for (int fd = 0; fd < 3; fd++) /* a closed stdio gets /dev/null, as the Python command line does */
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			fail("--socket", "cannot open /dev/null for a closed standard stream");
	sigset_t signals;
	forwarded(&signals);
	sigprocmask(SIG_BLOCK, &signals, NULL);
	int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (signal_fd < 0 || sock < 0)
		fail("--socket", strerror(errno));
	if (connect(sock, (struct sockaddr *)&address, sizeof(address)) < 0) {
		char reason[256];
		int absent = errno == ENOENT || errno == ECONNREFUSED;
		snprintf(reason, sizeof(reason), "%s%s", strerror(errno), absent ? " (is `lxrun serve` running there?)" : "");
		fail("--socket", reason);
	}
	int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cwd < 0)
		fail("--socket", "cannot open the working directory");
	uint32_t length;
	char *payload = build_request(args, &length);
	int fds[4] = {0, 1, 2, cwd};
	send_frame(sock, REQUEST, payload, length, fds, 4);
	free(payload);
	close(cwd);

	static char buf[MAX_FRAME + 1];
	struct pollfd polled[2] = {{.fd = sock, .events = POLLIN}, {.fd = signal_fd, .events = POLLIN}};
	for (;;) {
		if (poll(polled, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fail("--socket", strerror(errno));
		}
		if (polled[1].revents & POLLIN) {
			struct signalfd_siginfo info;
			if (read(signal_fd, &info, sizeof(info)) == sizeof(info)) {
				int32_t signo = (int32_t)info.ssi_signo;
				send_frame(sock, SIGNAL, &signo, sizeof(signo), NULL, 0);
			}
		}
		if (!(polled[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		struct frame_header header;
		if (read_all(sock, &header, sizeof(header)) < 0 || header.length > MAX_FRAME ||
		    read_all(sock, buf, header.length) < 0) {
			drop_result();
			fail("--socket", "the server closed the connection before the task ended");
		}
		buf[header.length] = '\0';
		if (header.type == PREPARE) {
			prepare(sock, buf, header.length);
		} else if (header.type == RENAME) {
			rename_result(sock, buf, header.length);
		} else if (header.type == EXIT && header.length >= sizeof(int32_t)) {
			int32_t code;
			memcpy(&code, buf, sizeof(code));
			drop_result();
			if (header.length > sizeof(code))
				fprintf(stderr, "%s\n", buf + sizeof(code));
			return code;
		} else {
			drop_result();
			fail("--socket", "a malformed reply from the server");
		}
	}
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "--relay") == 0) {
		socket_path = argv[2];
		return relay(argv + 3);
	}
	if (argc >= 2 && strcmp(argv[1], "exec") == 0) {
		socket_path = find_socket(argv + 2);
		if (!socket_path || !*socket_path)
			socket_path = getenv(SOCKET_ENV);
		if (socket_path && *socket_path)
			return relay(argv + 2);
	}
	launch_python(argv);
}
