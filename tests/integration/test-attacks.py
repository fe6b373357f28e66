#!/usr/bin/python3
"""Attacks by a guest on the daemon and its neighbours (XSA-326 and
friends: watch floods, transaction floods, huge nodes, events that are
never read, deep trees, ...), played over real rings through the Xen test
double (tests/fakexen, driven by fakexen.py).

Every test has an attacker (domain 5, sometimes 7 too), a victim (domain
6) and the toolstack on the socket (dom0).  Each asserts three things:

  * the attacker hits its limit, with the documented error (docs/quotas.md,
    docs/domains.md, docs/watches.md);
  * the victim's round trips (a WRITE and a READ of its own node) keep
    completing while (or right after) the attack runs, each within
    XS_ATTACK_LATENCY seconds (default 1);
  * the daemon survives: the socket client is still answered at the end,
    and where memory is the point, the daemon's RSS stays bounded.

Quotas are the daemon's defaults, unless reaching one would take too long;
then the test lowers or lifts it with -Q and says why.

The upstream daemon cannot load the test double: with XS_DAEMON=upstream-c
the whole file is skipped.
"""

import os
import random
import re
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xstest import *  # noqa: E402,F401,F403
from xstest import HEADER, RawClient, daemon_binary  # noqa: E402
from fakexen import *  # noqa: E402,F401,F403
from guests import *  # noqa: E402,F401,F403
import guests  # noqa: E402

skip_unless_test_double()

ATTACKER, VICTIM, ATTACKER2 = 5, 6, 7
LATENCY = float(os.environ.get("XS_ATTACK_LATENCY", "1.0"))

# The defaults of docs/quotas.md.
Q_NODES = 1000
Q_WATCHES = 128
Q_TRANSACTIONS = 10
Q_OUTSTANDING = 20
Q_TXN_NODES = 1024
Q_MEMORY = 2621440
Q_NODE_SIZE = 2048
Q_PATH_MAX = 2048
Q_PERMS = 5







def guest_pipeline(g, packets, window=16, timeout=5.0):
    """Send (type, payload[, tx]) requests over g's ring, at most `window`
    unanswered at a time (below the outstanding quota), and return the
    replies (type, payload) in order, checking their req_id and tx_id."""
    out = []
    for i in range(0, len(packets), window):
        chunk = packets[i:i + window]
        rids, data = [], []
        for p in chunk:
            t, payload = p[0], p[1]
            tx = p[2] if len(p) > 2 else 0
            rid = 900000 + len(out) + len(rids)
            rids.append((rid, tx))
            data.append(RawClient.packet(t, payload, rid, tx))
        g.send_bytes(b"".join(data), timeout=timeout)
        for rid, tx in rids:
            t, rrid, rtid, rp = recv_reply(g, timeout)
            if (rrid, rtid) != (rid, tx):
                raise XsError("dom%d: reply (req %d, tx %d) to request (req %d, tx %d)"
                              % (g.domid, rrid, rtid, rid, tx))
            out.append((t, rp))
    return out


def sock_pipeline(c, packets, window=256):
    """Send (type, payload) requests over a socket client, `window` at a
    time, and return the replies (type, payload) in order."""
    out = []
    for i in range(0, len(packets), window):
        chunk = packets[i:i + window]
        c.send_raw(b"".join(RawClient.packet(t, p, 1 + i + k)
                            for k, (t, p) in enumerate(chunk)))
        for k in range(len(chunk)):
            t, rid, _, rp = c.recv_packet()
            if rid != 1 + i + k:
                raise XsError("socket: reply req %d to request %d" % (rid, 1 + i + k))
            out.append((t, rp))
    return out


def w(path, value=b""):
    """A WRITE request for the pipelines."""
    if isinstance(path, str):
        path = path.encode()
    if isinstance(value, str):
        value = value.encode()
    return (XS_WRITE, path + b"\0" + value)


def first_error(replies):
    """(index, error name) of the first XS_ERROR reply, or (None, None)."""
    for i, (t, rp) in enumerate(replies):
        if t == XS_ERROR:
            return i, rp.rstrip(b"\0").decode()
    return None, None


# ------------------------------------------------------------------ rig

class Victim:
    """A well-behaved domain: round trips on its own node, timed."""

    def __init__(self, g, name="victim"):
        self.g = g
        self.name = name
        self.n = 0
        self.worst = 0.0
        self.total = 0.0

    def round(self):
        self.n += 1
        value = b"%s-%d" % (self.name.encode(), self.n)
        t0 = time.monotonic()
        self.g.write("victim/v", value)
        got = self.g.read("victim/v")
        dt = time.monotonic() - t0
        eq(got, value, "victim read back")
        self.worst = max(self.worst, dt)
        self.total += dt
        check(dt < LATENCY, "dom%d's round trip %d took %.3f s (bound %.1f s)"
              % (self.g.domid, self.n, dt, LATENCY))

    def rounds(self, n):
        for _ in range(n):
            self.round()

    def during(self, attack, what, min_rounds=5):
        """Run attack() in a thread; meanwhile (and then at least
        min_rounds times) make round trips.  Returns attack()'s result,
        re-raises its exception."""
        result, errors = [], []

        def body():
            try:
                result.append(attack())
            except BaseException as e:      # noqa: BLE001
                errors.append(e)

        t = threading.Thread(target=body, daemon=True)
        n0 = self.n
        t0 = time.monotonic()
        t.start()
        during = 0
        try:
            while t.is_alive():
                self.round()
                during += 1
                check(time.monotonic() - t0 < 60, "%s never ended" % what)
        finally:
            t.join(60)
        elapsed = time.monotonic() - t0
        self.rounds(min_rounds)
        diag("%s: %.2f s, %d victim round trips during it, worst %.1f ms"
             % (what, elapsed, during, 1000 * self.worst))
        if errors:
            raise errors[0]
        check(not t.is_alive(), "%s still running" % what)
        if elapsed > 0.5:
            check(during >= 1, "no victim round trip completed during %s" % what)
        check(self.n - n0 >= min_rounds, "victim rounds")
        return result[0]


