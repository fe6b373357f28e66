#!/usr/bin/python3
"""Watches, over the raw protocol and through Debian's pyxs 0.4.

Each test gets a fresh daemon (see xstest.py) and is named after the
behaviour it pins: WATCH/UNWATCH/RESET_WATCHES and their errors, the initial
event, which changes fire which watches (WRITE, MKDIR, SET_PERMS, RM, the
prefix rule, implicitly created parents, transactions), relative watch
paths, the special @introduceDomain/@releaseDomain watches, the order of
events and replies, and a connection that never reads its events.

How "no other event" is checked without sleeping: events of one connection
arrive in the order they were generated, and a new watch's initial event is
generated when the WATCH is handled.  So WClient.collect() registers a
throw-away "barrier" watch and returns every event that arrived before the
barrier's initial event: exactly the events generated so far.

Both 4.17 and this daemon drop an event identical to one still queued for
the connection (same path and token), so no test leaves two identical
events pending at once.

With XS_DAEMON=upstream-c the tests run against Xen 4.17's C daemon, except
those pinning what ours adds: the depth argument (4.17 answers EINVAL to any
third argument), RM events for watches on paths below the removed node that
never existed, and the bounded, coalescing output queue of a slow reader.
"""

import errno
import os
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xstest import *  # noqa: E402,F401,F403

try:
    import pyxs
    from pyxs import PyXSError
except ImportError:  # the raw-protocol tests still run
    pyxs = PyXSError = None


HOME = b"/local/domain/0"        # where a socket client's relative paths land
BARRIER = b"/zz-watch-barrier"   # never written: watched only by collect()


# ---------------------------------------------------------------- helpers

def show_events(evs):
    return "[%s]" % ", ".join("(%s, %s)" % (short(p, 60), short(t, 40)) for p, t in evs)


class WClient(EventClient):
    """xstest.EventClient on a Daemon's socket, with this file's barrier path
    and checks of what collect() returns:

    c.expect_events(list, what)        collect() must equal list
    c.no_events(what)                  collect() must be empty
    """

    barrier = BARRIER

    def __init__(self, d, timeout=5.0):
        super().__init__(d.socket_path, timeout)

    def expect_events(self, expected, what, ordered=False):
        """collect() must give exactly `expected` (in order if `ordered`;
        one change firing several watches has no defined order)."""
        got = self.collect()
        exp = [ev(p, t) for p, t in expected]
        if (got if ordered else sorted(got)) != (exp if ordered else sorted(exp)):
            raise AssertionError("%s:\n  expected events %s\n  got      events %s"
                                 % (what, show_events(exp), show_events(got)))

    def no_events(self, what):
        self.expect_events([], what)


def client(d):
    return WClient(d)


# ------------------------------------------------- WATCH / UNWATCH protocol

def test_watch_acks_then_sends_one_initial_event(d):
    c = client(d)
    rid = c.send(XS_WATCH, b"/w\0tok\0")
    eq(c.recv_packet(), (XS_WATCH, rid, 0, b"OK\0"), "reply to WATCH /w tok")
    eq(c.recv_packet(), (XS_WATCH_EVENT, 0, 0, b"/w\0tok\0"),
       "initial event after WATCH /w tok (type 15, req_id 0, tx_id 0)")
    c.no_events("after the initial event of WATCH /w tok")
    check(not c.exists("/w"), "WATCH created the watched node")
    # on an existing node too
    c.write("/exists", "v")
    c.watch_initial("/exists", "t2")
    c.no_events("after the initial event of WATCH /exists t2")


def test_initial_event_carries_path_and_token_as_given(d):
    c = client(d)
    c.watch_initial("/", "root")
    c.watch_initial("/deep/er/path", "token with spaces/and:punctuation!")
    c.watch_initial("/local/domain/0/abs", "a")
    c.watch_initial("rel/x", "r")
    c.no_events("after four initial events")


def test_watch_and_unwatch_ignore_the_tx_id(d):
    c, w = client(d), client(d)
    c.write("/txw/n", "0")
    rp = c.expect_ok(XS_TRANSACTION_START, b"\0")
    t = int(rp[:-1])
    # inside an open transaction of the connection, and with unknown ids
    c.watch("/txw", "in-tx", tx=t)
    eq(c.next_event(), ev("/txw", "in-tx"), "initial event of a WATCH sent with tx_id %d" % t)
    c.watch("/txw", "bogus-tx", tx=4242)
    eq(c.next_event(), ev("/txw", "bogus-tx"), "initial event of a WATCH sent with tx_id 4242")
    c.expect_ack(XS_TRANSACTION_END, b"F\0", tx_id=t)
    # both watches outlive the aborted transaction and see tx-0 changes
    w.write("/txw/n", "1")
    c.expect_events([("/txw/n", "in-tx"), ("/txw/n", "bogus-tx")],
                    "after another connection's WRITE /txw/n (transaction aborted)")
    c.unwatch("/txw", "in-tx", tx=4243)
    c.unwatch("/txw", "bogus-tx", tx=1)
    w.write("/txw/n", "2")
    c.no_events("after UNWATCH with bogus tx_ids and a WRITE /txw/n")


