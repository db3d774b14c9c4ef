/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Control protocol shared by the daemon, the PAM module and the CLI.
 *
 * Transport: AF_UNIX SOCK_SEQPACKET at socket_path, one message per packet,
 * at most PROTO_MSG_MAX bytes. A peer's identity is only ever taken from
 * SO_PEERCRED, never from a message.
 *
 * Wire format (all integers little-endian):
 *   header   u16 version (PROTO_VERSION), u16 type (enum proto_type)
 *   fields   in the fixed order of the message's struct below;
 *            u32/i32/u64 as written, strings as u16 length + bytes
 *            (no NUL, no control characters, length < the field's size).
 * A packet with trailing bytes, a short field, a string too long for its
 * field or an unknown type/version is rejected whole (proto_decode < 0).
 *
 * Message table (who sends it → reply):
 *   OPEN_SESSION   pam → daemon (root only)   → OPEN_REPLY (READY | FAILED),
 *                  or OPEN_REPLY WAIT first, then READY | FAILED later
 *   CLOSE_SESSION  pam → daemon (root only)   → RESULT
 *   LIST_USERS     any → daemon               → USER_INFO * n, END
 *   LIST_SESSIONS  any → daemon               → SESSION_INFO * n, END
 *   STATUS         any → daemon               → USER_INFO, SESSION_INFO * n, END
 *                                               or RESULT (error)
 *   CONTROL        any → daemon (changes need root; some ops allow the user
 *                  themselves, see server.c) → RESULT
 *   TERMINATE      any → daemon (root, or the session's own user) → RESULT
 *   ENV SET/UNSET  any → daemon (root, or for oneself) → RESULT
 *   ENV SHOW       any → daemon (root, or for oneself) → ENV LIST * n, END
 *                                               or RESULT (error)
 *   RESULT         daemon → any: also the answer to any invalid request
 *
 * Versions: any change of a message's fields changes PROTO_VERSION, so that
 * peers of different versions refuse each other's packets whole instead of
 * misreading them. Version 2 added the session class, type, seat and VT to
 * OPEN_SESSION and SESSION_INFO, and the TERMINATE and ENV messages.
 */
#ifndef DUS_PROTO_H
#define DUS_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROTO_VERSION 2
/* The control socket's path unless configured otherwise (socket_path, --socket, socket=). */
#define PROTO_SOCKET_DEFAULT "/run/dinit-userservd/control.sock"
#define PROTO_MSG_MAX 4096

/* Field sizes, including the terminating NUL of the decoded string. */
#define PROTO_NAME_SIZE 256  /* user names */
#define PROTO_FIELD_SIZE 128 /* PAM service, tty, state names */
#define PROTO_HOST_SIZE 256  /* rhost */
#define PROTO_PATH_SIZE 1024 /* paths, addresses */
#define PROTO_TEXT_SIZE 256  /* human-readable messages */
#define PROTO_TOKEN_SIZE 32  /* session class, type, seat: [A-Za-z0-9_-] */
#define PROTO_VTNR_MAX 65535
#define PROTO_ENV_VAR_MAX 1021 /* one NAME=VALUE (dinit's own limit) */
#define PROTO_ENV_DATA_SIZE 3800 /* every string of one ENV message, NUL-separated */

enum proto_type {
	PROTO_OPEN_SESSION = 1,
	PROTO_OPEN_REPLY = 2,
	PROTO_CLOSE_SESSION = 3,
	PROTO_RESULT = 4,
	PROTO_LIST_USERS = 5,
	PROTO_LIST_SESSIONS = 6,
	PROTO_STATUS = 7,
	PROTO_USER_INFO = 8,
	PROTO_SESSION_INFO = 9,
	PROTO_END = 10,
	PROTO_CONTROL = 11,
	PROTO_TERMINATE = 12,
	PROTO_ENV = 13,
};

/* proto_open_session.flags */
#define PROTO_OPEN_REMOTE 0x1   /* PAM_RHOST set to a remote host */
#define PROTO_OPEN_NORUNDIR 0x2 /* module argument norundir */
#define PROTO_OPEN_FLAGS_ALL 0x3

struct proto_open_session {
	char user[PROTO_NAME_SIZE]; /* PAM_USER; the daemon resolves it itself */
	char service[PROTO_FIELD_SIZE];
	char tty[PROTO_FIELD_SIZE];
	char rhost[PROTO_HOST_SIZE];
	uint32_t flags;
	/* XDG_RUNTIME_DIR already set earlier in the PAM stack, or "". */
	char rundir[PROTO_PATH_SIZE];
	/* Session context: tokens, "" when unknown (class "" means "user"). */
	char session_class[PROTO_TOKEN_SIZE];
	char session_type[PROTO_TOKEN_SIZE];
	char seat[PROTO_TOKEN_SIZE];
	uint32_t vtnr; /* 0: none, else at most PROTO_VTNR_MAX */
};

enum proto_open_status {
	PROTO_OPEN_READY = 0,  /* manager ready: the login may go on */
	PROTO_OPEN_WAIT = 1,   /* accepted, wait up to timeout_ms for READY/FAILED */
	PROTO_OPEN_FAILED = 2, /* session not usable: message says why */
};

struct proto_open_reply {
	uint32_t status; /* enum proto_open_status */
	uint64_t session_id;
	uint32_t timeout_ms; /* with WAIT: how long the login should wait */
	char rundir[PROTO_PATH_SIZE];       /* export as XDG_RUNTIME_DIR, or "" */
	char dbus_address[PROTO_PATH_SIZE]; /* export as DBUS_SESSION_BUS_ADDRESS, or "" */
	char message[PROTO_TEXT_SIZE];
};

struct proto_close_session {
	uint64_t session_id;
};

struct proto_result {
	int32_t code; /* 0 on success, else a positive errno value */
	char message[PROTO_TEXT_SIZE];
};

struct proto_status {
	char user[PROTO_NAME_SIZE]; /* a name, or a decimal uid */
};

enum proto_control_op {
	PROTO_CTL_ENABLE_LINGER = 1,
	PROTO_CTL_DISABLE_LINGER = 2,
	PROTO_CTL_STOP_USER = 3,
	PROTO_CTL_RESTART_USER = 4,
	PROTO_CTL_RELOAD = 5, /* user ignored */
	PROTO_CTL_REEXEC = 6, /* user ignored */
	PROTO_CTL_OP_MAX = 6,
};

struct proto_control {
	uint32_t op; /* enum proto_control_op */
	char user[PROTO_NAME_SIZE];
};

struct proto_user_info {
	uint32_t uid;
	uint32_t gid;
	char name[PROTO_NAME_SIZE];
	char state[PROTO_FIELD_SIZE]; /* starting, ready, stopping, stopped, failed, waiting */
	int32_t manager_pid;          /* 0: none */
	char backend[PROTO_PATH_SIZE];
	uint64_t since; /* unix time of the last state change */
	uint32_t restarts;
	char last_failure[PROTO_TEXT_SIZE];
	char rundir[PROTO_PATH_SIZE]; /* "" when none */
	uint32_t linger;              /* 0 or 1 */
	uint32_t sessions;            /* number of sessions */
};

struct proto_session_info {
	uint64_t id;
	uint32_t uid;
	char user[PROTO_NAME_SIZE];
	char service[PROTO_FIELD_SIZE];
	char tty[PROTO_FIELD_SIZE];
	char rhost[PROTO_HOST_SIZE];
	uint32_t flags; /* PROTO_OPEN_* */
	int32_t pid;    /* the process that opened the session */
	uint64_t since; /* unix time the session was opened */
	char session_class[PROTO_TOKEN_SIZE]; /* never "" */
	char session_type[PROTO_TOKEN_SIZE];
	char seat[PROTO_TOKEN_SIZE];
	uint32_t vtnr;
};

/* TERMINATE: end session_id (root, or the session's own user). */
struct proto_terminate {
	uint64_t session_id;
};

enum proto_env_op {
	PROTO_ENV_SET = 1,   /* vars: NAME=VALUE each */
	PROTO_ENV_UNSET = 2, /* vars: NAME each */
	PROTO_ENV_SHOW = 3,  /* no vars; answered with LIST messages, then END */
	PROTO_ENV_LIST = 4,  /* daemon → client: NAME=VALUE each */
	PROTO_ENV_OP_MAX = 4,
};

struct proto_env {
	uint32_t op;                /* enum proto_env_op */
	char user[PROTO_NAME_SIZE]; /* a name or decimal uid; "" = the caller */
	uint32_t count;             /* strings in vars */
	/* count NUL-terminated strings, back to back; NAME is [A-Za-z_][A-Za-z0-9_]*,
	 * a string is at most PROTO_ENV_VAR_MAX bytes without control characters. */
	char vars[PROTO_ENV_DATA_SIZE];
};

struct proto_msg {
	uint16_t type; /* enum proto_type */
	union {
		struct proto_open_session open;
		struct proto_open_reply open_reply;
		struct proto_close_session close;
		struct proto_result result;
		struct proto_status status;
		struct proto_control control;
		struct proto_user_info user;
		struct proto_session_info session;
		struct proto_terminate terminate;
		struct proto_env env;
		/* LIST_USERS, LIST_SESSIONS, END: no fields */
	} u;
};

/*
 * Encode msg into buf (cap bytes). Returns the packet length, or -1 when a
 * string is not valid for its field or the packet would exceed cap.
 */
ssize_t proto_encode(const struct proto_msg *msg, void *buf, size_t cap);

/*
 * Decode one packet. Returns 0 and fills *msg (strings NUL-terminated), or
 * -1 when the packet is malformed in any way; *msg is then unspecified.
 */
int proto_decode(const void *buf, size_t len, struct proto_msg *msg);

/* Name of a message type for logs, "unknown" for anything else. */
const char *proto_type_name(unsigned type);

/* Whether s is a valid session class/type/seat token ("" included). */
int proto_token_valid(const char *s);
/* Whether the first len bytes of s are an environment variable name. */
int proto_env_name_valid(const char *s, size_t len);
/*
 * Append one string to an ENV message's vars (count and the used length are
 * tracked by the caller through *used). 0, or -1 when it does not fit.
 */
int proto_env_append(struct proto_env *env, size_t *used, const char *var);

/* Copy a C string into a fixed field, truncating; always NUL-terminates. */
void proto_strlcpy(char *dst, const char *src, size_t size);

#endif
