#!/usr/bin/python3
"""Failure injection: every allocation of a request made to fail in turn.

build/tests/xenstored-failalloc is the daemon with its allocator (and
libevent's) wrapped at link time (tests/failalloc/failalloc.c):
"CONTROL failalloc N" lets the next request make N allocations and fails
the one after, wherever it comes (the handler, the reply, the events, the
commit to the database); "CONTROL failalloc" then says whether it fired.

For each scenario below (a state set up, then one request) and each N
from 0 until the request no longer meets the failure, this checks the
contract of docs/security.md: the daemon stays up; the request is
answered as usual, answered ENOMEM, or its connection alone is closed;
CONTROL check passes; and the tree equals the state before the request
(after ENOMEM: always) or the state after it (after a normal answer:
always).  The daemon runs with its defaults (the database on), and a last
restart shows that what it wrote to disk is the state it serves.

XS_FAILALLOC_MAX (default 200) bounds N per scenario.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xstest import *  # noqa: E402,F401,F403
from xstest import _diag as diag  # noqa: E402

BUILD = os.environ.get("XS_BUILD", os.path.join(REPO, "build"))
BINARY = os.path.join(BUILD, "tests", "xenstored-failalloc")
ROOT = b"/f"
MAX_N = int(os.environ.get("XS_FAILALLOC_MAX", "200"))


def tree(c):
    """The test subtree, or None where it does not exist."""
    return c.dump(ROOT) if c.exists(ROOT) else None


def control(c, *args):
    return c.expect_ok(XS_CONTROL, b"".join(a + b"\0" for a in args))


# Each scenario: setup(c) -> ctx, run unarmed on an empty /f; then act(c,
# ctx) sends exactly one request and returns (type, payload) of its reply.
# watch: after the request, whether the watch it registers exists (None:
# not a WATCH).

def setup_tree(c):
    c.write(b"/f/a/x", b"1")
    c.write(b"/f/a/y", b"2")
    c.set_perms(b"/f/a/y", ["n0", "r5"])
    c.write(b"/f/keep", b"k")
    return None


def tx_setup(c):
    setup_tree(c)
    tx = int(c.expect_ok(XS_TRANSACTION_START, b"\0").rstrip(b"\0"))
    c.expect_ack(XS_RM, b"/f/a\0", tx_id=tx)
    c.expect_ack(XS_WRITE, b"/f/a/new/deep\0v", tx_id=tx)
    c.expect_ack(XS_WRITE, b"/f/keep\0k2", tx_id=tx)
    c.expect_ack(XS_SET_PERMS, b"/f/keep\0n0\0r7\0", tx_id=tx)
    return tx


def request(type_, payload, tx=False):
    def act(c, ctx):
        rid = c.send(type_, payload, tx_id=ctx if tx else 0)
        rt, rrid, _, rp = c.recv_packet()
        eq(rrid, rid, "req_id of the reply")
        if type_ == XS_WATCH and rt == XS_WATCH:
            # Its first event follows, unless there was no memory to
            # queue it (an event is only lost: docs/security.md).
            c.sock.settimeout(1.0)
            try:
                et, _, _, ep = c.recv_packet()
                eq(et, XS_WATCH_EVENT, "the watch's first event")
            except (OSError, ConnectionClosed):
                pass
            c.sock.settimeout(5.0)
        return rt, rp
    return act


SCENARIOS = [
    ("WRITE of a new deep path", setup_tree,
     request(XS_WRITE, b"/f/b/c/d/e\0value")),
    ("WRITE over a node", setup_tree,
     request(XS_WRITE, b"/f/a/x\0a longer value than before")),
    ("MKDIR", setup_tree, request(XS_MKDIR, b"/f/m/n\0")),
    ("RM of a subtree", setup_tree, request(XS_RM, b"/f/a\0")),
    ("SET_PERMS", setup_tree, request(XS_SET_PERMS, b"/f/a\0n0\0r5\0b6\0")),
    ("READ", setup_tree, request(XS_READ, b"/f/a/y\0")),
    ("DIRECTORY", setup_tree, request(XS_DIRECTORY, b"/f/a\0")),
    ("GET_PERMS", setup_tree, request(XS_GET_PERMS, b"/f/a/y\0")),
    ("WATCH", setup_tree, request(XS_WATCH, b"/f/a\0tok\0")),
    ("TRANSACTION_START", setup_tree, request(XS_TRANSACTION_START, b"\0")),
    ("TRANSACTION_END T (a commit replacing a subtree)", tx_setup,
     request(XS_TRANSACTION_END, b"T\0", tx=True)),
    ("WRITE in a transaction", lambda c: (setup_tree(c), int(c.expect_ok(
        XS_TRANSACTION_START, b"\0").rstrip(b"\0")))[1],
     request(XS_WRITE, b"/f/t/u\0w", tx=True)),
]


def connect(d):
    c = RawClient(d.socket_path)
    return c


def one_case(d, c, setup, act, n):
    """Arm N, act; returns (outcome, fired, before, client): outcome is
    "ok", "enomem" or "closed", fired whether the failure happened, before
    the tree before the request, and client a working connection."""
    # A fresh connection per case: a transaction or watch of the last one
    # would linger otherwise.
    c.close()
    c = connect(d)
    if c.exists(ROOT):
        c.rm(ROOT)
    ctx = setup(c)
    before = tree(c)
    control(c, b"failalloc", str(n).encode())
    try:
        rt, rp = act(c, ctx)
    except (OSError, XsError, ConnectionClosed) as e:
        if not c.is_closed(0.5):
            raise AssertionError("no reply, yet the connection is open: %s" % e)
        outcome = "closed"
    else:
        if rt == XS_ERROR:
            eq(rp, b"ENOMEM\0", "the only error a failed allocation may cause")
            outcome = "enomem"
        else:
            outcome = "ok"
    if outcome == "closed":
        c.close()
        c = connect(d)
    try:
        fired = control(c, b"failalloc")
    except (OSError, ConnectionClosed):
        # The failure met this very query (reading it): its connection
        # was closed, as the contract allows.
        check(c.is_closed(0.5), "the query failed on an open connection")
        c.close()
        c = connect(d)
        fired = control(c, b"failalloc")
    return outcome, fired == b"fired\0", before, c


OFF = "persistence is off"


class Served:
    """The daemon under test.  A failed allocation in the database's
    recording turns persistence off for good (the files emptied: a known
    gap, docs/security.md): the next case then gets a fresh daemon, so
    that every case meets the database on."""

    def __init__(self, d):
        self.d = d
        self.spares = []
        self.restarts = 0

    def check_persistence(self):
        if OFF in self.d.log():
            self.spares.append(self.d)
            self.d = Daemon().start()
            self.restarts += 1

    def stop_spares(self):
        for s in self.spares:
            s.stop()
            s.cleanup()


def test_every_allocation_of_each_request_fails_in_turn(d):
    if skip_in_upstream_mode("the failure-injection build is ours"):
        return
    srv = Served(d)
    c = connect(srv.d)
    seen = {}
    for name, setup, act in SCENARIOS:
        # The state after the request, unarmed.
        c.close()
        c = connect(srv.d)
        if c.exists(ROOT):
            c.rm(ROOT)
        ctx = setup(c)
        rt, rp = act(c, ctx)
        check(rt != XS_ERROR, "%s unarmed: %s" % (name, short(rp)))
        after = tree(c)
        counts = {"ok": 0, "enomem": 0, "closed": 0}
        for n in range(MAX_N + 1):
            if os.environ.get("XS_FAILALLOC_TRACE"):
                diag("%s %d" % (name, n))
            outcome, fired, before, c = one_case(srv.d, c, setup, act, n)
            check(srv.d.alive(), "%s, allocation %d: the daemon died" % (name, n))
            eq(control(c, b"check"), b"OK\0", "%s, allocation %d: CONTROL check" % (name, n))
            now = tree(c)
            what = "%s, allocation %d failed (%s)" % (name, n, outcome)
            if outcome == "enomem":
                check(now == before, "%s: the tree changed" % what)
            elif outcome == "ok":
                check(now == after, "%s: the tree is not the one after" % what)
            else:
                check(now in (before, after), "%s: the tree is neither" % what)
            counts[outcome] += 1
            if not fired:
                eq(outcome, "ok", "%s: a request that met no failure" % what)
                break
            c.close()
            srv.check_persistence()
            c = connect(srv.d)
        else:
            raise AssertionError("%s: still failing after %d allocations" % (name, MAX_N))
        seen[name] = (n, counts)
    for name, (n, counts) in seen.items():
        diag("%-50s %3d allocations: %d answered, %d ENOMEM, %d closed"
             % (name, n, counts["ok"] - 1, counts["enomem"], counts["closed"]))
    diag("%d fresh daemons after persistence went off" % srv.restarts)
    # What the last daemon holds on disk is what it served.
    last = srv.d
    check(OFF not in last.log(), "the last daemon's persistence is on")
    served = c.dump(b"/")
    c.close()
    last.stop()
    last.stopped = False
    last.log_path = os.path.join(last.dir, "log.restart")
    last._start_ours()
    try:
        c = connect(last)
        eq(c.dump(b"/"), served, "the tree after a restart")
        c.close()
    finally:
        # run() stops the test's own daemon; a fresh one made after
        # persistence went off is this test's to stop.
        if last is not d:
            last.stop()
            last.cleanup()
        srv.stop_spares()


if __name__ == "__main__":
    if not upstream_mode():
        os.environ["XS_DAEMON"] = BINARY
    run(globals())
