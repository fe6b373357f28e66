#!/usr/bin/python3
"""Transactions, over the raw protocol and through Debian's pyxs 0.4.

Each test gets a fresh daemon (see xstest.py) and is named after the
behaviour it pins: the TRANSACTION_START/END protocol and its errors,
isolation (a transaction sees its own changes, nobody else does before the
commit), which changes make a commit fail with EAGAIN and which never do,
clean-up (RESET_WATCHES, closing the connection), and, with concurrent
clients retrying on EAGAIN, that the committed transactions are
serializable and become visible atomically.

With XS_DAEMON=upstream-c the tests run against Xen 4.17's C daemon, except
those where ours is deliberately more precise: upstream answers EAGAIN when
two transactions each add a different child under the same parent, which
ours merges (docs/transactions.md).
"""

import copy
import errno
import os
import random
import re
import sys
import threading
import time
import traceback

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xstest import *  # noqa: E402,F401,F403

try:
    from pyxs import PyXSError
except ImportError:  # the raw-protocol tests still run
    PyXSError = None


# ---------------------------------------------------------------- helpers

def _p(path):
    if isinstance(path, str):
        path = path.encode()
    return path + b"\0"


def _b(value):
    return value.encode() if isinstance(value, str) else value


class TxClient(RawClient):
    """RawClient whose node operations take the transaction id (0: none)."""

    def start(self):
        """TRANSACTION_START; checks the reply is a nonzero decimal + NUL."""
        rp = self.expect_ok(XS_TRANSACTION_START, b"\0")
        if not re.fullmatch(rb"[1-9][0-9]*\0", rp):
            raise XsError("TRANSACTION_START: reply %s is not a nonzero "
                          "decimal id with a NUL" % short(rp))
        tid = int(rp[:-1])
        check(0 < tid <= 0xFFFFFFFF, "transaction id %d out of uint32 range" % tid)
        return tid

    def commit(self, tx):
        self.expect_ack(XS_TRANSACTION_END, b"T\0", tx_id=tx)

    def commit_fails(self, tx, name="EAGAIN"):
        self.expect_error(XS_TRANSACTION_END, b"T\0", name, tx_id=tx)

    def try_commit(self, tx):
        """True if committed, False on EAGAIN; anything else is an error."""
        rt, _, _, rp = self.op(XS_TRANSACTION_END, b"T\0", tx_id=tx)
        if rt == XS_TRANSACTION_END and rp == b"OK\0":
            return True
        if rt == XS_ERROR and rp == b"EAGAIN\0":
            return False
        raise XsError("TRANSACTION_END T (tx %d): unexpected %s %s"
                      % (tx, type_name(rt), short(rp)))

    def abort(self, tx):
        self.expect_ack(XS_TRANSACTION_END, b"F\0", tx_id=tx)

    def read(self, path, tx=0):
        return self.expect_ok(XS_READ, _p(path), tx_id=tx)

    def write(self, path, value=b"", tx=0):
        self.expect_ack(XS_WRITE, _p(path) + _b(value), tx_id=tx)

    def mkdir(self, path, tx=0):
        self.expect_ack(XS_MKDIR, _p(path), tx_id=tx)

    def rm(self, path, tx=0):
        self.expect_ack(XS_RM, _p(path), tx_id=tx)

    def directory(self, path, tx=0):
        return split_strings(self.expect_ok(XS_DIRECTORY, _p(path), tx_id=tx))

    def directory_part(self, path, tx=0):
        """All children through DIRECTORY_PART chunks: (generation, names)."""
        names, offset, gen = [], 0, None
        while True:
            rp = self.expect_ok(XS_DIRECTORY_PART, _p(path) + b"%d\0" % offset,
                                tx_id=tx)
            check(rp.endswith(b"\0"), "DIRECTORY_PART reply %s not NUL-terminated"
                  % short(rp))
            g, rest = rp.split(b"\0", 1)
            check(gen is None or g == gen, "DIRECTORY_PART generation changed "
                  "between chunks: %r then %r" % (gen, g))
            gen = g
            if rest == b"\0" or rest == b"":
                return gen, names
            last = rest.endswith(b"\0\0")
            chunk = rest[:-2 if last else -1].split(b"\0")
            names += chunk
            offset += sum(len(n) + 1 for n in chunk)
            if last:
                return gen, names

    def get_perms(self, path, tx=0):
        return split_strings(self.expect_ok(XS_GET_PERMS, _p(path), tx_id=tx))

    def set_perms(self, path, perms, tx=0):
        self.expect_ack(XS_SET_PERMS, _p(path) + b"".join(_p(p) for p in perms),
                        tx_id=tx)

    def error(self, type_, payload, tx=0):
        """The error name of a request that must fail, e.g. 'ENOENT'."""
        rt, _, _, rp = self.op(type_, payload, tx_id=tx)
        if rt != XS_ERROR:
            raise XsError("%s %s (tx %d): expected an error, got %s %s"
                          % (type_name(type_), short(payload), tx, type_name(rt), short(rp)))
        return rp.rstrip(b"\0").decode()

    def missing(self, path, tx=0):
        """True if READ answers ENOENT (in tx), False if the node exists."""
        rt, _, _, rp = self.op(XS_READ, _p(path), tx_id=tx)
        if rt == XS_READ:
            return False
        if rp == b"ENOENT\0":
            return True
        raise XsError("READ %s (tx %d): unexpected %s %s"
                      % (short(path), tx, type_name(rt), short(rp)))

    def dump(self, path="/", tx=0):
        """The subtree at path: {path: (value, perms, children)}."""
        out = {}
        todo = [_b(path)]
        while todo:
            p = todo.pop()
            kids = self.directory(p, tx)
            out[p] = (self.read(p, tx), tuple(self.get_perms(p, tx)), tuple(kids))
            base = b"" if p == b"/" else p
            todo += [base + b"/" + k for k in kids]
        return out


def client(d):
    return TxClient(d.socket_path)


