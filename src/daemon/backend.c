/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Backends: the spawn plan of each kind of per-user service manager.
 *
 * Privilege boundary: this code runs as root inside the daemon and never
 * reads or writes anything under the user's home (a home may be on NFS with
 * root squashed, or may be hung; and nothing the user controls should steer
 * a root process). Whatever must look at the user's files is done by the
 * helpers in DUS_LIBEXECDIR, which the supervisor runs as the user:
 *
 *   dinit-launch   writes the generated dinit services from the user's
 *                  boot.d, then execs dinit
 *   notify-ready   the generated ready service's command: writes a line to
 *                  $DINIT_USERSERVD_READY
 *   scandir-exec   execs runsvdir / s6-svscan, or idles when the scan
 *                  directory does not exist
 *   scandir-wait   the runit / s6 readiness waiter
 *
 * The only thing created on disk here is <user_dir>/dinit.d, a directory the
 * user's dinit-launch writes into; user_dir itself is root-owned, so nothing
 * in it can be swapped under us.
 *
 * docs/backends.md is the contract this file implements.
 */
#include "backend.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef DUS_LIBEXECDIR
#define DUS_LIBEXECDIR "/usr/local/libexec/dinit-userservd"
#endif

/* Overrides DUS_LIBEXECDIR, e.g. to run the daemon from the build tree. */
#define LIBEXECDIR_ENV "DINIT_USERSERVD_LIBEXECDIR"

/* Name of the generated dinit service that signals readiness; dinit is
 * started with it (and reaches "boot" as its dependency). */
#define DINIT_READY_SERVICE "dinit-userservd-ready"

/* Used when the config lists no dinit service directory. */
static const char *const default_dinit_dirs[] = {
	"~/.config/dinit.d",
	"/etc/dinit.d/user",
	"/usr/local/lib/dinit.d/user",
	"/usr/lib/dinit.d/user",
};

/* Builds a plan; the first failure sticks, so callers check once at the end. */
struct plan_builder {
	struct backend_plan *plan;
	unsigned argc, waiter_argc, envc;
	bool overflow;
};

/* Copies a formatted string into the plan's storage; NULL when it is full. */
__attribute__((format(printf, 2, 3)))
static char *plan_str(struct plan_builder *b, const char *fmt, ...)
{
	struct backend_plan *p = b->plan;
	if (b->overflow)
		return NULL;
	size_t room = sizeof(p->strings) - p->used;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(p->strings + p->used, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		b->overflow = true;
		return NULL;
	}
	char *s = p->strings + p->used;
	p->used += (size_t)n + 1;
	return s;
}

static void plan_arg(struct plan_builder *b, char *s)
{
	/* keep one slot for the terminating NULL */
	if (!s || b->argc + 1 >= BACKEND_ARGV_MAX) {
		b->overflow = true;
		return;
	}
	b->plan->argv[b->argc++] = s;
}

static void plan_waiter_arg(struct plan_builder *b, char *s)
{
	if (!s || b->waiter_argc + 1 >= BACKEND_ARGV_MAX) {
		b->overflow = true;
		return;
	}
	b->plan->waiter_argv[b->waiter_argc++] = s;
}

static const char *libexec_dir(void)
{
	const char *d = getenv(LIBEXECDIR_ENV);
	return d && d[0] == '/' ? d : DUS_LIBEXECDIR;
}

const char *backend_libexec_dir(void)
{
	return libexec_dir();
}

static bool is_custom_path(const char *name)
{
	return name[0] == '/';
}

/* A home the helpers can build paths under: absolute, and not "/" itself. */
static int check_home(const struct backend_user *user, char *err, size_t errlen)
{
	if (user->home[0] != '/' || !strcmp(user->home, "/")) {
		snprintf(err, errlen, "user %s has no usable home directory ('%s')", user->name,
			user->home);
		return -1;
	}
	return 0;
}

