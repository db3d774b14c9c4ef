/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dinit-userservd: gives every logged-in user a supervised service manager.
 * main: arguments, config, signals and the event loop; everything else is in
 * the modules (server: control socket; user: sessions and users; supervisor:
 * managers; usergroup: killing what a manager started; rundir).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "poller.h"
#include "rundir_cleanup.h"
#include "server.h"
#include "spawn.h"
#include "state.h"
#include "supervisor.h"
#include "user.h"
#include "usergroup.h"
#include "userenv.h"
#include "util.h"

#define SHUTDOWN_GRACE_MS 5000 /* beyond stop_timeout before exiting anyway */
#define CLEANUP_GRACE_MS 5000  /* at exit, for user cgroups to empty and rundir removals to end */

static struct config config;
static const char *config_path = DUS_DEFAULT_CONFIG;
static bool config_explicit;
static bool exiting;
static struct timer shutdown_timer;
static struct timer cleanup_timer;
static bool cleanup_expired;
static char self_exe[4096]; /* the binary's path, read at start, for reexec */

static void raise_fd_limit(void);

static bool user_known(uid_t uid)
{
	return user_find(uid) != NULL;
}

/* The daemon's own processes: keepers, managers, waiters, removal helpers. */
static bool daemon_owns(pid_t pid)
{
	return supervisor_owns(pid) || rundir_cleanup_owns(pid);
}

static int config_read(struct config *cfg, char *err, size_t errlen)
{
	config_defaults(cfg);
	if (config_load(cfg, config_path, err, errlen) == 0)
		return 0;
	/* No file at the default path: the defaults are the config. */
	if (!config_explicit && access(config_path, F_OK) < 0 && errno == ENOENT) {
		config_defaults(cfg);
		return 0;
	}
	return -1;
}

static int daemon_reload(char *err, size_t errlen)
{
	static struct config fresh;
	if (config_read(&fresh, err, errlen) < 0) {
		log_err("reload rejected, the old config stays: %s", err);
		return -1;
	}
	if (strcmp(fresh.socket_path, config.socket_path) || strcmp(fresh.state_dir, config.state_dir))
		log_warn("socket_path and state_dir changes take effect at the next daemon start");
	proto_strlcpy(fresh.socket_path, config.socket_path, sizeof(fresh.socket_path));
	proto_strlcpy(fresh.state_dir, config.state_dir, sizeof(fresh.state_dir));
	config = fresh;
	log_set_debug(config.debug);
	/* The managers' PAM stack too (an included file edited in place), and
	 * the NSS modules of a changed nsswitch.conf. */
	spawn_pam_preload();
	spawn_nss_preload();
	log_info("configuration reloaded from %s", config_path);
	return 0;
}

static void shutdown_expired(struct timer *t, void *data)
{
	log_err("managers still running %u s after the stop request: exiting anyway",
		config.stop_timeout + SHUTDOWN_GRACE_MS / 1000);
	exit(1);
}

static void cleanup_timeout(struct timer *t, void *data)
{
	cleanup_expired = true;
}

/* At exit, after the managers: cgroups still emptying, runtime dirs
 * still being removed. */
static bool cleanup_pending(void)
{
	return usergroup_draining() || rundir_cleanup_pending();
}

static int daemon_reexec_check(char *err, size_t errlen)
{
	if (!self_exe[0] || access(self_exe, X_OK) < 0) {
		snprintf(err, errlen, "cannot re-execute '%s': %s", self_exe,
			self_exe[0] ? strerror(errno) : "path unknown");
		return -1;
	}
	/* The new image reads the config first thing and exits if it cannot:
	 * refuse now instead, while this image still runs. */
	static struct config fresh;
	char why[512];
	if (config_read(&fresh, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "not re-executing: %s", why);
		return -1;
	}
	return 0;
}

/* Carry out a reexec a client asked for (server_reexec_pending), between two
 * dispatches: no handler runs. Returns only if the exec failed; the client
 * that asked is then told why. */
