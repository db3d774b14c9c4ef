/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * userenv-apply: change the environment of the user's running manager, run
 * by the daemon AS THE USER (root never connects to a socket, or opens a
 * file, that the user controls).
 *
 *   userenv-apply dinit set|unset VAR...
 *       dinit's control socket ($XDG_RUNTIME_DIR/dinitctl, else
 *       $HOME/.dinitctl, as the backend starts dinit): one SETENV request per
 *       variable, exactly as `dinitctl setenv` / `dinitctl unsetenv` send it
 *       (QUERYVERSION first; SETENV = 1 byte 17, a 2-byte length in host order,
 *       then NAME=VALUE, or NAME alone to unset; ACK is 50, BADREQ 52).
 *       Services started afterwards see the change (dinit's activation
 *       environment).
 *   userenv-apply envdir DIR set|unset VAR...
 *       runit, s6: one file per variable in DIR, as `chpst -e DIR` and
 *       `s6-envdir DIR` read them: NAME holds VALUE and a newline; unsetting
 *       leaves an empty NAME, which both tools read as "unset".
 *   userenv-apply custom PROGRAM set|unset VAR...
 *       a custom backend: execs PROGRAM setenv VAR... or PROGRAM unsetenv VAR...
 *
 * Then, for set, when the session bus runs ($XDG_RUNTIME_DIR/bus is a
 * socket) and dbus-update-activation-environment is installed, the same
 * variables go into the bus's activation environment as that tool does (from
 * the user's side), so bus-activated services see them too. D-Bus cannot
 * unset an activation variable: unset does not reach the bus. A failure there
 * is a warning, not a failure of the change.
 *
 * VAR is NAME=VALUE for set, NAME for unset (the daemon validated both).
 * Prints "ok" as its last line when everything was applied; anything else
 * (a line saying what failed) is an error. Output goes to the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helper-version.h"

#define PROG "dinit-userservd userenv-apply"
#define TIMEOUT_MS 3000

/* dinit's control protocol (src/includes/control-cmds.h). */
#define DINIT_CP_QUERYVERSION 0
#define DINIT_CP_SETENV 17
#define DINIT_RP_ACK 50
#define DINIT_RP_BADREQ 52
#define DINIT_RP_CPVERSION 58
#define DINIT_INFO_MIN 100 /* out-of-band info packets: type, length byte, ... */
#define DINIT_ENVVAR_MAX 1021

static int64_t deadline;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