def test_same_path_and_token_twice_is_eexist(d):
    c, other = client(d), client(d)
    c.watch_initial("/e", "tok")
    c.expect_error(XS_WATCH, b"/e\0tok\0", "EEXIST")
    c.no_events("after the refused second WATCH /e tok (no second initial event)")
    c.write("/e", "1")
    c.expect_events([("/e", "tok")], "WRITE /e with one watch /e tok (not two)")
    # same path, another token: a second watch
    c.watch_initial("/e", "tok2")
    # same token, another path: also another watch
    c.watch_initial("/e/sub", "tok")
    # another connection may watch the same pair
    other.watch_initial("/e", "tok")
    c.write("/e/x", "2")
    c.expect_events([("/e/x", "tok"), ("/e/x", "tok2")], "WRITE /e/x with watches /e tok, "
                    "/e tok2, /e/sub tok")
    other.expect_events([("/e/x", "tok")], "the other connection's watch /e tok")
    # (4.17 drops an event identical to one still unsent: with /e tok and
    # /e/sub tok both set, WRITE /e/sub would give one or two events.)
    c.unwatch("/e", "tok")
    c.write("/e/sub", "3")
    c.expect_events([("/e/sub", "tok2"), ("/e/sub", "tok")],
                    "WRITE /e/sub after UNWATCH /e tok: /e tok2 and /e/sub tok remain")
    other.expect_events([("/e/sub", "tok")], "the other connection's watch /e tok, "
                        "after c's UNWATCH of the same pair")


def test_unwatch_of_unknown_watch_is_enoent(d):
    c, other = client(d), client(d)
    c.expect_error(XS_UNWATCH, b"/u\0tok\0", "ENOENT")
    c.watch_initial("/u", "tok")
    c.expect_error(XS_UNWATCH, b"/u\0other\0", "ENOENT")
    c.expect_error(XS_UNWATCH, b"/u/x\0tok\0", "ENOENT")
    c.expect_error(XS_UNWATCH, b"/\0tok\0", "ENOENT")
    other.expect_error(XS_UNWATCH, b"/u\0tok\0", "ENOENT")  # c's, not other's
    c.unwatch("/u", "tok")
    c.expect_error(XS_UNWATCH, b"/u\0tok\0", "ENOENT")


def test_unwatch_stops_events_of_that_watch_only(d):
    c, w = client(d), client(d)
    c.watch_initial("/s", "a")
    c.watch_initial("/s", "b")
    w.write("/s/k", "1")
    c.expect_events([("/s/k", "a"), ("/s/k", "b")], "two watches on /s")
    c.unwatch("/s", "a")
    w.write("/s/k", "2")
    w.rm("/s")
    c.expect_events([("/s/k", "b"), ("/s", "b")], "after UNWATCH /s a: only b fires")
    c.unwatch("/s", "b")
    w.write("/s/k", "3")
    c.no_events("after UNWATCH of both")
    # a removed watch can be registered again
    c.watch_initial("/s", "a")


def test_watch_with_bad_path_is_einval(d):
    c = client(d)
    for bad in [b"", b"/a//b", b"/a/", b"//", b"/a b", b"/a\x01b", b"rel/", b"rel//x",
                b"/" + b"p" * 3100, b"r" * 3100]:
        eq(c.error(XS_WATCH, bad + b"\0tok\0"), "EINVAL", "WATCH %s" % short(bad))
    c.no_events("after refused WATCHes (no initial events)")


def test_watch_with_wrong_number_of_arguments_is_einval(d):
    c = client(d)
    for bad in [b"", b"/a\0", b"/a\0t\0x\0y\0"]:
        eq(c.error(XS_WATCH, bad), "EINVAL", "WATCH payload %s" % short(bad))
    for bad in [b"", b"/a\0", b"/a\0t\0x\0y\0"]:
        eq(c.error(XS_UNWATCH, bad), "EINVAL", "UNWATCH payload %s" % short(bad))
    c.no_events("after refused WATCHes")
    # none of them registered anything
    c.watch_initial("/a", "t")


def test_watch_payload_without_final_nul_is_einval(d):
    c = client(d)
    for bad in [b"/a", b"/a\0t"]:
        eq(c.error(XS_WATCH, bad), "EINVAL", "WATCH payload %s" % short(bad))
    c.no_events("after refused WATCHes")
    c.watch_initial("/a", "t")