static void daemon_reexec(void)
{
	int fd = server_listen_fd(), lock = state_lock_fd();
	char fdarg[16], lockarg[16];
	snprintf(fdarg, sizeof(fdarg), "%d", fd);
	snprintf(lockarg, sizeof(lockarg), "%d", lock);
	/* The new image reads the same file, on the same terms: -c only if the
	 * file was named (a missing default config means the defaults). It
	 * gets the state_dir lock held, like the listening socket. */
	char *argv[] = {self_exe, "--listen-fd", fdarg, "--lock-fd", lockarg,
		"-c", (char *)config_path, NULL};
	if (!config_explicit)
		argv[5] = NULL;
	log_info("re-executing %s", self_exe);
	/* Sessions and managers are in state_dir already; what crosses the
	 * exec besides is open fds: the listening socket (so logins queue
	 * instead of failing), the connections (a login waiting for its
	 * manager keeps waiting) and the readiness FIFOs of starting managers. */
	struct handover h = {0};
	users_handover(&h);
	server_handover(&h);
	char why[PROTO_TEXT_SIZE];
	int code;
	/* The new image must see the limits we started with, to record them
	 * for its managers before it raises its own again. */
	if (handover_save(&h) < 0 || fcntl(fd, F_SETFD, 0) < 0 || fcntl(lock, F_SETFD, 0) < 0 ||
		spawn_restore_limits() < 0) {
		code = errno;
		snprintf(why, sizeof(why), "cannot prepare the reexec: %s", strerror(code));
	} else {
		execv(self_exe, argv);
		code = errno;
		snprintf(why, sizeof(why), "execv %s: %s", self_exe, strerror(code));
	}
	raise_fd_limit();
	log_err("%s: this image carries on", why);
	/* Still here (ENOEXEC from a half-written binary, ETXTBSY, ENOMEM, a
	 * noexec mount...): every fd and struct is as it was, each fd still
	 * used by its owner. Only the handover file goes, and the fds passed
	 * on are close-on-exec again. Nothing may be closed here: a closed
	 * number would be reused by the next accept or open while its owner
	 * still writes to it. */
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(lock, F_SETFD, FD_CLOEXEC) < 0)
		log_err("fcntl FD_CLOEXEC on the listening socket or the lock: %s", strerror(errno));
	handover_abort(&h);
	server_reexec_failed(code, why);
}

static void daemon_request_exit(void)
{
	if (exiting)
		return;
	exiting = true;
	/* No new logins from here on: they proceed without us. */
	server_finish();
	users_stop_all();
	timer_arm(&shutdown_timer, (uint64_t)config.stop_timeout * 1000 + SHUTDOWN_GRACE_MS);
}

static void signal_event(int fd, uint32_t events, void *data)
{
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			supervisor_reap();
			break;
		case SIGHUP: {
			char err[512];
			daemon_reload(err, sizeof(err));
			break;
		}
		case SIGTERM:
		case SIGINT:
			log_info("%s: stopping every manager", strsignal((int)si.ssi_signo));
			daemon_request_exit();
			break;
		}
	}
}

