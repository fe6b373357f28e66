#!/usr/bin/python3
"""Live update (daemon/liveupdate.c, ops/control_ops.c control_live_update),
driven as an administrator does: upstream's xenstore-control
live-update [-c <cmdline>] [-t <sec>] [-F] <binary>, with the daemon's own
binary as the "new" one.

The daemon commits the database, writes an image (<database>.live-update:
the listening socket, every socket client with its unhandled input, queued
output and watches, every guest connection's queued bytes, the OK owed to
the requester) and execs the binary, which keeps the pid, loads the store
and the guests from the database without firing watches, maps the rings
again without resetting them, serves the same socket connections, sends
the OK and deletes the image.

Checked here: same pid, same socket connections (watches, half-sent
requests), store intact, image gone, guests' rings continue (pending
replies and events too), BUSY while transactions are open and the timeout
text without -F, EAGAIN for transactions forced through with -F, refusals
(non-executable binary, -s before -f, --no-database), -c command lines,
and two updates in a row.

Guests are played through the Xen test double (tests/fakexen), so the
whole file is skipped with XS_DAEMON=upstream-c.
"""

import contextlib
import os
import stat
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xstest import *  # noqa: E402,F401,F403
from xstest import RawClient, Daemon, DaemonError, daemon_binary, _b, _p  # noqa: E402
from fakexen import *  # noqa: E402,F401,F403
from guests import *  # noqa: E402,F401,F403

skip_unless_test_double()

XSCONTROL = "/usr/lib/xen-4.17/bin/xenstore-control"
DB_NAME = "xenstored.tdb"
DONE = "live update: done"


# ----------------------------------------------------------------- helpers

def new_binary():
    """The "new" program: the daemon's own binary, as an absolute path."""
    return os.path.abspath(daemon_binary())


def image_path(d):
    return os.path.join(d.dir, DB_NAME + ".live-update")