def run_threads(workers, limit=20.0):
    """Run each callable in its own thread; re-raise the first failure."""
    errors = []

    def wrap(fn):
        def body():
            try:
                fn()
            except BaseException as e:  # noqa: BLE001
                errors.append(traceback.format_exc())
                raise SystemExit from e
        return body

    threads = [threading.Thread(target=wrap(fn), daemon=True) for fn in workers]
    for t in threads:
        t.start()
    deadline = time.monotonic() + limit
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    check(not any(t.is_alive() for t in threads),
          "worker threads still running after %.0f s" % limit)
    if errors:
        raise AssertionError("a worker failed:\n" + errors[0])


# ------------------------------------------------------- the protocol itself

def test_start_returns_distinct_nonzero_decimal_ids(d):
    c = client(d)
    c.mkdir("/ids")  # else each would create it: all but the first get EAGAIN
    ids = [c.start() for _ in range(5)]  # start() checks the reply format
    eq(len(set(ids)), 5, "five open transactions of one connection have distinct ids")
    for t in ids:
        c.write("/ids/%d" % t, str(t), tx=t)
    for t in ids:
        eq(c.read("/ids/%d" % t, tx=t), str(t).encode(), "each id names its own transaction")
        for u in ids:
            if u != t:
                check(c.missing("/ids/%d" % u, tx=t),
                      "transaction %d sees the write of transaction %d" % (t, u))
    # Each read the others' nodes as missing: once the first commits them,
    # the others' reads are stale.
    c.commit(ids[0])
    for t in ids[1:]:
        c.commit_fails(t, "EAGAIN")
    eq(c.directory("/ids"), [str(ids[0]).encode()])


def test_dom0_may_keep_many_transactions_open(d):
    # The 10-transaction quota is for unprivileged domains; a socket is dom0.
    c = client(d)
    c.mkdir("/many")
    ids = [c.start() for _ in range(64)]
    eq(len(set(ids)), 64, "distinct ids")
    for t in ids:
        c.write("/many/t%d" % t, "v", tx=t)
    for t in ids[1:]:
        c.abort(t)
    c.commit(ids[0])
    eq(c.directory("/many"), [b"t%d" % ids[0]])


def test_start_inside_an_open_transaction_is_ebusy(d):
    c = client(d)
    t = c.start()
    c.write("/busy", "in tx", tx=t)
    rt, _, rtid, rp = c.op(XS_TRANSACTION_START, b"\0", tx_id=t)
    eq((rt, rtid, rp), (XS_ERROR, t, b"EBUSY\0"), "nested TRANSACTION_START")
    # The open transaction is unharmed by the refused nesting.
    eq(c.read("/busy", tx=t), b"in tx")
    c.commit(t)
    eq(c.read("/busy"), b"in tx")


def test_start_with_an_unknown_tx_id_is_enoent(d):
    c = client(d)
    for bogus in [7, 0xFFFFFFFF]:
        rt, _, rtid, rp = c.op(XS_TRANSACTION_START, b"\0", tx_id=bogus)
        eq((rt, rtid, rp), (XS_ERROR, bogus, b"ENOENT\0"),
           "TRANSACTION_START with unknown tx_id %#x" % bogus)
    t = c.start()
    c.abort(t)
    c.expect_error(XS_TRANSACTION_START, b"\0", "ENOENT", tx_id=t)


def test_end_with_tx_id_0_is_enoent(d):
    c = client(d)
    c.expect_error(XS_TRANSACTION_END, b"T\0", "ENOENT")
    c.expect_error(XS_TRANSACTION_END, b"F\0", "ENOENT")
    # also while the connection has a transaction open: 0 is never one
    t = c.start()
    c.write("/e0", "x", tx=t)
    c.expect_error(XS_TRANSACTION_END, b"T\0", "ENOENT")
    check(c.missing("/e0"), "TRANSACTION_END with tx_id 0 committed an open transaction")
    c.commit(t)
    eq(c.read("/e0"), b"x")


def test_end_argument_other_than_T_or_F_is_einval_and_keeps_the_transaction(d):
    c = client(d)
    t = c.start()
    c.write("/arg", "pending", tx=t)
    for bad in [b"X\0", b"t\0", b"f\0", b"TT\0", b"\0", b"", b"T", b"1\0"]:
        c.expect_error(XS_TRANSACTION_END, bad, "EINVAL", tx_id=t)
    # still open, still isolated, and still committable
    eq(c.read("/arg", tx=t), b"pending")
    check(client(d).missing("/arg"), "a refused TRANSACTION_END applied the transaction")
    c.commit(t)
    eq(client(d).read("/arg"), b"pending")


def _all_ops_enoent(c, t, what):
    for op, payload in [(XS_READ, b"/gone\0"), (XS_WRITE, b"/gone\0w"),
                        (XS_MKDIR, b"/gone2\0"), (XS_RM, b"/gone\0"),
                        (XS_DIRECTORY, b"/\0"), (XS_GET_PERMS, b"/\0"),
                        (XS_SET_PERMS, b"/gone\0n0\0"),
                        (XS_TRANSACTION_END, b"T\0"), (XS_TRANSACTION_END, b"F\0")]:
        eq(c.error(op, payload, tx=t), "ENOENT",
           "%s with the id of %s" % (type_name(op), what))


def test_ended_id_is_enoent_after_commit_abort_and_eagain(d):
    c, other = client(d), client(d)
    c.write("/gone", "orig")
    t = c.start()
    c.commit(t)
    _all_ops_enoent(c, t, "a committed transaction")

    t = c.start()
    c.abort(t)
    _all_ops_enoent(c, t, "an aborted transaction")

    t = c.start()
    c.read("/gone", tx=t)
    other.write("/gone", "changed")
    c.commit_fails(t, "EAGAIN")
    _all_ops_enoent(c, t, "a transaction that failed with EAGAIN")

    # none of those requests reached the store
    eq(c.read("/gone"), b"changed")
    check(c.missing("/gone2"), "MKDIR with a dead tx_id created a node")
    eq(c.get_perms("/gone"), [b"n0"])


