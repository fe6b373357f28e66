#!/usr/bin/python3
"""The daemon as an administrator meets it: options, start-up errors, the
pid file, signals, logging, the access trace, CONTROL commands through
upstream's xenstore-control, systemd readiness and socket activation, and
the launch script (init/launch-xenstore.in)."""

import os
import re
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

CONTROL_BIN = os.environ.get("XS_CONTROL", "/usr/lib/xen-4.17/bin/xenstore-control")
BUILD = os.environ.get("XS_BUILD", os.path.join(REPO, "build"))
BINARY = os.path.join(BUILD, "xenstored")
LAUNCH = os.path.join(BUILD, "init", "launch-xenstore")
LONG_OPTIONS = ["--no-fork", "--pid-file", "--socket", "--master-domid", "--priv-domid",
                "--log-file", "--log-level", "--verbose", "--trace-file", "--trace-control",
                "--help", "--version", "--entry-nb", "--entry-size", "--watch-nb",
                "--transaction", "--perm-nb", "--path-max", "--quota", "--quota-soft"]


# ----------------------------------------------------------------- helpers

class Tmp:
    """A temporary directory, removed on exit."""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="xsops-", dir="/tmp")
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def path(self, name):
        return os.path.join(self.dir, name)


def read_file(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def run_binary(args, timeout=10, env=None):
    return subprocess.run([BINARY] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout, env=env)


def start_foreground(args, env=None, log=None):
    """Our daemon with -N and args; waits until its socket (the --socket
    argument) serves."""
    out = open(log, "wb") if log else subprocess.DEVNULL
    p = subprocess.Popen([BINARY, "-N"] + args, stdin=subprocess.DEVNULL, stdout=out,
                         stderr=subprocess.STDOUT if log else subprocess.DEVNULL, env=env)
    if log:
        out.close()
    sock = args[args.index("--socket") + 1]
    wait_for(lambda: serving(sock) or p.poll() is not None, "the socket " + sock)
    check(p.poll() is None, "daemon exited at start with %s" % p.returncode)
    if "--pid-file" in args:        # written just after the socket listens
        pid = args[args.index("--pid-file") + 1]
        wait_for(lambda: read_file(pid).strip() or p.poll() is not None, "the pid file")
    return p


def stop(p):
    p.send_signal(signal.SIGTERM)
    return p.wait(10)


def control(sock, *args):
    """xenstore-control args against sock: (status, stdout, stderr)."""
    env = dict(os.environ, XENSTORED_PATH=sock)
    r = subprocess.run([CONTROL_BIN] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=10)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def control_ok(sock, *args):
    rc, out, err = control(sock, *args)
    eq((rc, err), (0, ""), "xenstore-control %s status and stderr (stdout %r)"
       % (" ".join(args), out))
    return out


def trace_lines(path, kind=None):
    lines = read_file(path).splitlines()
    return [l for l in lines if kind is None or (" %s " % kind) in l]


# ------------------------------------------------------------------ options

def test_help_lists_every_option_and_version_prints_it():
    r = run_binary(["--help"])
    eq(r.returncode, 0, "--help status")
    out = r.stdout.decode()
    for opt in LONG_OPTIONS:
        check(opt in out, "--help does not mention %s" % opt)
    r = run_binary(["--version"])
    eq((r.returncode, r.stdout.decode().strip()), (0, "xenstored 0.1.0"), "--version")


def test_usage_errors_exit_2_with_a_message():
    for args, what in ((["--no-such-option"], "unrecognized option"),
                       (["--log-level", "loud"], "not a level"),
                       (["--master-domid", "70000"], "not a domain id"),
                       (["--trace-control=io"], "expected +SWITCH"),
                       (["stray"], "unexpected argument")):
        r = run_binary(args)
        eq(r.returncode, 2, "status of %s" % args)
        check(what in r.stderr.decode(), "%s: stderr %r lacks %r" % (args, r.stderr, what))


def test_man_page_documents_every_option():
    page = open(os.path.join(REPO, "man", "xenstored.8")).read().replace("\\-", "-")
    for opt in LONG_OPTIONS:
        check(opt in page, "man/xenstored.8 does not document %s" % opt)
    for word in ("SIGHUP", "SIGTERM", "XENSTORED_PATH", "EXIT STATUS", "EXAMPLES",
                 "memreport", "logfile"):
        check(word in page, "man/xenstored.8 does not mention %s" % word)


# ------------------------------------------------------- start-up and stop

def test_pid_file_and_socket_are_removed_at_sigterm():
    with Tmp() as t:
        sock, pid = t.path("socket"), t.path("pid")
        p = start_foreground(["--socket", sock, "--pid-file", pid])
        eq(read_file(pid).strip(), str(p.pid), "pid file content")
        eq(oct(os.stat(sock).st_mode & 0o777), "0o600", "socket mode")
        eq(stop(p), 0, "exit status after SIGTERM")
        check(not os.path.exists(sock), "socket left behind")
        check(not os.path.exists(pid), "pid file left behind")


def test_sigint_stops_cleanly_too():
    with Tmp() as t:
        p = start_foreground(["--socket", t.path("socket")])
        p.send_signal(signal.SIGINT)
        eq(p.wait(10), 0, "exit status after SIGINT")
        check(not os.path.exists(t.path("socket")), "socket left behind")


def test_second_daemon_on_the_same_socket_is_refused():
    with Tmp() as t:
        sock = t.path("socket")
        p = start_foreground(["--socket", sock])
        try:
            r = run_binary(["-N", "--socket", sock])
            eq(r.returncode, 1, "second daemon's status")
            check("another daemon is already serving" in r.stderr.decode(), r.stderr)
            c = RawClient(sock)
            c.write("/still", "here")
            eq(c.read("/still"), b"here", "first daemon still serves")
            c.close()
        finally:
            eq(stop(p), 0, "first daemon's exit")


def _cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_pauses_accepting_instead_of_spinning():
    import resource
    with Tmp() as t:
        sock, log = t.path("socket"), t.path("log")
        p = start_foreground(["--socket", sock, "--no-database"], log=log)
        clients = []
        try:
            # A few descriptors beyond what it holds now: the clients past
            # them wait in the kernel's queue, unaccepted.
            held = len(os.listdir("/proc/%d/fd" % p.pid))
            resource.prlimit(p.pid, resource.RLIMIT_NOFILE, (held + 5, held + 5))
            for _ in range(20):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(5)
                s.connect(sock)
                clients.append(s)
            time.sleep(0.3)
            before = _cpu_seconds(p.pid)
            time.sleep(1.0)
            used = _cpu_seconds(p.pid) - before
            check(used < 0.3, "the daemon used %.2f s of CPU in 1 s while "
                  "unable to accept" % used)
            text = read_file(log)
            check("cannot accept a client" in text, "no warning logged:\n" + text)
            check(text.count("cannot accept") <= 3,
                  "the warning repeats: %d times" % text.count("cannot accept"))
            # Descriptors back: a new client is served.
            for s in clients:
                s.close()
            clients = []
            c = RawClient(sock)
            c.write("/after", "yes")
            eq(c.read("/after"), b"yes", "a client after the pause")
            c.close()
            check(p.poll() is None, "the daemon died")
        finally:
            for s in clients:
                s.close()
            eq(stop(p), 0, "exit status")


def test_a_path_that_is_not_a_socket_is_left_alone():
    with Tmp() as t:
        path = t.path("notasocket")
        with open(path, "w") as f:
            f.write("precious")
        r = run_binary(["-N", "--socket", path])
        eq(r.returncode, 1, "status")
        check("is not a socket" in r.stderr.decode(), r.stderr)
        eq(read_file(path), "precious", "file content")


def test_a_socket_in_a_missing_directory_is_a_clear_error():
    with Tmp() as t:
        path = t.path("no/such/dir/socket")
        r = run_binary(["-N", "--socket", path])
        eq(r.returncode, 1, "status")
        check("cannot bind the socket %s" % path in r.stderr.decode(), r.stderr)


def test_a_locked_pid_file_refuses_a_second_daemon():
    with Tmp() as t:
        pid = t.path("pid")
        p = start_foreground(["--socket", t.path("s1"), "--pid-file", pid])
        try:
            r = run_binary(["-N", "--socket", t.path("s2"), "--pid-file", pid])
            eq(r.returncode, 1, "second daemon's status")
            check("is locked" in r.stderr.decode(), r.stderr)
            check(not os.path.exists(t.path("s2")), "second daemon left its socket")
            eq(read_file(pid).strip(), str(p.pid), "pid file still names the first")
        finally:
            stop(p)


def test_background_start_returns_once_serving():
    with Tmp() as t:
        sock, pid = t.path("socket"), t.path("pid")
        r = run_binary(["--socket", sock, "--pid-file", pid, "-L", t.path("log")])
        eq((r.returncode, r.stderr), (0, b""), "status and stderr of a background start")
        check(serving(sock), "not serving when the command returned")
        daemon_pid = int(read_file(pid))
        try:
            c = RawClient(sock)
            c.write("/bg", "1")
            c.close()
            # The failure of a second one is reported by the command itself.
            r = run_binary(["--socket", sock])
            eq(r.returncode, 1, "status of a background start that fails")
            check("another daemon" in r.stderr.decode(), r.stderr)
        finally:
            os.kill(daemon_pid, signal.SIGTERM)
        wait_for(lambda: not os.path.exists(pid), "the pid file to go")
        check(not os.path.exists(sock), "socket left behind")


# ------------------------------------------------------------------ logging

def test_log_file_levels_and_sighup_reopen():
    with Tmp() as t:
        sock, log = t.path("socket"), t.path("log")
        p = start_foreground(["--socket", sock, "-L", log, "--log-level", "info"])
        try:
            wait_for(lambda: "serving " + sock in read_file(log), "the start message in the log")
            check(re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} xenstored\[%d\]: info: "
                            % p.pid, read_file(log), re.M), "log line format: %r" % read_file(log))
            os.rename(log, log + ".1")
            p.send_signal(signal.SIGHUP)
            wait_for(lambda: os.path.exists(log), "a new log file after SIGHUP")
            control_ok(sock, "print", "after-rotation")
            wait_for(lambda: "after-rotation" in read_file(log), "the marker in the new log")
            check("after-rotation" not in read_file(log + ".1"), "marker went to the old file")
        finally:
            eq(stop(p), 0, "exit")
        check("signal 15: shutting down" in read_file(log), "shutdown is logged at info")


