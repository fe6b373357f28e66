#!/usr/bin/python3
"""Quotas: the limits that keep an unprivileged domain from hurting the
host or its neighbours (quota/quota.h): nodes, node-size, watches,
transactions, permissions, path-max, transaction-nodes, memory (hard and
soft), outstanding replies; GET_QUOTA and SET_QUOTA, per-domain overrides,
CONTROL quota / quota-soft through upstream's xenstore-control, and the
command-line options that set them.

Every test runs its own daemon under the Xen test double (tests/fakexen,
driven through fakexen.py): the limited clients are guests on real rings,
dom0 is a socket client (privileged: never limited).  What a domain holds
is read with CONTROL "quota <domid>" (the "nodes" line is the number of
nodes whose owner is that domain).

The boundaries asserted are the ones the code implements: a domain may own
exactly `nodes` nodes; a node of `node-size` bytes (16 + 8 per permission
+ value + children's names, each with its NUL) is fine and one byte more is
not; a relative path of `path-max` characters is fine.

The upstream daemon cannot load the test double: with XS_DAEMON=upstream-c
the whole file is skipped.
"""

import os
import re
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xstest import *  # noqa: E402,F401,F403
from xstest import REPO, RawClient, _p  # noqa: E402
from fakexen import *  # noqa: E402,F401,F403
from guests import *  # noqa: E402,F401,F403
import guests  # noqa: E402

skip_unless_test_double()

CONTROL_BIN = os.environ.get("XS_CONTROL", "/usr/lib/xen-4.17/bin/xenstore-control")
BUILD = os.environ.get("XS_BUILD", os.path.join(REPO, "build"))
BINARY = os.path.join(BUILD, "xenstored")

QUOTA_NAMES = ["nodes", "watches", "transactions", "outstanding", "transaction-nodes",
               "memory", "node-size", "path-max", "permissions"]
DEFAULTS = {"nodes": 1000, "watches": 128, "transactions": 10, "outstanding": 20,
            "transaction-nodes": 1024, "memory": 2621440, "node-size": 2048,
            "path-max": 2048, "permissions": 5}
SOFT_MEMORY_DEFAULT = 2097152
SOFT_WARNING = "over the soft memory quota"


# ---------------------------------------------------------------- helpers

def try_write(g, path, value=b"", tx_id=0):
    """None if the guest's WRITE succeeded, else the error name."""
    if isinstance(value, str):
        value = value.encode()
    t, rp = g.request(XS_WRITE, _p(path) + value, tx_id=tx_id)
    if t == XS_WRITE:
        eq(rp, b"OK\0", "dom%d WRITE %s reply" % (g.domid, path))
        return None
    if t != XS_ERROR:
        raise XsError("dom%d WRITE %s: reply type %s" % (g.domid, path, type_name(t)))
    return rp.rstrip(b"\0").decode()


def fill(g, fmt, limit=200, value=b"v", start=0, tx_id=0, want="ENOSPC"):
    """Create fmt % i (i = start, ...) until the first error, which must be
    `want`; return how many were created."""
    for i in range(start, start + limit):
        err = try_write(g, fmt % i, value, tx_id=tx_id)
        if err is not None:
            eq(err, want, "dom%d WRITE %s: error" % (g.domid, fmt % i))
            return i - start
    raise AssertionError("dom%d created %d nodes %s without an error"
                         % (g.domid, limit, fmt))


def usage(c, domid):
    """CONTROL quota <domid>: {"nodes": n, "watches": n, ...}."""
    out = c.expect_ok(XS_CONTROL, args("quota", domid)).rstrip(b"\0").decode()
    check(out.startswith("Domain %d:\n" % domid), "quota %d: %r" % (domid, out))
    got = {}
    for line in out.splitlines()[1:]:
        m = re.match(r"^(\S+)\s*:\s*(\d+)$", line)
        check(m, "quota %d: unexpected line %r in %r" % (domid, line, out))
        got[m.group(1)] = int(m.group(2))
    return got


def owned(c, domid):
    return usage(c, domid)["nodes"]


def get_quota(c, *items):
    return c.expect_ok(XS_GET_QUOTA, args(*items))


class Rig(guests.Rig):
    """guests.Rig whose guest() also makes the guest's home (owned by dom0,
    as a toolstack makes it) and then introduces it.

        with Rig(["-Q", "nodes=20"]) as r:
            g = r.guest(5)      # introduced, with a home it may write
            r.c (EventClient), r.fx (FakeXen), r.d (Daemon)
    """

    tmp_prefix = "fxq-"

    def guest(self, domid, home=True, introduce=True, **kw):
        g = guests.Rig.guest(self, domid, **kw)
        if home:
            self.home(domid)
        if introduce:
            self.introduce(g)
        return g


def control(sock, *argv):
    """xenstore-control argv against sock: (status, stdout, stderr)."""
    env = dict(os.environ, XENSTORED_PATH=sock)
    r = subprocess.run([CONTROL_BIN] + [str(a) for a in argv], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=10)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def control_ok(sock, *argv):
    rc, out, err = control(sock, *argv)
    eq((rc, err), (0, ""), "xenstore-control %s status and stderr (stdout %r)"
       % (" ".join(str(a) for a in argv), out))
    return out


def parse_settings(out):
    """'Quota settings:' output -> {name: value}."""
    lines = out.strip("\n").splitlines()
    eq(lines[:1], ["Quota settings:"], "first line of %r" % out)
    got = {}
    for line in lines[1:]:
        m = re.match(r"^(\S+)\s*:\s*(\d+)\s+\S", line)
        check(m, "unexpected quota line %r in %r" % (line, out))
        got[m.group(1)] = int(m.group(2))
    return got


# ------------------------------------------------------------------ nodes

