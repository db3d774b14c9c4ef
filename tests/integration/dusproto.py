#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""An independent Python client of the dinit-userservd control protocol
(src/common/proto.h), for tests that must send what the real clients never
send: requests from unprivileged users, garbage, truncated and oversized
packets. Runs inside the sandbox.

Wire format: AF_UNIX SOCK_SEQPACKET, one message per packet, at most 4096
bytes; little-endian; header u16 version, u16 type; fields in struct order;
strings are u16 length + bytes.

Command line (prints one JSON document on stdout):
    dusproto.py SOCKET open USER [SERVICE [TTY]]
        OPEN_SESSION on one connection, then (whatever the answer) LIST_SESSIONS
        on another while the session may exist, then CLOSE_SESSION when a
        session id was given, then LIST_SESSIONS again:
        {"replies": [...], "sessions_while_open": [...], "close": {...}|null,
         "sessions_after": [...]}
    dusproto.py SOCKET raw HEX [HEX...]    (or raw - : one HEX per line on stdin)
        send each packet (hex) on its own connection; for each, every reply until
        EOF, 2 s of silence, or 0.2 s of silence after a reply: {"results": [{"replies": [...], "eof": bool,
        "error": str|null}, ...], "serving": bool}; serving: a LIST_SESSIONS on a
        fresh connection afterwards still got its END.
    dusproto.py SOCKET hog N
        open N connections and send nothing; print {"opened": K} (K of N
        connected) and keep them until stdin ends; then print whether each
        of them had been closed by the daemon: {"closed_by_daemon": C}
    dusproto.py SOCKET list-sessions | list-users