def test_log_level_error_hides_info_and_debug_shows_failures():
    with Tmp() as t:
        sock, log = t.path("socket"), t.path("log")
        p = start_foreground(["--socket", sock, "-L", log, "--log-level", "error"])
        c = RawClient(sock)
        c.expect_error(XS_READ, b"/missing\0", "ENOENT")
        c.close()
        control_ok(sock, "print", "always-shown")
        wait_for(lambda: "always-shown" in read_file(log), "print's marker")
        stop(p)
        check(" info: " not in read_file(log), "info lines at level error: %r" % read_file(log))
        p = start_foreground(["--socket", sock, "-L", log, "--log-level", "debug"])
        c = RawClient(sock)
        c.expect_error(XS_READ, b"/missing\0", "ENOENT")
        c.close()
        wait_for(lambda: "READ failed: ENOENT" in read_file(log), "the debug line of a failure")
        stop(p)


def test_unwritable_log_file_is_a_start_up_error():
    with Tmp() as t:
        r = run_binary(["-N", "--socket", t.path("socket"), "-L", t.path("no/dir/log")])
        eq(r.returncode, 1, "status")
        check("cannot open the log file" in r.stderr.decode(), r.stderr)
        check(not os.path.exists(t.path("socket")), "socket made anyway")


# -------------------------------------------------------------------- trace