def test_nodes_quota():
    with Rig(["-Q", "nodes=20"]) as r:
        c = r.c
        g = r.guest(5)
        eq(owned(c, 5), 0, "nodes of dom5 at start (its home is dom0's)")
        n = fill(g, "n%d")
        eq(n, 20, "nodes dom5 could create with nodes=20")
        eq(owned(c, 5), 20, "nodes dom5 owns")
        eq(c.error(XS_READ, b"/local/domain/5/n20\0"), "ENOENT",
           "the refused node does not exist")
        eq(guest_error(g, XS_MKDIR, b"dir\0"), "ENOSPC", "MKDIR at the quota")
        # Writing an existing node creates nothing: fine at the quota.
        g.write("n0", "new value")
        eq(g.read("n0"), b"new value", "overwrite at the quota")
        # RM frees exactly what it removes.
        for i in range(4):
            g.rm("n%d" % i)
        eq(owned(c, 5), 16, "nodes after 4 RMs")
        g.write("t/x/y", "1")           # three nodes at once
        eq(owned(c, 5), 19, "nodes after creating t, t/x, t/x/y")
        # Two missing nodes at once would pass 20: refused, nothing made.
        eq(guest_error(g, XS_WRITE, b"deep/a\0v"), "ENOSPC", "WRITE of 2 new nodes at 19")
        eq(c.error(XS_READ, b"/local/domain/5/deep\0"), "ENOENT",
           "no parent left behind by the refused WRITE")
        g.write("t/z", "2")
        eq(owned(c, 5), 20, "nodes after t/z")
        eq(guest_error(g, XS_WRITE, b"one-more\0v"), "ENOSPC", "WRITE at 20")
        g.rm("t")                         # recursive: t, t/x, t/x/y, t/z
        eq(owned(c, 5), 16, "nodes after the recursive RM of t")
        eq(fill(g, "m%d"), 4, "nodes dom5 could create after the recursive RM")
        eq(owned(c, 5), 20, "nodes at the quota again")

        # dom0 is not limited, even writing below the guest's home.
        for i in range(30):
            c.write("/dom0/d%d" % i, "x")
            c.write("/local/domain/5/dom0-%d" % i, "x")
        eq(len(c.directory("/dom0")), 30, "dom0's nodes")
        eq(owned(c, 5), 20, "dom0's nodes below the home are not dom5's")
        for i in range(30):
            c.rm("/local/domain/5/dom0-%d" % i)

        # Transactions: a write that would cross the quota is refused; an
        # aborted transaction changes nothing.
        for i in range(5):
            g.rm("n%d" % (i + 4))
        eq(owned(c, 5), 15, "nodes before the transaction")
        tx = g.transaction_start()
        eq(fill(g, "x%d", tx_id=tx), 5, "nodes created in a transaction from 15")
        eq(owned(c, 5), 15, "uncommitted creations are not counted yet")
        g.transaction_end(tx, commit=False)
        eq(owned(c, 5), 15, "nodes after the aborted transaction")
        eq(c.error(XS_READ, b"/local/domain/5/x0\0"), "ENOENT", "x0 after the abort")

        # Commit: the quota is checked again against what is owned then.
        tx = g.transaction_start()
        for i in range(3):
            g.write("y%d" % i, "y", tx_id=tx)
        for i in range(4):
            g.write("z%d" % i, "z")       # outside: 19 now
        eq(owned(c, 5), 19, "nodes before the commit")
        t, rp = g.request(XS_TRANSACTION_END, b"T\0", tx_id=tx)
        eq((t, rp), (XS_ERROR, b"ENOSPC\0"), "commit of 3 more nodes at 19 of 20")
        eq(owned(c, 5), 19, "nodes after the refused commit")
        eq(c.error(XS_READ, b"/local/domain/5/y0\0"), "ENOENT", "y0 after the refused commit")
        eq(guest_error(g, XS_READ, b"z0\0", tx_id=tx), "ENOENT",
           "the refused transaction is gone")
        # A transaction within the quota commits and counts.
        tx = g.transaction_start()
        g.write("w0", "w", tx_id=tx)
        g.transaction_end(tx)
        eq(owned(c, 5), 20, "nodes after a commit of one node")

        # Ownership moved by dom0: given to dom0 frees the guest's count...
        for i in range(4):
            c.set_perms("/local/domain/5/z%d" % i, ["n0", "b5"])
        eq(owned(c, 5), 16, "nodes after dom0 took 4 of them")
        eq(fill(g, "k%d"), 4, "nodes dom5 could create after giving 4 away")
        # ... and given to the guest counts against it (dom0 may go over).
        c.write("/local/domain/5/gift", "g")
        c.set_perms("/local/domain/5/gift", ["n5"])
        eq(owned(c, 5), 21, "nodes after dom0 gave dom5 one more")
        eq(guest_error(g, XS_WRITE, b"after-gift\0v"), "ENOSPC", "WRITE at 21 of 20")
        g.rm("gift")
        g.rm("k0")
        eq(owned(c, 5), 19, "nodes after two RMs")
        g.write("last", "l")
        eq(guest_error(g, XS_WRITE, b"after-last\0v"), "ENOSPC", "WRITE at 20 again")
        eq(owned(c, 5), 20, "nodes at the end")
        # A guest SET_PERMS cannot give a node away to dodge the quota.
        eq(guest_error(g, XS_SET_PERMS, args("last", "n6")), "EPERM",
           "dom5 giving its node to dom6")


# -------------------------------------------------------------- node-size