def xsctl(d, *argv, timeout=30):
    """Run xenstore-control live-update <argv> against d: (status, output,
    seconds taken)."""
    env = dict(os.environ)
    env["XENSTORED_PATH"] = d.socket_path
    t0 = time.monotonic()
    r = subprocess.run([XSCONTROL, "live-update"] + list(argv), env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace"), time.monotonic() - t0


def live_update(d, *argv):
    """A live update that must succeed: xenstore-control exits 0."""
    rc, out, _ = xsctl(d, *(list(argv) + [new_binary()]))
    eq(rc, 0, "xenstore-control live-update exit status (output %r)" % out)
    return out


def lu_control(c, *argv):
    """A raw CONTROL live-update <argv>: (reply type, text without NUL)."""
    rt, _, _, rp = c.op(XS_CONTROL, b"live-update\0" + b"".join(_p(a) for a in argv))
    return rt, rp.rstrip(b"\0").decode(errors="replace")


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().split(b"\0")[:-1]


def count_done(d):
    return d.log().count(DONE)


def wait_done(d, n=1, log=None):
    """The log (d's, or the file `log`) has said DONE at least n times."""
    def text():
        if log is None:
            return d.log()
        try:
            with open(log) as f:
                return f.read()
        except OSError:
            return ""

    def seen():
        t = text()
        return t.count(DONE) >= n or t.count("live update: socket clients") >= n
    wait_for(seen, "%r %d time(s) in the log" % (DONE, n))
    eq(text().count(DONE), n, "%r lines in the log (errors: %r)"
       % (DONE, [l for l in text().splitlines() if "error" in l]))


def check_updated(d, pid, n=1):
    """After the n-th live update: same process, serving, image gone."""
    check(d.alive(), "the daemon died in the live update")
    eq(d.pid, pid, "pid")
    check(os.path.exists(d.socket_path), "the socket %s is gone" % d.socket_path)
    wait_done(d, n)
    check(not os.path.exists(image_path(d)),
          "the image %s is still there" % image_path(d))
    args_ = cmdline(pid)
    check(b"--live-update-image" in args_,
          "the process does not run the new program: cmdline %r" % args_)


@contextlib.contextmanager
def daemon(extra=("-v",)):
    """A Daemon of our own (run() gives none: its extra arguments differ);
    its log goes into the TAP output on failure."""
    d = Daemon(list(extra))
    d.start()
    ok = False
    try:
        yield d
        ok = True
    finally:
        try:
            d.stop()
        except DaemonError as e:
            diag("daemon: %s" % e)
            ok = False
            raise
        finally:
            if not ok:
                diag("daemon log (kept in %s):" % d.log_path)
                diag(d.log()[-6000:] or "(empty)")
            else:
                d.cleanup()


def fill(c):
    """Some content with values, permissions and order."""
    c.write("/lu/a", "alpha")
    c.write("/lu/b", b"bin\x00\xffary")
    c.write("/lu/z", "")
    c.mkdir("/lu/dir/sub")
    c.set_perms("/lu/a", ["n0", "r3", "w4"])
    c.write("/lu/c", "x" * 2000)


# ------------------------------------------------------------------- tests

def test_live_update_keeps_pid_store_and_socket_clients():
    with daemon() as d:
        pid = d.pid
        c = EventClient(d.socket_path)
        raw = RawClient(d.socket_path)
        fill(c)
        before = c.dump(b"/lu")
        c.watch_initial("/lu/w", "tok")
        c.watch_initial("/lu/dir", "deep")
        eq(c.collect(), [], "events before the update")
        eq(raw.read("/lu/a"), b"alpha", "raw client read before")

        live_update(d)
        check_updated(d, pid)

        eq(c.dump(b"/lu"), before, "the tree after the update")
        # No event from the update itself.
        eq(c.collect(), [], "events caused by the live update")
        eq(raw.read("/lu/b"), b"bin\x00\xffary", "raw client read after")
        raw.write("/lu/raw", "after")
        eq(c.read("/lu/raw"), b"after", "write by the raw client seen")
        with RawClient(d.socket_path) as other:
            other.write("/lu/w", "1")
            other.write("/lu/dir/sub/x", "2")
        eq(c.next_event(what="watch set before the update"), ev("/lu/w", "tok"))
        eq(c.next_event(what="deep watch set before the update"),
           ev("/lu/dir/sub/x", "deep"))
        eq(c.collect(), [], "further events")
        # The client's own requests still work, with fresh watches too.
        c.write("/lu/w", "2")
        eq(c.next_event(), ev("/lu/w", "tok"))
        c.watch_initial("/lu/new", "n")
        c.write("/lu/new", "v")
        eq(c.next_event(), ev("/lu/new", "n"))
        c.close()
        raw.close()
        log = d.log()
        check("live update: running" in log, "no 'running' line in the log")
        check(DONE in log, "no %r in the log" % DONE)


def test_half_sent_request_survives():
    """A socket client's unhandled input (half a request) is carried over:
    the request completes after the update, and neither it nor the clients
    after it are lost."""
    with daemon() as d:
        pid = d.pid
        first = RawClient(d.socket_path)
        half = RawClient(d.socket_path)
        last = EventClient(d.socket_path)
        first.write("/h/a", "alpha")
        last.watch_initial("/h/w", "t")
        pkt = RawClient.packet(XS_READ, b"/h/a\0", req_id=4242)
        half.send_raw(pkt[:10])
        time.sleep(0.1)

        live_update(d)
        check_updated(d, pid)
        log = d.log()
        check("cannot restore" not in log and "were lost" not in log,
              "the update lost socket clients: %s"
              % [l for l in log.splitlines() if "live update" in l])
        half.send_raw(pkt[10:])
        t, rid, _, p = half.recv_packet()
        eq((t, rid, p), (XS_READ, 4242, b"alpha"), "reply to the split READ")
        eq(first.read("/h/a"), b"alpha", "client before it")
        eq(last.read("/h/a"), b"alpha", "client after it")
        first.write("/h/w", "1")
        eq(last.next_event(what="watch of the client after it"), ev("/h/w", "t"))
        for c in (first, half, last):
            c.close()


def test_guest_ring_pending_reply_and_watch_survive():
    with Rig(["-v"], domids=(5,)) as r:
        g = r.g[5]
        pid = r.d.pid
        home = "/local/domain/5"
        big = b"y" * 3000
        r.c.write(home + "/big", big)
        g.write("data/x", "guest")
        g.watch(home + "/w", "gw")
        eq(g.next_event(), (_b(home + "/w"), b"gw"), "initial event")
        features = g.server_features
        # A reply larger than the ring: the ring fills, the rest waits in
        # the daemon; an event queues behind it.
        g.send_bytes(RawClient.packet(XS_READ, _p(home + "/big"), req_id=77))
        wait_for(lambda: g.rsp_avail() == RING_SIZE, "a full response ring")
        r.c.write(home + "/w", "1")
        time.sleep(0.1)
        req_prod, rsp_prod = g.req_prod, g.rsp_prod
        eq(g.req_cons, req_prod, "requests consumed before the update")

        live_update(r.d)
        check_updated(r.d, pid)

        eq(g.error, XENSTORE_ERROR_NONE, "error indicator")
        eq(g.connection, XENSTORE_CONNECTED, "connection field")
        eq(g.server_features, features, "server features")
        eq((g.req_cons, g.req_prod, g.rsp_prod), (req_prod, req_prod, rsp_prod),
           "ring indices right after the update (no reset)")
        t, rid, _, p = g.recv_packet()
        eq((t, rid, len(p)), (XS_READ, 77, len(big)), "the pending READ reply")
        eq(p, big, "its payload")
        eq(g.next_event(), (_b(home + "/w"), b"gw"), "the pending event")
        check(((g.rsp_prod - rsp_prod) & 0xFFFFFFFF) > 0,
              "the response ring did not continue from its index")
        eq(guest_collect(g, b"/zz-lu-barrier"), [], "spurious guest events")
        # The ring keeps working both ways, and the watch fires.
        eq(g.read("data/x"), b"guest", "guest read after")
        g.write("data/y", "after")
        eq(r.c.read(home + "/data/y"), b"after", "guest write seen by dom0")
        r.c.write(home + "/w", "2")
        eq(g.next_event(), (_b(home + "/w"), b"gw"), "watch after the update")
        eq(guest_collect(g, b"/zz-lu-barrier"), [], "further guest events")
        eq(r.c.expect_ok(XS_IS_DOMAIN_INTRODUCED, b"5\0"), b"T\0", "introduced")
        eq(g.error, XENSTORE_ERROR_NONE, "error indicator at the end")
        check(not g.wrong_signals, "wrong signals %r" % g.wrong_signals)


def test_guest_half_written_request_survives():
    # The start of a guest's request leaves the ring before its end comes
    # (the guest would not signal for the rest otherwise); the update
    # carries it over, once: the image has it, and the database too.
    with Rig(["-v"], domids=(5,)) as r:
        g = r.g[5]
        pid = r.d.pid
        g.write("data/x", "before")
        p = RawClient.packet(XS_WRITE, b"data/half\0" + b"h" * 1500, req_id=88)
        g.send_bytes(p[:1200])
        wait_for(lambda: g.req_cons == g.req_prod, "the first 1,200 bytes to be taken")
        live_update(r.d)
        check_updated(r.d, pid)
        g.send_bytes(p[1200:])
        t, rid, _, rp = g.recv_packet()
        eq((t, rid, rp), (XS_WRITE, 88, b"OK\0"), "reply to the half-written WRITE")
        eq(r.c.read("/local/domain/5/data/half"), b"h" * 1500, "its value")
        eq(g.read("data/x"), b"before", "the next request")
        check(g.no_data_within(0.2), "extra data after the update")
        eq(g.error, XENSTORE_ERROR_NONE, "error indicator")


def open_tx(c, path, value):
    tx = int(c.expect_ok(XS_TRANSACTION_START, b"\0").rstrip(b"\0"))
    c.expect_ack(XS_WRITE, _p(path) + _b(value), tx_id=tx)
    return tx


def check_forced_tx(holder, tx, path):
    """After an update forced past the open transaction tx: requests in it
    work, its commit answers EAGAIN, its write is not in the store, and a
    new transaction commits."""
    eq(holder.expect_ok(XS_READ, b"/t/base\0", tx_id=tx), b"b",
       "read inside the transaction after the update")
    holder.expect_error(XS_TRANSACTION_END, b"T\0", "EAGAIN", tx_id=tx)
    check(not holder.exists(path), "the forced-through write leaked")
    tx = open_tx(holder, "/t/new", "z")
    holder.expect_ack(XS_TRANSACTION_END, b"T\0", tx_id=tx)
    eq(holder.read("/t/new"), b"z", "new transaction after the update")


def test_busy_transaction_refused_without_force():
    with daemon() as d:
        pid = d.pid
        holder = RawClient(d.socket_path)
        holder.write("/t/base", "b")
        tx = open_tx(holder, "/t/in", "v")

        rc, out, took = xsctl(d, "-t", "2", new_binary())
        check(rc != 0, "xenstore-control succeeded with a transaction open: %r" % out)
        check("BUSY" in out or "timeout" in out,
              "no BUSY or timeout text in the output %r" % out)
        # xenstore-control's last -s comes -t - 1 s after its first: the
        # daemon counts the timeout as over then.
        check(0.8 <= took <= 8, "the refusal took %.1f s for -t 2" % took)
        check(d.alive(), "daemon died")
        eq(d.pid, pid, "pid")
        eq(count_done(d), 0, "live updates in the log")
        check(b"--live-update-image" not in cmdline(pid), "exec happened")
        check(not os.path.exists(image_path(d)), "image left behind")
        eq(holder.read("/t/base"), b"b", "read after the refusal")
        holder.expect_ack(XS_TRANSACTION_END, b"T\0", tx_id=tx)
        eq(holder.read("/t/in"), b"v", "committed after the refusal")

        # The daemon's own timeout, by raw sends: BUSY, then the text.
        tx = open_tx(holder, "/t/in2", "w")
        with RawClient(d.socket_path) as ctl:
            eq(lu_control(ctl, "-f", new_binary()), (XS_CONTROL, "OK"), "-f")
            eq(lu_control(ctl, "-s", "-t", "2"), (XS_CONTROL, "BUSY"), "first -s")
            eq(lu_control(ctl, "-s", "-t", "2"), (XS_CONTROL, "BUSY"), "second -s")
            time.sleep(2.05)
            rt, text = lu_control(ctl, "-s", "-t", "2")
            check(rt == XS_CONTROL and text.startswith("timeout"),
                  "-s after the timeout answered %s %r" % (type_name(rt), text))
            eq(lu_control(ctl, "-a"), (XS_CONTROL, "OK"), "-a")
        eq(d.pid, pid, "pid")
        check(b"--live-update-image" not in cmdline(pid), "exec happened")
        holder.expect_ack(XS_TRANSACTION_END, b"T\0", tx_id=tx)
        eq(holder.read("/t/in2"), b"w", "committed after the timeout")
        holder.close()


def test_force_by_raw_control_gives_eagain():
    """-F, sent by hand: BUSY until the timeout, then the update happens and
    the open transaction commits with EAGAIN."""
    with daemon() as d:
        pid = d.pid
        holder = RawClient(d.socket_path)
        holder.write("/t/base", "b")
        tx = open_tx(holder, "/t/in", "v")
        ctl = RawClient(d.socket_path)
        eq(lu_control(ctl, "-f", new_binary()), (XS_CONTROL, "OK"), "-f")
        eq(lu_control(ctl, "-s", "-t", "2", "-F"), (XS_CONTROL, "BUSY"), "first -s")
        time.sleep(1.05)
        eq(lu_control(ctl, "-s", "-t", "2", "-F"), (XS_CONTROL, "OK"),
           "-s -F on the try -t - 1 s after the first")
        check_updated(d, pid)
        check_forced_tx(holder, tx, "/t/in")
        eq(ctl.read("/t/base"), b"b", "requester's connection after")
        ctl.close()
        holder.close()


def test_force_with_xenstore_control_gives_eagain():
    """xenstore-control live-update -t 1 -F with a transaction open: the
    tool sends -s once a second and gives up (BUSY) -t seconds after it
    started, so the daemon must go ahead by then."""
    with daemon() as d:
        pid = d.pid
        holder = RawClient(d.socket_path)
        holder.write("/t/base", "b")
        tx = open_tx(holder, "/t/in", "v")
        rc, out, took = xsctl(d, "-t", "1", "-F", new_binary())
        eq(rc, 0, "xenstore-control -t 1 -F status (output %r)" % out)
        check(took <= 8, "the forced update took %.1f s for -t 1" % took)
        check_updated(d, pid)
        check_forced_tx(holder, tx, "/t/in")
        holder.close()


def test_refusals_and_raw_control():
    with daemon() as d:
        pid = d.pid
        c = RawClient(d.socket_path)
        c.write("/r/a", "1")
        notexec = os.path.join(d.dir, "not-a-program")
        with open(notexec, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(notexec, stat.S_IRUSR | stat.S_IWUSR)
        rc, out, _ = xsctl(d, notexec)
        check(rc != 0, "xenstore-control accepted a non-executable file: %r" % out)
        check("cannot execute" in out and notexec in out,
              "the daemon's text is not in the output %r" % out)
        check(d.alive(), "daemon died")
        eq(d.pid, pid, "pid")
        eq(c.read("/r/a"), b"1", "read after the refusal")

        rt, text = lu_control(c, "-f", notexec)
        eq(rt, XS_CONTROL, "reply type to -f <non-executable>")
        check(text.startswith("cannot execute"), "-f reply %r" % text)
        rt, text = lu_control(c, "-s")
        eq(rt, XS_CONTROL, "reply type to -s without -f")
        check(text and text not in ("OK", "BUSY"), "-s without -f answered %r" % text)
        rt, text = lu_control(c, "-a")
        eq((rt, text), (XS_CONTROL, "OK"), "-a")
        # -f then -a forgets the binary: -s is refused again.
        eq(lu_control(c, "-f", new_binary()), (XS_CONTROL, "OK"), "-f good binary")
        eq(lu_control(c, "-a"), (XS_CONTROL, "OK"), "-a after -f")
        rt, text = lu_control(c, "-s", "-t", "1")
        check(rt == XS_CONTROL and text not in ("OK", "BUSY"),
              "-s after -a answered %s %r" % (type_name(rt), text))
        check(not c.is_closed(0.1), "connection closed")
        eq(c.read("/r/a"), b"1", "read at the end")
        eq(count_done(d), 0, "live updates in the log")
        eq(d.pid, pid, "pid")
        check(b"--live-update-image" not in cmdline(pid), "exec happened")
        c.close()


def test_cmdline_option_runs_the_new_command_line():
    with daemon(()) as d:
        pid = d.pid
        c = EventClient(d.socket_path)
        c.write("/c/a", "1")
        c.watch_initial("/c/a", "t")
        newlog = os.path.join(d.dir, "new.log")
        line = "-N --socket %s --pid-file %s -v --log-file %s" % (
            d.socket_path, os.path.join(d.dir, "pid"), newlog)
        live_update(d, "-c", line)
        check(d.alive(), "daemon died")
        eq(d.pid, pid, "pid")
        wait_done(d, 1, newlog)
        eq(count_done(d), 0, "'done' lines in the old log (no -v there)")
        args_ = [a.decode() for a in cmdline(pid)]
        eq(args_[1:1 + len(line.split())], line.split(), "new command line")
        check("--live-update-image" in args_, "no image option: %r" % args_)
        check(not os.path.exists(image_path(d)), "image left behind")
        eq(c.read("/c/a"), b"1", "same connection, same store")
        c.write("/c/a", "2")
        eq(c.next_event(), ev("/c/a", "t"), "old watch after -c update")
        with open(newlog) as f:
            check("serving" in f.read(), "the new log file has no serving line")
        c.close()


def test_two_live_updates_in_a_row():
    with daemon() as d:
        pid = d.pid
        c = EventClient(d.socket_path)
        c.write("/two/a", "0")
        c.watch_initial("/two/a", "t")
        for n in (1, 2):
            live_update(d)
            check_updated(d, pid, n)
            eq(cmdline(pid).count(b"--live-update-image"), 1,
               "image options on the command line after update %d" % n)
            eq(c.read("/two/a"), str(n - 1).encode(), "value after update %d" % n)
            eq(c.collect(), [], "events from update %d" % n)
            c.write("/two/a", str(n))
            eq(c.next_event(what="watch after update %d" % n), ev("/two/a", "t"))
        eq(count_done(d), 2, "'done' lines in the log")
        c.close()


def test_no_database_refuses_live_update():
    with daemon(("-v", "--no-database")) as d:
        pid = d.pid
        c = RawClient(d.socket_path)
        c.write("/nd/a", "1")
        rc, out, _ = xsctl(d, new_binary())
        check(rc != 0, "live update accepted with --no-database: %r" % out)
        check("no-database" in out, "no reason in the output %r" % out)
        eq(lu_control(c, "-f", new_binary()), (XS_CONTROL, "OK"), "-f")
        rt, text = lu_control(c, "-s")
        eq(rt, XS_CONTROL, "reply type to -s")
        check("no-database" in text, "-s answered %r" % text)
        eq(lu_control(c, "-a"), (XS_CONTROL, "OK"), "-a")
        check(d.alive(), "daemon died")
        eq(d.pid, pid, "pid")
        check(b"--live-update-image" not in cmdline(pid), "exec happened")
        eq(count_done(d), 0, "'done' lines in the log")
        eq(c.read("/nd/a"), b"1", "read after the refusal")
        c.write("/nd/b", "2")
        with RawClient(d.socket_path) as other:
            eq(other.read("/nd/b"), b"2", "new client after the refusal")
        check(not os.path.exists(os.path.join(d.dir, DB_NAME + ".live-update")),
              "an image was written")
        c.close()


run(globals())