def test_trace_file_records_requests_replies_events_and_connections():
    with Tmp() as t:
        sock, trace = t.path("socket"), t.path("trace")
        p = start_foreground(["--socket", sock, "-T", trace])
        try:
            c = RawClient(sock)
            c.write("/t/a", "hello")
            c.expect_error(XS_READ, b"/t/missing\0", "ENOENT")
            c.expect_ack(XS_WATCH, b"/t\0tok\0")
            c.recv_packet()                         # the initial event
            c.close()
            wait_for(lambda: "closed by the client" in read_file(trace), "the close in the trace")
        finally:
            stop(p)
        text = read_file(trace)
        for pattern in (r"c(\d+) d0 CONN socket opened",
                        r"c\d+ d0 IN WRITE r1 t0 /t/a hello$",
                        r"c\d+ d0 OUT WRITE r1 t0 OK$",
                        r"c\d+ d0 IN READ r2 t0 /t/missing$",
                        r"c\d+ d0 OUT ERROR r2 t0 ENOENT$",
                        r"c\d+ d0 OUT WATCH_EVENT r0 t0 /t tok$",
                        r"c\d+ d0 CONN socket closed by the client$"):
            check(re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} " + pattern, text, re.M),
                  "no trace line matching %r in:\n%s" % (pattern, text))