def test_transaction_of_another_connection_is_enoent(d):
    a, b = client(d), client(d)
    a.write("/own", "live")
    t = a.start()
    a.write("/own", "a's", tx=t)
    for op, payload in [(XS_READ, b"/own\0"), (XS_WRITE, b"/own\0b's"),
                        (XS_RM, b"/own\0"), (XS_DIRECTORY, b"/\0"),
                        (XS_TRANSACTION_END, b"T\0"), (XS_TRANSACTION_END, b"F\0")]:
        eq(b.error(op, payload, tx=t), "ENOENT",
           "%s on connection B with connection A's tx_id" % type_name(op))
    # B's own transaction may get the same number: it is a different one.
    tb = b.start()
    b.write("/own", "b's", tx=tb)
    eq(a.read("/own", tx=t), b"a's", "A's transaction after B's requests")
    eq(b.read("/own", tx=tb), b"b's")
    a.commit(t)
    eq(b.read("/own"), b"a's", "A's commit, not ended by B's TRANSACTION_END")
    b.abort(tb)
    eq(a.read("/own"), b"a's")


def test_every_node_op_in_a_transaction_sees_its_own_changes_only(d):
    c, other = client(d), client(d)
    c.write("/n/w", "old")
    c.write("/n/r/child", "c")
    c.write("/n/k", "k")
    before = other.dump("/n")

    t = c.start()
    c.write("/n/w", "new", tx=t)
    c.mkdir("/n/m", tx=t)
    c.rm("/n/r", tx=t)
    c.set_perms("/n/k", ["b5", "r7"], tx=t)
    c.write("/n/deep/er", "d", tx=t)

    # the transaction's view
    eq(c.read("/n/w", tx=t), b"new", "READ after WRITE in tx")
    eq(c.read("/n/m", tx=t), b"", "READ after MKDIR in tx")
    eq(c.directory("/n/m", tx=t), [], "DIRECTORY of a node made by MKDIR in tx")
    check(c.missing("/n/r", tx=t), "READ after RM in tx: node still there")
    check(c.missing("/n/r/child", tx=t), "READ after RM in tx: child still there")
    eq(c.error(XS_DIRECTORY, b"/n/r\0", tx=t), "ENOENT", "DIRECTORY after RM in tx")
    eq(c.get_perms("/n/k", tx=t), [b"b5", b"r7"], "GET_PERMS after SET_PERMS in tx")
    eq(c.read("/n/deep", tx=t), b"", "implicit parent of a WRITE in tx")
    eq(c.read("/n/deep/er", tx=t), b"d")
    eq(c.directory("/n", tx=t), [b"w", b"k", b"m", b"deep"], "DIRECTORY in tx")
    eq(c.directory_part("/n", tx=t)[1], [b"w", b"k", b"m", b"deep"],
       "DIRECTORY_PART in tx")

    # nobody else's view, the same connection outside the transaction included
    for who, cl in [("other connection", other), ("same connection, tx 0", c)]:
        eq(cl.read("/n/w"), b"old", who)
        check(cl.missing("/n/m"), who + ": MKDIR of a transaction visible")
        eq(cl.read("/n/r/child"), b"c", who)
        eq(cl.get_perms("/n/k"), [b"n0"], who)
        check(cl.missing("/n/deep"), who + ": WRITE of a transaction visible")
        eq(cl.directory("/n"), [b"w", b"r", b"k"], who)
        eq(cl.directory_part("/n")[1], [b"w", b"r", b"k"], who)
    eq(other.dump("/n"), before, "the whole subtree, seen from outside")

    c.commit(t)
    after = other.dump("/n")
    eq(sorted(after), sorted([b"/n", b"/n/w", b"/n/k", b"/n/m", b"/n/deep", b"/n/deep/er"]))
    eq(after[b"/n/w"][0], b"new")
    eq(after[b"/n/k"][1], (b"b5", b"r7"))
    eq(after[b"/n/m"], (b"", (b"n0",), ()))
    eq(after[b"/n/deep/er"][0], b"d")
    eq(other.directory("/n"), [b"w", b"k", b"m", b"deep"], "DIRECTORY after commit")


def test_abort_leaves_no_trace(d):
    c, other = client(d), client(d)
    c.write("/ab/x", "1")
    c.write("/ab/y/z", "2")
    c.set_perms("/ab/y", ["n0", "r3"])
    before = other.dump("/")
    t = c.start()
    c.write("/ab/x", "changed", tx=t)
    c.write("/ab/new/node", "n", tx=t)
    c.mkdir("/ab/dir", tx=t)
    c.rm("/ab/y", tx=t)
    c.mkdir("/ab/y", tx=t)
    c.set_perms("/ab", ["b9"], tx=t)
    c.write("/top-level", "t", tx=t)
    c.abort(t)
    eq(other.dump("/"), before, "whole store after an aborted transaction")
    eq(c.dump("/"), before, "seen by the aborting connection")
    # the connection goes on working, with and without a transaction
    t = c.start()
    c.write("/ab/x", "3", tx=t)
    c.commit(t)
    eq(other.read("/ab/x"), b"3")


def test_reads_are_repeatable_and_a_changed_read_fails_the_commit(d):
    c, other = client(d), client(d)
    c.write("/rr/v", "1")
    c.write("/rr/list/a", "")
    t = c.start()
    eq(c.read("/rr/v", tx=t), b"1")
    eq(c.directory("/rr/list", tx=t), [b"a"])
    other.write("/rr/v", "2")
    other.write("/rr/list/b", "")
    eq(c.read("/rr/v", tx=t), b"1", "second READ in tx after an outside write")
    eq(c.directory("/rr/list", tx=t), [b"a"], "second DIRECTORY in tx after an outside add")
    eq(c.read("/rr/v"), b"2", "the same connection outside the transaction")
    c.write("/rr/out", "from tx", tx=t)
    c.commit_fails(t, "EAGAIN")
    eq(other.read("/rr/v"), b"2", "EAGAIN keeps the outside write")
    check(other.missing("/rr/out"), "a commit that failed with EAGAIN applied a write")