__attribute__((format(printf, 1, 0)))
static int fail(const char *fmt, const char *arg, int err)
{
	printf(PROG ": ");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	printf(fmt, arg);
#pragma GCC diagnostic pop
	if (err)
		printf(": %s", strerror(err));
	printf("\n");
	return 1;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read exactly len bytes before the deadline. */
static int read_exact(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		int64_t left = deadline - now_ms();
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		ssize_t n = read(fd, p, len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ECONNRESET;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The next reply's type byte, skipping out-of-band information packets. */
static int read_reply(int fd, unsigned char *type)
{
	for (;;) {
		if (read_exact(fd, type, 1) < 0)
			return -1;
		if (*type < DINIT_INFO_MIN)
			return 0;
		unsigned char len, skip[256];
		if (read_exact(fd, &len, 1) < 0 || (len >= 2 && read_exact(fd, skip, len - 2u) < 0))
			return -1;
	}
}

static int dinit_socket_path(char *out, size_t len)
{
	const char *rundir = getenv("XDG_RUNTIME_DIR");
	const char *home = getenv("HOME");
	int n;
	if (rundir && rundir[0] == '/')
		n = snprintf(out, len, "%s/dinitctl", rundir);
	else if (home && home[0] == '/')
		n = snprintf(out, len, "%s/.dinitctl", home);
	else
		return -1;
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int apply_dinit(bool set, int nvars, char **vars)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (dinit_socket_path(addr.sun_path, sizeof(addr.sun_path)) < 0)
		return fail("no usable XDG_RUNTIME_DIR or HOME for dinit's socket%s", "", 0);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail("socket%s", "", errno);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return fail("connect %s", addr.sun_path, errno);
	/* As dinitctl: the protocol version first. */
	unsigned char q = DINIT_CP_QUERYVERSION, type, ver[4];
	if (write_all(fd, &q, 1) < 0 || read_reply(fd, &type) < 0)
		return fail("dinit at %s: no answer to QUERYVERSION", addr.sun_path, errno);
	if (type != DINIT_RP_CPVERSION || read_exact(fd, ver, sizeof(ver)) < 0)
		return fail("dinit at %s: unexpected answer to QUERYVERSION", addr.sun_path, 0);
	for (int i = 0; i < nvars; i++) {
		size_t len = strlen(vars[i]);
		if (len == 0 || len > DINIT_ENVVAR_MAX || (set != (strchr(vars[i], '=') != NULL)))
			return fail("bad variable '%s'", vars[i], 0);
		unsigned char buf[3 + DINIT_ENVVAR_MAX];
		uint16_t l16 = (uint16_t)len;
		buf[0] = DINIT_CP_SETENV;
		memcpy(buf + 1, &l16, sizeof(l16)); /* host byte order, as dinit reads it */
		memcpy(buf + 3, vars[i], len);
		if (write_all(fd, buf, 3 + len) < 0 || read_reply(fd, &type) < 0)
			return fail("dinit: SETENV %s", vars[i], errno);
		if (type != DINIT_RP_ACK)
			return fail("dinit refused SETENV %s", vars[i], 0);
	}
	close(fd);
	return 0;
}

static int apply_envdir(const char *dir, bool set, int nvars, char **vars)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return fail("mkdir %s", dir, errno);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return fail("open %s", dir, errno);
	for (int i = 0; i < nvars; i++) {
		char name[256], tmp[300];
		const char *eq = strchr(vars[i], '=');
		size_t nl = eq ? (size_t)(eq - vars[i]) : strlen(vars[i]);
		if (nl == 0 || nl >= sizeof(name) || set != (eq != NULL))
			return fail("bad variable '%s'", vars[i], 0);
		memcpy(name, vars[i], nl);
		name[nl] = '\0';
		snprintf(tmp, sizeof(tmp), ".%s.new", name);
		int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return fail("open %s", tmp, errno);
		int r = 0;
		if (set)
			r = write_all(fd, eq + 1, strlen(eq + 1)) < 0 || write_all(fd, "\n", 1) < 0;
		if (close(fd) < 0 || r || renameat(dfd, tmp, dfd, name) < 0)
			return fail("writing %s", name, errno);
	}
	close(dfd);
	return 0;
}

/* The session bus's activation environment; best effort (see the top). */
static void update_bus(int nvars, char **vars)
{
	const char *rundir = getenv("XDG_RUNTIME_DIR");
	char bus[4096], addr[4200];
	struct stat st;
	static const char *const tool_paths[] = {
		"/usr/local/bin/dbus-update-activation-environment",
		"/usr/bin/dbus-update-activation-environment",
		"/bin/dbus-update-activation-environment",
	};
	const char *tool = NULL;
	if (!rundir || rundir[0] != '/' || nvars == 0)
		return;
	snprintf(bus, sizeof(bus), "%s/bus", rundir);
	if (lstat(bus, &st) < 0 || !S_ISSOCK(st.st_mode))
		return;
	for (size_t i = 0; i < sizeof(tool_paths) / sizeof(tool_paths[0]) && !tool; i++)
		if (access(tool_paths[i], X_OK) == 0)
			tool = tool_paths[i];
	if (!tool)
		return;
	snprintf(addr, sizeof(addr), "unix:path=%s", bus);
	char **argv = calloc((size_t)nvars + 2, sizeof(*argv));
	if (!argv)
		return;
	argv[0] = (char *)tool;
	for (int i = 0; i < nvars; i++)
		argv[i + 1] = vars[i];
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(2); /* a hung bus must not hold the change (SIGALRM ends it) */
		setenv("DBUS_SESSION_BUS_ADDRESS", addr, 1);
		execv(tool, argv);
		_exit(127);
	}
	free(argv);
	int status = 0;
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		printf(PROG ": warning: the session bus's activation environment was not "
			"updated\n");
}

int main(int argc, char **argv)
{
	helper_version(argc, argv, PROG);
	deadline = now_ms() + TIMEOUT_MS;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && !strcmp(argv[1], "dinit") &&
		(!strcmp(argv[2], "set") || !strcmp(argv[2], "unset"))) {
		if (apply_dinit(argv[2][0] == 's', argc - 3, argv + 3))
			return 1;
		if (argv[2][0] == 's')
			update_bus(argc - 3, argv + 3);
	} else if (argc >= 4 && !strcmp(argv[1], "envdir") &&
		(!strcmp(argv[3], "set") || !strcmp(argv[3], "unset"))) {
		if (apply_envdir(argv[2], argv[3][0] == 's', argc - 4, argv + 4))
			return 1;
		if (argv[3][0] == 's')
			update_bus(argc - 4, argv + 4);
	} else if (argc >= 4 && !strcmp(argv[1], "custom") &&
		(!strcmp(argv[3], "set") || !strcmp(argv[3], "unset"))) {
		argv[3] = argv[3][0] == 's' ? "setenv" : "unsetenv";
		pid_t pid = fork();
		if (pid < 0)
			return fail("fork%s", "", errno);
		if (pid == 0) {
			execv(argv[2], argv + 2);
			fail("cannot execute %s", argv[2], errno);
			_exit(127);
		}
		int status;
		while (waitpid(pid, &status, 0) < 0)
			if (errno != EINTR)
				return fail("waitpid%s", "", errno);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			return fail("%s refused the change", argv[2], 0);
		if (!strcmp(argv[3], "setenv"))
			update_bus(argc - 4, argv + 4);
	} else {
		fprintf(stderr, "usage: " PROG " dinit|envdir DIR|custom PROGRAM set|unset VAR...\n");
		return 2;
	}
	printf("ok\n");
	return 0;
}