"""
import select
import json
import socket
import struct
import sys

VERSION = 2
MSG_MAX = 4096

OPEN_SESSION, OPEN_REPLY, CLOSE_SESSION, RESULT, LIST_USERS, LIST_SESSIONS, STATUS, \
    USER_INFO, SESSION_INFO, END, CONTROL, TERMINATE = range(1, 13)
TYPE_NAMES = {1: "OPEN_SESSION", 2: "OPEN_REPLY", 3: "CLOSE_SESSION", 4: "RESULT",
              5: "LIST_USERS", 6: "LIST_SESSIONS", 7: "STATUS", 8: "USER_INFO",
              9: "SESSION_INFO", 10: "END", 11: "CONTROL", 12: "TERMINATE"}
OPEN_READY, OPEN_WAIT, OPEN_FAILED = 0, 1, 2

# (kind, name) per message, in wire order; kind: s string, u32, i32, u64.
FIELDS = {
    OPEN_SESSION: [("s", "user"), ("s", "service"), ("s", "tty"), ("s", "rhost"),
                   ("u32", "flags"), ("s", "rundir"), ("s", "session_class"),
                   ("s", "session_type"), ("s", "seat"), ("u32", "vtnr")],
    OPEN_REPLY: [("u32", "status"), ("u64", "session_id"), ("u32", "timeout_ms"),
                 ("s", "rundir"), ("s", "dbus_address"), ("s", "message")],
    CLOSE_SESSION: [("u64", "session_id")],
    RESULT: [("i32", "code"), ("s", "message")],
    LIST_USERS: [], LIST_SESSIONS: [], END: [],
    STATUS: [("s", "user")],
    CONTROL: [("u32", "op"), ("s", "user")],
    USER_INFO: [("u32", "uid"), ("u32", "gid"), ("s", "name"), ("s", "state"),
                ("i32", "manager_pid"), ("s", "backend"), ("u64", "since"),
                ("u32", "restarts"), ("s", "last_failure"), ("s", "rundir"),
                ("u32", "linger"), ("u32", "sessions")],
    SESSION_INFO: [("u64", "id"), ("u32", "uid"), ("s", "user"), ("s", "service"),
                   ("s", "tty"), ("s", "rhost"), ("u32", "flags"), ("i32", "pid"),
                   ("u64", "since"), ("s", "session_class"), ("s", "session_type"),
                   ("s", "seat"), ("u32", "vtnr")],
    TERMINATE: [("u64", "session_id")],
}
FMT = {"u32": "<I", "i32": "<i", "u64": "<Q"}


def encode(mtype, version=VERSION, **values):
    """Encode a message; missing fields are 0 / "". No validation: tests use
    this to build bad packets too."""
    out = struct.pack("<HH", version, mtype)
    for kind, name in FIELDS.get(mtype, []):
        v = values.get(name)
        if kind == "s":
            b = (v or "").encode() if not isinstance(v, bytes) else v
            out += struct.pack("<H", len(b)) + b
        else:
            out += struct.pack(FMT[kind], v or 0)
    return out


def decode(packet):
    """Decode a packet into a dict (type name in "type"); raises ValueError."""
    if len(packet) < 4:
        raise ValueError("short packet (%d bytes)" % len(packet))
    version, mtype = struct.unpack_from("<HH", packet)
    if version != VERSION:
        raise ValueError("version %d" % version)
    if mtype not in FIELDS:
        raise ValueError("unknown type %d" % mtype)
    msg = {"type": TYPE_NAMES[mtype]}
    pos = 4
    for kind, name in FIELDS[mtype]:
        if kind == "s":
            (n,) = struct.unpack_from("<H", packet, pos)
            pos += 2
            if pos + n > len(packet):
                raise ValueError("short string %s" % name)
            msg[name] = packet[pos:pos + n].decode(errors="replace")
            pos += n
        else:
            size = struct.calcsize(FMT[kind])
            if pos + size > len(packet):
                raise ValueError("short field %s" % name)
            (msg[name],) = struct.unpack_from(FMT[kind], packet, pos)
            pos += size
    if pos != len(packet):
        raise ValueError("%d trailing bytes" % (len(packet) - pos))
    return msg


class Conn:
    def __init__(self, path, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        self.sock.settimeout(timeout)
        self.sock.connect(path)

    def send(self, data):
        self.sock.send(data)

    def recv(self):
        """Next message as a dict, or None at EOF. Raises socket.timeout."""
        data, _, flags, _ = self.sock.recvmsg(MSG_MAX + 1)
        if not data:
            return None
        if len(data) > MSG_MAX:
            raise ValueError("oversized reply")
        return decode(data)

    def close(self):
        self.sock.close()


def request_list(path, mtype):
    c = Conn(path)
    try:
        c.send(encode(mtype))
        items = []
        while True:
            m = c.recv()
            if m is None:
                raise ValueError("EOF before END")
            if m["type"] == "END":
                return items
            if m["type"] == "RESULT":
                raise ValueError("error %d: %s" % (m["code"], m["message"]))
            items.append(m)
    finally:
        c.close()


def cmd_open(path, user, service="dus-test", tty=""):
    c = Conn(path, timeout=15)
    replies = []
    c.send(encode(OPEN_SESSION, user=user, service=service, tty=tty))
    session_id = None
    while True:
        try:
            m = c.recv()
        except socket.timeout:
            replies.append({"type": "TIMEOUT"})
            break
        except ConnectionResetError:
            m = None
        if m is None:
            replies.append({"type": "EOF"})
            break
        replies.append(m)
        if m["type"] == "OPEN_REPLY" and m["status"] == OPEN_WAIT:
            continue
        if m["type"] == "OPEN_REPLY" and m["status"] == OPEN_READY:
            session_id = m["session_id"]
        break
    result = {"replies": replies, "sessions_while_open": request_list(path, LIST_SESSIONS)}
    result["close"] = None
    if session_id is not None:
        cc = Conn(path)
        cc.send(encode(CLOSE_SESSION, session_id=session_id))
        result["close"] = cc.recv()
        cc.close()
    c.close()
    result["sessions_after"] = request_list(path, LIST_SESSIONS)
    return result


def cmd_raw(path, packets):
    results = []
    for p in packets:
        r = {"replies": [], "eof": False, "error": None}
        try:
            c = Conn(path, timeout=2)
            try:
                c.send(p)
                while True:
                    m = c.recv()
                    if m is None:
                        r["eof"] = True
                        break
                    r["replies"].append(m)
                    # After the answer, only a short look for more or EOF.
                    c.sock.settimeout(0.2)
            except socket.timeout:
                pass
            except (ConnectionResetError, BrokenPipeError) as e:
                r["eof"] = True
                r["error"] = str(e)
            except (OSError, ValueError) as e:
                r["error"] = "%s: %s" % (type(e).__name__, e)
            c.close()
        except OSError as e:
            r["error"] = "connect: %s" % e
        results.append(r)
    try:
        request_list(path, LIST_SESSIONS)
        serving = True
    except (OSError, ValueError):
        serving = False
    return {"results": results, "serving": serving}


def cmd_hog(path, n):
    conns = []
    for _ in range(n):
        try:
            conns.append(Conn(path, timeout=2))
        except OSError:
            pass
    sys.stdout.write(json.dumps({"opened": len(conns)}) + "\n")
    sys.stdout.flush()
    sys.stdin.read()
    closed = 0
    for c in conns:
        p = select.poll()
        p.register(c.sock, select.POLLIN)
        if p.poll(0):
            try:
                if not c.sock.recv(MSG_MAX + 1, socket.MSG_DONTWAIT):
                    closed += 1
            except OSError:
                closed += 1
        c.close()
    sys.stdout.write(json.dumps({"closed_by_daemon": closed}) + "\n")
    return 0


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    path, cmd = argv[0], argv[1]
    if cmd == "open":
        out = cmd_open(path, *argv[2:])
    elif cmd == "raw":
        hexes = argv[2:]
        if hexes == ["-"]:
            hexes = sys.stdin.read().split()
        out = cmd_raw(path, [bytes.fromhex(h) for h in hexes])
    elif cmd == "hog":
        return cmd_hog(path, int(argv[2]))
    elif cmd == "list-sessions":
        out = request_list(path, LIST_SESSIONS)
    elif cmd == "list-users":
        out = request_list(path, LIST_USERS)
    else:
        sys.stderr.write("unknown command %s\n" % cmd)
        return 2
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