def test_trace_escapes_bytes_and_cuts_long_payloads():
    with Tmp() as t:
        sock, trace = t.path("socket"), t.path("trace")
        p = start_foreground(["--socket", sock, "-T", trace, "--trace-control=-conn"])
        c = RawClient(sock)
        c.write("/bin", b"a\nb\x01\\")
        c.write("/big", b"x" * 1000)
        c.close()
        stop(p)
        text = read_file(trace)
        check(" IN WRITE r1 t0 /bin a\\x0ab\\x01\\x5c\n" in text, text)
        check(re.search(r" IN WRITE r2 t0 /big x+\.\.\.\(1005 bytes\)$", text, re.M), text)
        check(" CONN " not in text, "CONN lines with -conn")


def test_control_log_starts_stops_and_switches_the_trace():
    with Tmp() as t:
        sock, trace = t.path("socket"), t.path("trace")
        p = start_foreground(["--socket", sock])
        try:
            c = RawClient(sock)
            check("trace off" in control_ok(sock, "log"), "trace off at start")
            eq(control_ok(sock, "logfile", trace), "OK\n", "logfile")
            c.write("/traced", "1")
            wait_for(lambda: trace_lines(trace, "IN WRITE"), "traced WRITE")
            status = control_ok(sock, "log")
            check("trace on, file %s, switches +io +conn" % trace in status, status)
            eq(control_ok(sock, "log", "-io"), "OK\n", "log -io")
            c.write("/untraced-io", "1")
            eq(control_ok(sock, "log", "off"), "OK\n", "log off")
            c.write("/off", "1")
            eq(control_ok(sock, "log", "+io", "on"), "OK\n", "log +io on")
            c.write("/back", "1")
            c.close()
            wait_for(lambda: "/back" in read_file(trace), "traced WRITE after log on")
            text = read_file(trace)
            check("/untraced-io" not in text and "/off" not in text, text)
            rc, out, err = control(sock, "log", "+nosuchswitch")
            eq(rc, 3, "status of an unknown switch")
            check("Command not supported" in out + err, out + err)
        finally:
            stop(p)


