# SPDX-License-Identifier: BSD-2-Clause
"""Issue 16: the shell completions of dinit-userservctl.

The bash one is driven as bash drives it: the file is sourced, `complete -p`
must name its function, and the function is called with COMP_WORDS and
COMP_CWORD set; COMPREPLY is what the user would be offered. COMP_WORDS[0]
is the built CLI, so the session ids come from the real `list-sessions
--json` of a running daemon (in a sandbox). The zsh and fish files are
checked for the same command list (neither shell is installed here).
"""
import re
import shlex
import subprocess
from pathlib import Path

import pytest

import sandbox as sb

pytestmark = pytest.mark.needs_build

COMPLETIONS = Path(sb.REPO) / "data" / "completions"
BASH = COMPLETIONS / "dinit-userservctl.bash"
ZSH = COMPLETIONS / "_dinit-userservctl"
FISH = COMPLETIONS / "dinit-userservctl.fish"

# Commands another branch adds in this release (DESIGN.md, contract
# additions); completed already, before the CLI knows them.
UPCOMING = {"setenv", "unsetenv", "import-environment", "show-environment",
            "terminate-session"}


def bash_script(words, cword=None, setup=""):
    """A bash script that completes `words` (the last one is the word under
    the cursor unless cword says otherwise) and prints COMPREPLY."""
    if cword is None:
        cword = len(words) - 1
    return "\n".join([
        "set -u",
        "source %s" % shlex.quote(str(BASH)),
        # what bash would run: the function complete -p names
        "spec=$(complete -p dinit-userservctl) || exit 10",
        'fn=$(printf "%s\\n" "$spec" | sed -n "s/.*-F \\([^ ]*\\) .*/\\1/p")',
        '[ -n "$fn" ] || exit 11',
        setup,
        "COMP_WORDS=(%s)" % " ".join(shlex.quote(w) for w in words),
        "COMP_CWORD=%d" % cword,
        'COMP_LINE="${COMP_WORDS[*]}"',
        "COMP_POINT=${#COMP_LINE}",
        'COMPREPLY=()',
        '"$fn" dinit-userservctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"',
        'printf "%s\\n" "${COMPREPLY[@]}"',
    ])


def complete(words, cword=None, setup="", env=None):
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", bash_script(words, cword, setup)],
                       capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode == 0, "bash exited %d: %s" % (r.returncode, r.stderr)
    return [w for w in r.stdout.split("\n") if w]


def cli_commands():
    """The commands the built CLI lists in its --help."""
    out = subprocess.run([sb.CTL, "--help"], capture_output=True, text=True, timeout=10).stdout
    section = out.split("Commands:", 1)[1]
    return set(re.findall(r"^  ([a-z][a-z-]+)", section, re.M))


def test_complete_p_names_the_function():
    r = subprocess.run(["bash", "--norc", "-c", "source %s; complete -p dinit-userservctl" %
                        shlex.quote(str(BASH))], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"complete -F _dinit_userservctl dinit-userservctl\n", r.stdout)


def test_first_word_offers_every_command():
    offered = set(complete([sb.CTL, ""]))
    commands = cli_commands()
    assert len(commands) >= 9
    assert commands <= offered, "commands not completed: %s" % sorted(commands - offered)
    assert offered == commands | UPCOMING, sorted(offered ^ (commands | UPCOMING))


def test_prefix_narrows_the_commands():
    assert sorted(complete([sb.CTL, "re"])) == ["reexec", "reload", "restart-user"]
    assert complete([sb.CTL, "--json", "list-s"]) == ["list-sessions"]


def test_options():
    assert set(complete([sb.CTL, "--"])) == {"--socket", "--json", "--help", "--version"}
    # --socket takes a path: files are completed, not commands
    offered = complete([sb.CTL, "--socket", str(BASH)[:-3]])
    assert offered == [str(BASH)[:-3] + "ash"]


def test_user_names_after_a_user_command():
    for command in ("status", "enable-linger", "disable-linger", "stop-user", "restart-user"):
        assert "root" in complete([sb.CTL, command, "ro"]), command
        # one USER only
        assert complete([sb.CTL, command, "root", "ro"]) == [], command
    assert complete([sb.CTL, "setenv", "-u", "ro"]) == ["root"]


def test_variable_names():
    env = {"PATH": "/usr/bin:/bin", "DUS_COMPLETION_VAR": "1"}
    assert complete([sb.CTL, "import-environment", "DUS_COMPL"], env=env) == ["DUS_COMPLETION_VAR"]
    assert complete([sb.CTL, "setenv", "DUS_COMPL"], env=env) == ["DUS_COMPLETION_VAR="]


def test_no_daemon_no_session_ids():
    # The CLI fails (nothing listens there): nothing offered, no error.
    assert complete([sb.CTL, "--socket", "/nonexistent/sock", "terminate-session", ""]) == []


def test_zsh_and_fish_know_the_same_commands():
    commands = cli_commands() | UPCOMING
    zsh = set(re.findall(r"^\t\t'([a-z-]+):", ZSH.read_text(), re.M))
    assert zsh == commands, sorted(zsh ^ commands)
    fish = set(re.findall(r"-a ([a-z-]+) -d", FISH.read_text()))
    assert fish == commands, sorted(fish ^ commands)
    assert ZSH.read_text().startswith("#compdef dinit-userservctl\n")


def test_session_ids_from_the_daemon(world):
    d = world.start_daemon()
    holds = [world.hold_pamtester(user) for user in ("user1", "user2")]
    try:
        ids = sorted(str(s["id"]) for s in d.sessions())
        assert len(ids) == 2
        r = world.run(["bash", "--norc", "--noprofile", "-c",
                       bash_script([sb.CTL, "terminate-session", ""])])
        assert r.returncode == 0, r.stderr
        assert sorted(r.stdout.split()) == ids
        # with --socket given, that socket is asked
        r = world.run(["bash", "--norc", "--noprofile", "-c",
                       bash_script([sb.CTL, "--socket", d.socket, "terminate-session", ""])])
        assert sorted(r.stdout.split()) == ids
        # one ID only
        r = world.run(["bash", "--norc", "--noprofile", "-c",
                       bash_script([sb.CTL, "terminate-session", ids[0], ""])])
        assert r.stdout.split() == []
    finally:
        for h in holds:
            h.release()
