# SPDX-License-Identifier: BSD-2-Clause
"""The man pages say what the code does.

Every list checked here is extracted from the sources, not written down a
second time: a config key, CLI command or option, daemon option, signal or PAM
argument added to the code without documentation makes a test fail.

    /usr/bin/python3 -m pytest tests/docs

Needs nothing but python3 and pytest; the rendering test also needs scdoc
and man (it is skipped without them).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAN = REPO / "man"

CONFIG_C = REPO / "src/common/config.c"
DAEMON_MAIN_C = REPO / "src/daemon/main.c"
CTL_C = REPO / "src/ctl/dinit-userservctl.c"
PAM_C = REPO / "src/pam/pam_dinit_userservd.c"
DEFAULT_CONF = REPO / "data/dinit-userservd.conf"

CONF_PAGE = MAN / "dinit-userservd.conf.5.scd"
DAEMON_PAGE = MAN / "dinit-userservd.8.scd"
CTL_PAGE = MAN / "dinit-userservctl.1.scd"
PAM_PAGE = MAN / "pam_dinit_userservd.8.scd"


# ---- reading C sources ----------------------------------------------------

def read(path):
    return Path(path).read_text(encoding="utf-8")


def strip_c_comments(src):
    """Remove /* */ and // comments, keeping string and char literals intact."""
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c in "\"'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(src[i:j + 1])
            i = j + 1
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def balanced(src, open_at):
    """The text from the bracket at open_at to its partner (inclusive)."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    opening = src[open_at]
    closing = pairs[opening]
    depth = 0
    i = open_at
    while i < len(src):
        c = src[i]
        if c in "\"'":
            j = i + 1
            while j < len(src) and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            i = j + 1
            continue
        if c == opening:
            depth += 1
        elif c == closing:
            depth -= 1
            if depth == 0:
                return src[open_at:i + 1]
        i += 1
    raise AssertionError("unbalanced %r at offset %d" % (opening, open_at))


def function_body(src, name):
    """Body of the C function definition `name` (not a prototype or call)."""
    src = strip_c_comments(src)
    for m in re.finditer(r"\b%s\s*\(" % re.escape(name), src):
        params = balanced(src, m.end() - 1)
        after = m.end() - 1 + len(params)
        rest = src[after:]
        brace = re.match(r"\s*\{", rest)
        if brace:
            return balanced(src, after + brace.end() - 1)
    raise AssertionError("no definition of %s() found" % name)


def initializer(src, decl_regex):
    """The { ... } initializer of the array declared by decl_regex."""
    src = strip_c_comments(src)
    m = re.search(decl_regex + r"\s*=\s*\{", src)
    assert m, "no declaration matching %r" % decl_regex
    return balanced(src, m.end() - 1)


STRING_LITERAL = re.compile(r'"((?:[^"\\\n]|\\.)*)"')


def c_unescape(s):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), s)


def string_literals(code):
    return [c_unescape(s) for s in STRING_LITERAL.findall(code)]


def defines(src):
    return dict(re.findall(r"^#define\s+(\w+)\s+(\d+)\b", src, re.M))


OPTION_TOKEN = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def help_options(text):
    """The -x and --long options a usage/help text names."""
    return set(OPTION_TOKEN.findall(text))


def getopt_long_table(code):
    """Long option names and short option letters of a getopt_long call site."""
    longs = set(re.findall(r'\{\s*"([\w-]+)"\s*,\s*(?:no|required|optional)_argument', code))
    m = re.search(r'getopt_long\s*\([^,]+,[^,]+,\s*"([^"]*)"', code)
    assert m, "no getopt_long call"
    shorts = set(re.sub(r"[:+]", "", m.group(1)))
    return {"--" + name for name in longs}, {"-" + s for s in shorts}


# ---- what the sources say -------------------------------------------------

def config_keys():
    """[(name, kind, min, max)] from config.c's key table, in table order."""
    src = read(CONFIG_C)
    table = initializer(src, r"\bconfig_keys\s*\[\s*\]")
    consts = defines(src)
    keys = []
    for m in re.finditer(r"\b\w+\(\s*(\w+)\s*,\s*(KIND_\w+)\s*(?:,\s*(\w+)\s*,\s*(\w+)\s*)?\)",
                         table):
        lo, hi = m.group(3), m.group(4)
        lo = consts.get(lo, lo)
        hi = consts.get(hi, hi)
        keys.append((m.group(1), m.group(2), lo, hi))
    # Every entry of the table must have been understood, or a key written
    # another way would silently escape the checks below.
    assert len(keys) == len(re.findall(r"\bKIND_\w+", table)), \
        "config_keys[] has entries this test cannot parse:\n" + table
    assert len(keys) >= 13, "implausibly few config keys parsed: %r" % keys
    return keys