def test_sighup_reopens_the_trace_file():
    with Tmp() as t:
        sock, trace = t.path("socket"), t.path("trace")
        p = start_foreground(["--socket", sock, "-T", trace])
        try:
            RawClient(sock).close()
            os.rename(trace, trace + ".1")
            p.send_signal(signal.SIGHUP)
            wait_for(lambda: os.path.exists(trace), "a new trace file")
            c = RawClient(sock)
            c.write("/after-hup", "1")
            c.close()
            wait_for(lambda: "/after-hup" in read_file(trace), "the write in the new trace")
        finally:
            stop(p)


# ----------------------------------------------------------------- control

def test_control_help_check_print_and_memreport():
    with Tmp() as t:
        sock, log = t.path("socket"), t.path("log")
        p = start_foreground(["--socket", sock, "-L", log])
        try:
            helptext = control_ok(sock, "help")
            names = [l.split("\t")[0] for l in helptext.splitlines() if "\t" in l]
            eq(names, ["check", "help", "live-update", "log", "logfile", "memreport", "print", "quota",
                        "quota-soft"], "help")
            eq(control_ok(sock, "check"), "OK\n", "check")
            eq(control_ok(sock, "print", "marker-1"), "OK\n", "print")
            wait_for(lambda: "control: marker-1" in read_file(log), "print in the log")
            c = RawClient(sock)
            for i in range(20):
                c.write("/mem/n%d" % i, "v" * 10)
            c.expect_ack(XS_WATCH, b"/mem\0tok\0")
            c.recv_packet()
            tid = int(c.expect_ok(XS_TRANSACTION_START, b"\0").rstrip(b"\0"))
            report = control_ok(sock, "memreport")
            m = re.search(r"^nodes: (\d+) \(names \d+ bytes, values (\d+) bytes\)$", report, re.M)
            check(m, report)
            check(int(m.group(1)) >= 21 and int(m.group(2)) >= 200, report)
            for line in ("watches: 1", "transactions: 1", "domains: 0",
                         "connections: 2 (2 sockets, 0 rings)"):
                check(line in report.splitlines(), "%r not in %r" % (line, report))
            check(re.search(r"^resident: [1-9]\d* kB$", report, re.M), report)
            eq(control_ok(sock, "memreport", t.path("mem")), "OK\n", "memreport to a file")
            check("transactions: 1" in read_file(t.path("mem")), read_file(t.path("mem")))
            c.expect_ack(XS_TRANSACTION_END, b"F\0", tx_id=tid)
            c.close()
            rc, out, _ = control(sock, "memreport", "relative/file")
            eq(rc, 3, "memreport to a relative path")
        finally:
            stop(p)


def test_control_is_refused_to_an_unprivileged_caller():
    # A socket client is dom0; an unprivileged domain is tested over a ring
    # in test-domains.py.  Here: an unknown command and wrong arguments.
    with Tmp() as t:
        sock = t.path("socket")
        p = start_foreground(["--socket", sock])
        try:
            c = RawClient(sock)
            c.expect_error(XS_CONTROL, b"check\0extra\0", "EINVAL")
            c.expect_error(XS_CONTROL, b"logfile\0", "EINVAL")
            c.expect_error(XS_CONTROL, b"\0", "EINVAL")
            c.expect_error(XS_CONTROL, b"a\0b\0c\0d\0e\0f\0g\0h\0i\0", "EINVAL")
            c.close()
        finally:
            stop(p)


# ------------------------------------------------------------------ systemd

def notify_socket(t):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(t.path("notify"))
    s.settimeout(10)
    return s


