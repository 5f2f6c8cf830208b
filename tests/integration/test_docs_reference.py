#!/usr/bin/env python3
"""test_docs_reference.py: the reference parts of the docs against what the programs do, so the
two cannot drift apart: every key of docs/CONFIG.md's reference with its default, bounds and
choices, the flags of --help, p1d.8 and the docs, the man pages as groff reads them, defaults
quoted in the prose, the schema in docs/STORE.md, the query parameters of docs/openapi.yaml, and
(from a running p1d with every fixture meter, a history and three publishers) the /metrics
names of docs/API.md, the MQTT topics and fields of docs/PUBLISHING.md, the /api/history fields
of docs/API.md and the reading members of docs/DECODE.md."""
import glob
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, Daemon, P1D, ROOT, be_telegram, free_port, http,  # noqa: E402
                            need_p1d, run, tmpdir, wait_for)
from mqtt_helpers import MOSQUITTO, Broker, Mqtt  # noqa: E402

DATA = os.path.join(ROOT, "tests", "data")
UNITS_MS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000}


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def duration_ms(text):
    """'90s', '1.5s', '500ms', '876000h', '0s' (as the reference and --check-config print them)."""
    m = re.fullmatch(r"([0-9.]+)(ms|s|m|h)?", text.strip())
    return round(float(m.group(1)) * UNITS_MS[m.group(2) or "s"]) if m else None


def table_cells(line):
    """The cells of a Markdown table row; `\\|` is a | inside a cell (GitHub's tables)."""
    s = line.strip()
    s = s[1:] if s.startswith("|") else s
    s = s[:-1] if s.endswith("|") and not s.endswith("\\|") else s
    return [x.strip() for x in re.split(r"(?<!\\)\|", s)]


def reference():
    """docs/CONFIG.md's key reference: [{section, key, flag, type, default, kinds}]."""
    keys, section = [], None
    for line in read("docs/CONFIG.md").split("\n"):
        m = re.match(r"### \[(\w+)", line)
        if m:
            section = m.group(1)
            continue
        cells = table_cells(line) if line.startswith("| `") else []
        if not section or not cells:
            continue
        if section == "source":  # key | type | default | applies to | meaning
            k = {"key": cells[0].strip("`"), "flag": None, "type": cells[1],
                 "default": cells[2], "kinds": cells[3]}
        else:  # key | flag | type | default | meaning
            k = {"key": cells[0].strip("`"), "flag": re.findall(r"--[a-z0-9-]+", cells[1])[0],
                 "type": cells[2], "default": cells[3], "kinds": None}
        k["section"] = section
        keys.append(k)
    return keys


def check_config(args):
    """p1d --check-config with a simulated meter unless args bring a source: (code, out, err)."""
    extra = [] if any(a == "--source" for a in args) else ["--source", "docs=sim"]
    return run(extra + args + ["--check-config"])


def setting(k, value):
    """The arguments that set reference key k to value: its flag, or a :key=value spec option on
    a source of a kind it applies to."""
    if k["flag"]:
        needs = {("alerts", "mqtt"): ["--mqtt-host", "127.0.0.1"]}  # "Needs [mqtt] host."
        return [k["flag"], value] + needs.get((k["section"], k["key"]), [])
    kind = k["kinds"].split(",")[0].strip()
    spec = {"all": "sim", "serial": "serial:/dev/p1d-docs-test", "tcp": "tcp:127.0.0.1:2001",
            "file": "file:/dev/null", "stdin": "stdin", "sim": "sim"}[kind]
    extra = {"skip_tag": ":key=00112233445566778899AABBCCDDEEFF",  # "Needs key."
             "reconnect_min": ":reconnect_max=1h",  # "not less than reconnect_min"
             "reconnect_max": ":reconnect_min=10ms"}.get(k["key"], "")
    return ["--source", "docs=%s%s:%s=%s" % (spec, extra, k["key"], value)]


def effective(out, section, key):
    """The value --check-config prints for [section] key (the first source for [source])."""
    cur = None
    for line in out.split("\n"):
        m = re.match(r"\[(\w+)", line)
        if m:
            cur = m.group(1)
        elif cur == section and line.startswith(key + " = "):
            return line[len(key) + 3:]
    return None


def values(k):
    """(accepted, refused) values for k from its documented type, or None when the type is a
    string (only its length is bounded)."""
    t = k["type"].replace("\\|", "|")
    m = re.match(r"an integer from (-?\d+) to (\d+)", t)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        return [str(lo), str(hi)], [str(lo - 1), str(hi + 1), "1.5", "ten"]
    m = re.match(r"(a whole number of seconds|a duration) from (\S+) to (\S+)", t)
    if m:
        whole = m.group(1).startswith("a whole")
        lo, hi = duration_ms(m.group(2)), duration_ms(m.group(3))
        step = 1000 if whole else 1
        bad = ["%dms" % (hi + step), "soon"] + (["%dms" % (lo - step)] if lo > 0 else [])
        if whole and hi - lo > 1000:
            bad.append("%dms" % (lo + 1500))  # a fraction of a second
        return ["%dms" % lo, "%dms" % hi], bad
    m = re.match(r"one of (\S+)", t)
    if m:
        return m.group(1).split("|"), ["bogus"]
    if t == "true or false":
        return ["true", "false", "yes", "no", "on", "off", "1", "0"], ["maybe"]
    return None