def test_reset_watches_ends_the_connections_transactions(d):
    c, other = client(d), client(d)
    t1, t2 = c.start(), c.start()
    c.write("/rw/one", "1", tx=t1)
    c.write("/rw/two", "2", tx=t2)
    to = other.start()
    other.write("/rw/other", "o", tx=to)
    c.expect_ack(XS_RESET_WATCHES, b"")
    for t in (t1, t2):
        eq(c.error(XS_READ, b"/rw/one\0", tx=t), "ENOENT", "READ after RESET_WATCHES")
        eq(c.error(XS_TRANSACTION_END, b"T\0", tx=t), "ENOENT", "commit after RESET_WATCHES")
    check(other.missing("/rw/one") and other.missing("/rw/two"),
          "a transaction ended by RESET_WATCHES was applied")
    # another connection's transaction is not touched
    other.commit(to)
    eq(c.read("/rw/other"), b"o")
    # and the connection can start new ones
    t = c.start()
    c.write("/rw/after", "a", tx=t)
    c.commit(t)
    eq(other.read("/rw/after"), b"a")


def test_reset_watches_sent_with_a_tx_id_ends_that_transaction_too(d):
    c, other = client(d), client(d)
    t1, t2 = c.start(), c.start()
    c.write("/rwt/one", "1", tx=t1)
    c.write("/rwt/two", "2", tx=t2)
    rt, _, rtid, rp = c.op(XS_RESET_WATCHES, b"", tx_id=t1)
    eq((rt, rtid, rp), (XS_RESET_WATCHES, t1, b"OK\0"), "RESET_WATCHES with tx_id")
    for t in (t1, t2):
        eq(c.error(XS_WRITE, b"/rwt/late\0x", tx=t), "ENOENT")
        eq(c.error(XS_TRANSACTION_END, b"T\0", tx=t), "ENOENT")
    check(other.missing("/rwt"), "writes of transactions ended by RESET_WATCHES landed")
    eq(other.directory("/"), [b"tool"])


def test_closing_a_connection_discards_its_open_transactions(d):
    other = client(d)
    other.write("/cl/x", "live")
    for i in range(20):
        c = client(d)
        for j in range(3):
            t = c.start()
            c.write("/cl/x", "tx %d.%d" % (i, j), tx=t)
            c.write("/cl/new%d-%d" % (i, j), "n", tx=t)
            if j == 2:
                c.rm("/cl", tx=t)
        c.close()
    # nothing of those may land, now or later
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        eq(other.directory("/cl"), [b"x"])
        eq(other.read("/cl/x"), b"live")
        time.sleep(0.02)
    # and they do not linger to conflict with anyone
    t = other.start()
    eq(other.read("/cl/x", tx=t), b"live")
    other.write("/cl/x", "after", tx=t)
    other.commit(t)
    eq(client(d).read("/cl/x"), b"after")


# ------------------------------------------------------ conflict precision

def test_read_then_changed_outside_is_eagain(d):
    a, b = client(d), client(d)
    a.write("/c1/v", "1")
    a.write("/c1/p", "1")
    # value change
    t = a.start()
    a.read("/c1/v", tx=t)
    b.write("/c1/v", "2")
    a.write("/c1/w", "x", tx=t)
    a.commit_fails(t)
    # same value rewritten still counts as a change
    t = a.start()
    a.read("/c1/v", tx=t)
    b.write("/c1/v", "2")
    a.commit_fails(t)
    # permission change of a node whose perms were read
    t = a.start()
    a.get_perms("/c1/p", tx=t)
    b.set_perms("/c1/p", ["n0", "r1"])
    a.commit_fails(t)
    # a node read as missing that appears outside
    t = a.start()
    check(a.missing("/c1/new", tx=t), "node exists too early")
    b.write("/c1/new", "appeared")
    a.write("/c1/other", "x", tx=t)
    a.commit_fails(t)
    check(b.missing("/c1/w") and b.missing("/c1/other"), "a failed commit applied writes")


def test_listed_then_child_added_or_removed_outside_is_eagain(d):
    a, b = client(d), client(d)
    a.write("/c2/kids/a", "")
    t = a.start()
    eq(a.directory("/c2/kids", tx=t), [b"a"])
    b.write("/c2/kids/b", "")
    a.write("/c2/mark", "x", tx=t)
    a.commit_fails(t)

    t = a.start()
    eq(a.directory("/c2/kids", tx=t), [b"a", b"b"])
    b.rm("/c2/kids/a")
    a.commit_fails(t)

    t = a.start()
    eq(a.directory_part("/c2/kids", tx=t)[1], [b"b"])
    b.mkdir("/c2/kids/c")
    a.commit_fails(t)
    check(b.missing("/c2/mark"), "a failed commit applied a write")
    eq(b.directory("/c2/kids"), [b"b", b"c"])


def test_node_deleted_under_the_transaction_is_eagain(d):
    a, b = client(d), client(d)
    # read, deleted outside, written in tx: commit must not resurrect it
    a.write("/c3/d/sub", "s")
    t = a.start()
    eq(a.read("/c3/d", tx=t), b"")
    b.rm("/c3/d")
    a.write("/c3/d", "resurrected?", tx=t)
    a.commit_fails(t)
    check(b.missing("/c3/d"), "a node deleted outside came back")
    # parent of a node the transaction creates, deleted outside
    a.write("/c3/p", "")
    t = a.start()
    a.write("/c3/p/child", "c", tx=t)
    b.rm("/c3/p")
    a.commit_fails(t)
    check(b.missing("/c3/p"), "the parent deleted outside came back")
    # deleted and re-created outside: a different node now
    a.write("/c3/r", "one")
    t = a.start()
    eq(a.read("/c3/r", tx=t), b"one")
    b.rm("/c3/r")
    b.write("/c3/r", "one")
    a.commit_fails(t)
    # a node the transaction deletes, deleted outside first
    a.write("/c3/both", "")
    t = a.start()
    a.rm("/c3/both", tx=t)
    b.rm("/c3/both")
    a.commit_fails(t)
    eq(b.directory("/c3"), [b"r"])