def test_reset_watches_removes_all_watches_of_the_connection(d):
    c, other, w = client(d), client(d), client(d)
    c.watch_initial("/r1", "t1")
    c.watch_initial("/r2", "t2")
    c.watch_initial("/", "root")
    c.watch_initial("@introduceDomain", "intro")
    other.watch_initial("/r1", "t1")
    c.expect_ack(XS_RESET_WATCHES, b"")
    w.write("/r1", "x")
    w.write("/r2/y", "x")
    c.no_events("after RESET_WATCHES and WRITEs to /r1, /r2/y")
    other.expect_events([("/r1", "t1")], "another connection's watch after c's RESET_WATCHES")
    for p, t in [(b"/r1", b"t1"), (b"/r2", b"t2"), (b"/", b"root"), (b"@introduceDomain", b"intro")]:
        eq(c.error(XS_UNWATCH, p + b"\0" + t + b"\0"), "ENOENT",
           "UNWATCH %s %s after RESET_WATCHES" % (p.decode(), t.decode()))
    # the same pairs can be watched again
    c.watch_initial("/r1", "t1")
    c.watch_initial("@introduceDomain", "intro")
    w.write("/r1", "y")
    c.expect_events([("/r1", "t1")], "a watch set again after RESET_WATCHES")


# ------------------------------------------------------ what fires what

def test_write_fires_for_the_node_and_every_ancestor(d):
    c, w = client(d), client(d)
    w.write("/a/b/c", "0")
    w.write("/ab", "")
    w.write("/a/bc", "")
    for path, tok in [("/", "root"), ("/a", "a"), ("/a/b", "ab"), ("/a/b/c", "abc"),
                      ("/a/b/c/d", "below"), ("/ab", "sib"), ("/a/bc", "sib2"),
                      ("/a/b/cc", "sib3"), ("/a/b/c/dd", "below2")]:
        c.watch_initial(path, tok)
    w.write("/a/b/c", "1")
    c.expect_events([("/a/b/c", "root"), ("/a/b/c", "a"), ("/a/b/c", "ab"),
                     ("/a/b/c", "abc")],
                    "WRITE /a/b/c (existing): watches on it and its ancestors only")
    w.write("/a/b/c/d", "new")
    c.expect_events([("/a/b/c/d", "root"), ("/a/b/c/d", "a"), ("/a/b/c/d", "ab"),
                     ("/a/b/c/d", "abc"), ("/a/b/c/d", "below")],
                    "WRITE /a/b/c/d (new)")
    w.write("/ab/x", "1")
    c.expect_events([("/ab/x", "root"), ("/ab/x", "sib")],
                    "WRITE /ab/x: /a is not an ancestor of /ab/x")


def test_write_of_an_identical_value_fires(d):
    c, w = client(d), client(d)
    w.write("/same", "v")
    c.watch_initial("/same", "s")
    for i in range(3):
        w.write("/same", "v")
        c.expect_events([("/same", "s")], "WRITE /same with its current value (#%d)" % (i + 1))


def test_own_write_fires_for_own_watch(d):
    c = client(d)
    c.watch_initial("/own", "o")
    c.write("/own/x", "1")  # its event may come before or after the reply
    c.expect_events([("/own/x", "o")], "the connection's own WRITE /own/x")
    c.write("/own/x", "2")
    c.write("/own/y", "3")
    c.expect_events([("/own/x", "o"), ("/own/y", "o")], "two own WRITEs", ordered=True)


def test_implicitly_created_parents_fire_nothing_of_their_own(d):
    c, w = client(d), client(d)
    for path, tok in [("/", "root"), ("/x", "x"), ("/x/y", "xy"), ("/x/y/z", "xyz"),
                      ("/other", "other")]:
        c.watch_initial(path, tok)
    w.write("/x/y/z", "v")
    c.expect_events([("/x/y/z", "root"), ("/x/y/z", "x"), ("/x/y/z", "xy"),
                     ("/x/y/z", "xyz")],
                    "WRITE /x/y/z with /x missing: one event each, path /x/y/z only")
    w.mkdir("/x/m/n/o")
    c.expect_events([("/x/m/n/o", "root"), ("/x/m/n/o", "x")],
                    "MKDIR /x/m/n/o with /x/m missing")


def test_mkdir_fires_for_a_new_node_only(d):
    c, w = client(d), client(d)
    c.watch_initial("/m", "m")
    c.watch_initial("/", "root")
    w.mkdir("/m")
    c.expect_events([("/m", "m"), ("/m", "root")], "MKDIR /m (new)")
    w.mkdir("/m")
    c.no_events("MKDIR /m again (existing)")
    w.write("/m", "value")
    c.expect_events([("/m", "m"), ("/m", "root")], "WRITE /m")
    w.mkdir("/m")
    c.no_events("MKDIR /m (existing, with a value)")
    eq(w.read("/m"), b"value")
    w.mkdir("/")
    c.no_events("MKDIR / (always exists)")


def test_set_perms_fires(d):
    c, w = client(d), client(d)
    w.write("/p/q", "v")
    for path, tok in [("/p", "p"), ("/p/q", "pq"), ("/p/q/r", "below"), ("/pq", "sib")]:
        c.watch_initial(path, tok)
    w.set_perms("/p/q", ["n0", "r5"])
    c.expect_events([("/p/q", "p"), ("/p/q", "pq")], "SET_PERMS /p/q")
    w.set_perms("/p/q", ["n0", "r5"])
    c.expect_events([("/p/q", "p"), ("/p/q", "pq")], "SET_PERMS /p/q with the same perms")
    w.set_perms("/p", ["r0"])
    c.expect_events([("/p", "p")], "SET_PERMS /p")


