#!/usr/bin/python3
"""Every subcommand upstream 4.17's xenstore-control knows, run against the
daemon: each answers (as upstream's C daemon does, or with a clear error),
`quota max` prints the per-domain maxima, and UNWATCH of a path no watch
can have answers ENOENT as both upstreams do.  With XS_DAEMON=upstream-c
the shared expectations run against Debian's C daemon."""

import os
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xstest import *  # noqa: E402,F401,F403
from xstest import RawClient  # noqa: E402

CONTROL_BIN = os.environ.get("XS_CONTROL", "/usr/lib/xen-4.17/bin/xenstore-control")


def control(d, *args):
    env = dict(os.environ, XENSTORED_PATH=d.socket_path)
    r = subprocess.run([CONTROL_BIN] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=10)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def control_ok(d, *args):
    rc, out, err = control(d, *args)
    eq((rc, err), (0, ""), "xenstore-control %s: status, stderr (stdout %r)"
       % (" ".join(args), out))
    return out


def test_unwatch_of_an_invalid_path_is_enoent(d):
    c = RawClient(d.socket_path)
    for bad in [b"/a//b", b"/a/", b"//", b"/a b", b"rel//x", b"@nosuch",
                b"/" + b"p" * 3100]:
        c.expect_error(XS_UNWATCH, bad + b"\0tok\0", "ENOENT")
    # the number of arguments is still checked first
    c.expect_error(XS_UNWATCH, b"/a\0", "EINVAL")


def test_every_upstream_subcommand_answers(d):
    # 4.17's xenstore-control help: check log logfile memreport print quota
    # quota-soft help live-update (the last is checked in test-live-update)
    out = control_ok(d, "help")
    for cmd in ("check", "log", "logfile", "memreport", "print", "quota",
                "quota-soft", "help", "live-update"):
        check(any(line.split("\t")[0] == cmd for line in out.splitlines()),
              "help lacks %s: %r" % (cmd, out))
    eq(control_ok(d, "check").strip(), "OK", "check")
    eq(control_ok(d, "print", "hello").strip(), "OK", "print")
    trace = os.path.join(d.dir, "trace")
    eq(control_ok(d, "logfile", trace).strip(), "OK", "logfile")
    eq(control_ok(d, "log", "on").strip(), "OK", "log on")
    eq(control_ok(d, "log", "off").strip(), "OK", "log off")
    check(os.path.exists(trace), "logfile + log on made no trace file")
    check(control_ok(d, "quota").startswith("Quota settings:"), "quota")
    check("memory" in control_ok(d, "quota-soft"), "quota-soft")
    check(control_ok(d, "quota", "0").startswith("Domain 0:"), "quota 0")
    report = os.path.join(d.dir, "memreport")
    control_ok(d, "memreport", report)
    check(os.path.exists(report), "memreport FILE wrote nothing")
    # wrong arguments: status 3 and the help text, as upstream
    for bad in (["bogus"], ["quota-soft", "max"], ["quota", "set", "nosuch", "1"]):
        rc, out, err = control(d, *bad)
        eq(rc, 3, "status of %s (%r %r)" % (bad, out, err))
        check("Valid commands are" in err, "%s: no help on stderr: %r" % (bad, err))


def test_quota_max_prints_the_per_domain_maxima(d):
    if skip_in_upstream_mode("4.17 reads 'max' as domain 0"):
        return
    c = RawClient(d.socket_path)
    for i in range(7):
        c.write("/qm/%d" % i, "v")
    for args in (["quota", "max"], ["quota", "max", "-r"]):
        out = control_ok(d, *args)
        lines = out.splitlines()
        eq(lines[0], "Max. values held by a domain now:", "header of %s" % args)
        vals = dict((k.strip(), int(v)) for k, v in
                    (l.split(":") for l in lines[1:] if ":" in l))
        eq(sorted(vals), ["memory", "nodes", "transactions", "watches"], "kinds")
        check(vals["nodes"] >= 8, "nodes max %d < the 8 written" % vals["nodes"])
        check(vals["memory"] > 0, "memory max is 0")
    rc, _, err = control(d, "quota", "max", "-x")
    eq(rc, 3, "quota max -x status (%r)" % err)


def test_log_accepts_upstreams_trace_switches(d):
    if skip_in_upstream_mode("4.17 has no trace switches"):
        return
    for sw in ("+obj", "-obj", "+wrl", "+acc", "+tdb", "-tdb", "+io", "+conn"):
        eq(control_ok(d, "log", sw).strip(), "OK", "log %s" % sw)
    check("no effect: there is no write rate limiting" in d.log(),
          "log +wrl gave no reason in the log: %r" % d.log())
    rc, _, _ = control(d, "log", "+nosuch")
    eq(rc, 3, "log +nosuch")


if __name__ == "__main__":
    run(globals())