def test_write_write_on_one_node_fails_the_second_committer(d):
    a, b = client(d), client(d)
    a.write("/ww", "0")
    ta, tb = a.start(), b.start()
    a.write("/ww", "from a", tx=ta)   # blind writes: neither read it
    b.write("/ww", "from b", tx=tb)
    b.commit(tb)
    a.commit_fails(ta)
    eq(a.read("/ww"), b"from b")
    # both creating the same new node
    ta, tb = a.start(), b.start()
    a.write("/wnew/x", "a", tx=ta)
    b.write("/wnew/x", "b", tx=tb)
    a.commit(ta)
    b.commit_fails(tb)
    eq(b.read("/wnew/x"), b"a")
    # both deleting the same node
    a.write("/wdel/x", "")
    ta, tb = a.start(), b.start()
    a.rm("/wdel/x", tx=ta)
    b.rm("/wdel/x", tx=tb)
    a.commit(ta)
    b.commit_fails(tb)
    # a write in a transaction vs a plain write
    ta = a.start()
    a.write("/ww", "tx", tx=ta)
    b.write("/ww", "plain")
    a.commit_fails(ta)
    eq(a.read("/ww"), b"plain")


def test_disjoint_writes_of_concurrent_transactions_both_commit(d):
    a, b = client(d), client(d)
    a.write("/d1/x", "0")
    a.write("/d2/y", "0")
    ta, tb = a.start(), b.start()
    eq(a.read("/d1/x", tx=ta), b"0")
    eq(b.read("/d2/y", tx=tb), b"0")
    a.write("/d1/x", "a", tx=ta)
    b.write("/d2/y", "b", tx=tb)
    a.write("/d1/x/under", "a2", tx=ta)
    b.rm("/d2/y", tx=tb)
    b.mkdir("/d2/y", tx=tb)
    a.commit(ta)
    b.commit(tb)
    eq(a.read("/d1/x"), b"a")
    eq(a.read("/d1/x/under"), b"a2")
    eq(a.read("/d2/y"), b"")


def test_two_transactions_adding_different_children_to_one_parent_both_commit(d):
    if skip_in_upstream_mode("4.17 answers EAGAIN to the second one"):
        return
    a, b = client(d), client(d)
    a.write("/par", "")
    ta, tb = a.start(), b.start()
    a.write("/par/a", "from a", tx=ta)
    b.write("/par/b", "from b", tx=tb)
    b.mkdir("/par/c", tx=tb)
    a.write("/par/d/deep", "x", tx=ta)
    a.commit(ta)
    b.commit(tb)
    eq(sorted(a.directory("/par")), [b"a", b"b", b"c", b"d"])
    eq(a.read("/par/a"), b"from a")
    eq(a.read("/par/b"), b"from b")
    eq(a.read("/par/d/deep"), b"x")
    # a child added by a plain write beside a transaction's creation
    ta = a.start()
    a.write("/par/e", "tx", tx=ta)
    b.write("/par/f", "plain")
    a.commit(ta)
    eq(sorted(a.directory("/par")), [b"a", b"b", b"c", b"d", b"e", b"f"])


def test_adding_a_child_to_a_parent_the_transaction_listed_or_read_is_eagain(d):
    a, b = client(d), client(d)
    a.write("/lp", "v")
    ta = a.start()
    a.directory("/lp", tx=ta)
    a.write("/lp/a", "", tx=ta)
    b.write("/lp/b", "")
    a.commit_fails(ta)
    eq(b.directory("/lp"), [b"b"])
    # reading its value and having it changed outside also fails the add
    ta = a.start()
    eq(a.read("/lp", tx=ta), b"v")
    a.write("/lp/c", "", tx=ta)
    b.write("/lp", "v2")
    a.commit_fails(ta)
    eq(b.directory("/lp"), [b"b"])
    # the parent's permissions, which a new child inherits, changed outside
    ta = a.start()
    a.write("/lp/d", "", tx=ta)
    eq(a.get_perms("/lp/d", tx=ta), [b"n0"])
    b.set_perms("/lp", ["n0", "r8"])
    a.commit_fails(ta)
    eq(b.directory("/lp"), [b"b"])


def test_unrelated_outside_changes_never_fail_a_commit(d):
    a, b = client(d), client(d)
    a.write("/mine/a", "1")
    a.write("/mine/b", "1")
    for i in range(10):
        a.write("/other/x%d" % i, "0")
    rnd = random.Random(1)
    for round_ in range(20):
        t = a.start()
        eq(a.read("/mine/a", tx=t), b"%d" % (round_ + 1))
        b.write("/other/x%d" % rnd.randrange(5), "w%d" % round_)
        eq(a.directory("/mine", tx=t)[:2], [b"a", b"b"])
        b.set_perms("/other/x%d" % rnd.randrange(5), ["n0", "r%d" % round_])
        a.write("/mine/a", "%d" % (round_ + 2), tx=t)
        a.write("/mine/b", "%d" % (round_ + 2), tx=t)
        b.rm("/other/x%d" % rnd.randrange(5, 10))
        b.write("/other/x%d" % rnd.randrange(5, 10), "back")
        if not upstream_mode():
            b.write("/fresh%d" % round_, "new top-level node")
            a.write("/mine/c%d" % round_, "", tx=t)
        a.commit(t)
    eq(b.read("/mine/a"), b"21")
    eq(b.read("/mine/b"), b"21")


def test_create_then_delete_in_one_transaction_commits_and_leaves_nothing(d):
    c, other = client(d), client(d)
    c.write("/cd/keep", "k")
    before = other.dump("/")
    t = c.start()
    c.write("/cd/new/x/y", "v", tx=t)
    c.mkdir("/cd/new/m", tx=t)
    c.set_perms("/cd/new", ["b3"], tx=t)
    c.rm("/cd/new", tx=t)
    c.write("/brand/new", "v", tx=t)
    c.rm("/brand", tx=t)
    check(c.missing("/cd/new", tx=t), "deleted node still visible in its transaction")
    eq(c.directory("/cd", tx=t), [b"keep"])
    eq(c.directory("/", tx=t), [b"tool", b"cd"])
    c.commit(t)
    eq(other.dump("/"), before, "the store after create-then-delete")