def config_defaults():
    """{key: default value as written in the config file} from config_defaults()."""
    src = read(CONFIG_C)
    body = function_body(src, "config_defaults")
    values = {}
    for key, value in re.findall(r'strcpy\(\s*cfg->(\w+)\s*,\s*"([^"]*)"\s*\)', body):
        values[key] = value
    for key, value in re.findall(r"\bcfg->(\w+)\s*=\s*([^;]+);", body):
        value = value.strip()
        if re.fullmatch(r"\d+", value):
            values[key] = value
        elif value in ("true", "false"):
            values[key] = "yes" if value == "true" else "no"
        elif re.fullmatch(r"CONFIG_[A-Z]+_([A-Z]+)", value):
            values[key] = value.rsplit("_", 1)[1].lower()
    dirs = initializer(src, r"\bdefault_service_dirs\s*\[\s*\]")
    values["dinit_service_dirs"] = " ".join(string_literals(dirs))
    keys = {k for k, *_ in config_keys()}
    return {k: v for k, v in values.items() if k in keys}


def ctl_commands():
    table = initializer(read(CTL_C), r"\bcommands\s*\[\s*\]")
    names = re.findall(r'\{\s*"([\w-]+)"\s*,', table)
    assert len(names) >= 9, "implausibly few commands parsed: %r" % names
    return names


def ctl_options():
    src = read(CTL_C)
    help_text = "".join(string_literals(function_body(src, "print_help")))
    longs, shorts = getopt_long_table(function_body(src, "main"))
    return help_options(help_text), longs | shorts


def internal_options(src):
    """Long options whose getopt table entry carries an /* internal... */ comment:
    left out of the usage on purpose (the man page must still describe them)."""
    return {"--" + name for name in re.findall(
        r'^\s*\{\s*"([\w-]+)"\s*,\s*\w+_argument[^\n]*/\*\s*internal\b', src, re.M)}


def daemon_options():
    src = read(DAEMON_MAIN_C)
    usage_text = "".join(string_literals(function_body(src, "usage")))
    longs, shorts = getopt_long_table(function_body(src, "main"))
    return usage_text, help_options(usage_text), longs | shorts


def pam_arguments():
    """Arguments args_parse() recognises: "socket=" for socket=PATH, "norundir"..."""
    body = function_body(read(PAM_C), "args_parse")
    args = re.findall(r'\bstrn?cmp\s*\(\s*\w+\s*,\s*"([^"]+)"', body)
    assert args, "no arguments parsed from args_parse()"
    return args


# ---- what the pages say ---------------------------------------------------

def page_section(path, title):
    """Text of the top-level '# TITLE' section of an scdoc page."""
    text = read(path)
    m = re.search(r"^# %s[ \t]*\n(.*?)(?=^# |\Z)" % re.escape(title), text, re.M | re.S)
    assert m, "%s has no '# %s' section" % (path.name, title)
    return m.group(1)


def term_entries(section_text):
    """[(term line, its indented description)] of an scdoc definition list."""
    entries = []
    lines = section_text.split("\n")
    for i, line in enumerate(lines):
        if not line or line[0] in " \t" or i + 1 >= len(lines):
            continue
        if not lines[i + 1].startswith("\t"):
            continue
        body = []
        for follow in lines[i + 1:]:
            if not follow.startswith("\t"):
                break
            body.append(follow.strip())
        entries.append((line, " ".join(body)))
    return entries


def bold_words(line):
    return re.findall(r"\*([^*\s][^*]*?)\*", line)


def terms(section_text):
    """Every bold word of every term line: '*-c*, *--config* _FILE_' -> -c, --config."""
    found = set()
    for line, _ in term_entries(section_text):
        found.update(bold_words(line))
    return found


