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
always).  The daemon runs with its defaults (the database on): a change
its database could not record is written with the whole state anew (a
rewrite, persist/db.c), never given up by turning persistence off, and a
last restart shows that what it wrote to disk is the state it serves.

"CONTROL failalloc thread N" fails the allocation after N made by other
threads than the loop's: a compaction's, each of whose allocations is
made to fail in turn by another test.  The build has the crash build's
crash points too (persist/crash.h): a last test kills it inside the
rewrite a failure sets off.

XS_FAILALLOC_MAX (default 200) bounds N per scenario.
"""

import os
import subprocess
import sys
import time

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


def armed(d, setup, n):
    """A fresh connection to d, the test subtree made anew by setup, and
    the allocation after n of the next request armed to fail: (the
    connection, setup's result, the tree before the request)."""
    c = connect(d)
    if c.exists(ROOT):
        c.rm(ROOT)
    ctx = setup(c)
    before = tree(c)
    control(c, b"failalloc", str(n).encode())
    return c, ctx, before


def one_case(d, c, setup, act, n):
    """Arm N, act; returns (outcome, fired, before, client): outcome is
    "ok", "enomem" or "closed", fired whether the failure happened, before
    the tree before the request, and client a working connection."""
    # A fresh connection per case: a transaction or watch of the last one
    # would linger otherwise.
    c.close()
    c, ctx, before = armed(d, setup, n)
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


def start_again(life):
    """The daemon of life started again on its files (its environment
    inherited, its log in log.restart): a connection to it."""
    life.stopped = False
    life.env = None
    life.log_path = os.path.join(life.dir, "log.restart")
    life._start_ours()
    return connect(life)


def serves_after_a_restart(life, served):
    """Stopped, then started again: it serves the tree served."""
    life.stop()
    c = start_again(life)
    eq(c.dump(b"/"), served, "the tree after a restart")
    c.close()


OFF = "persistence is off"
REWRITE = "the whole state written anew"


def test_every_allocation_of_each_request_fails_in_turn(d):
    if skip_in_upstream_mode("the failure-injection build is ours"):
        return
    c = connect(d)
    seen = {}
    for name, setup, act in SCENARIOS:
        # The state after the request, unarmed.
        c.close()
        c = connect(d)
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
            outcome, fired, before, c = one_case(d, c, setup, act, n)
            check(d.alive(), "%s, allocation %d: the daemon died" % (name, n))
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
            # A change the database could not record is written with
            # the whole state, never given up.
            check(OFF not in d.log(), "%s: persistence went off" % what)
        else:
            raise AssertionError("%s: still failing after %d allocations" % (name, MAX_N))
        seen[name] = (n, counts)
    for name, (n, counts) in seen.items():
        diag("%-50s %3d allocations: %d answered, %d ENOMEM, %d closed"
             % (name, n, counts["ok"] - 1, counts["enomem"], counts["closed"]))
    rewrites = d.log().count(REWRITE)
    diag("%d rewrites of the whole state after a change went unrecorded"
         % rewrites)
    check(rewrites > 0, "no failure met the database's recording")
    # What the daemon holds on disk is what it served.
    served = c.dump(b"/")
    c.close()
    serves_after_a_restart(d, served)


def test_every_allocation_of_a_compaction_fails_in_turn(d):
    """A compaction's thread out of memory: the files are as before it,
    and the commit after writes the whole state anew, which supersedes
    the old journal; persistence stays on, and a restart serves what was
    served.  The journal limit is 4 KiB, so that a few writes set one
    off."""
    if skip_in_upstream_mode("the failure-injection build is ours"):
        return
    life = Daemon(env=dict(os.environ, XENSTORED_JOURNAL_LIMIT="4k")).start()
    old = os.path.join(life.dir, "xenstored.tdb.journal.old")
    try:
        c = connect(life)
        for n in range(MAX_N + 1):
            control(c, b"failalloc", b"thread", str(n).encode())
            # Up to the limit and no further: one rotation, one
            # compaction.  A write more could fill the live journal
            # again, and the loop would set it aside as it reaps this
            # compaction: an old journal again, which this loop would
            # take for this one still there.
            for i in range(200):
                c.write(b"/c/%d/%d" % (n % 3, i), b"%d" % n * 100)
                if os.path.exists(old):
                    break
            else:
                raise AssertionError("allocation %d: no rotation after "
                                     "200 writes" % n)
            deadline = time.monotonic() + 10
            while os.path.exists(old) and time.monotonic() < deadline:
                time.sleep(0.01)
            check(not os.path.exists(old), "allocation %d: the old journal "
                  "is still there after 10 s; the daemon's log:\n%s"
                  % (n, life.log()[-3000:]))
            fired = control(c, b"failalloc") == b"fired\0"
            check(life.alive(), "allocation %d: the daemon died" % n)
            eq(control(c, b"check"), b"OK\0", "allocation %d: CONTROL check" % n)
            check(OFF not in life.log(), "allocation %d: persistence went off" % n)
            if not fired:
                break
        else:
            raise AssertionError("a compaction still failing after %d "
                                 "allocations" % MAX_N)
        diag("a compaction makes %d allocations" % n)
        check(n > 0 and life.log().count(REWRITE) >= n,
              "%d failed compactions, %d rewrites"
              % (n, life.log().count(REWRITE)))
        served = c.dump(b"/")
        c.close()
        serves_after_a_restart(life, served)
    finally:
        life.stop()
        life.cleanup()


def test_a_compaction_failing_at_a_clean_stop(d):
    """A compaction's thread out of memory as the daemon stops: the stop's
    checkpoint (or the loop, if it learnt first) writes the whole state
    anew, and the next start serves what was served."""
    if skip_in_upstream_mode("the failure-injection build is ours"):
        return
    life = Daemon(env=dict(os.environ, XENSTORED_JOURNAL_LIMIT="4k")).start()
    try:
        c = connect(life)
        control(c, b"failalloc", b"thread", b"0")
        for i in range(40):
            c.write(b"/s/%d" % i, b"v" * 100)
        served = c.dump(b"/")
        c.close()
        life.stop()
        eq(life.status, 0, "exit status")
        check(REWRITE in life.log(), "no rewrite: %s" % life.log()[-800:])
        check(OFF not in life.log(), "persistence went off")
        c = start_again(life)
        eq(c.dump(b"/"), served, "the tree after a restart")
        c.close()
    finally:
        life.stop()
        life.cleanup()


def test_a_crash_inside_a_rewrite_leaves_a_whole_state(d):
    """Killed inside a rewrite (persist/db.c): after the journal's mark
    (rewrite-marked), after the rename (rewrite-renamed), after the old
    journal's removal (rewrite-old-removed).  The request is a commit
    that replaces a subtree, never acknowledged: a restart must serve
    the state before it or after it.  After the rename the journals are
    older than the file, and replayed over it they would put /f/a/x back
    beside /f/a/new/deep, neither state: they are dropped instead."""
    if skip_in_upstream_mode("the failure-injection build is ours"):
        return
    c = connect(d)
    tx = tx_setup(c)
    c.expect_ack(XS_TRANSACTION_END, b"T\0", tx_id=tx)
    after = tree(c)
    c.close()
    for point in ("rewrite-marked", "rewrite-renamed", "rewrite-old-removed"):
        life = Daemon(env=dict(os.environ, XENSTORED_CRASH_AT=point)).start()
        try:
            for n in range(MAX_N + 1):
                c, tx, before = armed(life, tx_setup, n)
                c.send(XS_TRANSACTION_END, b"T\0", tx_id=tx)
                try:
                    c.recv_packet()
                    answered = True
                except (OSError, ConnectionClosed):
                    answered = False
                c.close()
                if not answered:
                    # Closed: the connection alone, or the daemon dying.
                    try:
                        life.proc.wait(1)
                        break
                    except subprocess.TimeoutExpired:
                        pass
            else:
                raise AssertionError("%s: no failure set off a rewrite" % point)
            check("crash point %s:1" % point in life.log(),
                  "%s: the daemon died elsewhere: %s" % (point, life.log()[-500:]))
            life.proc.wait()
            c = start_again(life)
            now = tree(c)
            c.close()
            check(now in (before, after),
                  "%s: after the restart the tree is neither the one before "
                  "the commit nor the one after: %r" % (point, now))
            dropped = "older than the file written whole" in life.log()
            eq(dropped, point != "rewrite-marked",
               "%s: the journals dropped at the restart" % point)
        finally:
            life.stop()
            life.cleanup()


if __name__ == "__main__":
    if not upstream_mode():
        os.environ["XS_DAEMON"] = BINARY
    run(globals())