class Rig(guests.Rig):
    """guests.Rig with an attacker and a victim by default, each introduced
    and owning its home /local/domain/<id>, and /tool/alive for
    check_alive().

        with Rig(["-Q", "nodes=0"]) as r:
            a, v = r.g[5], r.g[6]
    """

    alive_node = True

    def __init__(self, extra_args=(), domids=(ATTACKER, VICTIM)):
        guests.Rig.__init__(self, extra_args, domids=domids)

    def victim(self, domid=VICTIM):
        return Victim(self.g[domid])

    def usage(self, domid):
        """What `xenstore-control quota <domid>` reports: {name: count}."""
        rp = self.c.expect_ok(XS_CONTROL, b"quota\0%d\0" % domid)
        out = {}
        for line in rp.rstrip(b"\0").decode().splitlines():
            m = re.match(r"\s*([\w-]+)\s*:\s*(\d+)\s*$", line)
            if m:
                out[m.group(1)] = int(m.group(2))
        for k in ("nodes", "watches", "transactions", "memory"):
            check(k in out, "CONTROL quota %d: no %s in %r" % (domid, k, rp))
        return out

    def rss(self):
        return rss_kb(self.d.pid)


# ---------------------------------------------------------------- 1. watches

def test_watch_flood():
    with Rig() as r:
        a, victim = r.g[ATTACKER], r.victim()
        victim.rounds(3)

        def attack():
            for i in range(1000):
                t, rp = a.request(XS_WATCH, b"w/%d\0tok%d\0" % (i, i))
                if t == XS_ERROR:
                    return i, rp
                eq(t, XS_WATCH, "reply to WATCH %d" % i)
            return 1000, None

        n, err = victim.during(attack, "watch flood")
        eq(err, b"ENOSPC\0", "error of the watch past the quota")
        eq(n, Q_WATCHES, "watches accepted")
        eq(r.usage(ATTACKER)["watches"], Q_WATCHES, "watches counted")
        # Every further one is refused too; one unwatched makes room.
        eq(guest_error(a, XS_WATCH, b"w/x\0t\0"), "ENOSPC", "another watch")
        a.unwatch("w/0", "tok0")
        a.watch("w/again", "t")
        eq(guest_error(a, XS_WATCH, b"w/y\0t\0"), "ENOSPC", "after one was replaced")
        # The victim has its own quota: its watches work and fire.
        v = r.g[VICTIM]
        v.watch("victim", "vt")
        eq(v.next_event(), (b"victim", b"vt"), "victim's initial event")
        r.c.write("/local/domain/6/victim/x", "1")
        eq(v.next_event(), (b"victim/x", b"vt"), "victim's event (relative watch)")
        r.check_alive()


def test_watch_memory_flood():
    # Watches with tokens of ~4000 bytes until the memory quota: lift the
    # watch count (-Q watches=0), else 128 of them stop long before.
    with Rig(["-Q", "watches=0"]) as r:
        a, victim = r.g[ATTACKER], r.victim()
        token = b"T" * 4000

        def attack():
            for i in range(2000):
                t, rp = a.request(XS_WATCH, b"w%d\0%s%d\0" % (i, token, i))
                if t == XS_ERROR:
                    return i, rp
            return 2000, None

        n, err = victim.during(attack, "watch memory flood")
        eq(err, b"ENOMEM\0", "error of the watch past the memory quota")
        use = r.usage(ATTACKER)
        check(Q_MEMORY // 4100 - 20 <= n <= Q_MEMORY // 4000 + 1,
              "%d watches of ~4 KB before ENOMEM (memory %d)" % (n, use["memory"]))
        check(use["memory"] <= Q_MEMORY, "memory %d over the quota" % use["memory"])
        eq(use["watches"], n, "watches counted")
        # At its quota it can still clean up, and then work.
        a.events = []       # the initial events request() set aside
        a.unwatch("w0", token + b"0")
        a.write("still", "1")
        r.check_alive()