def test_delete_then_recreate_in_one_transaction_gives_exactly_the_new_node(d):
    c, other = client(d), client(d)
    c.write("/dr/n", "old value")
    c.write("/dr/n/child/grand", "g")
    c.set_perms("/dr/n", ["n0", "r4"])
    t = c.start()
    c.rm("/dr/n", tx=t)
    c.write("/dr/n", "new value", tx=t)
    eq(c.directory("/dr/n", tx=t), [], "re-created node has no children")
    eq(c.get_perms("/dr/n", tx=t), [b"n0"], "re-created node has its parent's perms")
    c.commit(t)
    eq(other.dump("/dr"), {
        b"/dr": (b"", (b"n0",), (b"n",)),
        b"/dr/n": (b"new value", (b"n0",), ()),
    })


def test_rm_subtree_and_recreate_part_of_it_gives_exactly_the_expected_tree(d):
    c, other = client(d), client(d)
    c.write("/s", "root value")
    c.write("/s/a/a1", "1")
    c.write("/s/a/a2", "2")
    c.write("/s/b/c", "3")
    c.write("/s/b/d/e", "4")
    c.set_perms("/s/b", ["n0", "r2"])
    t = c.start()
    eq(c.read("/s/b/c", tx=t), b"3")   # seen before the RM: must be gone after
    c.rm("/s", tx=t)
    c.write("/s/b/d/new", "n", tx=t)
    c.write("/s/a", "fresh a", tx=t)
    check(c.missing("/s/b/c", tx=t), "a child read before the RM survived it")
    check(c.missing("/s/a/a1", tx=t), "old grandchild visible under a re-created node")
    eq(c.directory("/s/b", tx=t), [b"d"])
    expected = {
        b"/s": (b"", (b"n0",), (b"b", b"a")),
        b"/s/b": (b"", (b"n0",), (b"d",)),
        b"/s/b/d": (b"", (b"n0",), (b"new",)),
        b"/s/b/d/new": (b"n", (b"n0",), ()),
        b"/s/a": (b"fresh a", (b"n0",), ()),
    }
    eq(c.dump("/s", tx=t), expected, "the transaction's view")
    c.commit(t)
    eq(other.dump("/s"), expected, "the store after commit")


def test_directory_in_a_transaction_shows_created_and_hides_deleted_children(d):
    c, other = client(d), client(d)
    for n in "abc":
        c.write("/dir/" + n, n)
    t = c.start()
    c.rm("/dir/b", tx=t)
    c.write("/dir/d", "d", tx=t)
    c.mkdir("/dir/e", tx=t)
    c.write("/dir/f/g", "", tx=t)
    c.rm("/dir/f", tx=t)           # created then deleted: never listed
    eq(c.directory("/dir", tx=t), [b"a", b"c", b"d", b"e"])
    eq(c.directory_part("/dir", tx=t)[1], [b"a", b"c", b"d", b"e"])
    c.rm("/dir/a", tx=t)
    c.write("/dir/a", "again", tx=t)  # re-created: listed once, last
    eq(c.directory("/dir", tx=t), [b"c", b"d", b"e", b"a"])
    eq(other.directory("/dir"), [b"a", b"b", b"c"])
    c.commit(t)
    eq(other.directory("/dir"), [b"c", b"d", b"e", b"a"])
    eq(other.read("/dir/a"), b"again")


def test_children_created_in_a_transaction_keep_their_creation_order(d):
    c = client(d)
    c.write("/order/first", "")
    names = [b"k%02d" % i for i in range(60)]
    random.Random(3).shuffle(names)
    t = c.start()
    for n in names:
        c.write(b"/order/" + n, n, tx=t)
    eq(c.directory("/order", tx=t), [b"first"] + names, "in the transaction")
    c.commit(t)
    eq(client(d).directory("/order"), [b"first"] + names, "after commit")


def test_a_transaction_of_a_thousand_writes_commits_them_all(d):
    c, other = client(d), client(d)
    c.write("/bulk/keep", "k")
    t = c.start()
    for i in range(1000):
        c.write("/bulk/n%03d/leaf" % i, "v%d" % i, tx=t)
    # 1001 names overflow one DIRECTORY reply (E2BIG): list them in parts
    eq(len(c.directory_part("/bulk", tx=t)[1]), 1001)
    eq(other.directory("/bulk"), [b"keep"], "before commit")
    c.commit(t)
    kids = other.directory_part("/bulk")[1]
    eq(kids, [b"keep"] + [b"n%03d" % i for i in range(1000)])
    for i in range(0, 1000, 97):
        eq(other.read("/bulk/n%03d/leaf" % i), b"v%d" % i)


# ------------------------------------------------------------------ pyxs

def test_pyxs_transaction_commit_applies_its_writes(d):
    with pyclient(d) as c, pyclient(d) as other:
        c.write(b"/py/old", b"1")
        tid = c.transaction()
        check(isinstance(tid, int) and tid > 0, "transaction() returned %r" % (tid,))
        eq(c.tx_id, tid)
        c.write(b"/py/new", b"in tx")
        c.delete(b"/py/old")
        c.mkdir(b"/py/dir")
        eq(c.read(b"/py/new"), b"in tx")
        eq(c.exists(b"/py/old"), False)
        eq(sorted(c.list(b"/py")), [b"dir", b"new"])
        eq(other.exists(b"/py/new"), False)
        eq(other.read(b"/py/old"), b"1")
        eq(c.commit(), True)
        eq(c.tx_id, 0)
        eq(other.read(b"/py/new"), b"in tx")
        eq(other.exists(b"/py/old"), False)
        eq(sorted(other.list(b"/py")), [b"dir", b"new"])


def test_pyxs_rollback_discards_its_writes(d):
    with pyclient(d) as c, pyclient(d) as other:
        c.write(b"/py/keep", b"1")
        c.transaction()
        c.write(b"/py/keep", b"2")
        c.write(b"/py/never", b"x")
        c.rollback()
        eq(c.tx_id, 0)
        eq(other.read(b"/py/keep"), b"1")
        eq(other.exists(b"/py/never"), False)
        eq(c.list(b"/py"), [b"keep"])


