# SPDX-License-Identifier: BSD-2-Clause
"""Issue 16: `meson install --destdir` puts exactly the files README.md lists.

The "Installed files" table of README.md is the documented list: each row
names a path (for --prefix=/usr, libdir lib/x86_64-linux-gnu) and when it is
installed ("always", or the options that install it: `name` for a boolean or
feature that is on, `name=value`). For each scenario below the tree is
configured with meson setup in a scratch dir under the build dir, built,
installed with --destdir, and the files found there must be exactly the rows
whose condition holds, with the scenario's directory options applied.
Also: the programs answer --version with meson's project version, the
service files name the configured paths, and the PAM flavours are the right
files. No root needed (nothing is installed outside the scratch dirs).
"""
import os
import re
import shutil
import subprocess

import pytest

import sandbox as sb

README = os.path.join(sb.REPO, "README.md")
OPTIONS_FILE = os.path.join(sb.REPO, "meson_options.txt")
SCRATCH = os.path.join(sb.BUILD_DIR, "install-test")
BASE_ARGS = ["--prefix=/usr", "--libdir=lib/x86_64-linux-gnu"]

HAVE_SCDOC = shutil.which("scdoc") is not None

# name: (extra meson setup arguments, {documented path prefix: where it goes})
SCENARIOS = {
    "defaults": ([], {}),
    "all-on": (["-Dpam_service=debian", "-Dpam_configs=true", "-Ddinit_service=true",
                "-Drunit_service=true", "-Dopenrc_service=true", "-Ddbus_user_services=true",
                "-Dbash_completion=true", "-Dzsh_completion=true", "-Dfish_completion=true",
                "-Dman=" + ("enabled" if HAVE_SCDOC else "disabled"), "-Dtests=auto",
                "-Dpamdir=/usr/lib/pam.d",
                "-Dzsh_completion_dir=/usr/share/zsh/vendor-completions"],
               {"/etc/pam.d/": "/usr/lib/pam.d/",
                "/usr/share/zsh/site-functions/": "/usr/share/zsh/vendor-completions/"}),
    "all-off": (["-Dpam_service=none", "-Dpam_configs=false", "-Ddinit_service=false",
                 "-Drunit_service=false", "-Dopenrc_service=false",
                 "-Ddbus_user_services=false", "-Dbash_completion=false",
                 "-Dzsh_completion=false", "-Dfish_completion=false", "-Dman=disabled",
                 "-Dtests=disabled", "-Dsysconfdir=/srv/etc"],
                {"/etc/": "/srv/etc/"}),
}


def project_version():
    with open(os.path.join(sb.REPO, "meson.build")) as f:
        m = re.search(r"project\([^)]*\bversion:\s*'([^']+)'", f.read(), re.S)
    assert m
    return m.group(1)


def option_defaults():
    """{name: default} from meson_options.txt (strings, 'true'/'false' for booleans)."""
    with open(OPTIONS_FILE) as f:
        text = f.read()
    out = {}
    for m in re.finditer(r"option\('(\w+)',\s*type:\s*'(\w+)',[^)]*?value:\s*('([^']*)'|\w+)",
                         text):
        out[m.group(1)] = m.group(4) if m.group(4) is not None else m.group(3)
    assert len(out) == len(re.findall(r"^option\(", text, re.M)), out
    return out


def effective_options(args):
    opts = option_defaults()
    for a in args:
        if a.startswith("-D"):
            k, v = a[2:].split("=", 1)
            opts[k] = v
    return opts


def documented_files():
    """[(path, condition)] of README.md's "Installed files" table."""
    with open(README) as f:
        text = f.read()
    section = text.split("### Installed files", 1)[1].split("\n#", 1)[0]
    rows = []
    for line in section.splitlines():
        m = re.match(r"\| `(/[^`]+)` \| ([^|]+) \|", line)
        if m:
            rows.append((m.group(1), m.group(2).strip()))
    assert len(rows) >= 20, rows
    return rows


def holds(condition, opts):
    if condition == "always":
        return True
    terms = re.findall(r"`([^`]+)`", condition)
    assert terms, "cannot read the condition %r" % condition
    for term in terms:
        name, _, value = term.partition("=")
        assert name in opts, "README names an unknown option %r" % name
        have = opts[name]
        if value:
            if have == value:
                return True
        elif have in ("true", "enabled") or (have == "auto" and name == "man" and HAVE_SCDOC):
            return True
    return False


def relocate(path, moves):
    for old, new in moves.items():
        if path.startswith(old):
            return new + path[len(old):]
    return path


def install(name, args):
    build = os.path.join(SCRATCH, name)
    dest = os.path.join(SCRATCH, name + "-root")
    shutil.rmtree(build, ignore_errors=True)
    shutil.rmtree(dest, ignore_errors=True)
    for argv in (["meson", "setup"] + BASE_ARGS + args + [build, sb.REPO],
                 ["ninja", "-C", build],
                 ["meson", "install", "-C", build, "--no-rebuild", "--destdir", dest]):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, "%s: exit %d\n%s\n%s" % (" ".join(argv), r.returncode,
                                                          r.stdout[-4000:], r.stderr[-4000:])
    found = set()
    for root, dirs, files in os.walk(dest):
        for f in files:
            found.add("/" + os.path.relpath(os.path.join(root, f), dest))
        for d in dirs:
            p = os.path.join(root, d)
            if os.path.islink(p):
                found.add("/" + os.path.relpath(p, dest))
    return build, dest, found


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def installed(request):
    name = request.param
    args, moves = SCENARIOS[name]
    build, dest, found = install(name, args)
    yield name, effective_options(args), moves, build, dest, found
    shutil.rmtree(build, ignore_errors=True)
    shutil.rmtree(dest, ignore_errors=True)