def test_readiness_is_notified_once_the_socket_serves():
    with Tmp() as t:
        sock = t.path("socket")
        ns = notify_socket(t)
        env = dict(os.environ, NOTIFY_SOCKET=t.path("notify"))
        p = subprocess.Popen([BINARY, "-N", "--socket", sock], env=env,
                             stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            msg = ns.recv(4096).decode()
            check(serving(sock), "READY sent before the socket serves")
            fields = dict(l.split("=", 1) for l in msg.splitlines() if "=" in l)
            eq(fields.get("READY"), "1", "READY in %r" % msg)
            eq(fields.get("MAINPID"), str(p.pid), "MAINPID in %r" % msg)
            p.send_signal(signal.SIGTERM)
            check("STOPPING=1" in ns.recv(4096).decode(), "STOPPING at shutdown")
            eq(p.wait(10), 0, "exit")
        finally:
            if p.poll() is None:
                p.kill()
            ns.close()


def test_socket_activation_serves_the_passed_socket_and_leaves_it():
    activate = shutil.which("systemd-socket-activate")
    check(activate, "systemd-socket-activate (Debian package systemd) is installed")
    with Tmp() as t:
        sock = t.path("activated")
        p = subprocess.Popen([activate, "-l", sock, BINARY, "-N",
                              "--socket", t.path("unused"),
                              "--database", t.path("db")],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        clients = []

        def connected():
            # The path exists from bind(), a moment before listen().
            try:
                clients.append(RawClient(sock))
            except (ConnectionRefusedError, FileNotFoundError):
                return False
            return True

        try:
            # The first connection starts the daemon.
            wait_for(connected, "the activated socket to listen")
            c = clients[0]
            c.write("/activated", "yes")
            eq(c.read("/activated"), b"yes", "read back")
            c.close()
            check(not os.path.exists(t.path("unused")), "made its own socket too")
        finally:
            p.send_signal(signal.SIGTERM)
            eq(p.wait(10), 0, "exit")
        check(os.path.exists(sock), "the socket systemd made was removed")


def test_launch_script_starts_once_and_reports():
    check(os.access(LAUNCH, os.X_OK), "%s is built (make tests)" % LAUNCH)
    with Tmp() as t:
        sock, pid = t.path("socket"), t.path("pid")
        env = dict(os.environ, XENSTORED=BINARY, XENSTORED_PIDFILE=pid,
                   XENSTORED_ARGS="--socket %s -L %s" % (sock, t.path("log")))
        env.pop("NOTIFY_SOCKET", None)
        r = subprocess.run([LAUNCH], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        eq((r.returncode, r.stderr), (0, b""), "first launch")
        check(serving(sock), "not serving after the launch returned")
        daemon_pid = int(read_file(pid))
        try:
            r = subprocess.run([LAUNCH], env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
            eq(r.returncode, 0, "second launch")
            check(b"already running" in r.stderr, r.stderr)
            eq(int(read_file(pid)), daemon_pid, "same daemon")
        finally:
            os.kill(daemon_pid, signal.SIGTERM)
        wait_for(lambda: not os.path.exists(sock), "the daemon to stop")
        env["XENSTORETYPE"] = "domain"
        r = subprocess.run([LAUNCH], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        eq(r.returncode, 1, "XENSTORETYPE=domain")
        check(b"only a dom0 daemon" in r.stderr, r.stderr)


def test_launch_script_under_systemd_becomes_the_daemon():
    with Tmp() as t:
        sock = t.path("socket")
        ns = notify_socket(t)
        env = dict(os.environ, XENSTORED=BINARY, XENSTORED_PIDFILE=t.path("pid"),
                   XENSTORED_ARGS="--socket %s" % sock, NOTIFY_SOCKET=t.path("notify"))
        p = subprocess.Popen([LAUNCH], env=env, stdin=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            msg = ns.recv(4096).decode()
            check("READY=1" in msg and "MAINPID=%d\n" % p.pid in msg,
                  "the script's pid %d is the daemon's: %r" % (p.pid, msg))
            eq(read_file(t.path("pid")).strip(), str(p.pid), "pid file")
        finally:
            p.send_signal(signal.SIGTERM)
            eq(p.wait(10), 0, "exit")
            ns.close()


if __name__ == "__main__":
    if upstream_mode():
        print("1..0 # SKIP tests of our daemon's options and operations")
        sys.exit(0)
    run(globals())