def test_busy_watch_never_read():
    """XSA-326: a guest watches a subtree that changes all the time and
    never reads its ring.  Its events must not pile up without bound (they
    coalesce once 1 MiB is queued, docs/watches.md), dom0's writes never
    wait for it, and when it finally reads it gets a bounded number of
    events and still works.  The writes go to 2,000 nodes in turn (4 MB of
    distinct events): events identical to one still queued are dropped (as
    upstream), so one node written again and again would queue one event,
    never 1 MiB."""
    writes = 20000
    NODES = 2000
    with Rig() as r:
        a, victim = r.g[ATTACKER], r.victim()
        r.c.write("/busy/node", "0")
        r.c.set_perms("/busy", ["n0", "r%d" % ATTACKER])
        r.c.set_perms("/busy/node", ["n0", "r%d" % ATTACKER])
        for k in range(NODES):              # readable through /busy
            r.c.write("/busy/node%d" % k, "0")
        # ~2 KB per event: 20,000 of them would be 40 MB.
        token = b"t" * 2000
        a.watch("/busy", token)
        eq(a.next_event(), (b"/busy", token), "initial event")
        victim.rounds(3)
        rss0 = r.rss()
        writer = RawClient(r.d.socket_path)
        slowest = [0.0]

        def flood():
            batch = 500
            for i in range(0, writes, batch):
                t0 = time.monotonic()
                replies = sock_pipeline(writer, [w("/busy/node%d" % ((i + k) % NODES),
                                                   b"%d" % (i + k))
                                                 for k in range(batch)], window=batch)
                slowest[0] = max(slowest[0], time.monotonic() - t0)
                check(all(rp == b"OK\0" for _, rp in replies), "dom0's writes")
            return True

        victim.during(flood, "20,000 writes to a watched path never read")
        writer.close()
        diag("slowest batch of 500 dom0 writes: %.3f s" % slowest[0])
        check(slowest[0] < 5 * LATENCY, "dom0's writes waited %.2f s for a batch of 500"
              % slowest[0])
        rss1 = r.rss()
        use = r.usage(ATTACKER)
        bound = 24 * 1024 if asan_build() else 8 * 1024
        diag("RSS %d -> %d kB (+%d kB), attacker memory %d"
             % (rss0, rss1, rss1 - rss0, use["memory"]))
        check(rss1 - rss0 < bound, "RSS grew by %d kB (bound %d kB) for a reader "
              "that never reads" % (rss1 - rss0, bound))
        check(use["memory"] <= Q_MEMORY, "attacker memory %d" % use["memory"])
        # The attacker finally reads: a bounded number of events, the last
        # one for the watch's own path (the held-back changes).
        n, nbytes, last = 0, 0, None
        while not a.no_data_within(0.5):
            t, rid, tid, p = a.recv_packet()
            eq(t, XS_WATCH_EVENT, "packet %d for the attacker" % n)
            n += 1
            nbytes += HEADER.size + len(p)
            last = tuple(split_strings(p))
            check(n <= writes, "more events than writes")
        diag("the attacker got %d events (%d bytes) for %d writes" % (n, nbytes, writes))
        check(nbytes <= 4 * 256 * 1024 + 64 * 1024, "%d bytes of events queued" % nbytes)
        check(n < writes // 10, "%d events for %d writes: not coalesced" % (n, writes))
        eq(last, (b"/busy", token), "the last event (the coalesced one)")
        eq(a.read("/busy/node%d" % ((writes - 1) % NODES)), b"%d" % (writes - 1),
           "the attacker reads the last value")
        # And it is an ordinary watcher again.
        r.c.write("/busy/node", "again")
        eq(a.next_event(), (b"/busy/node", token), "a fresh event after draining")
        victim.rounds(3)
        r.check_alive()


# ----------------------------------------------------------- 3. transactions

def test_transaction_flood():
    with Rig() as r:
        a, v, victim = r.g[ATTACKER], r.g[VICTIM], r.victim()
        txs = []
        for i in range(Q_TRANSACTIONS):
            txs.append(a.transaction_start())
            a.write("tx%d" % i, "x", tx_id=txs[-1])
        eq(guest_error(a, XS_TRANSACTION_START, b"\0"), "ENOSPC", "transaction 11")
        eq(guest_error(a, XS_TRANSACTION_START, b"\0"), "ENOSPC", "transaction 12")
        eq(r.usage(ATTACKER)["transactions"], Q_TRANSACTIONS, "transactions counted")
        # The victim is not limited by the attacker's count.
        vt = v.transaction_start()
        v.write("victim/tx", "1", tx_id=vt)
        v.transaction_end(vt)
        eq(v.read("victim/tx"), b"1")
        victim.rounds(5)
        # Ending one makes room for one.
        a.transaction_end(txs.pop(), commit=False)
        txs.append(a.transaction_start())
        eq(guest_error(a, XS_TRANSACTION_START, b"\0"), "ENOSPC", "again full")
        for t in txs:
            a.transaction_end(t, commit=False)
        eq(r.usage(ATTACKER)["transactions"], 0, "transactions after ending them")
        r.check_alive()


def test_transaction_too_many_nodes():
    """One transaction touching more than transaction-nodes (1024): dom0
    provides 1100 readable nodes; the attacker reads them all in one
    transaction."""
    count = Q_TXN_NODES + 76
    with Rig() as r:
        a, victim = r.g[ATTACKER], r.victim()
        r.c.mkdir("/pub")
        r.c.set_perms("/pub", ["n0", "r%d" % ATTACKER])
        replies = sock_pipeline(r.c, [w("/pub/n%d" % i, "v%d" % i) for i in range(count)])
        check(all(t == XS_WRITE for t, _ in replies), "dom0 made /pub")
        tx = a.transaction_start()

        def attack():
            return guest_pipeline(a, [(XS_READ, b"/pub/n%d\0" % i, tx) for i in range(count)])

        replies = victim.during(attack, "a transaction reading %d nodes" % count)
        i, err = first_error(replies)
        eq(err, "ENOSPC", "error of the read past transaction-nodes")
        check(Q_TXN_NODES - 4 <= i <= Q_TXN_NODES, "%d reads before ENOSPC" % i)
        for k in range(i):
            eq(replies[k], (XS_READ, b"v%d" % k), "read %d in the transaction" % k)
        check(all(t == XS_ERROR and rp == b"ENOSPC\0" for t, rp in replies[i:]),
              "every request after the limit is refused")
        eq(guest_error(a, XS_WRITE, b"x\0y", tx_id=tx), "ENOSPC", "a write after the limit")
        # It can always end it; then it works as before.
        a.transaction_end(tx, commit=False)
        a.write("after", "1")
        eq(a.read("after"), b"1")
        eq(r.usage(ATTACKER)["transactions"], 0)
        victim.rounds(3)
        r.check_alive()


# ---------------------------------------------------------------- 4. nodes

def test_many_nodes():
    with Rig() as r:
        a, victim = r.g[ATTACKER], r.victim()
        eq(r.usage(ATTACKER)["nodes"], 1, "the attacker owns its home")
        # 50 children per parent: one parent's list of names stays below
        # the node-size quota, so the nodes quota is what stops it.
        total = Q_NODES + 100
        reqs = [w("n%02d/%02d" % (i // 50, i % 50), "x") for i in range(total)]
        replies = victim.during(lambda: guest_pipeline(a, reqs), "%d node creations" % total)
        i, err = first_error(replies)
        eq(err, "ENOSPC", "error of the node past the quota")
        check(all(t == XS_ERROR and rp == b"ENOSPC\0" for t, rp in replies[i:]),
              "every creation after the first refusal is refused")
        parents = (i + 49) // 50
        owned = 1 + parents + i         # home, parents, leaves
        use = r.usage(ATTACKER)
        eq(use["nodes"], owned, "nodes counted (%d leaves, %d parents)" % (i, parents))
        check(Q_NODES - 1 <= owned <= Q_NODES, "owned %d" % owned)
        # A creation of several nodes at once near the limit creates none.
        eq(guest_error(a, XS_WRITE, b"deep/er/path\0x"), "ENOSPC", "three new nodes")
        eq(guest_error(a, XS_READ, b"deep\0"), "ENOENT", "no partial creation")
        # Overwriting is not creating.
        a.write("n00/00", "y")
        # Removing gives the room back.
        a.rm("n00")
        eq(r.usage(ATTACKER)["nodes"], owned - 51, "nodes after RM of 51")
        a.write("fresh/node", "1")
        eq(r.usage(ATTACKER)["nodes"], owned - 49)
        # The victim creates nodes of its own, unhindered.
        replies = guest_pipeline(r.g[VICTIM], [w("victim/n%d" % i, "1") for i in range(40)])
        check(all(t == XS_WRITE for t, _ in replies), "victim's creations")
        r.check_alive()


# ------------------------------------------------------------ 5. big nodes

def test_giant_values():
    with Rig() as r:
        a, victim = r.g[ATTACKER], r.victim()
        # A node is 16 + 8 per permission + value + children's names: with
        # the one permission it inherits, 2024 bytes of value fit in 2048.
        fit = Q_NODE_SIZE - 16 - 8
        a.write("big", b"b" * fit)
        eq(a.read("big"), b"b" * fit)
        eq(guest_error(a, XS_WRITE, b"big\0" + b"c" * (fit + 1)), "ENOSPC", "overwrite")
        eq(a.read("big"), b"b" * fit, "unchanged by the refused write")

        def attack():
            got = []
            for size in list(range(2049, 2100)) + [2500, 3000, 3500, 4000,
                                                   4096 - len("new\0")]:
                got.append((size, guest_error(a, XS_WRITE, b"new\0" + b"g" * size)))
            return got

        for size, err in victim.during(attack, "giant values"):
            eq(err, "ENOSPC", "a value of %d bytes" % size)
        eq(guest_error(a, XS_READ, b"new\0"), "ENOENT", "nothing created")
        # A directory whose names outgrow the node size.
        names = 0
        for i in range(100):
            t, rp = a.request(XS_WRITE, b"dir/%s%03d\0" % (b"k" * 196, i))
            if t == XS_ERROR:
                eq(rp, b"ENOSPC\0", "child %d of a full directory" % i)
                break
            names += 1
        check(names * 200 <= Q_NODE_SIZE and (names + 1) * 200 > Q_NODE_SIZE - 24,
              "%d children of 200-byte names fit" % names)
        eq(len(a.directory("dir")), names)
        # dom0 is not limited.
        r.c.write("/local/domain/5/dom0big", b"d" * 4000)
        eq(a.read("dom0big"), b"d" * 4000)
        r.check_alive()


def test_memory_exhaustion():
    # Memory, not the node count, is the point: lift the nodes quota
    # (-Q nodes=0), which would stop this after 1000 nodes (2 MB).
    with Rig(["-Q", "nodes=0"]) as r:
        a, victim = r.g[ATTACKER], r.victim()
        value = lambda i: (b"%06d" % i) * 333       # 1998 bytes  # noqa: E731
        path = lambda i: "m%02d/v%d" % (i // 100, i % 100)  # noqa: E731
        total = 1600            # ~3.2 MB of values: past the 2.5 MB quota
        reqs = [w(path(i), value(i)) for i in range(total)]
        rss0 = r.rss()
        replies = victim.during(lambda: guest_pipeline(a, reqs), "2 KB values until ENOMEM")
        i, err = first_error(replies)
        eq(err, "ENOMEM", "error of the write past the memory quota")
        check(all(t == XS_ERROR and rp == b"ENOMEM\0" for t, rp in replies[i:]),
              "every write after the first refusal is refused")
        use = r.usage(ATTACKER)
        diag("%d values of 2 KB before ENOMEM; memory %d; RSS +%d kB"
             % (i, use["memory"], r.rss() - rss0))
        check(use["memory"] <= Q_MEMORY, "memory %d" % use["memory"])
        check(Q_MEMORY // 2200 <= i <= Q_MEMORY // 1998, "%d values stored" % i)
        # Everything stored before is intact.
        back = guest_pipeline(a, [(XS_READ, path(k).encode() + b"\0") for k in range(i)])
        for k, (t, rp) in enumerate(back):
            if (t, rp) != (XS_READ, value(k)):
                raise AssertionError("value %d: %s %s" % (k, type_name(t), short(rp)))
        # Another such node is refused; reading and removing are not.
        eq(guest_error(a, XS_WRITE, b"m99/new\0" + value(0)), "ENOMEM")
        a.rm("m00")
        a.write("after-rm", value(0))
        eq(a.read("after-rm"), value(0))
        # The victim has its own memory.
        v = r.g[VICTIM]
        v.write("victim/big", value(1))
        eq(v.read("victim/big"), value(1))
        r.check_alive()


# ------------------------------------------------------------- 6. deep paths

def test_deep_paths():
    with Rig() as r:
        a, victim = r.g[ATTACKER], r.victim()
        # Relative paths up to path-max (2048) are fine, one more is EINVAL.
        longest = ("d" * 99 + "/") * 20 + "e" * 48
        eq(len(longest), Q_PATH_MAX)
        a.write(longest, "ok")
        eq(a.read("/local/domain/5/" + longest), b"ok", "absolute form")
        for p in (longest + "x", longest + "/x", "/local/domain/5/" + longest + "x"):
            for t, payload in ((XS_WRITE, p.encode() + b"\0v"), (XS_READ, p.encode() + b"\0"),
                               (XS_MKDIR, p.encode() + b"\0"),
                               (XS_WATCH, p.encode() + b"\0t\0")):
                eq(guest_error(a, t, payload), "EINVAL",
                   "%s of a path of %d bytes" % (type_name(t), len(p)))
        # Many short components: 600 levels in one request.
        deep = "a/" * 599 + "a"

        def attack():
            a.write(deep, "bottom")
            eq(a.read(deep), b"bottom")
            eq(a.directory(deep[:-2]), [b"a"])
            # Deeper, within path-max: more nodes than the quota allows.
            eq(guest_error(a, XS_WRITE, ("a/" * 1000 + "b").encode() + b"\0x"),
               "ENOSPC", "1001 levels (400 new nodes)")
            # Deeper than path-max.
            eq(guest_error(a, XS_WRITE, ("a/" * 1030).encode()[:-1] + b"\0x"),
               "EINVAL", "1030 levels")
            return True

        victim.during(attack, "deep trees")
        use = r.usage(ATTACKER)
        eq(use["nodes"], 1 + 21 + 600, "nodes of the deep trees")
        # dom0: up to the absolute limit (3072).
        d0deep = "/deep" + "/a" * 1500
        r.c.write(d0deep, "x")
        eq(r.c.read(d0deep), b"x")
        too = "/deep" + "/a" * 1540
        check(len(too) > XENSTORE_ABS_PATH_MAX, "too long")
        r.c.expect_error(XS_WRITE, too.encode() + b"\0x", "EINVAL")
        # RM of the deep trees by dom0, watched.
        r.c.watch("/deep", "dt")
        eq(r.c.next_event(), (b"/deep", b"dt"))
        r.c.rm("/deep")
        eq(r.c.next_event(), (b"/deep", b"dt"), "the RM's event")
        r.c.expect_error(XS_READ, d0deep.encode() + b"\0", "ENOENT")
        r.c.rm("/local/domain/5/a")
        r.c.rm("/local/domain/5/d" + "d" * 98)
        eq(r.usage(ATTACKER)["nodes"], 1, "nodes after the RMs")
        eq(a.directory("/local/domain/5"), [], "the attacker's home is empty")
        victim.rounds(3)
        r.check_alive()


# ------------------------------------------------------------ 7. permissions

def test_long_permission_lists():
    with Rig() as r:
        a, victim = r.g[ATTACKER], r.victim()
        a.write("p", "1")
        five = ["n5", "r6", "w10001", "b10002", "r10003"]
        a.set_perms("p", five)
        eq(a.get_perms("p"), [x.encode() for x in five])

        def attack():
            got = []
            for n in list(range(6, 40)) + [100, 200]:
                perms = ["n5"] + ["r%d" % (10000 + k) for k in range(n - 1)]
                got.append((n, guest_error(a, XS_SET_PERMS, b"p\0" + b"".join(
                    x.encode() + b"\0" for x in perms))))
            # A payload of nearly 4096 bytes of permissions.
            perms = b"n5\0" + b"".join(b"r%d\0" % (10000 + k) for k in range(583))
            payload = b"p\0" + perms
            check(4050 < len(payload) <= XENSTORE_PAYLOAD_MAX, "payload %d" % len(payload))
            got.append((584, guest_error(a, XS_SET_PERMS, payload)))
            return got

        for n, err in victim.during(attack, "long permission lists"):
            eq(err, "ENOSPC", "SET_PERMS of %d entries" % n)
        eq(a.get_perms("p"), [x.encode() for x in five], "permissions unchanged")
        # dom0 has no such quota.
        big = ["n5"] + ["r%d" % (10000 + k) for k in range(500)]
        r.c.write("/local/domain/5/q", "")
        r.c.set_perms("/local/domain/5/q", big)
        eq(r.c.get_perms("/local/domain/5/q"), [x.encode() for x in big])
        # A child would inherit 501 entries: too big a node for the guest.
        eq(guest_error(a, XS_WRITE, b"q/child\0x"), "ENOSPC", "inheriting 501 permissions")
        eq(a.read("q"), b"")
        victim.rounds(3)
        r.check_alive()


# ---------------------------------------------------------------- 8. garbage

def garbage_packets(rng, count, first_rid):
    types = list(range(0, 30)) + [0x1234, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]
    out = []
    for k in range(count):
        t = rng.choice(types)
        n = rng.choice((0, 1, 2, 5, 17, 100, 600, 2000))
        if rng.random() < 0.5:
            payload = bytes(rng.randrange(256) for _ in range(n))
        else:
            words = [bytes(rng.choice(b"abc/@-_.0123~ ") for _ in range(rng.randrange(8)))
                     for _ in range(rng.randrange(5))]
            payload = b"\0".join(words) + (b"\0" if rng.random() < 0.7 else b"")
        tx = 0 if rng.random() < 0.8 else rng.choice((1, 2, 0xFFFFFFFF))
        out.append((t, first_rid + k, tx, payload))
    return out


def test_garbage_packets():
    rng = random.Random(0x5A5A)
    with Rig() as r:
        a, victim = r.g[ATTACKER], r.victim()

        def attack():
            rid = 1
            for batch in range(25):
                pkts = garbage_packets(rng, 16, rid)
                rid += 16
                a.send_bytes(b"".join(RawClient.packet(t, p, i, tx) for t, i, tx, p in pkts))
                for t, i, tx, p in pkts:
                    rt, rrid, rtid, rp = recv_reply(a)
                    eq((rrid, rtid), (i, tx), "reply to type %#x %s" % (t, short(p)))
                    check(rt in (t, XS_ERROR), "type %#x %s: reply %s %s"
                          % (t, short(p), type_name(rt), short(rp)))
                    if rt == XS_ERROR:
                        check(rp.endswith(b"\0") and rp[:-1] in ERRNO_NAMES,
                              "type %#x: error payload %s" % (t, short(rp)))
                eq(a.error, XENSTORE_ERROR_NONE, "error indicator after batch %d" % batch)
            return rid

        victim.during(attack, "400 garbage packets")
        a.write("still", "ok")
        eq(a.read("still"), b"ok")
        # An oversized header: PROTO, the ring is no longer served.
        a.send_bytes(HEADER.pack(XS_WRITE, 1, 0, XENSTORE_PAYLOAD_MAX + 1))
        wait_error(a, XENSTORE_ERROR_PROTO)
        cons = a.req_cons
        a.send_bytes(RawClient.packet(XS_READ, b"still\0", 2))
        check(a.no_data_within(0.3), "answered after PROTO")
        eq(a.req_cons, cons, "the ring was read after PROTO")
        victim.rounds(10)
        eq(r.c.expect_ok(XS_IS_DOMAIN_INTRODUCED, b"5\0"), b"T\0", "dom5 still known")
        # It may reconnect; then a stream of random bytes (random lengths).
        a.reconnect()
        eq(a.read("still"), b"ok", "served after reconnecting")
        noise = bytes(rng.randrange(256) for _ in range(3000))
        check(HEADER.unpack(noise[:HEADER.size])[3] > XENSTORE_PAYLOAD_MAX,
              "the noise starts with an oversized length")
        try:
            a.send_bytes(noise, timeout=1.0)
        except TimeoutError:
            pass        # the ring is no longer read: the rest stays unsent
        wait_error(a, XENSTORE_ERROR_PROTO)
        victim.rounds(5)
        # The socket: an oversized packet closes only that connection.
        bad = RawClient(r.d.socket_path)
        bad.write("/tool/bad", "1")
        half = RawClient(r.d.socket_path)
        half.send_raw(RawClient.packet(XS_WRITE, b"/tool/half\0xyz")[:10])
        bad.send_raw(HEADER.pack(XS_WRITE, 9, 0, XENSTORE_PAYLOAD_MAX + 1) + b"x" * 100)
        check(bad.is_closed(), "an oversized packet did not close the socket connection")
        bad.close()
        eq(r.c.read("/tool/bad"), b"1")
        # Garbage of unknown types on the socket: errors, connection kept.
        junk = RawClient(r.d.socket_path)
        for t in (30, 31, 0x1234, 0xFFFFFFFF, XS_WATCH_EVENT, XS_ERROR):
            rt, _, _, rp = junk.op(t, bytes(rng.randrange(256) for _ in range(50)))
            eq(rt, XS_ERROR, "reply type to type %#x" % t)
        junk.close()
        half.close()        # a half packet, then gone
        r.c.expect_error(XS_READ, b"/tool/half\0", "ENOENT")
        victim.rounds(3)
        r.check_alive()


# ---------------------------------------------------------- 9. ring indices

def test_corrupt_ring_indices():
    with Rig() as r:
        a, victim = r.g[ATTACKER], r.victim()
        corruptions = [
            ("req_prod past the ring", lambda g: setattr(g, "req_prod", g.req_cons + RING_SIZE + 1)),
            ("req_cons ahead of req_prod", lambda g: setattr(g, "req_cons", g.req_prod + 1)),
            ("rsp_cons ahead of rsp_prod", lambda g: setattr(g, "rsp_cons", g.rsp_prod + 5)),
            ("rsp_cons far behind", lambda g: setattr(g, "rsp_cons", g.rsp_prod - 2000)),
            ("req_prod at 2^31", lambda g: setattr(g, "req_prod", g.req_cons + 0x80000000)),
        ]

        def attack():
            for rnd in range(20):
                for name, corrupt in corruptions:
                    a.write("x", b"%d" % rnd)
                    corrupt(a)
                    if name.startswith("rsp"):
                        # Seen when the daemon has a reply to write.
                        a.send_bytes(RawClient.packet(XS_READ, b"x\0", 77))
                    else:
                        a.notify()
                    wait_error(a, XENSTORE_ERROR_RINGIDX)
                    a.reconnect()
                    eq(a.error, XENSTORE_ERROR_NONE, "reconnect after %s" % name)
            return True

        victim.during(attack, "100 corruptions and reconnections")
        eq(a.read("x"), b"19")
        r.check_alive()


# --------------------------------------------------------- 10. reconnections

def test_reconnect_storm():
    with Rig() as r:
        a, victim = r.g[ATTACKER], r.victim()
        victim.rounds(3)
        rss0 = r.rss()

        def no_wait():
            for _ in range(1000):
                a.connection = XENSTORE_RECONNECT
                a.notify()
            return True

        def waiting():
            for i in range(1000):
                if i % 10 == 0:     # something to drop each time
                    a.watch("w", "t")
                    a.transaction_start()
                    a.send_bytes(RawClient.packet(XS_WRITE, b"part\0ial", 5)[:11])
                a.reconnect()
            return True

        victim.during(no_wait, "1000 reconnection requests without waiting")
        a.reconnect()
        victim.during(waiting, "1000 reconnections, each waited for")
        a.reconnect()
        a.write("after", "1")
        eq(a.read("after"), b"1", "the attacker works after the storm")
        eq(guest_error(a, XS_READ, b"part\0"), "ENOENT", "a partial packet survived")
        use = r.usage(ATTACKER)
        eq((use["watches"], use["transactions"]), (0, 0), "watches and transactions left")
        rss1 = r.rss()
        bound = 24 * 1024 if asan_build() else 4 * 1024
        diag("RSS %d -> %d kB (+%d kB)" % (rss0, rss1, rss1 - rss0))
        check(rss1 - rss0 < bound, "RSS grew by %d kB over 2000 reconnections" % (rss1 - rss0))
        r.check_alive()


# ------------------------------------------------------------ 11. dying

def test_domain_dies_mid_request():
    with Rig(domids=(ATTACKER, VICTIM, ATTACKER2)) as r:
        a, a2, v, victim = r.g[ATTACKER], r.g[ATTACKER2], r.g[VICTIM], r.victim()
        r.c.watch("@releaseDomain", "rel")
        eq(r.c.next_event(), (b"@releaseDomain", b"rel"))
        # The victim names the attacker in a permission list.
        v.write("victim/shared", "s")
        v.set_perms("victim/shared", ["n6", "r5", "r7"])
        # The attacker holds a bit of everything, then dies with a request
        # half sent, a reply half delivered and replies unread.
        a.write("data/big", b"B" * 2000)
        for i in range(3):
            a.watch("data", "t%d" % i)
        tx = a.transaction_start()
        a.write("data/intx", "1", tx_id=tx)
        a.send_bytes(RawClient.packet(XS_READ, b"data/big\0", 100) +
                     b"".join(RawClient.packet(XS_GET_DOMAIN_PATH, b"5\0", 101 + i)
                              for i in range(40)))
        wait_for(lambda: a.rsp_avail() == RING_SIZE, "a full response ring")
        a.send_bytes(RawClient.packet(XS_WRITE, b"data/half\0zzz", 200)[:21])
        r.fx.set_state(ATTACKER, "dying")
        r.fx.virq()
        eq(r.c.next_event(), (b"@releaseDomain", b"rel"), "@releaseDomain")
        eq(r.c.expect_ok(XS_IS_DOMAIN_INTRODUCED, b"5\0"), b"F\0")
        r.c.expect_error(XS_READ, b"/local/domain/5\0", "ENOENT")
        eq(r.c.get_perms("/local/domain/6/victim/shared"), [b"n6", b"r7"],
           "the dead domain's permission entries")
        r.c.expect_error(XS_CONTROL, b"quota\0005\0", "ENOENT")
        victim.rounds(5)

        # Domain 7 dies while it sends requests as fast as it can.
        stop = threading.Event()

        def flood():
            n = 0
            try:
                while not stop.is_set():
                    a2.send_bytes(b"".join(RawClient.packet(XS_WRITE, b"f%d\0v" % (n + k),
                                                            1000 + n + k) for k in range(16)),
                                  timeout=0.5)
                    for _ in range(16):
                        recv_reply(a2, timeout=0.5)
                    n += 16
            except (TimeoutError, XsError):
                pass        # it died under us
            return n

        def attack():
            t = threading.Thread(target=lambda: out.append(flood()), daemon=True)
            t.start()
            time.sleep(0.2)
            r.fx.set_state(ATTACKER2, "dying")
            r.fx.virq()
            time.sleep(0.3)
            stop.set()
            t.join(10)
            return out[0] if out else None

        out = []
        n = victim.during(attack, "domain 7 dying mid-flood")
        check(n is not None and n > 0, "domain 7 flooded (%r requests)" % n)
        eq(r.c.next_event(), (b"@releaseDomain", b"rel"), "@releaseDomain for 7")
        r.c.expect_error(XS_READ, b"/local/domain/7\0", "ENOENT")
        eq(r.c.get_perms("/local/domain/6/victim/shared"), [b"n6"])
        # A new domain 5 inherits nothing.
        a.close()
        a2.close()
        new5 = r.guest(ATTACKER)
        r.introduce_with_home(new5)
        use = r.usage(ATTACKER)
        eq((use["nodes"], use["watches"], use["transactions"]), (1, 0, 0),
           "a new domain 5's usage")
        new5.write("data/x", "1")
        check(new5.no_data_within(0.2), "the old domain's watches fired for the new one")
        eq(new5.directory("data"), [b"x"])
        victim.rounds(3)
        r.check_alive()


# -------------------------------------------------------- 12. request flood

def test_request_flood_without_reading():
    """The attacker pipelines requests and never reads the replies: past
    the outstanding quota (20) the daemon stops reading its ring, without
    spinning, and resumes with nothing lost once the replies are read."""
    total = 5000
    with Rig() as r:
        a, victim = r.g[ATTACKER], r.victim()
        pkt_len = HEADER.size + 2
        data = b"".join(RawClient.packet(XS_GET_DOMAIN_PATH, b"5\0", 50000 + i)
                        for i in range(total))
        sent = 0
        last = time.monotonic()
        while time.monotonic() - last < 0.5:
            k = min(a.req_space(), len(data) - sent)
            if k:
                a.send_bytes(data[sent:sent + k])
                sent += k
                last = time.monotonic()
            else:
                a.wait_notify(0.05)
        consumed = a.req_cons // pkt_len
        diag("sent %d requests, the daemon took %d, %d reply bytes in the ring"
             % (sent // pkt_len, consumed, a.rsp_avail()))
        eq(a.req_space(), 0, "the request ring is full: the daemon stopped reading")
        # Handled: the replies in the response ring and the outstanding
        # ones; taken off the ring but not handled yet: a few rings' worth
        # at most (each resumption of reading takes what the ring holds).
        reply_len = HEADER.size + len(b"/local/domain/5\0")
        handled = RING_SIZE // reply_len + Q_OUTSTANDING
        check(consumed <= handled + 4 * (RING_SIZE // pkt_len),
              "the daemon took %d requests from a guest that reads no reply" % consumed)
        # Stalled, the daemon is idle (no busy loop on the stalled ring).
        cpu0 = cpu_seconds(r.d.pid)
        time.sleep(0.5)
        cpu = cpu_seconds(r.d.pid) - cpu0
        check(cpu < 0.1, "the daemon used %.2f s of CPU in 0.5 s with a stalled ring" % cpu)
        victim.rounds(20)
        eq(a.req_cons // pkt_len, consumed, "the stalled ring was read meanwhile")

        # Now the attacker reads: every reply comes, in order.
        def drain():
            pos = sent
            for i in range(total):
                t, rid, tid, p = a.recv_packet()
                eq((t, rid, p), (XS_GET_DOMAIN_PATH, 50000 + i, b"/local/domain/5\0"),
                   "reply %d" % i)
                if pos < len(data):
                    k = min(a.req_space(), len(data) - pos)
                    if k:
                        a.send_bytes(data[pos:pos + k])
                        pos += k
            return True

        victim.during(drain, "the attacker drains %d replies" % total)
        check(a.no_data_within(0.1), "extra replies")
        a.write("after", "1")
        eq(a.read("after"), b"1")
        r.check_alive()


def test_slow_reader_keeps_request_ring_full():
    """A guest that takes one reply at a time while keeping its request
    ring full.  The outstanding quota lets one more request be handled per
    reply taken; the daemon must not take many more requests off the ring
    than it handles, or they pile up in its memory, outside any quota."""
    cycles = 5000
    with Rig() as r:
        a, victim = r.g[ATTACKER], r.victim()
        pkt = RawClient.packet(XS_GET_DOMAIN_PATH, b"5\0", 7)
        reply_len = HEADER.size + len(b"/local/domain/5\0")
        rss0 = r.rss()

        def attack():
            taken = 0
            for _ in range(cycles):
                k = a.req_space() // len(pkt)
                if k:
                    a.send_bytes(pkt * k)
                deadline = time.monotonic() + 5
                while a.rsp_avail() < reply_len:
                    check(time.monotonic() < deadline, "no reply for 5 s")
                    a.wait_notify(0.01)
                a.rsp_cons = a.rsp_cons + reply_len      # one reply, unparsed
                a.notify()
                taken += 1
            return taken

        taken = victim.during(attack, "%d cycles of one reply taken, ring refilled" % cycles)
        time.sleep(0.2)
        consumed = a.req_cons // len(pkt)
        pending = consumed - taken - (RING_SIZE // reply_len + Q_OUTSTANDING)
        diag("the daemon took %d requests off the ring, the guest read %d replies: "
             "~%d requests (%d bytes) taken but not handled; RSS +%d kB; "
             "memory counted %d" % (consumed, taken, pending, pending * len(pkt),
                                    r.rss() - rss0, r.usage(ATTACKER)["memory"]))
        # The daemon takes at most one whole packet (header + 4096 bytes)
        # from a ring ahead of the requests it has handled.
        check(pending <= (HEADER.size + XENSTORE_PAYLOAD_MAX) // len(pkt) + 1,
              "%d requests (%d bytes) taken off the ring and not handled: they pile "
              "up without bound as long as the guest reads one reply at a time"
              % (pending, pending * len(pkt)))
        r.check_alive()


def test_transaction_read_memory():
    """A transaction records what it reads, values included, and that
    counts as the domain's memory (docs/quotas.md).  Ten transactions
    reading the domain's own ~2 MB of values must not let it hold ten
    times its memory quota."""
    with Rig() as r:
        a, victim = r.g[ATTACKER], r.victim()
        value = b"v" * 1990
        paths = ["m%02d/v%d" % (i // 50, i % 50) for i in range(Q_NODES)]
        replies = guest_pipeline(a, [w(p, value) for p in paths])
        n, err = first_error(replies)
        check(n is None or err in ("ENOSPC", "ENOMEM"), "storing: %s" % err)
        stored = paths[:n] if n is not None else paths
        # Open them all first: TRANSACTION_START checks the memory quota.
        txs = [a.transaction_start() for _ in range(Q_TRANSACTIONS)]
        rss0 = r.rss()

        def attack():
            errors = set()
            for tx in txs:
                for t, rp in guest_pipeline(a, [(XS_READ, p.encode() + b"\0", tx)
                                                for p in stored]):
                    if t == XS_ERROR:
                        errors.add(rp.rstrip(b"\0").decode())
                    else:
                        eq(rp, value, "a read in a transaction")
            return errors

        errors = victim.during(attack, "%d transactions reading %d values each"
                               % (len(txs), len(stored)))
        check(errors <= {"ENOMEM"}, "errors of the reads: %s" % errors)
        use = r.usage(ATTACKER)
        grown = r.rss() - rss0
        diag("%d values stored; after the reads: memory counted %d (quota %d), RSS +%d kB, "
             "read errors %s" % (len(stored), use["memory"], Q_MEMORY, grown, errors or "none"))
        check(use["memory"] <= Q_MEMORY + 64 * 1024,
              "the attacker holds %d bytes, over its memory quota of %d"
              % (use["memory"], Q_MEMORY))
        bound = 24 * 1024 if asan_build() else 8 * 1024
        check(grown < bound, "RSS grew by %d kB" % grown)
        for tx in txs:
            a.transaction_end(tx, commit=False)
        r.check_alive()


if __name__ == "__main__":
    run(globals())