def test_config_reference(c):
    """Every key of docs/CONFIG.md's reference: its default is what p1d uses when the key is not
    set, and is accepted when given; the bounds and choices it documents are the ones p1d accepts,
    and a value beyond them is an error (exit 2) that names the key and repeats the type."""
    keys = reference()
    c.check("CONFIG.md has a reference of %d keys" % len(keys), len(keys) > 100, str(len(keys)))
    code, base, err = check_config(["--source", "docs=serial:/dev/p1d-docs-test",
                                    "--source", "tcp=tcp:127.0.0.1:2001"])
    wrong_default, wrong_accept, wrong_refuse = [], [], []
    for k in keys:
        name = "[%s] %s" % (k["section"], k["key"])
        if k["section"] != "source":
            shown = effective(base, k["section"], k["key"])
        elif k["key"] not in ("spec", "key_file"):  # the spec is given; key_file shows as key
            spec = setting(k, "x")[1].split("=", 1)[1].rsplit(":", 1)[0]
            shown = effective(check_config(["--source", "docs=" + spec])[1], "source", k["key"])
        dflt = "" if k["default"] == "empty" else k["default"].strip("`")
        if k["key"] not in ("spec", "key_file") and shown != dflt and not (
                duration_ms(dflt) is not None and duration_ms(shown or "x") == duration_ms(dflt)):
            wrong_default.append("%s: documented %r, p1d uses %r" % (name, dflt, shown))
        vals = values(k)
        if vals is None:
            m = re.match(r"a string of at most (\d+) bytes", k["type"])
            if m and k["key"] not in ("spec",):
                code, out, err = check_config(setting(k, "x" * (int(m.group(1)) + 1)))
                if code != 2 or "at most %s bytes" % m.group(1) not in err:
                    wrong_refuse.append("%s: %d %s" % (name, code, err.strip()[:160]))
            continue
        good, bad = vals
        if k["default"] != "empty":
            good = good + [k["default"].strip("`")]
        for v in good:
            code, out, err = check_config(setting(k, v))
            if code != 0:
                wrong_accept.append("%s = %s: %d %s" % (name, v, code, err.strip()[:200]))
        for v in bad:
            code, out, err = check_config(setting(k, v))
            said = k["flag"] or "%s = '%s'" % (k["key"], v)
            if code != 2 or said not in err or "expected" not in err:
                wrong_refuse.append("%s = %s: %d %s" % (name, v, code, err.strip()[:200]))
    c.check("every documented default is the one p1d uses", not wrong_default, str(wrong_default))
    c.check("every documented bound, choice and default is accepted", not wrong_accept,
            "\n".join(wrong_accept[:10]))
    c.check("a value beyond the documented type is refused, naming the key (exit 2)",
            not wrong_refuse, "\n".join(wrong_refuse[:10]))
    documented = {(k["section"], k["key"]) for k in keys}
    shown, cur = set(), None
    for line in base.split("\n"):
        m = re.match(r"\[(\w+)", line)
        if m:
            cur = m.group(1)
        m = re.match(r"([a-z_0-9]+) = ", line)
        if m and cur:
            shown.add((cur, m.group(1)))
    c.check("every key --check-config shows is in the reference", shown <= documented,
            str(sorted(shown - documented)))


def markdown_files():
    return ["README.md"] + ["docs/" + f for f in sorted(os.listdir(os.path.join(ROOT, "docs")))
                            if f.endswith(".md")]


def test_tables(c):
    """Every row of every Markdown table has the header's number of cells: a | in a cell (a list
    of choices such as auto|115200|9600) must be written \\| or the row falls apart on GitHub."""
    broken = []
    for doc in markdown_files():
        n, fence = None, False
        for i, line in enumerate(read(doc).split("\n")):
            if line.startswith("```"):
                fence = not fence
            if fence or not line.lstrip().startswith("|"):
                n = None
                continue
            cells = len(table_cells(line))
            if n is None:
                n = cells
            elif cells != n:
                broken.append("%s:%d: %d cells, the header has %d" % (doc, i + 1, cells, n))
    c.check("every Markdown table row has its header's cells", not broken, "\n".join(broken[:10]))


def help_flags():
    code, out, err = run(["--help"])
    return set(re.findall(r"(?:^|[ ,])(--?[a-z][a-z0-9-]*)", out, re.M))