static void raise_fd_limit(void)
{
	/* Every login process holds a pidfd: as many as the kernel allows a
	 * process (fs.nr_open) where root may raise its hard limit (not without
	 * CAP_SYS_RESOURCE), else what the hard limit allows. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	char text[32];
	unsigned long long nr_open = 0;
	if (read_text(AT_FDCWD, "/proc/sys/fs/nr_open", 0, text, sizeof(text)) > 0)
		nr_open = strtoull(text, NULL, 10);
	if (nr_open > rl.rlim_max &&
		setrlimit(RLIMIT_NOFILE, &(struct rlimit){nr_open, nr_open}) == 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: dinit-userservd [-c CONFIG] [--ready-fd FD] [--check-config]\n"
		"\n"
		"Give every logged-in user a supervised service manager.\n"
		"\n"
		"  -c, --config FILE   configuration file (default %s)\n"
		"      --check-config  validate the configuration, print it, and exit\n"
		"      --ready-fd FD   write a line to FD once the control socket listens\n"
		"  -h, --help          show this help\n"
		"  -V, --version       show the version\n"
		"\n"
		"Signals: SIGTERM/SIGINT stop every manager and exit; SIGHUP reloads the config\n"
		"and the managers' PAM stack.\n",
		DUS_DEFAULT_CONFIG);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", no_argument, NULL, 'k'},
		{"ready-fd", required_argument, NULL, 'r'},
		{"listen-fd", required_argument, NULL, 'l'}, /* internal: reexec */
		{"lock-fd", required_argument, NULL, 'L'},   /* internal: reexec */
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	bool check_only = false;
	int ready_fd = -1, listen_fd = -1, lock_fd = -1;
	int opt;
	while ((opt = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			config_explicit = true;
			break;
		case 'k':
			check_only = true;
			break;
		case 'r':
		case 'l':
		case 'L': {
			char *end;
			long fd = strtol(optarg, &end, 10);
			if (*end || fd < 0 || fd > 1 << 20) {
				fprintf(stderr, "dinit-userservd: bad file descriptor '%s'\n", optarg);
				return 2;
			}
			*(opt == 'r' ? &ready_fd : opt == 'l' ? &listen_fd : &lock_fd) = (int)fd;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("dinit-userservd %s\n", DUS_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	char err[1024];
	if (config_read(&config, err, sizeof(err)) < 0) {
		fprintf(stderr, "dinit-userservd: %s\n", err);
		return 1;
	}
	if (check_only) {
		config_dump(&config, stdout);
		return 0;
	}
	log_init("dinit-userservd", config.syslog, config.debug);
	if (geteuid() != 0)
		log_warn("not running as root: managers cannot be started as other users");
	spawn_save_limits(); /* before raising ours: managers get these */
	raise_fd_limit();
	umask(022);

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
		log_err("sigprocmask: %s", strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		log_err("signalfd: %s", strerror(errno));
		return 1;
	}
	if (mkdir(config.state_dir, 0755) < 0 && errno != EEXIST) {
		log_err("cannot create state_dir %s: %s", config.state_dir, strerror(errno));
		return 1;
	}
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	self_exe[n > 0 ? n : 0] = '\0';
	struct poller_fd *sig_src = NULL;
	if (poller_init() < 0 || !(sig_src = poller_add_fd(sfd, EPOLLIN, signal_event, NULL)) ||
		supervisor_init(&config) < 0 || users_init(&config) < 0 ||
		state_init(&config, lock_fd) < 0)
		return 1;
	usergroup_set_spared(daemon_owns);
	userenv_init(&config);
	if (usergroup_init(&config))
		spawn_probe();
	rundir_cleanup_restore();
	timer_init(&shutdown_timer, shutdown_expired, NULL);
	timer_init(&cleanup_timer, cleanup_timeout, NULL);
	struct handover handed = {0};
	if (listen_fd >= 0)
		handover_load(&handed);
	else
		handover_discard(); /* a fresh start trusts no fd number */
	users_restore(&handed);
	usergroup_sweep(user_known);
	static const struct server_hooks hooks = {
		.reload = daemon_reload, .reexec_check = daemon_reexec_check,
	};
	if (server_init(&config, &hooks, listen_fd) < 0)
		return 1;
	server_adopt_clients(&handed);
	handover_finish(&handed);
	log_info("%s on %s (backend %s)", listen_fd >= 0 ? "re-executed, listening" : "listening",
		config.socket_path, config.backend);
	users_start_lingering();
	if (ready_fd >= 0) {
		if (write(ready_fd, "ready\n", 6) != 6)
			log_warn("--ready-fd %d: %s", ready_fd, strerror(errno));
		close(ready_fd);
	}

	while (!exiting || supervisor_running() > 0 || (cleanup_pending() && !cleanup_expired)) {
		if (exiting && !supervisor_running() && !timer_armed(&cleanup_timer)) {
			/* The managers are gone: what they left goes, within bounds. */
			timer_disarm(&shutdown_timer);
			timer_arm(&cleanup_timer, CLEANUP_GRACE_MS);
		}
		if (poller_dispatch() < 0)
			return 1;
		users_collect();
		if (server_reexec_pending())
			daemon_reexec();
	}
	log_info("every manager stopped: exiting");
	usergroup_finish();
	rundir_cleanup_finish();
	users_finish();
	supervisor_finish();
	poller_remove_fd(sig_src);
	poller_finish();
	close(sfd);
	return 0;
}