def test_pyxs_commit_returns_false_on_conflict_and_applies_nothing(d):
    with pyclient(d) as c, pyclient(d) as other:
        c.write(b"/py/v", b"1")
        c.transaction()
        eq(c.read(b"/py/v"), b"1")
        other.write(b"/py/v", b"2")
        eq(c.read(b"/py/v"), b"1")
        c.write(b"/py/v", b"3")
        c.write(b"/py/side", b"effect")
        eq(c.commit(), False)
        eq(c.tx_id, 0)
        eq(c.read(b"/py/v"), b"2")
        eq(c.exists(b"/py/side"), False)


def test_pyxs_two_transactions_share_one_connection(d):
    # copy.copy(client) shares the connection: two open transactions on it.
    with pyclient(d) as c:
        c2 = copy.copy(c)
        for k in (b"one", b"two", b"three"):
            c.write(b"/py/s/" + k, b"0")
        t1, t2 = c.transaction(), c2.transaction()
        check(t1 != t2, "two open transactions of one connection share id %d" % t1)
        c.write(b"/py/s/one", b"1")
        c2.write(b"/py/s/two", b"2")
        eq(c.read(b"/py/s/three"), b"0")
        eq(c2.read(b"/py/s/one"), b"0", "the other transaction's write")
        eq(c2.read(b"/py/s/three"), b"0")
        eq(c2.commit(), True)
        eq(c.read(b"/py/s/two"), b"2", "a node first read after the other commit")
        eq(c.commit(), True, "commit of a transaction disjoint from the other")
        eq(c.read(b"/py/s/one"), b"1")
        # one of them reads what the other then commits: EAGAIN
        c.transaction()
        c2.transaction()
        eq(c.read(b"/py/s/one"), b"1")
        c2.write(b"/py/s/one", b"by c2")
        eq(c2.commit(), True)
        eq(c.read(b"/py/s/one"), b"1", "repeatable read")
        c.write(b"/py/s/three", b"by c")
        eq(c.commit(), False, "commit after a read node was changed by the other")
        eq(c.read(b"/py/s/one"), b"by c2")
        eq(c.read(b"/py/s/three"), b"0")


def test_pyxs_client_closed_with_an_open_transaction_applies_nothing(d):
    need_pyxs()
    raised = None
    try:
        with pyclient(d) as c:
            c.write(b"/py/base", b"b")
            c.transaction()
            c.write(b"/py/base", b"changed")
            c.write(b"/py/lost", b"x")
    except PyXSError as e:  # pyxs: "uncommitted transaction"
        raised = e
    check(raised is not None, "pyxs did not complain about the open transaction")
    time.sleep(0.05)
    with pyclient(d) as other:
        eq(other.read(b"/py/base"), b"b")
        eq(other.exists(b"/py/lost"), False)


def _pyxs_incrementer(d, key, n, stats, barrier):
    def body():
        with pyclient(d) as c:
            barrier.wait(5)
            done = 0
            while done < n:
                try:
                    c.transaction()
                    v = int(c.read(key))
                    time.sleep(0.0005)  # widen the window for a conflict
                    c.write(key, b"%d" % (v + 1))
                    if c.commit():
                        done += 1
                    else:
                        stats["retries"] += 1
                except PyXSError as e:
                    if not e.args or e.args[0] != errno.EAGAIN:
                        raise
                    stats["retries"] += 1
                    if c.tx_id:
                        c.rollback()
    return body


def test_pyxs_retry_loop_on_eagain_makes_progress(d):
    n = 60
    with pyclient(d) as c:
        c.write(b"/py/counter", b"0")
    stats = {"retries": 0}
    barrier = threading.Barrier(2)
    run_threads([_pyxs_incrementer(d, b"/py/counter", n, stats, barrier)
                 for _ in range(2)])
    with pyclient(d) as c:
        eq(c.read(b"/py/counter"), b"%d" % (2 * n),
           "counter after 2 x %d transactional increments (%d retries)"
           % (n, stats["retries"]))
    print("# %d EAGAIN retries" % stats["retries"])


# -------------------------------------------------------- serializability

ACCOUNTS = 5
INITIAL = 100


def _bank_worker(d, wid, deadline, max_commits, committed, counters, barrier):
    def body():
        c = client(d)
        rnd = random.Random(wid)
        barrier.wait(5)
        seq = 0
        while time.monotonic() < deadline and len(committed[wid]) < max_commits:
            src, dst = rnd.sample(range(ACCOUNTS), 2)
            t = c.start()
            bs = int(c.read("/bank/acct%d" % src, tx=t))
            bd = int(c.read("/bank/acct%d" % dst, tx=t))
            check(bs >= 0 and bd >= 0, "negative balance read: %d %d" % (bs, bd))
            amount = rnd.randint(0, bs)
            c.write("/bank/acct%d" % src, "%d" % (bs - amount), tx=t)
            c.write("/bank/acct%d" % dst, "%d" % (bd + amount), tx=t)
            c.write("/bank/log/w%d-%d" % (wid, seq), "%d %d %d" % (src, dst, amount), tx=t)
            if c.try_commit(t):
                committed[wid].append((seq, src, dst, amount))
            else:
                counters["eagain"] += 1
            seq += 1
    return body


def _auditor(d, deadline, counters, barrier):
    def body():
        c = client(d)
        barrier.wait(5)
        while time.monotonic() < deadline:
            t = c.start()
            total = sum(int(c.read("/bank/acct%d" % i, tx=t)) for i in range(ACCOUNTS))
            if c.try_commit(t):
                counters["audits"] += 1
                check(total == ACCOUNTS * INITIAL,
                      "a committed read-only transaction saw a total of %d" % total)
            else:
                counters["audit_eagain"] += 1
    return body