def plain(text):
    """scdoc text without its markup: no *bold*, no _underline_ marks."""
    text = text.replace("*", "")
    text = re.sub(r"(?<![\w\\])_|_(?![\w])", "", text)
    text = text.replace("\\_", "_")
    return re.sub(r"\s+", " ", text)


def key_entries():
    """{key: plain text of its entry} of the KEYS section of the config page."""
    entries = {}
    for line, body in term_entries(page_section(CONF_PAGE, "KEYS")):
        m = re.match(r"\*(\w+)\* =", line)
        if m:
            entries[m.group(1)] = plain(line + " " + body)
    return entries


# ---- (a) config keys ------------------------------------------------------

def test_every_config_key_is_documented_in_the_config_page():
    documented = key_entries()
    missing = [k for k, *_ in config_keys() if k not in documented]
    assert not missing, "keys missing from the KEYS section of %s: %s" % (
        CONF_PAGE.name, ", ".join(missing))


def test_config_page_documents_no_key_the_parser_lacks():
    known = {k for k, *_ in config_keys()}
    stale = sorted(set(key_entries()) - known)
    assert not stale, "%s documents keys config.c does not know: %s" % (
        CONF_PAGE.name, ", ".join(stale))


def test_config_page_states_each_default():
    entries = key_entries()
    wrong = []
    for key, value in config_defaults().items():
        if key not in entries:
            continue  # reported by the test above
        if not re.search(r"Default: %s(?![\w/])" % re.escape(value), entries[key]):
            wrong.append("%s (code: %r)" % (key, value))
    assert not wrong, "%s: missing or wrong 'Default:' for %s" % (CONF_PAGE.name, ", ".join(wrong))


def test_config_page_states_each_numeric_range():
    entries = key_entries()
    wrong = []
    for key, _kind, lo, hi in config_keys():
        if lo is None or key not in entries:
            continue
        if not re.search(r"\bfrom %s to %s\b" % (lo, hi), entries[key], re.I):
            wrong.append("%s (code: %s..%s)" % (key, lo, hi))
    assert not wrong, "%s: missing or wrong 'from MIN to MAX' for %s" % (
        CONF_PAGE.name, ", ".join(wrong))


def default_conf_lines():
    """{key: value} of the (commented-out) settings in data/dinit-userservd.conf."""
    lines = {}
    for line in read(DEFAULT_CONF).splitlines():
        m = re.match(r"#?\s*(\w+)\s*=\s*(.*?)\s*$", line)
        if m:
            lines.setdefault(m.group(1), m.group(2))
    return lines


def test_every_config_key_is_in_the_default_config_file():
    present = default_conf_lines()
    missing = [k for k, *_ in config_keys() if k not in present]
    assert not missing, "keys missing from %s: %s" % (DEFAULT_CONF, ", ".join(missing))


def test_default_config_file_shows_the_defaults():
    present = default_conf_lines()
    wrong = ["%s = %s (code: %s)" % (k, present[k], v)
             for k, v in config_defaults().items() if k in present and present[k] != v]
    assert not wrong, "%s shows values that are not the defaults: %s" % (
        DEFAULT_CONF, "; ".join(wrong))


# ---- (b) dinit-userservctl ------------------------------------------------

def test_every_ctl_command_is_documented():
    documented = terms(page_section(CTL_PAGE, "COMMANDS"))
    missing = [c for c in ctl_commands() if c not in documented]
    assert not missing, "commands missing from the COMMANDS section of %s: %s" % (
        CTL_PAGE.name, ", ".join(missing))


def test_every_ctl_option_is_documented():
    in_help, in_code = ctl_options()
    documented = terms(page_section(CTL_PAGE, "OPTIONS"))
    missing = sorted((in_help | in_code) - documented)
    assert not missing, "options missing from the OPTIONS section of %s: %s" % (
        CTL_PAGE.name, ", ".join(missing))


def test_ctl_help_names_every_option_it_parses():
    in_help, in_code = ctl_options()
    missing = in_code - in_help - internal_options(read(CTL_C))
    assert not missing, "options dinit-userservctl parses but --help omits: %s" % (
        ", ".join(sorted(missing)))


# ---- (c) dinit-userservd --------------------------------------------------