def test_rm_fires_for_the_node_its_ancestors_and_existing_nodes_below(d):
    c, w = client(d), client(d)
    w.write("/r/a/b/c", "v")
    w.write("/r/a/x", "v")
    w.write("/r/ab", "v")
    for path, tok in [("/", "root"), ("/r", "r"), ("/r/a", "ra"), ("/r/a/b", "rab"),
                      ("/r/a/b/c", "rabc"), ("/r/a/x", "rax"), ("/r/ab", "sib")]:
        c.watch_initial(path, tok)
    w.rm("/r/a")
    c.expect_events([("/r/a", "root"), ("/r/a", "r"), ("/r/a", "ra"),
                     ("/r/a/b", "rab"), ("/r/a/b/c", "rabc"), ("/r/a/x", "rax")],
                    "RM /r/a: one event per watch, watches below get their own path")
    w.rm("/r/a")
    c.no_events("RM /r/a again (missing, parent exists)")
    eq(w.directory("/r"), [b"ab"])


def test_rm_of_a_missing_node_fires_nothing(d):
    c, w = client(d), client(d)
    w.write("/present", "")
    for path, tok in [("/", "root"), ("/gone", "g"), ("/gone/below", "gb"),
                      ("/present", "p")]:
        c.watch_initial(path, tok)
    w.rm("/gone")
    w.rm("/present/gone")
    c.no_events("RM of missing nodes /gone and /present/gone")
    eq(w.error(XS_RM, b"/gone/below\0"), "ENOENT", "RM /gone/below (parent missing)")
    c.no_events("refused RM /gone/below")


def test_rm_fires_watches_below_that_never_existed(d):
    if skip_in_upstream_mode("4.17 sends nothing to watches on never-existing "
                             "paths below a removed node"):
        return
    c, w = client(d), client(d)
    w.write("/n/a/b", "v")
    for path, tok in [("/n/a/never", "never"), ("/n/a/b/never/deeper", "deeper"),
                      ("/n/a/b", "b"), ("/n/ab/never", "sib")]:
        c.watch_initial(path, tok)
    w.rm("/n/a")
    c.expect_events([("/n/a/never", "never"), ("/n/a/b/never/deeper", "deeper"),
                     ("/n/a/b", "b")],
                    "RM /n/a: every watch below gets its own path")


# ------------------------------------------------------- transactions

def _tx_setup(d):
    c, w = client(d), client(d)
    c.write("/t/a", "0")
    c.write("/t/c", "0")
    c.write("/t/p", "0")
    w.watch_initial("/t", "t")
    c.watch_initial("/t", "own")
    rp = c.expect_ok(XS_TRANSACTION_START, b"\0")
    tx = int(rp[:-1])
    for op, payload in [(XS_WRITE, b"/t/a\0new"), (XS_MKDIR, b"/t/m\0"),
                        (XS_RM, b"/t/c\0"), (XS_SET_PERMS, b"/t/p\0r0\0"),
                        (XS_WRITE, b"/t/n\0new"), (XS_WRITE, b"/t/new/deep\0d")]:
        c.expect_ack(op, payload, tx_id=tx)
    return c, w, tx


TX_PATHS = ["/t/a", "/t/m", "/t/c", "/t/p", "/t/n", "/t/new/deep"]


def test_transaction_fires_on_commit_not_before(d):
    c, w, tx = _tx_setup(d)
    w.no_events("changes inside an open transaction, seen by another connection")
    c.no_events("changes inside an open transaction, seen by the connection itself")
    c.expect_ack(XS_TRANSACTION_END, b"T\0", tx_id=tx)
    w.expect_events([(p, "t") for p in TX_PATHS],
                    "commit of WRITE /t/a, MKDIR /t/m, RM /t/c, SET_PERMS /t/p, "
                    "WRITE /t/n, WRITE /t/new/deep (/t/new implicit)")
    c.expect_events([(p, "own") for p in TX_PATHS], "the committing connection's own watch")


def test_aborted_transaction_fires_nothing(d):
    c, w, tx = _tx_setup(d)
    c.expect_ack(XS_TRANSACTION_END, b"F\0", tx_id=tx)
    w.no_events("aborted transaction")
    c.no_events("aborted transaction, own watch")


def test_transaction_failing_with_eagain_fires_nothing(d):
    c, w, tx = _tx_setup(d)
    other = client(d)
    other.write("/t/a", "conflict")
    c.expect_error(XS_TRANSACTION_END, b"T\0", "EAGAIN", tx_id=tx)
    w.expect_events([("/t/a", "t")], "EAGAIN: only the conflicting WRITE /t/a fires")
    c.expect_events([("/t/a", "own")], "EAGAIN: own watch")


def test_transaction_commit_with_nothing_changed_fires_nothing(d):
    c, w = client(d), client(d)
    c.write("/ro/x", "v")
    w.watch_initial("/", "root")
    rp = c.expect_ok(XS_TRANSACTION_START, b"\0")
    tx = int(rp[:-1])
    eq(c.expect_ok(XS_READ, b"/ro/x\0", tx_id=tx), b"v")
    c.expect_ok(XS_DIRECTORY, b"/ro\0", tx_id=tx)
    c.expect_ack(XS_TRANSACTION_END, b"T\0", tx_id=tx)
    w.no_events("commit of a read-only transaction")


