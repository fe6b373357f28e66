#!/usr/bin/python3
"""Upstream 4.17's command line starts this daemon unchanged: each of its
options is accepted, does what upstream's does or logs one line saying why
it changes nothing here; upstream's environment is honoured.  And the
logging an administrator sees: sd-daemon priorities when stderr is the
journal, libevent's messages in our log, systemd's STATUS line."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xstest import *  # noqa: E402,F401,F403
from xstest import REPO, RawClient, connect_unix  # noqa: E402

BUILD = os.environ.get("XS_BUILD", os.path.join(REPO, "build"))
BINARY = os.path.join(BUILD, "xenstored")


class Run:
    """Our daemon in the foreground on a fresh directory, stdout and stderr
    in files; stops it (SIGTERM, status 0) on exit.  "{dir}" in args and
    env values is that directory; env is a function of the stderr file's
    path, or None."""

    def __init__(self, args=(), env=None):
        self.dir = tempfile.mkdtemp(prefix="xsopt-", dir="/tmp")
        self.sock = os.path.join(self.dir, "socket")
        self.err_path = os.path.join(self.dir, "stderr")
        self.out_path = os.path.join(self.dir, "stdout")
        self.args = ["-N", "--socket", self.sock] + [a.replace("{dir}", self.dir)
                                                     for a in args]
        self.env = env
        self.proc = None

    def path(self, name):
        return os.path.join(self.dir, name)

    def __enter__(self):
        with open(self.err_path, "wb") as err, open(self.out_path, "wb") as out:
            env = self.env(self) if self.env else None
            self.proc = subprocess.Popen([BINARY] + self.args, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, env=env)
        return self

    def wait_serving(self):
        wait_for(lambda: serving(self.sock) or self.proc.poll() is not None,
                 "the socket")
        check(self.proc.poll() is None, "daemon exited: %s\n%s" % (self.proc.returncode, self.stderr()))
        return self

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stdout(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode(errors="replace")

    def __exit__(self, *exc):
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                eq(self.proc.wait(10), 0, "exit status after SIGTERM")
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            shutil.rmtree(self.dir, ignore_errors=True)
        return False


def starts_and_logs(args, expect, extra=("--no-database", "-v")):
    """Start with args; it serves, and its log holds each of expect."""
    with Run(list(args) + list(extra)) as r:
        r.wait_serving()
        c = RawClient(r.sock)
        c.write("/opt", "x")
        eq(c.read("/opt"), b"x", "read back under %s" % (args,))
        c.close()
        log = r.stderr()
        for e in expect:
            check(e in log, "%s: log lacks %r:\n%s" % (args, e, log))
        return log


# ------------------------------------------------------------------ options

def test_each_upstream_option_is_accepted_with_its_reason():
    cases = [
        (["-D"], "--no-domain-init: ignored"),
        (["--no-domain-init"], "--no-domain-init: ignored"),
        (["-R"], "--no-recovery: nothing to turn off"),
        (["--no-recovery"], "--no-recovery: nothing to turn off"),
        (["-I"], "--internal-db on: no effect"),
        (["--internal-db"], "--internal-db on: no effect"),
        (["--internal-db", "off"], "--internal-db off: no effect"),
        (["--internal-db=on"], "--internal-db on: no effect"),
        (["-Ioff"], "--internal-db off: no effect"),
        (["-K"], "--keep-orphans: not supported"),
        (["--keep-orphans"], "--keep-orphans: not supported"),
        (["-w", "watch-event=30"], "--timeout watch-event=30: no effect"),
        (["--timeout", "watch-event=0"], "--timeout watch-event=0: no effect"),
        (["-e", "7"], "--event: ignored"),
        (["--event", "7"], "--event: ignored"),
        (["-U"], "--live-update: ignored"),
        (["--live-update"], "--live-update: ignored"),
    ]
    for args, line in cases:
        log = starts_and_logs(args, [line])
        eq(log.count(line.split(":")[0] + ":"), 1, "%s logged once:\n%s" % (args, log))


def test_short_master_and_priv_domid_are_upstreams():
    for args in (["-m", "0", "-p", "0"], ["--master-domid", "0", "--priv-domid", "3"]):
        starts_and_logs(args, [])
    r = subprocess.run([BINARY, "-m", "70000"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    eq(r.returncode, 2, "-m 70000")
    check(b"not a domain id" in r.stderr, "-m 70000: %r" % r.stderr)


def test_bad_upstream_option_values_exit_2():
    for args, what in ((["-w", "nosuch=1"], "unknown timeout"),
                       (["-w", "watch-event"], "unknown timeout"),
                       (["--timeout", "watch-event=-1"], "not a number of seconds"),
                       (["-Imaybe"], "expected on or off"),
                       (["--event", "x"], "not an event channel port"),
                       (["--trace-control=+nosuch"], "no switch")):
        r = subprocess.run([BINARY, "-N", "--socket", "/nonexistent/s"] + args,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10)
        check(r.returncode in (1, 2) and what in r.stderr.decode(),
              "%s: status %d, stderr %r" % (args, r.returncode, r.stderr))


def test_output_pid_prints_the_daemons_pid():
    with Run(["-P", "--no-database"]) as r:
        r.wait_serving()
        wait_for(lambda: r.stdout().strip(), "the pid on stdout")
        eq(r.stdout().strip(), str(r.proc.pid), "-P in the foreground")
    # Detached: the daemon's (the grandchild's) pid, before stdout closes.
    d = tempfile.mkdtemp(prefix="xsopt-", dir="/tmp")
    try:
        sock, pidf = os.path.join(d, "socket"), os.path.join(d, "pid")
        p = subprocess.run([BINARY, "--output-pid", "--no-database", "--socket", sock,
                            "--pid-file", pidf], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        eq(p.returncode, 0, "background start: %r" % p.stderr)
        with open(pidf) as f:
            pid = f.read().strip()
        eq(p.stdout.decode().strip(), pid, "-P when detached prints the daemon's pid")
        os.kill(int(pid), signal.SIGTERM)
        wait_for(lambda: not os.path.exists(pidf), "the detached daemon to stop")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_capital_v_is_upstreams_verbose_and_version_stays():
    with Run(["-V", "--no-database"]) as r:
        r.wait_serving()
        # The line comes just after the socket listens: wait for it.
        try:
            wait_for(lambda: "info: xenstored" in r.stderr() and "serving" in r.stderr(),
                     "the info line")
        except AssertionError:
            pass
        check("info: xenstored" in r.stderr() and "serving" in r.stderr(),
              "-V did not log at info: %r" % r.stderr())
    r = subprocess.run([BINARY, "--version"], stdout=subprocess.PIPE, timeout=10)
    check(r.returncode == 0 and r.stdout.startswith(b"xenstored "), "--version")
    r = subprocess.run([BINARY, "--help"], stdout=subprocess.PIPE, timeout=10)
    for opt in (b"--output-pid", b"--no-domain-init", b"--internal-db",
                b"--keep-orphans", b"--timeout", b"--no-recovery", b"-V "):
        check(opt in r.stdout, "--help lacks %r" % opt)


def test_man_page_documents_upstreams_options_and_environment():
    page = open(os.path.join(REPO, "man", "xenstored.8")).read().replace("\\-", "-")
    for word in ("--output-pid", "--no-domain-init", "--no-recovery", "--internal-db",
                 "--keep-orphans", "--timeout", "--event", "--live-update", "-V",
                 "XENSTORED_ROOTDIR", "JOURNAL_STREAM", "STATUS=", "With\n.BR max",
                 "wrl", "acc", "tdb", "obj"):
        check(word in page,
              "man/xenstored.8 does not mention %s" % word)


def test_every_upstream_trace_switch_is_accepted():
    with Run(["--no-database", "-T", "{dir}/trace", "--trace-control=-io",
              "--trace-control=-conn", "--trace-control=+obj",
              "--trace-control=+wrl", "--trace-control=+acc",
              "--trace-control=-tdb"]) as r:
        trace = r.path("trace")
        r.wait_serving()
        RawClient(r.sock).write("/t", "v")
        log = r.stderr()
        for sw in ("+wrl", "+acc", "-tdb"):
            check("--trace-control=%s: no effect" % sw in log, "%s not explained:\n%s" % (sw, log))
        check("+obj" not in log, "obj is a working switch, yet logged:\n%s" % log)
        wait_for(lambda: " CONN " in open(trace).read(), "obj tracing connections")
        check(" IN " not in open(trace).read(), "-io still traced packets")


def test_xenstored_rootdir_holds_the_database():
    root = tempfile.mkdtemp(prefix="xsopt-root-", dir="/tmp")
    try:
        env = dict(os.environ, XENSTORED_ROOTDIR=os.path.join(root, "lib"))
        with Run([], env=lambda r: env) as r:
            r.wait_serving()
            RawClient(r.sock).write("/persisted", "1")
            check(os.path.exists(os.path.join(root, "lib", "xenstored.tdb")),
                  "no database in $XENSTORED_ROOTDIR: %s" % os.listdir(root))
            check(not os.path.exists(os.path.join(r.dir, "xenstored.tdb")),
                  "database beside the socket despite XENSTORED_ROOTDIR")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_xenstored_path_and_rundir_choose_the_socket():
    d = tempfile.mkdtemp(prefix="xsopt-", dir="/tmp")
    try:
        for env_name, sock in (("XENSTORED_PATH", os.path.join(d, "p.sock")),
                               ("XENSTORED_RUNDIR", os.path.join(d, "run", "socket"))):
            env = dict(os.environ)
            env.pop("XENSTORED_PATH", None)
            env[env_name] = sock if env_name == "XENSTORED_PATH" else os.path.dirname(sock)
            p = subprocess.Popen([BINARY, "-N", "--no-database"], env=env,
                                 stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_for(lambda: serving(sock) or p.poll() is not None, env_name)
                RawClient(sock).write("/e", "1")
            finally:
                p.send_signal(signal.SIGTERM)
                eq(p.wait(10), 0, "exit")
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ logging

def journal_env(r):
    """JOURNAL_STREAM naming the file stderr is (systemd.exec(5))."""
    st = os.stat(r.err_path)
    return dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))


def test_lines_carry_priorities_when_stderr_is_the_journal():
    with Run(["--no-database", "--log-level", "debug", "-K"], env=journal_env) as r:
        r.wait_serving()
        RawClient(r.sock).write("/j", "1")
        lines = r.stderr().splitlines()
        check(any(l.startswith("<4>warning: --keep-orphans") for l in lines),
              "no <4> warning: %r" % lines)
        check(any(l.startswith("<6>info: xenstored") for l in lines),
              "no <6> info: %r" % lines)
        check(all(l[:1] == "<" and l[2:3] == ">" for l in lines if l),
              "a line without a priority: %r" % lines)
    # ... and only then: another stream keeps plain lines.
    with Run(["--no-database", "-K"],
             env=lambda r: dict(os.environ, JOURNAL_STREAM="1:1")) as r:
        r.wait_serving()
        check(r.stderr().startswith("xenstored: warning: --keep-orphans"),
              "plain stderr changed: %r" % r.stderr())


def test_libevent_messages_go_to_our_log():
    # EVENT_SHOW_METHOD makes libevent say which backend it took.
    env = dict(os.environ, EVENT_SHOW_METHOD="1")
    with Run(["--no-database", "-v"], env=lambda r: env) as r:
        r.wait_serving()
        check("xenstored: info: libevent: libevent using: epoll" in r.stderr(),
              "libevent's message not in our log: %r" % r.stderr())
    # Without epoll (and we refuse select and poll) it warns; we stop.
    env = dict(os.environ, EVENT_NOEPOLL="1")
    r = subprocess.run([BINARY, "-N", "--no-database", "--socket", "/tmp/xsopt-none"],
                       env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    eq(r.returncode, 1, "no backend")
    err = r.stderr.decode()
    check("xenstored: warning: libevent: " in err and "[warn]" not in err,
          "libevent's warning bypassed our log: %r" % err)


def test_systemd_status_says_what_is_served():
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.settimeout(10)

    def env(r):
        ns.bind(r.path("notify"))
        return dict(os.environ, NOTIFY_SOCKET=r.path("notify"))
    with Run(["--no-database"], env=env) as r:
        try:
            first = ns.recv(4096).decode()
            check("READY=1" in first and "STATUS=serving " in first, "first: %r" % first)
            c = RawClient(r.sock)
            c.write("/s", "1")
            deadline = time.monotonic() + 8
            msg = ""
            while "1 connection," not in msg and time.monotonic() < deadline:
                msg = ns.recv(4096).decode()
            eq(msg, "STATUS=serving 1 connection, 0 domains", "status update")
            c.close()
            msg = ns.recv(4096).decode()
            eq(msg, "STATUS=serving 0 connections, 0 domains", "after the client left")
        finally:
            ns.close()


if __name__ == "__main__":
    run(globals())