def test_every_daemon_option_is_documented():
    _, in_usage, in_code = daemon_options()
    documented = terms(page_section(DAEMON_PAGE, "OPTIONS"))
    missing = sorted((in_usage | in_code) - documented)
    assert not missing, "options missing from the OPTIONS section of %s: %s" % (
        DAEMON_PAGE.name, ", ".join(missing))


def test_daemon_usage_names_every_option_it_parses():
    _, in_usage, in_code = daemon_options()
    missing = in_code - in_usage - internal_options(read(DAEMON_MAIN_C))
    assert not missing, "options dinit-userservd parses but its usage omits (mark an " \
        "internal one with /* internal */ in its getopt table entry): %s" % (
            ", ".join(sorted(missing)))


def test_every_daemon_signal_is_documented():
    usage_text, _, _ = daemon_options()
    signals = set(re.findall(r"\bSIG[A-Z]+\b", usage_text))
    assert signals, "no signals found in the daemon's usage text"
    documented = terms(page_section(DAEMON_PAGE, "SIGNALS"))
    missing = sorted(signals - documented)
    assert not missing, "signals missing from the SIGNALS section of %s: %s" % (
        DAEMON_PAGE.name, ", ".join(missing))


# ---- (d) PAM module -------------------------------------------------------

def test_every_pam_argument_is_documented():
    documented = terms(page_section(PAM_PAGE, "ARGUMENTS"))
    missing = [a for a in pam_arguments() if a not in documented]
    assert not missing, "arguments missing from the ARGUMENTS section of %s: %s" % (
        PAM_PAGE.name, ", ".join(missing))


def test_pam_synopsis_names_every_argument():
    synopsis = page_section(PAM_PAGE, "SYNOPSIS")
    missing = [a for a in pam_arguments() if a not in synopsis]
    assert not missing, "arguments missing from the SYNOPSIS of %s: %s" % (
        PAM_PAGE.name, ", ".join(missing))


# ---- (e) every page: sections, build, rendering ----------------------------

PAGES = sorted(MAN.glob("*.scd"))
REQUIRED_SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "EXAMPLES", "SEE ALSO")


def test_the_pages_are_there():
    names = {p.name for p in PAGES}
    for page in (CONF_PAGE, DAEMON_PAGE, CTL_PAGE, PAM_PAGE):
        assert page.name in names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_has_the_standard_sections(page):
    text = read(page)
    name = page.name[:-len(".scd")]  # dinit-userservd.conf.5
    title, section = name.rsplit(".", 1)
    assert text.startswith("%s(%s)\n" % (title, section)), \
        "%s must start with its title line '%s(%s)'" % (page.name, title, section)
    missing = [s for s in REQUIRED_SECTIONS if not re.search(r"^# %s\s*$" % s, text, re.M)]
    assert not missing, "%s lacks sections: %s" % (page.name, ", ".join(missing))


def test_meson_builds_every_page():
    build = read(MAN / "meson.build")
    listed = set(re.findall(r"'([^']+\.scd)'", build))
    missing = sorted({p.name for p in PAGES} - listed)
    assert not missing, "man/meson.build does not build: %s" % ", ".join(missing)


def have(program):
    return shutil.which(program) is not None


@pytest.mark.skipif(not have("scdoc") or not have("man"), reason="needs scdoc and man")
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_renders_without_warnings(page, tmp_path):
    out = tmp_path / page.name[:-len(".scd")]
    with open(page, "rb") as src, open(out, "wb") as dst:
        r = subprocess.run(["scdoc"], stdin=src, stdout=dst, stderr=subprocess.PIPE,
                           timeout=60)
    assert r.returncode == 0 and not r.stderr, "scdoc %s: exit %d: %s" % (
        page.name, r.returncode, r.stderr.decode(errors="replace"))

    env = dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat", LC_ALL="C.UTF-8")
    env.pop("MANOPT", None)
    r = subprocess.run(["man", "--warnings=w", "-l", str(out)], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    text = r.stdout.decode(errors="replace")
    assert r.returncode == 0, "man -l %s: exit %d" % (page.name, r.returncode)
    assert not r.stderr, "man -l %s warns:\n%s" % (page.name, r.stderr.decode(errors="replace"))
    assert "NAME" in text and "SEE ALSO" in text, "man -l %s rendered nothing useful" % page.name