# ---------------------------------------------------------------- depth

def test_depth_limits_the_levels_below_the_watch(d):
    if skip_in_upstream_mode("4.17 has no depth argument"):
        return
    c, w = client(d), client(d)
    c.watch_initial("/d", "d0", depth=0)
    c.watch_initial("/d", "d1", depth=1)
    c.watch_initial("/d", "d2", depth=2)
    c.watch_initial("/d", "all")
    c.watch_initial("/", "root1", depth=1)
    w.write("/d", "v")
    c.expect_events([("/d", "d0"), ("/d", "d1"), ("/d", "d2"), ("/d", "all"),
                     ("/d", "root1")], "WRITE /d")
    w.write("/d/x", "v")
    c.expect_events([("/d/x", "d1"), ("/d/x", "d2"), ("/d/x", "all")], "WRITE /d/x")
    w.write("/d/x/y", "v")
    c.expect_events([("/d/x/y", "d2"), ("/d/x/y", "all")], "WRITE /d/x/y")
    w.write("/d/x/y/z", "v")
    c.expect_events([("/d/x/y/z", "all")], "WRITE /d/x/y/z")
    w.write("/dd", "v")
    c.expect_events([("/dd", "root1")], "WRITE /dd")
    w.rm("/d/x")
    c.expect_events([("/d/x", "d1"), ("/d/x", "d2"), ("/d/x", "all")], "RM /d/x")


def test_depth_negative_or_not_a_number_is_einval(d):
    if skip_in_upstream_mode("4.17 refuses any third argument"):
        return
    c = client(d)
    for bad in [b"-1", b"abc", b"1x", b"0x1"]:
        eq(c.error(XS_WATCH, b"/dv\0t\0" + bad + b"\0"), "EINVAL",
           "WATCH /dv t with depth %r" % bad)
    c.no_events("after refused WATCHes with bad depths")
    c.watch_initial("/dv", "t", depth=0)  # nothing was registered before


# ------------------------------------------------------ relative paths

def test_relative_watch_gets_relative_event_paths(d):
    c, w = client(d), client(d)
    c.watch_initial("rel/x", "r")
    c.watch_initial(HOME + b"/rel", "abs")
    w.write(HOME + b"/rel/x/y", "1")
    c.expect_events([("rel/x/y", "r"), (HOME + b"/rel/x/y", "abs")],
                    "absolute WRITE under a relative watch")
    w.write("rel/x", "2")
    c.expect_events([("rel/x", "r"), (HOME + b"/rel/x", "abs")], "relative WRITE rel/x")
    w.write("rel/xx", "3")
    c.expect_events([(HOME + b"/rel/xx", "abs")], "relative WRITE rel/xx (sibling)")
    w.rm(HOME + b"/rel")
    c.expect_events([("rel/x", "r"), (HOME + b"/rel", "abs")], "RM of the relative watch's ancestor")
    # nothing under the root itself
    w.write("/rel/x", "4")
    c.no_events("WRITE /rel/x (not under /local/domain/0)")


# ---------------------------------------------------- special watches

def test_special_watches_register_and_fire_their_initial_event(d):
    c, w = client(d), client(d)
    c.watch_initial("@introduceDomain", "intro")
    c.watch_initial("@releaseDomain", "release")
    c.expect_error(XS_WATCH, b"@introduceDomain\0intro\0", "EEXIST")
    c.expect_error(XS_WATCH, b"@releaseDomain\0release\0", "EEXIST")
    c.watch_initial("@releaseDomain", "other token")
    w.watch_initial("@releaseDomain", "release")  # another connection
    w.no_events("after the initial event")
    c.no_events("after the initial events")
    # ordinary changes never fire them, even at the root
    w.write("/sp/a", "1")
    w.mkdir("/sp/b")
    w.set_perms("/sp", ["n0"])
    w.rm("/sp")
    w.write("/", "")  # the root node
    c.no_events("WRITE/MKDIR/SET_PERMS/RM with only special watches")
    w.no_events("the other connection's special watch")
    c.unwatch("@introduceDomain", "intro")
    c.expect_error(XS_UNWATCH, b"@introduceDomain\0intro\0", "ENOENT")
    c.unwatch("@releaseDomain", "release")
    c.unwatch("@releaseDomain", "other token")
    w.unwatch("@releaseDomain", "release")


def test_special_watches_are_not_fired_by_ordinary_changes(d):
    c, w = client(d), client(d)
    w.watch_initial("@introduceDomain", "intro")
    w.watch_initial("@releaseDomain", "release")
    c.write("/sp", "1")
    c.mkdir("/sp/dir")
    c.rm("/sp")
    c.write("/sp2", "2")
    c.op(XS_SET_PERMS, b"/sp2\0n0\0r1\0")
    # collect()'s barrier: every event owed to w has arrived by its end.
    w.no_events("special watches after writes, a MKDIR, an RM and a SET_PERMS")