/*
 * <user_dir>/dinit.d: owned by the user, 0755, so that the user's
 * dinit-launch can write the generated services there. user_dir is
 * root-owned, so the entry can only be what we made it; O_NOFOLLOW and the
 * fstat below hold even so.
 */
static int make_generated_dir(const struct backend_user *user, char *path, size_t pathlen,
	char *err, size_t errlen)
{
	if (snprintf(path, pathlen, "%s/dinit.d", user->user_dir) >= (int)pathlen) {
		snprintf(err, errlen, "state directory path is too long");
		return -1;
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", path, strerror(errno));
		return -1;
	}
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	int rc = -1;
	if (fstat(fd, &st) < 0)
		snprintf(err, errlen, "fstat %s: %s", path, strerror(errno));
	else if ((st.st_uid != user->uid || st.st_gid != user->gid) &&
		fchown(fd, user->uid, user->gid) < 0)
		snprintf(err, errlen, "chown %s: %s", path, strerror(errno));
	else if ((st.st_mode & 07777) != 0755 && fchmod(fd, 0755) < 0)
		snprintf(err, errlen, "chmod %s: %s", path, strerror(errno));
	else
		rc = 0;
	close(fd);
	return rc;
}

/*
 * dinit: dinit-launch GEN BOOTD NOTIFIER -- dinit --user --services-dir GEN
 *        --services-dir D1 ... [--socket-path RUNDIR/dinitctl] dinit-userservd-ready
 */
static int prepare_dinit(const struct config *cfg, const struct backend_user *user,
	struct plan_builder *b, char *err, size_t errlen)
{
	char gen[CONFIG_PATH_SIZE + 16];
	if (check_home(user, err, errlen) < 0 ||
		make_generated_dir(user, gen, sizeof(gen), err, errlen) < 0)
		return -1;
	const char *lx = libexec_dir();

	plan_arg(b, plan_str(b, "%s/dinit-launch", lx));
	/* system_boot_dirs: one option each, read by dinit-launch as the user. */
	for (const char *d = cfg->system_boot_dirs; *d;) {
		size_t len = strcspn(d, " ");
		plan_arg(b, plan_str(b, "--system-boot-dir"));
		plan_arg(b, plan_str(b, "%.*s", (int)len, d));
		d += len;
		while (*d == ' ')
			d++;
	}
	plan_arg(b, plan_str(b, "%s", gen));
	plan_arg(b, plan_str(b, "%s/.config/dinit.d/boot.d", user->home));
	plan_arg(b, plan_str(b, "%s/notify-ready", lx));
	plan_arg(b, plan_str(b, "--"));
	plan_arg(b, plan_str(b, "dinit"));
	plan_arg(b, plan_str(b, "--user"));
	plan_arg(b, plan_str(b, "--services-dir"));
	plan_arg(b, plan_str(b, "%s", gen));

	unsigned n = cfg->n_dinit_service_dirs;
	if (n > CONFIG_DIRS_MAX)
		n = CONFIG_DIRS_MAX;
	unsigned ndef = sizeof(default_dinit_dirs) / sizeof(default_dinit_dirs[0]);
	for (unsigned i = 0; i < (n ? n : ndef); i++) {
		const char *d = n ? cfg->dinit_service_dirs[i] : default_dinit_dirs[i];
		plan_arg(b, plan_str(b, "--services-dir"));
		if (d[0] == '~' && (d[1] == '/' || d[1] == '\0'))
			plan_arg(b, plan_str(b, "%s%s", user->home, d + 1));
		else
			plan_arg(b, plan_str(b, "%s", d));
	}
	/* Without a runtime dir dinit picks $HOME/.dinitctl, which is also where
	 * dinitctl looks; user_dir would not do, as the user cannot write there. */
	if (user->rundir[0]) {
		plan_arg(b, plan_str(b, "--socket-path"));
		plan_arg(b, plan_str(b, "%s/dinitctl", user->rundir));
	}
	plan_arg(b, plan_str(b, DINIT_READY_SERVICE));
	b->plan->ready = BACKEND_READY_FIFO;
	b->plan->stop_signal = SIGTERM;
	return 0;
}