def test_installed_files_are_the_documented_ones(installed):
    name, opts, moves, _, _, found = installed
    expected = {relocate(p, moves) for p, cond in documented_files() if holds(cond, opts)}
    assert found == expected, "%s: installed but not documented: %s; documented but not " \
        "installed: %s" % (name, sorted(found - expected), sorted(expected - found))


def test_every_option_is_documented_with_its_default():
    with open(README) as f:
        text = f.read()
    table = text.split("### Build options", 1)[1].split("\n#", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", table, re.M))
    for name, default in option_defaults().items():
        assert name in rows, "option %s missing from README's build options table" % name
        if default:  # '' defaults are described (e.g. LIBDIR/security)
            assert rows[name] == default, "%s: README says %r, meson_options.txt %r" % (
                name, rows[name], default)


def test_programs_answer_version(installed):
    name, _, _, _, dest, found = installed
    version = project_version()
    programs = [p for p in found if p.startswith(("/usr/sbin/", "/usr/bin/",
                                                  "/usr/libexec/dinit-userservd/"))]
    assert len(programs) == 9, programs
    for p in programs:
        r = subprocess.run([dest + p, "--version"], capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, (p, r.stderr)
        assert re.fullmatch(r"(dinit-userservd|dinit-userservctl)( [a-z-]+)? %s\n" % re.escape(version),
                            r.stdout), (p, r.stdout)
    # the PAM module carries it for its debug line
    with open(dest + "/usr/lib/x86_64-linux-gnu/security/pam_dinit_userservd.so", "rb") as f:
        assert version.encode() + b"\0" in f.read()


def test_installed_contents(installed):
    name, opts, moves, _, dest, found = installed
    sysconfdir = "/srv/etc" if name == "all-off" else "/etc"
    # the daemon reads the config under the configured sysconfdir
    r = subprocess.run([dest + "/usr/sbin/dinit-userservd", "--help"], capture_output=True,
                       text=True, timeout=10)
    assert "(default %s/dinit-userservd.conf)" % sysconfdir in r.stdout, r.stdout
    if "/etc/dinit.d/dinit-userservd" in found:
        with open(dest + "/etc/dinit.d/dinit-userservd") as f:
            assert "command = /usr/sbin/dinit-userservd --ready-fd 3\n" in f.read()
    if "/etc/sv/dinit-userservd/run" in found:
        assert os.access(dest + "/etc/sv/dinit-userservd/run", os.X_OK)
        with open(dest + "/etc/sv/dinit-userservd/run") as f:
            assert "exec /usr/sbin/dinit-userservd 2>&1\n" in f.read()
    if "/etc/init.d/dinit-userservd" in found:
        assert os.access(dest + "/etc/init.d/dinit-userservd", os.X_OK)
    pam = opts["pamdir"] + "/dinit-userservd"
    # the daemon looks for the managers' PAM service where it is installed
    with open(dest + "/usr/sbin/dinit-userservd", "rb") as f:
        assert pam.encode() + b"\0" in f.read(), pam
    if pam in found:
        with open(dest + pam) as f:
            text = f.read()
        debian = opts["pam_service"] == "debian"
        assert ("@include common-account" in text) == debian
        assert ("@include common-session-noninteractive" in text) == debian
        assert "pam_dinit_userservd" not in re.sub(r"#.*", "", text)
    if "/usr/share/pam-configs/dinit-userservd" in found:
        with open(dest + "/usr/share/pam-configs/dinit-userservd") as f:
            text = f.read()
        assert re.search(r"^Session-Interactive-Only: yes$", text, re.M)
        assert re.search(r"^Session:\n\toptional\tpam_dinit_userservd\.so\n", text, re.M)


def test_pam_auth_update_reads_the_profile():
    """Debian's own parser (pam-auth-update's parse_pam_profile) sees the fields."""
    if not os.path.exists("/usr/sbin/pam-auth-update"):
        pytest.skip("no pam-auth-update here")
    profile = os.path.join(sb.REPO, "data", "pam-configs", "dinit-userservd")
    script = r'''
my %profile;
my $fieldname;
open(PROFILE, $ARGV[0]) || die;
while (<PROFILE>) {
    if (/^(\S+):\s+(.*)\s*$/) { $fieldname = $1; $profile{$fieldname} = $2; }
    else { chomp; s/^\s+//; s/\s+$//; $profile{$fieldname} .= "\n$_" if ($_);
           $profile{$fieldname} =~ s/^[\n\s]+//; }
}
for my $k (sort grep { $_ ne "" } keys %profile) { print "$k=$profile{$k}\n"; }
'''
    # the same parsing as /usr/sbin/pam-auth-update's parse_pam_profile
    with open("/usr/sbin/pam-auth-update") as f:
        assert r"if (/^(\S+):\s+(.*)\s*$/) {" in f.read()
    r = subprocess.run(["perl", "-e", script, profile], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0, r.stderr
    fields = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert fields["Session-Interactive-Only"] == "yes"
    assert fields["Session-Type"] == "Additional"
    assert fields["Priority"] == "0"
    assert fields["Session"] == "optional\tpam_dinit_userservd.so"
    assert set(fields) == {"Name", "Default", "Priority", "Session-Interactive-Only",
                           "Session-Type", "Session"}, fields


def test_reexec_without_a_daemon_exits_3(tmp_path):
    """The upgrade step's case: no daemon running is status 3, with a clear line."""
    r = subprocess.run([sb.CTL, "--socket", str(tmp_path / "control.sock"), "reexec"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert "dinit-userservd is probably not running" in r.stderr
    assert r.stdout == ""