def test_flags(c):
    """The flags of `p1d --help`, dist/p1d.8 and the docs are the same set: every flag the man
    page or a documented p1d command line uses exists, and every flag --help lists is in
    docs/CONFIG.md."""
    have = help_flags()
    c.check("p1d --help lists its flags", {"--source", "--config", "--db"} <= have, str(have))
    man = read("dist/p1d.8").replace("\\-", "-")
    unknown = sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", man)) - have)
    c.check("every flag of dist/p1d.8 is one p1d --help lists", not unknown, str(unknown))
    used = set()
    for doc in markdown_files():
        for line in re.findall(r"(?:^|`)(?:build/)?p1d (--?[^`\n]*)", read(doc), re.M):
            used |= set(re.findall(r"(?:^| )(--?[a-z][a-z0-9-]*)", line.split("  #")[0]))
    unknown = sorted(used - have)
    c.check("every flag of a p1d command line in the docs exists (%d)" % len(used), not unknown,
            str(unknown))
    config = set(re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", read("docs/CONFIG.md")))
    missing = sorted(have - config)
    c.check("every flag of p1d --help is in docs/CONFIG.md", not missing, str(missing))


def test_p1_options(c):
    """Every option `p1 COMMAND --help` lists is in dist/p1.1, in its long or its short form
    (test_docs_examples.py checks the other way round, the man page's synopsis against --help)."""
    p1 = os.path.join(os.path.dirname(P1D), "p1")
    man = re.sub(r"\\f[BIR]", "", read("dist/p1.1").replace("\\-", "-"))
    missing = []
    for cmd in ("decode", "sim", "bench", "import", "export", "backup", "prices"):
        p = subprocess.run([p1, cmd, "--help"], capture_output=True, timeout=10)
        for short, opt in re.findall(r"^ +(?:(-\w), )?(--[a-z0-9-]+)", p.stdout.decode(), re.M):
            if opt != "--help" and not any(re.search(r"(?<![\w-])%s(?![\w-])" % o, man)
                                           for o in (short, opt) if o):
                missing.append("p1 %s %s" % (cmd, opt))
    c.check("every option of p1 COMMAND --help is in p1.1", not missing, str(missing))


def test_command_lines(c, tmp):
    """Every p1d command line of README, docs/ and the man page's EXAMPLES is one --check-config
    accepts as written (the example configuration standing in for /etc/p1d.conf)."""
    lines = []
    for doc in markdown_files():
        lines += [(doc, x.split("  #")[0].strip()) for x in
                  re.findall(r"(?:^|`)(?:build/)?p1d (--[^`\n]*)", read(doc), re.M)]
    man = read("dist/p1d.8").replace("\\-", "-")
    examples = man[man.index(".SH EXAMPLES"):]
    lines += [("dist/p1d.8", x) for x in re.findall(r"^p1d (--.*)$", examples, re.M)]
    conf = os.path.join(tmp, "p1d.conf")
    with open(conf, "w") as f:  # its [store] db in a directory that exists
        f.write(read("dist/p1d.conf.example").replace("/var/lib/p1d/", tmp + "/"))
    tried, bad = 0, []
    for doc, line in lines:
        args = line.replace("/etc/p1d.conf", conf).split()
        if not any(a in ("--source", "--config") for a in args):
            continue  # --help, --version, --db PATH alone
        args = [os.path.join(tmp, a) if a.endswith(".db") else a for a in args]
        code, out, err = run(args + ([] if "--check-config" in args else ["--check-config"]))
        tried += 1
        if code != 0:
            bad.append("%s: p1d %s: %d %s" % (doc, line, code, err.strip()[:200]))
    c.check("every documented p1d command line passes --check-config (%d)" % tried,
            tried >= 10 and not bad, "\n".join(bad))


def test_man_pages(c):
    """groff reads the man pages without a warning: a text line that starts with '.' (such as
    '.fritz.box name') is taken for an unknown macro and silently dropped from the page."""
    if not shutil.which("groff"):
        print("SKIP: groff not installed, man pages not checked")
        return
    for page in sorted(glob.glob(os.path.join(ROOT, "dist", "*.[18]"))):
        p = subprocess.run(["groff", "-man", "-ww", "-z", page], capture_output=True, timeout=30)
        c.check("%s: groff -man -ww has no warnings" % os.path.relpath(page, ROOT),
                p.returncode == 0 and not p.stderr, p.stderr.decode()[:600])


def test_prose_defaults(c):
    """A default quoted in the prose, `[http] timeout` (30 s) or `detect_timeout` (12 s: ...),
    is the reference's default (of some key of that name when no section is given)."""
    dflt = {}
    for k in reference():
        if re.match(r"(an integer|a duration|a whole number)", k["type"]):
            dflt.setdefault(k["key"], {})[k["section"]] = k["default"].strip("`")
    unit = {"s": 1000, "ms": 1, "min": 60000, "minutes": 60000, "h": 3600000, "days": 86400000}
    seen, wrong = 0, []
    for doc in markdown_files() + ["dist/p1d.conf.example"]:
        for sec, key, num, u in re.findall(r"`(?:\[(\w+)\] )?(\w+)`,? \((?:default )?"
                                           r"([0-9][0-9.]*) ?(ms|s|min|minutes|h|days)?\b",
                                           read(doc)):
            cands = dflt.get(key, {})
            wants = [cands[sec]] if sec in cands else [] if sec else list(cands.values())
            if not wants:
                continue
            seen += 1
            if u or num == "0":
                ok = any(duration_ms(w) == round(float(num) * unit.get(u, 1)) for w in wants)
            else:
                ok = num in wants
            if not ok:
                wrong.append("%s: %s (%s %s), the default is %s" % (doc, key, num, u, wants))
    c.check("defaults quoted in the docs are the reference's (%d quoted)" % seen,
            seen >= 10 and not wrong, str(wrong))


def test_store_schema(c, db):
    """docs/STORE.md's schema names every table of a database p1d made, at its version."""
    con = sqlite3.connect(db)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    version = con.execute("PRAGMA user_version").fetchone()[0]
    con.close()
    text = read("docs/STORE.md")
    m = re.search(r"^## Schema \(version (\d+)\)\n\n```\n(.*?)```", text, re.M | re.S)
    if not c.check("STORE.md has the schema", m is not None):
        return
    c.check("STORE.md's schema version is the database's (%d)" % version,
            int(m.group(1)) == version, m.group(1))
    named = set(re.findall(r"^([a-z_0-9]+) +\(", m.group(2), re.M))
    named |= {x for line in re.findall(r"^(.*): the same columns", m.group(2), re.M)
              for x in re.findall(r"[a-z_0-9]+", line)}
    c.check("STORE.md's schema lists every table", named == tables,
            "undocumented %s, not made %s" % (sorted(tables - named), sorted(named - tables)))


def test_openapi_parameters(c):
    """Every query parameter p1d reads is in docs/openapi.yaml, and in docs/API.md."""
    try:
        import yaml
    except ImportError:
        print("SKIP: PyYAML not installed, openapi.yaml not checked")
        return
    with open(os.path.join(ROOT, "docs", "openapi.yaml")) as f:
        spec = yaml.safe_load(f)
    params = set()
    for path in spec["paths"].values():
        for op in path.values():
            for p in op.get("parameters", []) if isinstance(op, dict) else []:
                if "$ref" in p:
                    p = spec["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
                if p.get("in") == "query":
                    params.add(p["name"])
    params |= {s["name"] for s in spec["components"].get("securitySchemes", {}).values()
               if s.get("in") == "query"}
    read_by_code = set()
    for src in glob.glob(os.path.join(ROOT, "src", "*.c")):
        if src.endswith("/web.c"):  # the dashboard's files: ?v= is their cache key, no API
            continue
        with open(src) as f:
            body = f.read()
        read_by_code |= set(re.findall(r'http_req_arg\(\w+, "([a-z_]+)"\)', body))
        read_by_code |= set(re.findall(r'MHD_GET_ARGUMENT_KIND, "([a-z_]+)"\)', body))
    c.check("p1d reads query parameters", {"meter", "step"} <= read_by_code, str(read_by_code))
    c.check("every query parameter p1d reads is in openapi.yaml", read_by_code <= params,
            str(sorted(read_by_code - params)))
    api = read("docs/API.md")
    missing = sorted(p for p in read_by_code if not re.search(r"[`?&]%s[=`]" % p, api))
    c.check("... and in docs/API.md", not missing, str(missing))


def doc_names(cell):
    """The names of a field cell: `a`, `b`; `x_kw`/`_w` is x_kw and x_w; `a_l1` … `a_l3` and
    `q1` .. `q4` are the names between."""
    names = re.findall(r"`([a-z][a-z0-9_]*)`", cell)
    for base, alt in re.findall(r"`([a-z0-9_]+)_[a-z]+`/`_([a-z]+)`", cell):
        names.append("%s_%s" % (base, alt))
    for a, b in re.findall(r"`([a-z0-9_]+)` *(?:…|\.\.) *`([a-z0-9_]+)`", cell):
        da, db = re.findall(r"\d+", a), re.findall(r"\d+", b)
        if da and db and re.sub(r"\d+", "#", a) == re.sub(r"\d+", "#", b):
            for i in range(int(da[0]), int(db[0]) + 1):
                names.append(re.sub(r"\d+", str(i), a, count=1))
    return set(names)


def metrics_table():
    """API.md's /metrics table: {metric: (type, set of label names)}."""
    text = read("docs/API.md")
    text = text[text.index("## GET /metrics"):text.index("## GET /healthz")]
    out = {}
    for line in text.split("\n"):
        cells = table_cells(line) if line.startswith("| `p1") else []
        if len(cells) == 3:
            head = re.split(r"[:;]", re.sub(r"\([^)]*\)", "", cells[2]))[0]
            for name in re.findall(r"`(p1d?_[a-z0-9_]+)`", cells[0]):
                out[name] = (cells[1], set(re.findall(r"`([a-z_]+)`", head)))
    return out


def test_metrics(c, port):
    """Every metric /metrics serves is in API.md's table with the labels it lists, and every
    metric of the table is served (by a p1d whose meters send every kind of quantity)."""
    st, _, body = http(port, "/metrics")
    served = {}
    for line in body.decode().split("\n"):
        m = re.match(r"([a-z_0-9]+)(?:\{(.*)\})? ", line)
        if m:
            served.setdefault(m.group(1), set()).update(re.findall(r"(\w+)=\"", m.group(2) or ""))
    doc = metrics_table()
    c.check("/metrics answers, API.md has its table", st == 200 and len(doc) > 30, str(len(doc)))
    c.check("every metric served is documented", set(served) <= set(doc),
            str(sorted(set(served) - set(doc))))
    c.check("every documented metric is served", set(doc) <= set(served),
            str(sorted(set(doc) - set(served))))
    wrong = ["%s: served %s, documented %s" % (n, sorted(ls), sorted(doc[n][1]))
             for n, ls in served.items() if n in doc and ls != doc[n][1]]
    c.check("every metric has the documented labels", not wrong, "\n".join(wrong))
    text = body.decode()
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    wrong = ["%s: %s, documented %s" % (n, types.get(n), doc[n][0]) for n in doc
             if n in served and types.get(n) != doc[n][0]]
    c.check("every metric has the documented type", not wrong, "\n".join(wrong))
    api = read("docs/API.md")
    shown = re.findall(r"^# (?:HELP|TYPE) .*$", api, re.M)
    c.check("the HELP and TYPE lines API.md shows are served", shown and all(
        re.search("^%s$" % re.escape(x), text, re.M) for x in shown), str(shown))


def test_reading_members(c, port, meters):
    """Every member of a served reading (and of its phases, mbus, failure_log and demand_months
    entries) is in docs/DECODE.md's reading table."""
    text = read("docs/DECODE.md")
    text = text[text.index("## `reading`"):text.index("## Errors")]
    doc = set()
    for line in text.split("\n"):
        if line.startswith("| `"):
            cells = table_cells(line)
            doc |= doc_names(cells[0])
            doc |= set(re.findall(r'"([a-z_]+)"', cells[1]))  # members of the listed objects
    seen = set()
    for name in meters:
        st, _, body = http(port, "/api/meters/%s/now" % name)
        if st != 200:
            continue
        r = json.loads(body)["reading"]
        seen |= set(r)
        for sub in ("phases", "mbus", "failure_log", "demand_months"):
            for e in r.get(sub) or []:
                seen |= set(e)
    c.check("readings served from the fixtures (%d members)" % len(seen), len(seen) > 50)
    c.check("every reading member is in docs/DECODE.md", seen <= doc, str(sorted(seen - doc)))


def test_history_fields(c, port):
    """Every field of API.md's /api/history table is one p1d accepts, and they are all of them:
    the count the docs give for `fields=` left out is the number of fields."""
    text = read("docs/API.md")
    text = text[text.index("## GET /api/history"):text.index("## GET /api/summary")]
    rows = text[text.index("| field | unit |"):].split("\n\n")[0].split("\n")[2:]
    doc = set()
    for line in rows:
        cell = table_cells(line)[0].replace("_*`", "_mean`")
        doc |= {n for n in doc_names(cell)}
    doc |= {n.replace("_mean", "_" + s) for n in doc if n.endswith("_mean") for s in ("min", "max")}
    bad = []
    for f in sorted(doc):
        st, _, body = http(port, "/api/history?step=1h&fields=" + f)
        if st != 200:
            bad.append("%s: %d %s" % (f, st, body[:120]))
    c.check("every field of the /api/history table is accepted (%d)" % len(doc),
            len(doc) > 30 and not bad, "\n".join(bad))
    m = re.search(r"without `fields=`, all (\d+)", text)
    c.check("the docs' count of all fields is the table's", m and int(m.group(1)) == len(doc),
            "%s %d" % (m and m.group(1), len(doc)))


def test_mqtt_topics(c, sub, meters):
    """What MQTT carries is what docs/PUBLISHING.md's tables say: every topic has a documented
    shape, every field published and announced is in the field table with its unit, device_class
    and state_class, and every field of the table is published by some fixture meter."""
    import test_publishing_docs as pub
    table = pub.field_table()
    shapes = [re.escape(t).replace("PREFIX", "p1d").replace("METER", "(?P<m>[^/]+)")
              .replace("FIELD", "(?P<f>[^/]+)").replace("NAME", "[a-z_0-9]+")
              for t in re.findall(r"^\| `([^`]+)` \|", pub.section(pub.PUBLISHING, "### Topics"),
                                  re.M)]
    got = {}
    for _, topic, payload, retain in sub.snapshot():
        got.setdefault(topic, payload)
    undocumented, fields, wrong = [], set(), []
    for topic, payload in got.items():
        m = next((m for m in (re.fullmatch(s, topic) for s in shapes) if m), None)
        if not m:
            undocumented.append(topic)
            continue
        f = m.groupdict().get("f")
        if f and f not in ("state", "availability"):
            fields.add(f)
            if topic.endswith("/config"):
                cfg = json.loads(payload)
                have = (cfg.get("unit_of_measurement"), cfg.get("device_class"),
                        cfg.get("state_class"))
                if table.get(f) != have:
                    wrong.append((f, table.get(f), have))
    c.check("MQTT carries topics for the meters (%d)" % len(got), len(got) > 100, str(len(got)))
    c.check("every MQTT topic has a shape of the topic table", not undocumented,
            str(sorted(undocumented)[:10]))
    c.check("every field published is in the field table", fields <= set(table),
            str(sorted(fields - set(table))))
    c.check("every field of the table is published by a fixture meter", set(table) <= fields,
            str(sorted(set(table) - fields)))
    c.check("every announced field has the table's unit, device_class and state_class",
            not wrong, str(sorted(set(wrong))[:5]))
    ha = pub.section(pub.PUBLISHING, "### Home Assistant discovery")
    documented = set(re.findall(r"`([a-z_]+)`", ha.split("\n\n")[1]))
    devices = {k for line in ha.split("\n") if line.startswith("| ")
               for k in re.findall(r"`([a-z_]+)`", table_cells(line)[2] + table_cells(line)[4])}
    keys, dev_keys = set(), set()
    for topic, payload in got.items():
        if topic.startswith("homeassistant/") and payload:
            cfg = json.loads(payload)
            keys |= set(cfg)
            dev_keys |= set(cfg.get("device") or {})
    c.check("every key of a discovery config is documented", keys and keys <= documented,
            str(sorted(keys - documented)))
    c.check("every key of a discovery device block is documented", dev_keys <= devices | {"name"},
            str(sorted(dev_keys - devices)))
    dsmr = set()
    for line in pub.section(pub.PUBLISHING, "### dsmr-reader's topic layout").split("\n"):
        if line.startswith("| `"):
            for name in re.findall(r"`([a-z_0-9.]+)`", table_cells(line)[0]):
                m = re.fullmatch(r"(.*)l1\.\.l3", name)
                dsmr |= {m.group(1) + "l%d" % i for i in (1, 2, 3)} if m else {name}
    sent = {x.split("/", 2)[2] for x in got if x.startswith("dsmr/reading/")}
    c.check("dsmr-reader topics are the documented ones", sent and sent == dsmr,
            "undocumented %s, not sent %s" % (sorted(sent - dsmr), sorted(dsmr - sent)))


def test_openapi_answers(c, port, meters):
    """The answers about every fixture meter, with four publishers running, against
    docs/openapi.yaml (test_api_qa.py checks the error answers and history of one meter); the
    publisher table of API.md names the members each publisher entry has."""
    import test_api_qa as qa
    spec = qa.load_openapi()
    if spec is None:
        print("SKIP: PyYAML not installed, answers not checked against openapi.yaml")
        return
    urls = [(p, p) for p in ("/api/meters", "/api/now", "/api/v1/data", "/p1.json", "/api")]
    for name in meters:
        urls += [("/api/meters/" + name, "/api/meters/{name}"),
                 ("/api/meters/%s/now" % name, "/api/meters/{name}/now"),
                 ("/api/summary?meter=" + name, "/api/summary")]
    probs = []
    for url, path in urls:
        st, _, body = http(port, url)
        try:
            probs += ["%s: %s" % (url, p) for p in
                      qa.validate(spec, qa.response_schema(spec, path, st), json.loads(body))]
        except (KeyError, ValueError) as e:
            probs.append("%s: %d is not documented (%r)" % (url, st, e))
    c.check("%d answers match openapi.yaml" % len(urls), not probs, "\n".join(probs[:10]))
    probs = []  # API.md, Host names: any path, for a Host that is not p1d's own
    for path, ops in spec["paths"].items():
        method = "get" if "get" in ops else next(iter(ops))  # PUT /api/v1/identify
        st, _, body = http(port, path.replace("{name}", "sim"), method.upper(),
                           headers={"Host": "p1d.example.com"})
        try:
            probs += ["%s: %s" % (path, p) for p in
                      qa.validate(spec, qa.response_schema(spec, path, st, method=method),
                                  json.loads(body))]
        except (KeyError, ValueError) as e:
            probs.append("%s: %d is not documented (%r)" % (path, st, e))
    c.check("a 403 host_not_allowed is documented for every path", not probs,
            "\n".join(probs[:10]))
    wrong = []  # HEAD: the same headers as GET (API.md, Methods), no stream to read
    for path, ops in spec["paths"].items():
        if "get" not in ops:
            continue  # PUT /api/v1/identify: no HEAD (405), its answers checked below
        url = path.replace("{name}", "sim") + ("?meter=sim" if "history" in path else "")
        for q in ("", "&format=csv" if "history" in path else None):
            if q is None:
                continue
            st, h, _ = http(port, url + q, "HEAD")
            full = h.get("Content-Type") or ""
            r = ops["get"]["responses"].get(str(st), {})
            if "$ref" in r:
                r = spec["components"]["responses"][r["$ref"].rsplit("/", 1)[1]]
            content = r.get("content", {})
            ctype = full if full in content else full.split(";")[0]
            if ctype not in content:
                wrong.append("%s%s: %d %s, documented %s" % (url, q, st, ctype, sorted(content)))
    c.check("every path's Content-Type is the documented one", not wrong, "\n".join(wrong))
    st, _, body = http(port, "/api/meters/sim")
    pubs = json.loads(body).get("publishers") or []
    text = read("docs/API.md")
    text = text[text.index("`publishers` has one entry"):text.index("## GET /api/stream")]
    doc = {table_cells(x)[0].strip("`") for x in text.split("\n") if x.startswith("| `")}
    c.check("four publishers run (alerts too)",
            sorted(p["name"] for p in pubs) == ["alerts", "azure", "influxdb", "mqtt"]
            or (len(pubs) == 3 and not os.access(MOSQUITTO, os.X_OK)), str(pubs))
    c.check("API.md's publisher table names the members of each publisher entry",
            pubs and all(set(p) == doc for p in pubs), "%s %s" % (sorted(doc), pubs[:1]))


def test_reload_report(c, tmp):
    """docs/CONFIG.md, Reload: [store] changes are reported and wait for a restart (a changed
    raw_keep went unmentioned: only db was compared); [prices] changes are recorded at once."""
    conf = os.path.join(tmp, "reload.conf")
    base = ("[http]\nlisten = 127.0.0.1:0\n[store]\ndb = %s\nraw_keep = 168h\n[prices]\n"
            "import = 0.25\n[source home]\nspec = sim\n" % os.path.join(tmp, "reload.db"))
    with open(conf, "w") as f:
        f.write(base)
    d = Daemon(["--config", conf], tmp)
    try:
        d.http_port()
        for old, new, want in (("raw_keep = 168h", "raw_keep = 24h",
                                r"warn: reload: \[store\] settings changed; they take effect when "
                                r"p1d restarts"),
                               ("import = 0.25", "import = 0.30", r"reload: \[prices\] recorded")):
            base = base.replace(old, new)
            with open(conf, "w") as f:
                f.write(base)
            n = len(re.findall(r"reloaded ", d.text()))
            d.signal(signal.SIGHUP)
            d.wait_log(r"reloaded ", 10, n + 1)
            c.check("reload after %s: '%s' is logged" % (new, want.replace("\\", "")),
                    re.search(want, d.text()) is not None, d.text()[-600:])
    finally:
        d.stop()


def test_live(c, tmp):
    """A p1d with a history, publishers and a meter per fixture (and the simulator, and the
    encrypted one) against the docs, and the database it made against STORE.md's schema."""
    broker = None
    mqtt_port = free_port()
    dead = free_port()  # nothing listens: the HTTP publishers keep retrying
    key = os.path.join(tmp, "azure.key")
    with open(key, "w") as f:
        f.write("A" * 86 + "==\n")
    conf = os.path.join(tmp, "live.conf")
    # fixed prices: the price gauges of /metrics and the price topics of MQTT are served too
    text = ("[http]\nlisten = 127.0.0.1:0\n[store]\ndb = %s\n"
            "[prices]\nimport = 0.25\nexport = 0.07\n"
            "[influxdb]\nurl = http://127.0.0.1:%d\ndatabase = p1d\n"
            "[azure]\nendpoint = http://127.0.0.1:%d/devstoreaccount1\n"
            "account = devstoreaccount1\nkey_file = %s\n"
            "[alerts]\nurl = http://127.0.0.1:%d/alerts\n"
            % (os.path.join(tmp, "live.db"), dead, dead, key, dead))
    if os.access(MOSQUITTO, os.X_OK):
        broker = Broker(tmp, mqtt_port).start()
        text += "[mqtt]\nhost = 127.0.0.1\nport = %d\ndsmr_reader = true\n" % mqtt_port
    else:
        print("SKIP: mosquitto not installed, MQTT topics not checked")
    with open(conf, "w") as f:
        f.write(text)
    args, meters = ["--config", conf, "--source", "sim=sim"], ["sim"]
    for path in sorted(glob.glob(os.path.join(DATA, "*.txt"))):
        name = re.sub(r"[^A-Za-z0-9_-]", "_", os.path.basename(path)[:-4])
        if not name.endswith("key"):
            args += ["--source", "%s=file:%s" % (name, path)]
            meters.append(name)
    with open(os.path.join(DATA, "lu-encrypted.key.txt")) as f:
        lu = re.search(r"encryption_key=([0-9A-F]{32})", f.read()).group(1)
    args += ["--source", "lu=file:%s:key=%s" % (os.path.join(DATA, "lu-encrypted.bin"), lu)]
    meters.append("lu")
    # A Belgian meter across a quarter hour's start, so that p1d's demand forecast is known.
    q = (int(time.time()) // 900 - 2) * 900
    be = os.path.join(tmp, "be-quarter.txt")
    with open(be, "wb") as f:
        f.write(be_telegram(q - 1, 500000, 2.0) + be_telegram(q + 1, 500001, 2.0))
    args += ["--source", "bequarter=file:%s" % be]
    meters.append("bequarter")
    d = Daemon(args, tmp)
    sub = None
    try:
        port = d.http_port()
        if not c.check("p1d with every fixture meter starts", port is not None, d.text()[-2000:]):
            return
        d.wait_meter("sim", lambda m: m.get("telegrams", 0) >= 2)
        d.wait_meter("lu", lambda m: m.get("state") == "stopped")
        if broker:  # the success timestamp is served once the MQTT publisher delivered something
            wait_for(lambda: b"p1_publisher_last_success_timestamp_seconds{" in
                     http(port, "/metrics")[2], 15)
        test_metrics(c, port)
        test_reading_members(c, port, meters)
        test_history_fields(c, port)
        test_openapi_answers(c, port, meters)
        if broker:
            sub = Mqtt(mqtt_port)
            sub.wait(lambda m: m[1] == "homeassistant/sensor/p1d_sim/power_w/config", 10)
            time.sleep(1)
            test_mqtt_topics(c, sub, meters)
    finally:
        d.stop()
        if sub:
            sub.close()
        if broker:
            broker.stop()
    test_store_schema(c, os.path.join(tmp, "live.db"))


def test_api_examples(c):
    """Every JSON example of docs/API.md (those without "...") is a valid answer of its section's
    endpoint under docs/openapi.yaml: an example keeps the field names p1d uses."""
    import test_api_qa as qa
    spec = qa.load_openapi()
    if spec is None:
        print("SKIP: PyYAML not installed, API.md examples not checked")
        return
    checked, probs = 0, []
    for sec in re.split(r"^## ", read("docs/API.md"), flags=re.M)[1:]:
        head = sec.split("\n")[0]
        m = re.match(r"(GET|PUT) (/\S*?),? ", head + " ")
        for block in re.findall(r"```(?:json)?\n(.*?)```", sec, re.S):
            lines = block.strip().split("\n")
            url = re.search(r"curl .*http://[^/\s]+(/\S*)", lines[0])
            try:
                value = json.loads("\n".join(lines[1:]) if url else block)
            except ValueError:
                continue
            if isinstance(value, dict) and "error" in value:
                schema = spec["components"]["schemas"]["Error"]
            elif m and m.group(2) in spec["paths"] and m.group(1) == "GET":
                schema = qa.response_schema(spec, url.group(1) if url else m.group(2), 200)
            else:
                continue
            checked += 1
            probs += ["%s: %s" % (head, p) for p in qa.validate(spec, schema, value)]
    c.check("API.md's JSON examples are valid answers (%d)" % checked, checked >= 7 and not probs,
            "\n".join(probs[:10]))


def test_unit_directives(c):
    """A systemd setting the docs quote with its value (`LimitNOFILE=16384`, `DynamicUser=yes`)
    is a line of dist/p1d.service, or one the unit says it leaves out (`# No ProtectClock=`)."""
    unit = read("dist/p1d.service")
    lines = set(unit.split("\n"))
    quoted, wrong = set(), []
    for doc in markdown_files() + ["dist/p1d.8", "dist/p1d.conf.example"]:
        text = re.sub(r"\\f[BIR]", "", read(doc))
        quoted |= set(re.findall(r"`([A-Z][A-Za-z]+=[^`]+)`", text))
    for q in sorted(quoted):
        name = q.split("=", 1)[0]
        if q not in lines and "# No %s=" % name not in unit:
            wrong.append(q)
    c.check("every unit setting the docs quote is the shipped unit's (%d)" % len(quoted),
            len(quoted) >= 4 and not wrong, str(wrong))


def test_influx_minute_fields(c):
    """Every field name of InfluxDB's `rate = minute` points (src/pub_payload.c: no peer is
    needed to read them there) is named in docs/PUBLISHING.md."""
    src = read("src/pub_payload.c")
    body = src[src.index("An aggregate:"):src.index('"readings"')]
    names = set(re.findall(r'"([a-z][a-z0-9_]+)"', body)) - {"name", "decimals"}
    doc = set()
    for line in read("docs/PUBLISHING.md").split("\n"):
        doc |= doc_names(line)
    missing = sorted(names - doc)
    c.check("PUBLISHING.md names every field of a rate = minute point (%d)" % len(names),
            len(names) > 15 and not missing, str(missing))


def test_architecture(c):
    """docs/ARCHITECTURE.md's module tables name every source file of libp1, p1d and p1, and
    every file they name exists."""
    named = set()
    for line in read("docs/ARCHITECTURE.md").split("\n"):
        if not line.startswith("| `"):
            continue
        for tok in re.findall(r"`([^`]+)`", table_cells(line)[0]):
            m = re.fullmatch(r"(\S+)\.c/\.h", tok)
            named |= {m.group(1) + ".c", m.group(1) + ".h"} if m else {tok}
    files = {os.path.relpath(f, ROOT) for pat in ("src/*.[ch]", "lib/*.[ch]", "tools/*.[ch]")
             for f in glob.glob(os.path.join(ROOT, pat))}
    # src/ files are named bare (`store.c/.h`), tools/ ones also after the first of a list
    missing = sorted(f for f in files if f not in named and os.path.basename(f) not in named)
    c.check("ARCHITECTURE.md names every source file", not missing, str(missing))
    gone = sorted(n for n in named if re.search(r"\.(c|h|py)$", n) and not any(
        os.path.exists(os.path.join(ROOT, d, n)) for d in ("", "src", "lib", "tools")))
    c.check("every file ARCHITECTURE.md names exists", not gone, str(gone))


def test_paths(c):
    """Every repository path the docs, man pages and dist files name exists (a test, a bench
    script, a source file), every relative link resolves, and every "FILE.md, Section" names a
    heading of that file."""
    texts = markdown_files() + ["docs/openapi.yaml"] + sorted(
        os.path.relpath(f, ROOT) for f in glob.glob(os.path.join(ROOT, "dist", "**"),
                                                    recursive=True) if os.path.isfile(f))
    heads = {os.path.basename(d): [re.sub(r"^#+ ", "", x).strip() for x in read(d).split("\n")
                                   if x.startswith("#")] for d in markdown_files()}
    missing = []
    for doc in texts:
        text = re.sub(r"\\f[BIR]", "", read(doc).replace("\\-", "-"))
        for path in set(re.findall(r"(?<![\w/.-])((?:src|lib|tools|tests|bench|dist|docs|web|"
                                   r"include|fuzz)/[\w./*-]*[\w*])", text)):
            if not glob.glob(os.path.join(ROOT, path)):
                missing.append("%s: %s" % (doc, path))
        for link in re.findall(r"\]\(([^)#\s:]+)(?:#[^)]*)?\)", text):
            if not os.path.exists(os.path.join(ROOT, os.path.dirname(doc), link)):
                missing.append("%s: link %s" % (doc, link))
        for name, sec in re.findall(r"([A-Z]+\.md), ([A-Z][\w' -]+?)[)\]:;.,]", text):
            if not any(h.startswith(sec) for h in heads.get(name, [])):
                missing.append("%s: %s, %s" % (doc, name, sec))
    c.check("every path, link and section the docs name exists", not missing, str(missing))


def test_decode_doc(c):
    """docs/DECODE.md: the example telegram decodes to the JSON shown, and the error table names
    every error code of include/p1/p1.h."""
    p1 = os.path.join(os.path.dirname(P1D), "p1")
    text = read("docs/DECODE.md")
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text[text.index("## Example"):], re.S)
    p = subprocess.run([p1, "decode", "--pretty", "-"], capture_output=True, timeout=10,
                       input=blocks[0].replace("\n", "\r\n").encode())
    got = json.loads(p.stdout) if p.returncode == 0 else None
    c.check("DECODE.md's example decodes to the JSON it shows", got == json.loads(blocks[1]),
            "%d %s" % (p.returncode, p.stdout[:400]))
    p = subprocess.run([p1, "decode", "--help"], capture_output=True, timeout=10)
    have = set(re.findall(r"^ +(?:-\w, )?(--[a-z0-9-]+)", p.stdout.decode(), re.M))
    usage = text[text.index("## Usage"):text.index("## Output stream")]
    table = set(re.findall(r"^\| `(?:-\w`, `)?(--[a-z0-9-]+)", usage, re.M))
    synopsis = set(re.findall(r"\[(--[a-z0-9-]+)", usage.split("```")[1]))
    c.check("DECODE.md's options are those of p1 decode --help", have and table == have and
            synopsis == have - {"--help"}, "help %s, table %s, synopsis %s" % (
                sorted(have), sorted(table), sorted(synopsis)))
    codes = set(re.findall(r'^ +X\([A-Z_]+, "([a-z_]+)"', read("include/p1/p1.h"), re.M)) - {"ok"}
    errors = text[text.index("## Errors"):text.index("## Standard error")]
    doc = set(re.findall(r"^\| `([a-z_]+)` \|", errors, re.M))
    c.check("DECODE.md's error table is p1.h's error list", codes and doc == codes,
            "undocumented %s, unknown %s" % (sorted(codes - doc), sorted(doc - codes)))


def main():
    c = Checks("test_docs_reference")
    need_p1d(c)
    c.run([test_config_reference, test_tables, test_flags, test_p1_options, test_man_pages,
           test_prose_defaults, test_openapi_parameters, test_api_examples, test_unit_directives,
           test_influx_minute_fields, test_architecture, test_paths, test_decode_doc], c)
    with tmpdir() as tmp:
        c.run([test_command_lines, test_reload_report, test_live], c, tmp)
    c.done()


if __name__ == "__main__":
    main()