/*
 * runit / s6: scandir-exec [--runit] DIR SUPERVISOR... as the manager, and
 * scandir-wait --KIND --since T --timeout N DIR as the readiness waiter.
 */
static int prepare_scandir(const struct config *cfg, const struct backend_user *user,
	struct plan_builder *b, bool runit, char *err, size_t errlen)
{
	if (check_home(user, err, errlen) < 0)
		return -1;
	const char *lx = libexec_dir();
	char *dir = plan_str(b, runit ? "%s/.config/service" : "%s/.config/s6/service",
		user->home);

	plan_arg(b, plan_str(b, "%s/scandir-exec", lx));
	if (runit)
		plan_arg(b, plan_str(b, "--runit"));
	plan_arg(b, dir);
	if (runit) {
		plan_arg(b, plan_str(b, "runsvdir"));
		plan_arg(b, plan_str(b, "-P"));
	} else {
		plan_arg(b, plan_str(b, "s6-svscan"));
	}
	plan_arg(b, dir);

	/* Status files older than this are left over from an earlier manager. */
	struct timespec now;
	if (clock_gettime(CLOCK_REALTIME, &now) < 0) {
		snprintf(err, errlen, "clock_gettime: %s", strerror(errno));
		return -1;
	}
	unsigned timeout = cfg->login_timeout ? cfg->login_timeout : 1;
	plan_waiter_arg(b, plan_str(b, "%s/scandir-wait", lx));
	plan_waiter_arg(b, plan_str(b, runit ? "--runit" : "--s6"));
	plan_waiter_arg(b, plan_str(b, "--since"));
	plan_waiter_arg(b, plan_str(b, "%lld.%09ld", (long long)now.tv_sec, now.tv_nsec));
	plan_waiter_arg(b, plan_str(b, "--timeout"));
	plan_waiter_arg(b, plan_str(b, "%u", timeout));
	plan_waiter_arg(b, dir);

	b->plan->ready = BACKEND_READY_WAITER;
	/* s6-svscan: SIGTERM = s6-svscanctl -t, a clean stop of every service
	 * and logger. runsvdir has no such signal: scandir-exec --runit stays its
	 * parent and does the clean stop on SIGTERM. */
	b->plan->stop_signal = SIGTERM;
	return 0;
}

int backend_prepare(const struct config *cfg, const struct backend_user *user,
	struct backend_plan *plan, char *err, size_t errlen)
{
	memset(plan, 0, sizeof(*plan));
	plan->stop_signal = SIGTERM;
	plan->ready = BACKEND_READY_NONE;
	struct plan_builder b = { .plan = plan };
	const char *name = cfg->backend;
	int rc;

	if (!strcmp(name, "none")) {
		return 0;
	} else if (!strcmp(name, "dinit")) {
		rc = prepare_dinit(cfg, user, &b, err, errlen);
	} else if (!strcmp(name, "runit")) {
		rc = prepare_scandir(cfg, user, &b, true, err, errlen);
	} else if (!strcmp(name, "s6")) {
		rc = prepare_scandir(cfg, user, &b, false, err, errlen);
	} else if (is_custom_path(name)) {
		/* The custom contract: exec'd with no arguments, writes a line to
		 * $DINIT_USERSERVD_READY when ready, stops on SIGTERM. */
		plan_arg(&b, plan_str(&b, "%s", name));
		plan->ready = BACKEND_READY_FIFO;
		rc = 0;
	} else {
		snprintf(err, errlen, "unknown backend '%s'", name);
		rc = -1;
	}
	if (rc == 0 && b.overflow) {
		snprintf(err, errlen, "backend %s: the command line for %s is too long", name,
			user->name);
		rc = -1;
	}
	if (rc < 0) {
		memset(plan, 0, sizeof(*plan));
		plan->stop_signal = SIGTERM;
	}
	return rc;
}
