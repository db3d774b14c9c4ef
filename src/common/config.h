/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dinit-userservd.conf: "key = value" lines, '#' starts a comment, blank
 * lines ignored. Every key of struct config below; an unknown key, a missing
 * '=', or a bad value is an error naming file:line.
 */
#ifndef DUS_CONFIG_H
#define DUS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CONFIG_PATH_SIZE 1024
#define CONFIG_ENV_MAX 32 /* manager_env lines */
#define CONFIG_DIRS_MAX 16 /* dinit_service_dirs entries */

#ifndef DUS_DEFAULT_CONFIG
#define DUS_DEFAULT_CONFIG "/etc/dinit-userservd.conf"
#endif

enum config_rundir { CONFIG_RUNDIR_AUTO, CONFIG_RUNDIR_YES, CONFIG_RUNDIR_NO };
enum config_linger { CONFIG_LINGER_NO, CONFIG_LINGER_YES, CONFIG_LINGER_MAYBE };

struct config {
	char socket_path[CONFIG_PATH_SIZE]; /* /run/dinit-userservd/control.sock */
	char state_dir[CONFIG_PATH_SIZE];   /* /run/dinit-userservd */
	char linger_dir[CONFIG_PATH_SIZE];  /* /var/lib/dinit-userservd/linger */
	char backend[CONFIG_PATH_SIZE];     /* dinit | runit | s6 | none | /abs/path */
	char rundir_path[CONFIG_PATH_SIZE]; /* /run/user/%u (%u uid, %g gid, %n name) */
	enum config_rundir manage_rundir;   /* auto */
	bool export_dbus_address;           /* yes */
	unsigned login_timeout;             /* 60 s; 0 = do not wait */
	unsigned stop_delay;                /* 10 s */
	unsigned stop_timeout;              /* 30 s */
	bool root_session;                  /* no */
	enum config_linger linger;          /* maybe */
	bool debug;                         /* no */

	/* Beyond the core table. */
	bool syslog;                 /* no: also log to syslog (daemon facility) */
	unsigned rundir_size;        /* 0: off; else MiB of a per-user tmpfs rundir */
	unsigned rundir_size_percent; /* rundir_size = N%: N% of RAM (rundir_size is then 0) */
	unsigned manager_log_size;   /* 1 MiB: bytes of a manager log before it is rotated; 0: no cap */
	unsigned restart_limit;      /* 5 failures within restart_window → failed */
	unsigned restart_window;     /* 60 s */
	unsigned max_connections;    /* 256 clients at once */
	unsigned max_connections_per_uid; /* 16 clients at once per non-root uid */
	bool use_cgroups;            /* yes: a cgroup2 subtree per user when available */
	unsigned tasks_max;          /* 0: no limit; else pids.max of each user's cgroup */
	unsigned long long memory_max; /* 0: no limit; else memory.max (bytes) of each user's cgroup */
	unsigned memory_max_percent; /* 1-100: memory.max is that % of RAM (memory_max is 0) */
	/* dinit_service_dirs = DIR [DIR...] (whitespace-separated; ~/ = $HOME) */
	char dinit_service_dirs[CONFIG_DIRS_MAX][CONFIG_PATH_SIZE];
	unsigned n_dinit_service_dirs;
	/* manager_env = NAME=VALUE, repeatable: extra manager environment */
	char manager_env[CONFIG_ENV_MAX][CONFIG_PATH_SIZE];
	unsigned n_manager_env;
	/* manager_classes = CLASS [CLASS...]: session classes that get a manager
	 * ("user"); stored one space between classes */
	char manager_classes[CONFIG_PATH_SIZE];
	bool user_linger; /* no: whether users may enable/disable their own linger */
	/* system_boot_dirs = DIR [DIR...] (dinit backend): autostart links for every
	 * user; stored one space between directories */
	char system_boot_dirs[CONFIG_PATH_SIZE];
};

/* Whether sessions of class cls start, wait for and keep a manager. */
bool config_class_has_manager(const struct config *cfg, const char *cls);

void config_defaults(struct config *cfg);

/*
 * Read path into *cfg (which must hold defaults or an earlier config).
 * Returns 0, or -1 with a message "path:line: what is wrong" in err.
 * On error *cfg is left unchanged.
 */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* Write every key with its current value, in config file syntax. */
void config_dump(const struct config *cfg, FILE *out);

#endif