def test_root_watch_does_not_get_special_initial_events(d):
    c, w = client(d), client(d)
    c.watch_initial("/", "root")
    w.watch_initial("@introduceDomain", "intro")
    w.watch_initial("@releaseDomain", "release")
    c.no_events("another connection's special WATCHes under a / watch")


# ------------------------------------------------------------ ordering

def test_events_of_successive_changes_arrive_in_order(d):
    # All event paths distinct: 4.17 drops an event identical to one still
    # queued for the connection.
    c, w = client(d), client(d)
    for i in range(30):
        w.write("/o/old/%d" % i, "v")
    c.watch_initial("/o", "o")
    exp = []
    for i in range(90):
        if i % 3 == 2:
            w.rm("/o/old/%d" % (i // 3))
            exp.append(("/o/old/%d" % (i // 3), "o"))
        else:
            w.write("/o/new/%d" % i, str(i))
            exp.append(("/o/new/%d" % i, "o"))
    c.expect_events(exp, "60 WRITEs and 30 RMs by another connection", ordered=True)


def test_events_and_replies_interleave_in_generation_order(d):
    # Pipelined WRITE /o/i, READ /o/i pairs from the watching connection: the
    # event of WRITE i is generated after READ i-1 and before READ i is
    # handled, so it must arrive between their replies (before or after the
    # reply to WRITE i itself: that order is not pinned).
    c = client(d)
    c.watch_initial("/o", "o")
    n = 50
    reqs = []
    data = b""
    for i in range(n):
        data += RawClient.packet(XS_WRITE, b"/o/%d\0v%d" % (i, i), req_id=1000 + 2 * i)
        data += RawClient.packet(XS_READ, b"/o/%d\0" % i, req_id=1001 + 2 * i)
        reqs += [(XS_WRITE, 1000 + 2 * i), (XS_READ, 1001 + 2 * i)]
    c.send_raw(data)
    stream = []
    for _ in range(3 * n):
        t, rid, tid, p = c.recv_packet()
        if t == XS_WATCH_EVENT:
            check(rid == 0 and tid == 0, "event header req_id %d tx_id %d" % (rid, tid))
            stream.append(("event", parse_event(p)))
        else:
            stream.append(("reply", (t, rid, p)))
    # replies in request order, with the right contents
    replies = [x for k, x in stream if k == "reply"]
    eq([(t, rid) for t, rid, _ in replies], reqs, "reply types and req_ids in request order")
    for i in range(n):
        eq(replies[2 * i][2], b"OK\0", "reply to WRITE /o/%d" % i)
        eq(replies[2 * i + 1][2], b"v%d" % i, "reply to READ /o/%d" % i)
    # event i between reply READ i-1 and reply READ i
    pos = 0
    for i in range(n):
        window = []
        while stream[pos] != ("reply", (XS_READ, 1001 + 2 * i, b"v%d" % i)):
            if stream[pos][0] == "event":
                window.append(stream[pos][1])
            pos += 1
        pos += 1
        eq(window, [ev("/o/%d" % i, "o")],
           "events between the replies to READ /o/%d and READ /o/%d" % (i - 1, i))
    c.no_events("after the pipelined requests")


# ------------------------------------------------------- connections

def test_closed_watching_connection_leaves_others_working(d):
    w = client(d)
    for i in range(5):
        c = client(d)
        c.watch_initial("/cl", "t")
        c.watch_initial("/", "root")
        c.close()
    w.watch_initial("/cl", "t")
    for i in range(20):
        w.write("/cl/%d" % i, "v")
    w.expect_events([("/cl/%d" % i, "t") for i in range(20)], "after 5 watchers closed",
                    ordered=True)
    # an unread event queued for a connection that then closes
    c = client(d)
    c.watch("/cl", "t")
    w.write("/cl/x", "v")
    c.close()
    w.write("/cl/y", "v")
    w.expect_events([("/cl/x", "t"), ("/cl/y", "t")], "after a watcher closed with events unread",
                    ordered=True)


def test_many_watches_on_one_connection(d):
    c, w = client(d), client(d)
    n = 300
    for i in range(n):
        c.watch("/mw/%d" % i, "t%d" % i)
    c.watch("/mw", "all")
    evs = c.collect()
    eq(sorted(evs), sorted([ev("/mw/%d" % i, "t%d" % i) for i in range(n)] + [ev("/mw", "all")]),
       "initial events of %d watches" % (n + 1))
    for i in [0, 37, 299]:
        w.write("/mw/%d/x" % i, "v")
        c.expect_events([("/mw/%d/x" % i, "t%d" % i), ("/mw/%d/x" % i, "all")],
                        "WRITE /mw/%d/x among %d watches" % (i, n + 1))
    for i in range(0, n, 2):
        c.unwatch("/mw/%d" % i, "t%d" % i)
    w.rm("/mw")
    # Every remaining watch is below /mw; 4.17 fires only those on existing
    # nodes (/mw/37, /mw/299), ours all of them.
    below = [37, 299] if upstream_mode() else range(1, n, 2)
    c.expect_events([("/mw", "all")] + [("/mw/%d" % i, "t%d" % i) for i in below],
                    "RM /mw with %d watches below, two on existing nodes" % (n // 2))


# ------------------------------------------------------- slow readers

def test_slow_reader_is_bounded_coalesced_and_stalls_nobody(d):
    if skip_in_upstream_mode("the coalescing output queue is ours"):
        return
    slow = client(d)            # never reads until the end
    slow.watch("/busy", "slow")
    fast = client(d)            # reads all the time, in a thread
    fast.watch_initial("/busy", "fast")
    writer = RawClient(d.socket_path)

    pad = "p" * 2000
    n, batch = 2000, 25
    paths = [("/busy/%05d-%s" % (i, pad)).encode() for i in range(n)]
    evsize = HEADER.size + len(paths[0]) + 1 + len(b"slow") + 1

    fast_events, fast_errors = [], []

    def fast_reader():
        try:
            while len(fast_events) < n:
                fast_events.append(fast.next_event(timeout=20, what="fast reader's events"))
        except BaseException as e:  # noqa: BLE001
            fast_errors.append(repr(e))
    th = threading.Thread(target=fast_reader, daemon=True)
    th.start()

    t_start = time.monotonic()
    worst = 0.0
    for start in range(0, n, batch):
        t0 = time.monotonic()
        data = b"".join(RawClient.packet(XS_WRITE, p + b"\0v", req_id=i + 1)
                        for i, p in enumerate(paths[start:start + batch], start))
        writer.send_raw(data)
        for i in range(start, min(n, start + batch)):
            eq(writer.recv_packet(), (XS_WRITE, i + 1, 0, b"OK\0"),
               "writer's reply to WRITE #%d" % i)
        worst = max(worst, time.monotonic() - t0)
    total = time.monotonic() - t_start
    check(worst < 3.0, "a batch of %d WRITEs took %.2f s: the slow reader stalls the writer"
          % (batch, worst))
    print("# %d writes in %.2f s, slowest batch of %d: %.3f s" % (n, total, batch, worst))

    th.join(20)
    check(not th.is_alive(), "the fast reader did not get its %d events within 20 s "
          "(got %d)" % (n, len(fast_events)))
    check(not fast_errors, "fast reader: %s" % (fast_errors[:1],))
    bad = [i for i in range(n) if fast_events[i] != (paths[i], b"fast")]
    check(not bad, "the fast reader got every event in order: first difference at #%d: "
          "%s" % (bad[0], show_events(fast_events[bad[0]:bad[0] + 1])) if bad else "")

    # Now the slow reader reads everything queued for it.
    got = list(slow.events)     # set aside while reading the WATCH reply
    slow.events = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            e = slow.next_event(timeout=3, what="slow reader's queued events")
        except AssertionError:
            print("# the slow reader's events stopped after %d" % len(got))
            break
        got.append(e)
        if len(got) > 1 and e in ((b"/busy", b"slow"), (paths[-1], b"slow")):
            break
    rest = slow.collect()
    check(got and got[0] == (b"/busy", b"slow"),
          "slow reader's first event is the initial one: %s" % show_events(got[:1]))
    body = got[1:] + rest
    k = 0
    while k < len(body) and body[k] == (paths[k] if k < n else None, b"slow"):
        k += 1
    tail = body[k:]
    print("# slow reader: %d events in order, then %s" % (k, show_events(tail[:3])))
    check(k < n, "the slow reader got all %d events (%.1f MiB): its queue was not "
          "bounded/coalesced" % (n, n * evsize / 1048576.0))
    check(k * evsize <= 2 * 1048576,
          "the slow reader got %d events (%.2f MiB) before coalescing: more than "
          "~1 MiB queue + socket buffers" % (k, k * evsize / 1048576.0))
    eq(tail, [(b"/busy", b"slow")],
       "after the %d in-order events, the coalesced rest (exactly one event with "
       "the watch's path)" % k)
    # the watch works normally again once drained
    writer.close()
    w2 = client(d)
    w2.write("/busy/after", "v")
    slow.expect_events([("/busy/after", "slow")], "the drained slow reader's next event")
    fast.expect_events([("/busy/after", "fast")], "the fast reader's next event")


# ------------------------------------------------------------------ pyxs

def call_with_timeout(fn, timeout=5.0, what="call"):
    """fn() in a thread; its result, or a failure after `timeout` s (the
    thread is left blocked; the test is over anyway)."""
    box, errs = [], []

    def body():
        try:
            box.append(fn())
        except BaseException as e:  # noqa: BLE001
            errs.append(e)
    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(timeout)
    if errs:
        raise errs[0]
    check(box, "%s did not return within %.1f s" % (what, timeout))
    return box[0]


def py_next(m, what="event"):
    gen = m.wait()
    e = call_with_timeout(lambda: next(gen), what="Monitor.wait() for " + what)
    return tuple(e)


def py_barrier(m, n):
    """Like WClient.collect for a pyxs Monitor: events before the barrier."""
    tok = b"barrier-%d" % n
    m.watch(BARRIER, tok)
    out = []
    while True:
        e = py_next(m, "the barrier event")
        if e == (BARRIER, tok):
            break
        out.append(e)
    m.unwatch(BARRIER, tok)
    return out


def test_pyxs_monitor_watch_wait_unwatch(d):
    with pyclient(d) as c:
        m = c.monitor()
        m.watch(b"/py/w", b"tok")
        eq(py_next(m, "the initial event"), (b"/py/w", b"tok"), "initial event")
        eq(m.watched, {b"/py/w"})
        c.write(b"/py/w/x", b"1")
        eq(py_next(m), (b"/py/w/x", b"tok"), "event for write /py/w/x")
        c.mkdir(b"/py/w/m")
        c.set_perms(b"/py/w/x", [b"n0", b"r1"])
        c.delete(b"/py/w/x")
        eq(py_barrier(m, 1), [(b"/py/w/m", b"tok"), (b"/py/w/x", b"tok"), (b"/py/w/x", b"tok")],
           "events for mkdir, set_perms, delete")
        try:
            m.watch(b"/py/w", b"tok")
            raise AssertionError("second watch /py/w tok did not fail")
        except PyXSError as e:
            eq(e.args[0], errno.EEXIST, "errno of the second watch")
        m.unwatch(b"/py/w", b"tok")
        eq(m.watched, set())
        try:
            m.unwatch(b"/py/w", b"tok")
            raise AssertionError("second unwatch /py/w tok did not fail")
        except PyXSError as e:
            eq(e.args[0], errno.ENOENT, "errno of the second unwatch")
        c.write(b"/py/w/y", b"2")
        eq(py_barrier(m, 2), [], "events after unwatch")


def test_pyxs_monitor_events_from_another_client_and_transactions(d):
    with pyclient(d) as c, pyclient(d) as other:
        c.write(b"/py/t", b"")
        m = c.monitor()
        m.watch(b"/py/t", b"t")
        eq(py_next(m), (b"/py/t", b"t"), "initial event")
        other.transaction()
        other.write(b"/py/t/a", b"1")
        other.write(b"/py/t/b", b"2")
        eq(py_barrier(m, 1), [], "events before the commit")
        check(other.commit(), "commit succeeded")
        eq(sorted(py_barrier(m, 2)), [(b"/py/t/a", b"t"), (b"/py/t/b", b"t")],
           "events of the committed transaction")
        other.transaction()
        other.write(b"/py/t/c", b"3")
        other.rollback()
        eq(py_barrier(m, 3), [], "events of a rolled-back transaction")
        for i in range(20):
            other.write(b"/py/t/n%d" % i, b"v")
        eq(py_barrier(m, 4), [(b"/py/t/n%d" % i, b"t") for i in range(20)],
           "20 writes of another client, in order")


def test_pyxs_two_monitors_on_one_client(d):
    with pyclient(d) as c:
        m1, m2 = c.monitor(), c.monitor()
        m1.watch(b"/py/m", b"one")
        m2.watch(b"/py/m/sub", b"two")
        eq(py_next(m1), (b"/py/m", b"one"))
        eq(py_next(m2), (b"/py/m/sub", b"two"))
        c.write(b"/py/m/sub/k", b"v")
        eq(py_next(m1), (b"/py/m/sub/k", b"one"))
        eq(py_next(m2), (b"/py/m/sub/k", b"two"))
        m1.close()
        m2.close()


def _xs(d):
    need_pyxs()
    old = os.environ.get("XENSTORED_PATH")
    os.environ["XENSTORED_PATH"] = d.socket_path
    try:
        return pyxs.xs()
    finally:
        if old is None:
            del os.environ["XENSTORED_PATH"]
        else:
            os.environ["XENSTORED_PATH"] = old


def test_xs_compat_watch_and_read_watch(d):
    x = _xs(d)
    try:
        check(hasattr(x, "watch") and hasattr(x, "read_watch"),
              "pyxs.xs has watch and read_watch")
        token = ("any", "python", "object")
        x.watch(b"/compat/w", token)
        got = call_with_timeout(x.read_watch, what="xs.read_watch (initial event)")
        eq(tuple(got), (b"/compat/w", token), "initial event through xs.read_watch")
        x.write("", b"/compat/w/k", b"v")
        got = call_with_timeout(x.read_watch, what="xs.read_watch")
        eq(tuple(got), (b"/compat/w/k", token), "event for xs.write")
        t = x.transaction_start()
        x.write(t, b"/compat/w/tx", b"v")
        check(x.transaction_end(t), "transaction_end committed")
        got = call_with_timeout(x.read_watch, what="xs.read_watch after a commit")
        eq(tuple(got), (b"/compat/w/tx", token), "event for a committed xs.write")
        x.unwatch(b"/compat/w", token)
        eq(py_barrier(x.monitor, 1), [], "events after xs.unwatch")
    finally:
        x.close()


if __name__ == "__main__":
    run(globals())