def test_concurrent_bank_transfers_are_serializable(d):
    c = client(d)
    for i in range(ACCOUNTS):
        c.write("/bank/acct%d" % i, "%d" % INITIAL)
    c.mkdir("/bank/log")
    workers = 4
    committed = {w: [] for w in range(workers)}
    counters = {"eagain": 0, "audits": 0, "audit_eagain": 0}
    deadline = time.monotonic() + 2.0
    barrier = threading.Barrier(workers + 1)
    run_threads([_bank_worker(d, w, deadline, 150, committed, counters, barrier)
                 for w in range(workers)] + [_auditor(d, deadline, counters, barrier)])

    balances = [int(c.read("/bank/acct%d" % i)) for i in range(ACCOUNTS)]
    eq(sum(balances), ACCOUNTS * INITIAL, "total of the balances %r" % balances)
    check(all(b >= 0 for b in balances), "negative balance: %r" % balances)
    # every committed transfer, and only those, is in the log exactly once
    want_log = {b"w%d-%d" % (w, s): b"%d %d %d" % (src, dst, amt)
                for w in committed for (s, src, dst, amt) in committed[w]}
    got_log = {k: c.read(b"/bank/log/" + k) for k in c.directory("/bank/log")}
    eq(len(c.directory("/bank/log")), len(got_log), "duplicate log entries")
    eq(got_log, want_log, "log of committed transfers")
    # and the balances are exactly what they add up to
    expect = [INITIAL] * ACCOUNTS
    for w in committed:
        for (_, src, dst, amt) in committed[w]:
            expect[src] -= amt
            expect[dst] += amt
    eq(balances, expect, "balances vs the committed transfers")
    check(len(want_log) >= 20, "only %d transfers committed" % len(want_log))
    check(counters["audits"] > 0, "no audit transaction ever committed")
    print("# %d transfers committed, %d EAGAIN; %d audits, %d audit EAGAIN"
          % (len(want_log), counters["eagain"], counters["audits"], counters["audit_eagain"]))


def test_concurrent_appends_to_a_log_are_serializable(d):
    c = client(d)
    c.write("/log/next", "0")
    c.mkdir("/log/entries")
    workers = 4
    committed = {w: [] for w in range(workers)}
    deadline = time.monotonic() + 1.5
    barrier = threading.Barrier(workers)

    def worker(wid):
        def body():
            cl = client(d)
            barrier.wait(5)
            seq = 0
            while time.monotonic() < deadline and len(committed[wid]) < 80:
                t = cl.start()
                n = int(cl.read("/log/next", tx=t))
                # Untouched nodes are read live, so a transaction may see a
                # later state here; it must then fail to commit.
                free = cl.missing("/log/entries/%d" % n, tx=t)
                cl.write("/log/entries/%d" % n, "w%d-%d" % (wid, seq), tx=t)
                cl.write("/log/next", "%d" % (n + 1), tx=t)
                if cl.try_commit(t):
                    check(free, "a transaction that saw slot %d taken committed" % n)
                    committed[wid].append((n, seq))
                seq += 1
        return body

    run_threads([worker(w) for w in range(workers)])
    total = sum(len(v) for v in committed.values())
    check(total >= 20, "only %d appends committed" % total)
    eq(c.read("/log/next"), b"%d" % total, "next slot after %d commits" % total)
    eq(sorted(int(k) for k in c.directory("/log/entries")), list(range(total)),
       "slots filled")
    want = {n: b"w%d-%d" % (w, s) for w in committed for (n, s) in committed[w]}
    got = {n: c.read("/log/entries/%d" % n) for n in range(total)}
    eq(got, want, "each committed append in the slot it read, exactly once")


def test_committed_changes_become_visible_atomically(d):
    c = client(d)
    c.write("/atom/a", "0")
    c.write("/atom/b", "0")
    c.mkdir("/atom/set")
    deadline = time.monotonic() + 1.5
    stats = {"commits": 0, "tx_reads_ok": 0, "tx_reads_eagain": 0, "listings": 0}
    barrier = threading.Barrier(4)

    def writer():
        w = client(d)
        barrier.wait(5)
        i = 0
        while time.monotonic() < deadline:
            i += 1
            t = w.start()
            w.write("/atom/a", "%d" % i, tx=t)
            w.write("/atom/set/x%d" % i, "", tx=t)
            if i > 1:
                w.rm("/atom/set/x%d" % (i - 1), tx=t)
                w.rm("/atom/set/y%d" % (i - 1), tx=t)
            w.write("/atom/set/y%d" % i, "", tx=t)
            w.write("/atom/b", "%d" % i, tx=t)
            check(w.try_commit(t), "the only writer's commit failed")
            stats["commits"] += 1

    def tx_reader():
        r = client(d)
        barrier.wait(5)
        while time.monotonic() < deadline:
            t = r.start()
            a = r.read("/atom/a", tx=t)
            b = r.read("/atom/b", tx=t)
            if r.try_commit(t):
                stats["tx_reads_ok"] += 1
                check(a == b, "a committed transaction read a=%s b=%s" % (a, b))
            else:
                stats["tx_reads_eagain"] += 1

    def plain_reader():
        r = client(d)
        barrier.wait(5)
        while time.monotonic() < deadline:
            kids = set(r.directory("/atom/set"))
            stats["listings"] += 1
            xs = {k[1:] for k in kids if k.startswith(b"x")}
            ys = {k[1:] for k in kids if k.startswith(b"y")}
            check(xs == ys and len(xs) <= 1,
                  "one DIRECTORY saw half a transaction: %r" % sorted(kids))
            # b is written with a in the same commit: read after a, never older
            a = int(r.read("/atom/a"))
            b = int(r.read("/atom/b"))
            check(b >= a, "read a=%d, then an older b=%d" % (a, b))

    run_threads([writer, tx_reader, plain_reader, tx_reader])
    check(stats["commits"] > 10, "writer committed only %d times" % stats["commits"])
    check(stats["tx_reads_ok"] > 0, "no reading transaction ever committed")
    eq(c.read("/atom/a"), c.read("/atom/b"))
    print("# %(commits)d writes, %(tx_reads_ok)d reading tx committed, "
          "%(tx_reads_eagain)d EAGAIN, %(listings)d listings" % stats)


if __name__ == "__main__":
    run(globals())