def test_node_size_quota():
    limit = 300
    with Rig(["-S", str(limit)]) as r:
        c = r.c
        g = r.guest(5)
        g.write("v", "")
        nperms = len(g.get_perms("v"))
        eq(nperms, 2, "permissions of a node dom5 created in its home")
        room = limit - 16 - 8 * nperms
        g.write("v", b"a" * room)
        eq(guest_error(g, XS_WRITE, b"v\0" + b"b" * (room + 1)), "ENOSPC",
           "overwrite one byte over node-size")
        eq(g.read("v"), b"a" * room, "value after the refused overwrite")
        g.write("new", b"c" * room)
        eq(guest_error(g, XS_WRITE, b"new2\0" + b"c" * (room + 1)), "ENOSPC",
           "creation one byte over node-size")
        eq(guest_error(g, XS_WRITE, b"big\0" + b"c" * 3000), "ENOSPC", "3000-byte value")
        eq(c.error(XS_READ, b"/local/domain/5/new2\0"), "ENOENT", "refused node")
        # dom0 is exempt, even on the guest's node.
        c.write("/local/domain/5/v", b"d" * 3000)
        eq(c.read("/local/domain/5/v"), b"d" * 3000, "dom0's big value")
        c.write("/dom0-big", b"e" * 4000)
        # Children's names count in the parent's size (10 bytes each here).
        g.mkdir("kids")
        n = fill(g, "kids/child-%03d", value=b"")
        eq(n, room // 10, "children of one node with node-size=%d" % limit)
        eq(len(g.directory("kids")), n, "children listed")
        # The parent's own value, with its children, is held to the limit.
        spare = room - 10 * n
        eq(guest_error(g, XS_WRITE, b"kids\0" + b"v" * (spare + 1)), "ENOSPC",
           "value of a full parent")
        g.write("kids", b"v" * spare)
        # And so is a longer permission list (8 bytes per entry).
        eq(guest_error(g, XS_SET_PERMS, args("kids", "n5", "b5", "r6")), "ENOSPC",
           "SET_PERMS growing a full node")
        g.set_perms("kids", ["n5", "r6"])
        eq(g.get_perms("kids"), [b"n5", b"r6"], "perms of a full node, same count")
        # RM of a child makes room again.
        g.rm("kids/child-000")
        g.write("kids/child-999", "")
        c.write("/local/domain/5/kids/dom0-may-add-more", "")


# ---------------------------------------------------- watches, transactions

def test_watches_quota():
    with Rig(["-W", "5"]) as r:
        c = r.c
        g = r.guest(5)
        h = r.guest(6)
        for i in range(5):
            g.watch("w%d" % i, "tok")
        eq(guest_error(g, XS_WATCH, args("w5", "tok")), "ENOSPC", "6th WATCH")
        eq(usage(c, 5)["watches"], 5, "watches of dom5")
        # Another domain has its own count; dom0 has none.
        for i in range(5):
            h.watch("w%d" % i, "tok")
        eq(guest_error(h, XS_WATCH, args("w5", "tok")), "ENOSPC", "dom6's 6th WATCH")
        for i in range(20):
            c.expect_ack(XS_WATCH, args("/dom0/w%d" % i, "tok"))
        g.unwatch("w2", "tok")
        g.watch("w5", "tok")
        eq(guest_error(g, XS_WATCH, args("w6", "tok")), "ENOSPC", "WATCH at 5 again")
        g.expect_ack(XS_RESET_WATCHES, b"")
        for i in range(5):
            g.watch("again%d" % i, "tok")
        eq(guest_error(g, XS_WATCH, args("again5", "tok")), "ENOSPC",
           "6th WATCH after RESET_WATCHES")
        # The watches work.
        g.events = []
        c.write("/local/domain/5/again0", "x")
        eq(g.next_event(), (b"again0", b"tok"), "event of a watch within the quota")


def test_transactions_quota():
    with Rig(["-t", "3"]) as r:
        c = r.c
        g = r.guest(5)
        txs = [g.transaction_start() for _ in range(3)]
        eq(len(set(txs)), 3, "distinct transaction ids")
        eq(guest_error(g, XS_TRANSACTION_START, b"\0"), "ENOSPC", "4th TRANSACTION_START")
        eq(usage(c, 5)["transactions"], 3, "transactions of dom5")
        for i in range(6):              # dom0 is not limited
            c.expect_ok(XS_TRANSACTION_START, b"\0")
        g.transaction_end(txs[1], commit=False)
        t4 = g.transaction_start()
        eq(guest_error(g, XS_TRANSACTION_START, b"\0"), "ENOSPC", "TRANSACTION_START at 3 again")
        g.write("committed", "1", tx_id=t4)
        g.transaction_end(t4)
        eq(g.read("committed"), b"1", "commit frees a slot and works")
        g.transaction_start()
        eq(guest_error(g, XS_TRANSACTION_START, b"\0"), "ENOSPC", "after a commit and a start")
        # RESET_WATCHES ends every transaction of the guest.
        g.expect_ack(XS_RESET_WATCHES, b"")
        eq(usage(c, 5)["transactions"], 0, "transactions after RESET_WATCHES")
        txs = [g.transaction_start() for _ in range(3)]
        eq(guest_error(g, XS_TRANSACTION_START, b"\0"), "ENOSPC", "4th after RESET_WATCHES")
        # A commit that fails (a conflict) ends the transaction too.
        g.write("conflict", "0")
        eq(g.read("conflict", tx_id=txs[0]), b"0", "read in the transaction")
        c.write("/local/domain/5/conflict", "dom0")
        g.write("conflict", "5", tx_id=txs[0])
        t, rp = g.request(XS_TRANSACTION_END, b"T\0", tx_id=txs[0])
        eq((t, rp), (XS_ERROR, b"EAGAIN\0"), "commit after a conflicting write")
        eq(usage(c, 5)["transactions"], 2, "transactions after the failed commit")
        g.transaction_start()
        eq(guest_error(g, XS_TRANSACTION_START, b"\0"), "ENOSPC", "after the failed commit")


def test_permissions_quota():
    with Rig(["-A", "3"]) as r:
        c = r.c
        g = r.guest(5)
        g.write("p", "v")
        eq(guest_error(g, XS_SET_PERMS, args("p", "n5", "r6", "r7", "r8")), "ENOSPC",
           "SET_PERMS with 4 entries, permissions=3")
        eq(g.get_perms("p"), [b"n5", b"b5"], "perms after the refused SET_PERMS")
        g.set_perms("p", ["n5", "r6", "w7"])
        eq(g.get_perms("p"), [b"n5", b"r6", b"w7"], "perms with 3 entries")
        # dom0 is not limited.
        c.set_perms("/local/domain/5/p", ["n5", "r1", "r2", "r3", "r4", "r6"])
        eq(len(c.get_perms("/local/domain/5/p")), 6, "dom0's 6 entries")


def test_path_max_quota():
    with Rig(["-M", "100"]) as r:
        c = r.c
        g = r.guest(5)
        ok_name, long_name = "a" * 100, "b" * 101
        g.write(ok_name, "1")
        eq(g.read("/local/domain/5/" + ok_name), b"1", "100-character relative path")
        for path in (long_name, "/local/domain/5/" + long_name, "a/" + "c" * 99):
            eq(guest_error(g, XS_WRITE, _p(path) + b"v"), "EINVAL", "WRITE %s..." % path[:20])
        eq(guest_error(g, XS_READ, _p(long_name)), "EINVAL", "READ of a long path")
        eq(guest_error(g, XS_WATCH, args(long_name, "t")), "EINVAL", "WATCH of a long path")
        eq(guest_error(g, XS_MKDIR, _p(long_name)), "EINVAL", "MKDIR of a long path")
        # Outside the home the whole path counts.
        eq(guest_error(g, XS_READ, _p("/" + "x" * 150)), "EINVAL", "a long absolute path")
        # dom0 is not limited.
        c.write("/local/domain/5/" + "d" * 500, "dom0")
        c.write("/" + "e" * 1000, "dom0")
        eq(c.read("/local/domain/5/" + "d" * 500), b"dom0", "dom0's long path")


def test_transaction_nodes_quota():
    with Rig(["-Q", "transaction-nodes=10"]) as r:
        c = r.c
        g = r.guest(5)
        tx = g.transaction_start()
        n = fill(g, "t%d", tx_id=tx, limit=50)
        check(5 <= n <= 10, "writes a transaction made with transaction-nodes=10: %d" % n)
        # Once full, the transaction may do nothing but end.
        eq(guest_error(g, XS_READ, b"t0\0", tx_id=tx), "ENOSPC", "READ in the full transaction")
        # Others are unaffected: the guest outside it, another transaction,
        # dom0 in a big one.
        g.write("outside", "1")
        t2 = g.transaction_start()
        g.write("other", "2", tx_id=t2)
        g.transaction_end(t2)
        eq(g.read("other"), b"2", "another transaction of the guest")
        t0 = int(c.expect_ok(XS_TRANSACTION_START, b"\0").rstrip(b"\0"))
        for i in range(40):
            c.expect_ack(XS_WRITE, args("/dom0/t%d" % i) + b"v", tx_id=t0)
        c.expect_ack(XS_TRANSACTION_END, b"T\0", tx_id=t0)
        eq(len(c.directory("/dom0")), 40, "dom0's transaction of 40 nodes")
        # Aborting the full transaction leaves nothing behind.
        g.transaction_end(tx, commit=False)
        eq(c.error(XS_READ, b"/local/domain/5/t0\0"), "ENOENT", "t0 after the abort")
        # A full transaction that commits: what was refused is not there.
        tx = g.transaction_start()
        n = fill(g, "u%d", tx_id=tx, limit=50)
        t, rp = g.request(XS_TRANSACTION_END, b"T\0", tx_id=tx)
        eq(c.error(XS_READ, b"/local/domain/5/u%d\0" % n), "ENOENT",
           "the refused write after the commit (%s %s)" % (type_name(t), short(rp)))
        if t == XS_TRANSACTION_END:
            for i in range(n):
                eq(c.read("/local/domain/5/u%d" % i), b"v", "u%d after the commit" % i)


# ----------------------------------------------------------------- memory

def test_memory_quota_hard_and_soft():
    with Rig(["-Q", "memory=20000", "-q", "memory=8000"]) as r:
        c = r.c
        g = r.guest(5)
        base = usage(c, 5)["memory"]
        values = {}
        err = None
        for i in range(200):
            v = (b"%03d" % i) * 170      # 510 bytes
            err = try_write(g, "v%d" % i, v)
            if err is not None:
                break
            values[i] = v
        eq(err, "ENOMEM", "error of the write that passed the memory quota")
        n = len(values)
        check(10 <= n < 40, "values of 510 bytes that fitted in 20000 bytes: %d" % n)
        eq(c.error(XS_READ, b"/local/domain/5/v%d\0" % n), "ENOENT", "the refused node")
        for i, v in values.items():     # nothing is lost
            eq(g.read("v%d" % i), v, "v%d read back by the guest" % i)
            eq(c.read("/local/domain/5/v%d" % i), v, "v%d read back by dom0" % i)
        mem = usage(c, 5)["memory"]
        check(mem <= 20000, "memory dom5 holds: %d > 20000" % mem)
        # Growing a value is refused too; shrinking one is fine.
        eq(guest_error(g, XS_WRITE, b"v0\0" + b"x" * 2000), "ENOMEM", "growing v0")
        eq(g.read("v0"), values[0], "v0 after the refused growth")
        # Freeing memory lets the guest write again.
        for i in range(4):
            g.rm("v%d" % i)
        g.write("again", b"y" * 510)
        # Every byte comes back when the nodes go.
        g.rm("again")
        for i in range(4, n):
            g.rm("v%d" % i)
        eq(usage(c, 5)["memory"], base, "memory of dom5 after removing all it wrote")
        # A node dom0 gives to the guest is charged to it, and uncharged.
        c.write("/local/domain/5/gift", b"g" * 3000)
        eq(usage(c, 5)["memory"], base, "memory before the gift")
        c.set_perms("/local/domain/5/gift", ["n5"])
        check(usage(c, 5)["memory"] >= base + 3000,
              "memory after dom0 gave a 3000-byte node: %s" % usage(c, 5))
        c.set_perms("/local/domain/5/gift", ["n0", "r5"])
        eq(usage(c, 5)["memory"], base, "memory after dom0 took it back")
        # dom0 is not limited.
        c.write("/local/domain/5/dom0", b"z" * 4000)
        c.write("/dom0", b"z" * 4000)
        log = r.d.log()
        eq(log.count(SOFT_WARNING), 1,
           "soft-quota warnings in the log (dom5 crossed 8000 once):\n" + log[-2000:])
        check("domain 5 " in log, "the warning names domain 5:\n" + log[-2000:])


def test_memory_soft_quota_is_silent_below():
    with Rig(["-Q", "memory=20000"]) as r:
        g = r.guest(5)
        eq(fill(g, "v%d", value=b"m" * 510, want="ENOMEM") > 10, True, "values that fitted")
        check(SOFT_WARNING not in r.d.log(),
              "soft warning below the default soft quota:\n" + r.d.log()[-2000:])


# ------------------------------------- quotas inside transactions, rewrites

def test_nodes_quota_in_transaction_counts_net_change():
    """A transaction is charged for the nodes it adds, net of those it
    removes: creating and removing a scratch node over and over holds one
    node at most, and at the quota a node can be replaced by another."""
    with Rig(["-Q", "nodes=20"]) as r:
        c = r.c
        g = r.guest(5)
        for i in range(10):
            g.write("n%d" % i, "v")
        tx = g.transaction_start()
        for i in range(15):
            err = try_write(g, "tmp", "%d" % i, tx_id=tx)
            eq(err, None, "cycle %d of WRITE tmp + RM tmp in a transaction, owning 10 of 20"
               % i)
            g.rm("tmp", tx_id=tx)
        g.transaction_end(tx)
        eq(owned(c, 5), 10, "nodes after the create/remove transaction")
        for i in range(10, 20):
            g.write("n%d" % i, "v")
        eq(owned(c, 5), 20, "nodes at the quota")
        tx = g.transaction_start()
        g.rm("n0", tx_id=tx)
        eq(try_write(g, "replacement", "r", tx_id=tx), None,
           "RM n0 then WRITE a new node in one transaction, at 20 of 20")
        g.rm("n1", tx_id=tx)
        eq(try_write(g, "n1", "again", tx_id=tx), None,
           "RM n1 then WRITE n1 again in one transaction, at 20 of 20")
        g.transaction_end(tx)
        eq(owned(c, 5), 20, "nodes after the replacing transaction")
        eq(c.read("/local/domain/5/replacement"), b"r", "the replacement node")


def test_node_size_quota_in_transaction():
    """The children a transaction adds to a node count in its size: the
    node can never end up bigger than node-size."""
    limit = 300
    with Rig(["-S", str(limit)]) as r:
        c = r.c
        g = r.guest(5)
        g.mkdir("kids")
        room = limit - 16 - 8 * len(g.get_perms("kids"))
        tx = g.transaction_start()
        errs = [try_write(g, "kids/child-%03d" % i, "", tx_id=tx) for i in range(40)]
        t, rp = g.request(XS_TRANSACTION_END, b"T\0", tx_id=tx)
        kids = c.directory("/local/domain/5/kids")
        check(len(kids) * 10 <= room,
              "node-size %d: a transaction gave kids %d children (%d bytes of names, room "
              "for %d); writes refused: %d; commit: %s %s"
              % (limit, len(kids), len(kids) * 10, room, 40 - errs.count(None),
                 type_name(t), short(rp)))


def test_memory_quota_allows_a_same_size_rewrite():
    """Rewriting a node with a value of the same size uses no more memory:
    a guest at its memory quota may still update its nodes."""
    with Rig(["-Q", "memory=20000"]) as r:
        c = r.c
        g = r.guest(5)
        n = fill(g, "v%d", value=b"m" * 510, want="ENOMEM")
        check(n > 10, "values that fitted: %d" % n)
        before = usage(c, 5)["memory"]
        eq(try_write(g, "v0", b"q" * 510), None,
           "rewrite of a 510-byte value with 510 bytes at %d of 20000 bytes" % before)
        eq(usage(c, 5)["memory"], before, "memory after a same-size rewrite")
        eq(g.read("v0"), b"q" * 510, "the rewritten value")


# ------------------------------------------------------------ outstanding

def test_outstanding_quota_stops_reading_the_ring():
    with Rig(["-Q", "outstanding=3"]) as r:
        c = r.c
        g = r.guest(5)
        h = r.guest(6)
        big = b"B" * 1000
        g.write("big", big)
        # One reply (1016 bytes) fills the response ring nearly; then the
        # replies of the writes queue in the daemon, unread.
        stall(g)
        settle(h)
        done = [i for i in range(2, 11)
                if c.op(XS_READ, b"/local/domain/5/q/%d\0" % i)[0] == XS_READ]
        check(1 <= len(done) <= 5 and done == list(range(2, 2 + len(done))),
              "writes handled with outstanding=3 while the guest reads nothing: %s" % done)
        # Its ring is no longer read: more requests stay in it.
        more = b"".join(RawClient.packet(XS_WRITE, b"r/%d\0%d" % (i, i), req_id=i)
                        for i in range(11, 16))
        g.send_bytes(more)
        settle(h)
        # (Requests leave the ring only once handled: those held back
        # while the guest is stalled stay there too.)
        left = (g.req_prod - g.req_cons) & 0xFFFFFFFF
        check(len(more) <= left <= 1024,
              "request bytes left in the ring of a guest with too many unread "
              "replies: %d, at least %d" % (left, len(more)))
        eq(c.error(XS_READ, b"/local/domain/5/r\0"), "ENOENT", "r/* not written yet")
        # Meanwhile the others are served.
        t0 = time.monotonic()
        h.write("fine", "6")
        eq(h.read("fine"), b"6", "dom6 while dom5 is stalled")
        c.write("/dom0", "0")
        eq(c.read("/dom0"), b"0", "dom0 while dom5 is stalled")
        check(time.monotonic() - t0 < 1.0, "the others waited for the stalled guest")
        # The guest reads: every request is answered, in order.
        for i in range(1, 16):
            t, rid, tid, rp = g.recv_packet()
            eq(rid, i, "req_id of reply %d" % i)
            if i == 1:
                eq((t, rp), (XS_READ, big), "reply to the READ")
            else:
                eq((t, rp), (XS_WRITE, b"OK\0"), "reply %d" % i)
        nothing_more(g, "extra replies")
        eq(c.directory("/local/domain/5/q"), [b"%d" % i for i in range(2, 11)], "q/*")
        eq(c.directory("/local/domain/5/r"), [b"%d" % i for i in range(11, 16)], "r/*")
        eq(g.read("q/10"), b"10", "the guest is served normally again")


def stall(g, n=10):
    """Send a READ of the 1000-byte node big and n - 1 WRITEs q/<i>, read
    nothing, and wait until the response ring is full."""
    batch = RawClient.packet(XS_READ, b"big\0", req_id=1)
    for i in range(2, n + 1):
        batch += RawClient.packet(XS_WRITE, b"q/%d\0%d" % (i, i), req_id=i)
    g.send_bytes(batch)
    deadline = time.monotonic() + 5
    while g.rsp_avail() < 1024 and time.monotonic() < deadline:
        g.wait_notify(0.05)
    eq(g.rsp_avail(), 1024, "response ring bytes while the guest does not read")


def test_outstanding_quota_lifted_while_paused():
    """A guest paused for unread replies resumes when it reads them, also
    once the quota was raised, or lifted (0: unlimited) meanwhile."""
    for value in (b"50", b"0"):
        for per_domain in (False, True):
            with Rig(["-Q", "outstanding=3"]) as r:
                c = r.c
                g = r.guest(5)
                h = r.guest(6)
                g.write("big", b"B" * 1000)
                stall(g)
                settle(h)
                c.expect_ack(XS_SET_QUOTA, (b"5\0" if per_domain else b"")
                             + b"outstanding\0" + value + b"\0")
                got = []
                try:
                    for i in range(1, 11):
                        got.append(g.recv_packet(timeout=2.0)[1])
                except TimeoutError:
                    pass
                eq(got, list(range(1, 11)), "replies read after SET_QUOTA %soutstanding %s"
                   % ("5 " if per_domain else "", value.decode()))


def test_outstanding_quota_allows_pipelining_a_reader():
    """A guest that reads its replies can have many requests in flight."""
    with Rig(["-Q", "outstanding=2"]) as r:
        g = r.guest(5)
        batch = b"".join(RawClient.packet(XS_WRITE, b"p%d\0%d" % (i, i), req_id=i)
                         for i in range(1, 31))
        g.send_bytes(batch)
        for i in range(1, 31):
            t, rid, _, rp = g.recv_packet()
            eq((t, rid, rp), (XS_WRITE, i, b"OK\0"), "pipelined reply %d" % i)


# ------------------------------------------------------ GET/SET_QUOTA

def test_get_and_set_quota():
    with Rig() as r:
        c = r.c
        names = " ".join(QUOTA_NAMES).encode() + b"\0"
        eq(c.expect_ok(XS_GET_QUOTA, b""), names, "GET_QUOTA with no argument")
        eq(c.expect_ok(XS_GET_QUOTA, b"\0"), names, "GET_QUOTA with an empty argument")
        for name, value in DEFAULTS.items():
            eq(get_quota(c, name), b"%d\0" % value, "GET_QUOTA %s" % name)
        eq(get_quota(c, "node-permissions"), b"5\0", "GET_QUOTA node-permissions")
        eq(get_quota(c, 0, "nodes"), b"1000\0", "GET_QUOTA of the master")
        eq(c.error(XS_GET_QUOTA, args(5, "nodes")), "ENOENT",
           "GET_QUOTA of a domain not introduced")
        eq(c.error(XS_SET_QUOTA, args(5, "nodes", 3)), "ENOENT",
           "SET_QUOTA of a domain not introduced")
        for payload in (args("bogus"), args(0, "bogus"), args("x", "nodes"),
                        args(70000, "nodes"), args(0, "nodes", "extra")):
            eq(c.error(XS_GET_QUOTA, payload), "EINVAL", "GET_QUOTA %s" % short(payload))
        for payload in (args("bogus", 1), args("nodes", "x"), args("nodes", ""),
                        args("nodes", "-1"), args("nodes", 4294967295),
                        args("nodes", 99999999999), args("nodes"),
                        args(0, "bogus", 1), args("x", "nodes", 1), b""):
            eq(c.error(XS_SET_QUOTA, payload), "EINVAL", "SET_QUOTA %s" % short(payload))
        eq(get_quota(c, "nodes"), b"1000\0", "nodes after the refused SET_QUOTAs")
        c.expect_ack(XS_SET_QUOTA, args("nodes", 4294967294))
        eq(get_quota(c, "nodes"), b"4294967294\0", "the largest value")
        c.expect_ack(XS_SET_QUOTA, args("nodes", 1000))

        g = r.guest(5)
        h = r.guest(6)
        # Guests may not ask or set.
        for who in (g, h):
            eq(guest_error(who, XS_GET_QUOTA, args("nodes")), "EACCES", "guest GET_QUOTA")
            eq(guest_error(who, XS_GET_QUOTA, b""), "EACCES", "guest GET_QUOTA names")
            eq(guest_error(who, XS_SET_QUOTA, args("nodes", 1)), "EACCES", "guest SET_QUOTA")
            eq(guest_error(who, XS_SET_QUOTA, args(who.domid, "nodes", 99999)), "EACCES",
               "guest SET_QUOTA of itself")
        eq(get_quota(c, "nodes"), b"1000\0", "nodes after the guests' attempts")

        # A per-domain override limits that domain only.
        eq(get_quota(c, 5, "nodes"), b"1000\0", "GET_QUOTA 5 nodes before an override")
        c.expect_ack(XS_SET_QUOTA, args(5, "nodes", 3))
        eq(get_quota(c, 5, "nodes"), b"3\0", "GET_QUOTA 5 nodes")
        eq(get_quota(c, 6, "nodes"), b"1000\0", "GET_QUOTA 6 nodes")
        eq(get_quota(c, "nodes"), b"1000\0", "global nodes")
        eq(fill(g, "n%d"), 3, "nodes dom5 could create with its override of 3")
        for i in range(10):
            h.write("n%d" % i, "6")
        # A global change does not undo the override; 0 is unlimited.
        c.expect_ack(XS_SET_QUOTA, args("nodes", 12))
        eq(get_quota(c, 5, "nodes"), b"3\0", "override after a global change")
        eq(fill(h, "m%d"), 2, "nodes dom6 could add under the global 12")
        c.expect_ack(XS_SET_QUOTA, args(6, "nodes", 0))
        for i in range(30):
            h.write("u%d" % i, "6")
        eq(owned(c, 6), 42, "nodes of dom6, unlimited by its override 0")
        # Overrides of another kind.
        c.expect_ack(XS_SET_QUOTA, args(5, "watches", 1))
        g.watch("w", "t")
        eq(guest_error(g, XS_WATCH, args("w2", "t")), "ENOSPC", "dom5's second watch")
        h.watch("w", "t")
        h.watch("w2", "t")

        # Released and reintroduced: the override is forgotten.
        c.expect_ack(XS_RELEASE, b"5\0")
        eq(c.error(XS_GET_QUOTA, args(5, "nodes")), "ENOENT", "GET_QUOTA 5 after RELEASE")
        g2 = r.guest(5, gfn=0x20005)  # RELEASE took b5 off the home
        eq(get_quota(c, 5, "nodes"), b"12\0", "GET_QUOTA 5 nodes after reintroduction")
        eq(get_quota(c, 5, "watches"), b"128\0", "GET_QUOTA 5 watches after reintroduction")
        eq(owned(c, 5), 0, "nodes of the new dom5 (the old one's were removed)")
        eq(fill(g2, "n%d"), 12, "nodes the new dom5 may create")


# ---------------------------------------------------- xenstore-control

def test_control_quota_with_xenstore_control():
    if not os.access(CONTROL_BIN, os.X_OK):
        print("# %s missing: CONTROL quota checked over the wire only" % CONTROL_BIN)
    with Rig() as r:
        c = r.c
        sock = r.d.socket_path
        have_bin = os.access(CONTROL_BIN, os.X_OK)

        def ctl(*argv):
            if have_bin:
                return control_ok(sock, *argv)
            return c.expect_ok(XS_CONTROL, args(*argv)).rstrip(b"\0").decode()

        eq(parse_settings(ctl("quota")), DEFAULTS, "quota")
        eq(ctl("quota", "set", "nodes", 900).strip(), "OK", "quota set nodes 900")
        eq(parse_settings(ctl("quota"))["nodes"], 900, "nodes after quota set")
        eq(get_quota(c, "nodes"), b"900\0", "GET_QUOTA nodes after quota set")
        ctl("quota", "set", "node-permissions", 4)
        eq(get_quota(c, "permissions"), b"4\0", "quota set node-permissions")
        for bad in (("quota", "set", "bogus", 1), ("quota", "set", "nodes", "x"),
                    ("quota", "set", "nodes", 4294967295), ("quota", "77"),
                    ("quota", "x"), ("quota-soft", "set", "nodes", 1)):
            if have_bin:
                rc, out, err = control(sock, *bad)
                check(rc != 0, "xenstore-control %s succeeded: %r" % (bad, out))
            else:
                eq(c.error(XS_CONTROL, args(*bad))[:1], "E", "CONTROL %s" % (bad,))
        eq(c.error(XS_CONTROL, args("quota", 77)), "ENOENT", "CONTROL quota 77")
        eq(parse_settings(ctl("quota"))["nodes"], 900, "nodes after the failures")

        g = r.guest(5)
        for i in range(7):
            g.write("d/n%d" % i, "x")  # 8 nodes with d
        g.watch("d", "t1")
        g.watch("@releaseDomain", "t2")
        g.transaction_start()
        out = ctl("quota", 5)
        lines = out.strip("\n").splitlines()
        eq(lines[0], "Domain 5:", "first line of quota 5")
        got = {}
        for line in lines[1:]:
            m = re.match(r"^(\S+)\s*:\s*(\d+)$", line)
            check(m, "unexpected line %r in %r" % (line, out))
            got[m.group(1)] = int(m.group(2))
        eq(sorted(got), ["memory", "nodes", "transactions", "watches"], "lines of quota 5")
        eq((got["nodes"], got["watches"], got["transactions"]), (8, 2, 1),
           "nodes, watches, transactions of dom5")
        check(got["memory"] > 8 * 16, "memory of dom5: %d" % got["memory"])
        g.rm("d")
        eq(owned(c, 5), 0, "nodes of dom5 after RM")

        soft = parse_settings(ctl("quota-soft"))
        eq(soft, {"memory": SOFT_MEMORY_DEFAULT}, "quota-soft")
        eq(ctl("quota-soft", "set", "memory", 1000).strip(), "OK", "quota-soft set memory")
        eq(parse_settings(ctl("quota-soft")), {"memory": 1000}, "quota-soft after set")
        eq(parse_settings(ctl("quota"))["memory"], DEFAULTS["memory"],
           "the hard memory quota is not the soft one")
        # The new soft quota is used: dom5 passes 1000 bytes and is logged.
        g.write("s", b"s" * 1500)
        deadline = time.monotonic() + 2
        while SOFT_WARNING not in r.d.log() and time.monotonic() < deadline:
            time.sleep(0.02)
        check(SOFT_WARNING in r.d.log(), "no soft-quota warning after quota-soft set memory 1000")
        # CONTROL is dom0's.
        eq(guest_error(g, XS_CONTROL, args("quota")), "EACCES", "guest CONTROL quota")
        eq(guest_error(g, XS_CONTROL, args("quota", "set", "nodes", 1)), "EACCES",
           "guest CONTROL quota set")


# ---------------------------------------------------------------- options

def run_binary(argv, timeout=10):
    return subprocess.run([BINARY] + argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)


def test_option_errors_exit_2_with_a_message():
    for argv, what in ((["-Q", "bogus=1"], "no quota named 'bogus'"),
                       (["-Q", "nodes"], "expected NAME=VALUE"),
                       (["-Q", "=5"], "no quota named ''"),
                       (["-Q", "nodes=x"], "not a quota value"),
                       (["-Q", "nodes="], "not a quota value"),
                       (["-Q", "nodes=-1"], "not a quota value"),
                       (["-Q", "nodes=4294967295"], "not a quota value"),
                       (["--quota", "watches=1x"], "not a quota value"),
                       (["-q", "nodes=1"], "only memory has a soft quota"),
                       (["-q", "memory"], "expected NAME=VALUE"),
                       (["-q", "memory=x"], "not a quota value"),
                       (["-E", "x"], "not a quota value"),
                       (["-S", ""], "not a quota value"),
                       (["-W", "-3"], "not a quota value"),
                       (["-t", "1.5"], "not a quota value"),
                       (["-A", "a"], "not a quota value"),
                       (["-M", "99999999999"], "not a quota value"),
                       (["-E"], "")):
        r = run_binary(argv)
        err = r.stderr.decode()
        eq(r.returncode, 2, "status of %s (stderr %r)" % (argv, err))
        check(what in err, "%s: stderr %r lacks %r" % (argv, err, what))
        check(err.strip() != "", "%s: no message" % (argv,))


def test_options_set_the_quotas():
    opts = ["-E", "7", "-S", "100", "-W", "4", "-t", "2", "-A", "3", "-M", "50",
            "-Q", "outstanding=6", "-Q", "transaction-nodes=9", "-Q", "memory=12345",
            "-q", "memory=999"]
    with Rig(opts) as r:
        c = r.c
        want = {"nodes": 7, "node-size": 100, "watches": 4, "transactions": 2,
                "permissions": 3, "path-max": 50, "outstanding": 6,
                "transaction-nodes": 9, "memory": 12345}
        for name, value in want.items():
            eq(get_quota(c, name), b"%d\0" % value, "GET_QUOTA %s" % name)
        soft = c.expect_ok(XS_CONTROL, args("quota-soft")).decode()
        check(re.search(r"memory\s*:\s*999 ", soft), "quota-soft: %r" % soft)
        g = r.guest(5)
        eq(fill(g, "n%d"), 7, "nodes with -E 7")
    # The long names, the upstream alias, the last one winning, 0 unlimited.
    with Rig(["--entry-nb", "3", "--quota", "node-permissions=2", "-Q", "nodes=4",
              "--watch-nb", "0", "--quota-soft", "memory=5"]) as r:
        c = r.c
        eq(get_quota(c, "nodes"), b"4\0", "the last of --entry-nb and -Q nodes")
        eq(get_quota(c, "permissions"), b"2\0", "-Q node-permissions")
        eq(get_quota(c, "watches"), b"0\0", "--watch-nb 0")
        g = r.guest(5)
        for i in range(200):
            g.watch("w%d" % i, "t")
        eq(usage(c, 5)["watches"], 200, "watches with an unlimited quota")


# -------------------------------------------------------------- neighbours

def test_neighbour_keeps_working_while_a_guest_hammers():
    with Rig(["-Q", "nodes=50"]) as r:
        c = r.c
        g = r.guest(5)
        h = r.guest(6)
        eq(fill(g, "n%d"), 50, "dom5 at its quota")
        stop = threading.Event()
        hammered = [0]
        failures = []

        def hammer():
            i = 0
            try:
                while not stop.is_set():
                    # Pipelined: 20 creations at a time, all refused.
                    batch = b"".join(RawClient.packet(XS_WRITE, b"h%d/x\0v" % (i + k),
                                                      req_id=i + k + 1) for k in range(20))
                    g.send_bytes(batch)
                    for k in range(20):
                        t, rid, _, rp = g.recv_packet()
                        if (t, rid, rp) != (XS_ERROR, i + k + 1, b"ENOSPC\0"):
                            failures.append((t, rid, rp))
                    i += 20
                    hammered[0] = i
            except Exception as e:
                failures.append(repr(e))

        th = threading.Thread(target=hammer, daemon=True)
        th.start()
        worst = 0.0
        try:
            t_end = time.monotonic() + 2.0
            i = 0
            while time.monotonic() < t_end:
                t0 = time.monotonic()
                h.write("k%d" % (i % 40), "%d" % i)
                eq(h.read("k%d" % (i % 40)), b"%d" % i, "dom6 reads back")
                worst = max(worst, time.monotonic() - t0)
                if i % 10 == 0:
                    t0 = time.monotonic()
                    c.write("/dom0/k", "%d" % i)
                    worst = max(worst, time.monotonic() - t0)
                i += 1
        finally:
            stop.set()
            th.join(10)
        check(not th.is_alive(), "the hammering thread did not stop")
        eq(failures[:3], [], "replies to dom5's hammering")
        check(hammered[0] >= 100, "dom5 sent only %d requests" % hammered[0])
        check(i >= 20, "dom6 did only %d round trips in 2 s" % i)
        check(worst < 1.0, "worst latency of dom6 / dom0: %.3f s" % worst)
        eq(owned(c, 5), 50, "dom5 still at its quota")
        eq(owned(c, 6), 40, "dom6's nodes")
        print("# dom5 sent %d refused requests; dom6 did %d round trips, worst %.1f ms"
              % (hammered[0], i, worst * 1000))


if __name__ == "__main__":
    run(globals())
