#!/usr/bin/python3
"""Xenstore's security advisories, one test per advisory (or upstream
fix) that no other file already pins down.

Section 7 of the upstream-behaviour reference lists what a Xenstore daemon
must survive: each row is an XSA, or an upstream commit that fixed a bug of
the same kind.  docs/security.md has the whole table, with the test(s)
covering each row, most of them in the other files (test-attacks.py,
test-quotas.py, test-rings.py, test-domains.py, test-protocol.py,
test-watches.py, test-transactions.py, tests/unit, tests/fuzz).  This file
holds the rest.  Each test is named after its advisory and the behaviour
it checks, and fails if the daemon gets that behaviour wrong: a crash or a
use-after-free (run it on the ASan build: XS_BUILD=build-san), a leak that
grows without bound, a guest that reaches what it must not, or a guest
that keeps another from working.

Most tests play guests over real rings through the Xen test double
(tests/fakexen, driven through fakexen.py and guests.py); the upstream
daemon cannot load it, so with XS_DAEMON=upstream-c those tests are
skipped (they print why and pass) and only the socket tests run.

How "no event" is checked without sleeping: events of one connection
arrive in the order they were generated, and a new watch's initial event
follows its WATCH reply; collect() sets a throw-away watch and returns the
events that arrived before its initial event.  A VIRQ arrives on the
daemon's event channel, not on the socket: settle(g) makes two round trips
over a guest's ring, whose signals queue behind the VIRQ.
"""

import os
import resource
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xstest import *  # noqa: E402,F401,F403
from xstest import HEADER, RawClient, _p, daemon_binary  # noqa: E402
from fakexen import *  # noqa: E402,F401,F403
from guests import *  # noqa: E402,F401,F403
import guests  # noqa: E402

BARRIER = b"/zz-advisories-barrier"   # never written: watched only by collect()
ATTACKER, VICTIM = 5, 6


# ---------------------------------------------------------------- helpers

def no_test_double():
    """True (after a TAP note) in upstream mode, where guests cannot be
    played: the calling test then returns, and passes."""
    if upstream_mode():
        print("# skipped against upstream: needs the Xen test double")
        sys.stdout.flush()
        return True
    return False


class Rig(guests.Rig):
    """guests.Rig with this file's socket client, /tool/alive (for
    check_alive) and the usage of a domain."""

    client_class = EvClient
    alive_node = True
    tmp_prefix = "fxa-"

    def usage(self, domid):
        """CONTROL quota <domid>: {"nodes": n, "watches": n, ...}."""
        out = self.c.expect_ok(XS_CONTROL, args("quota", domid)).rstrip(b"\0").decode()
        got = {}
        for line in out.splitlines()[1:]:
            name, _, value = line.partition(":")
            got[name.strip()] = int(value.strip())
        return got

    def store_check(self):
        """CONTROL check must answer OK: the tree and its counts agree."""
        eq(self.c.expect_ok(XS_CONTROL, b"check\0"), b"OK\0", "CONTROL check")




def try_request(g, type_, payload, tx_id=0):
    """None if the guest's request succeeded, else the error name."""
    t, rp = g.request(type_, payload, tx_id=tx_id)
    if t == XS_ERROR:
        return rp.rstrip(b"\0").decode()
    eq(t, type_, "dom%d %s %s: reply type" % (g.domid, type_name(type_), short(payload)))
    return None








def assert_idle(pid, what, seconds=0.5, limit=0.1):
    """The process uses (almost) no CPU for `seconds`: no livelock."""
    cpu0 = cpu_seconds(pid)
    time.sleep(seconds)
    used = cpu_seconds(pid) - cpu0
    check(used < limit, "%s: the daemon used %.2f s of CPU in %.1f s (livelock?)"
          % (what, used, seconds))


def in_child(fn):
    """Run fn() in a forked process (a guest with a CPU of its own, not
    slowed by this interpreter's lock); returns the pid.  The child never
    returns into the test: it ends with os._exit."""
    pid = os.fork()
    if pid == 0:
        status = 0
        try:
            fn()
        except BaseException:       # noqa: BLE001
            status = 1
        finally:
            os._exit(status)
    return pid


def stop_children(pids):
    """Kill and reap the processes in_child() made."""
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)


# ================================================================ XSA-115

def test_xsa115_guest_watch_sees_only_readable_changes_and_its_loss_of_access():
    """A guest's watch on "/" tells it about nodes it may read (or whose
    parent it may read), about a node it just lost access to (SET_PERMS,
    told once, with the old permissions), and nothing else."""
    if no_test_double():
        return
    with Rig(domids=(5,)) as r:
        c, g = r.c, r.g[5]
        c.write("/pub/open", "o")
        c.set_perms("/pub", ["n0", "r5"])
        c.set_perms("/pub/open", ["n0", "r5"])
        c.write("/secret", "s")                 # n0: dom0 only, parent "/" too
        c.write("/lost", "l")
        c.set_perms("/lost", ["n0", "r5"])
        g.watch("/", "root")
        eq(g.next_event(), (b"/", b"root"), "initial event")

        c.write("/secret", "s2")
        c.mkdir("/secret/below")
        c.set_perms("/secret", ["n0", "r6"])
        c.rm("/secret")
        eq(guest_collect(g, BARRIER), [], "events for changes dom5 may not read")

        c.write("/pub/open", "o2")              # readable node
        c.write("/pub/hidden", "h")              # readable parent
        c.set_perms("/pub/hidden", ["n0"])
        eq(guest_collect(g, BARRIER), [(b"/pub/open", b"root"), (b"/pub/hidden", b"root"),
                              (b"/pub/hidden", b"root")],
           "events for readable nodes and nodes below a readable parent")

        c.set_perms("/lost", ["n0"])            # readable before, not after
        eq(guest_collect(g, BARRIER), [(b"/lost", b"root")], "event of losing access")
        c.write("/lost", "l2")
        c.rm("/lost")
        eq(guest_collect(g, BARRIER), [], "events after losing access (parent / unreadable)")

        # RM: each watch is told once, removal of what it may read only.
        c.write("/pub/tree/a/b", "x")
        g.watch("/pub/tree/a", "a")
        g.watch("/pub/tree/a/b", "b")
        eq(guest_collect(g, BARRIER), [(b"/pub/tree/a/b", b"root"), (b"/pub/tree/a", b"a"),
                              (b"/pub/tree/a/b", b"b")], "setup events")
        c.rm("/pub/tree")
        eq(sorted(guest_collect(g, BARRIER)), sorted([(b"/pub/tree", b"root"), (b"/pub/tree/a", b"a"),
                                             (b"/pub/tree/a/b", b"b")]),
           "RM /pub/tree: one event per watch")
        r.check_alive()


def test_xsa115_rm_tells_each_watch_below_by_its_own_nodes_permissions():
    """A watch below a removed node is told when the guest may read the
    node that was at its path or that node's parent, whatever the removed
    node's own permissions (upstream's delnode_sub): a frontend learns
    that its backend's node is gone when the toolstack removes a
    directory it may not read, and learns nothing of nodes it could not
    read.  The same from a transaction and from a domain's death."""
    if no_test_double():
        return
    with Rig(domids=(5, 6)) as r:
        c, g = r.c, r.g[5]

        def make(top):
            c.write(top + "/5/0/state", "4")          # n0 all the way
            c.set_perms(top + "/5/0", ["n0", "r5"])
            c.set_perms(top + "/5/0/state", ["n0", "r5"])
            c.write(top + "/5/hidden", "h")
            g.watch(top + "/5/0/state", "state")
            g.watch(top + "/5/hidden", "hidden")
            g.watch(top + "/5", "top")
            t = top.encode()
            eq(guest_collect(g, BARRIER), [(t + b"/5/0/state", b"state"),
                                           (t + b"/5/hidden", b"hidden"),
                                           (t + b"/5", b"top")],
               "initial events under " + top)

        make("/be")
        c.rm("/be/5")
        eq(guest_collect(g, BARRIER), [(b"/be/5/0/state", b"state")],
           "RM of a node dom5 may not read: the readable node below is told")

        make("/tx")
        tx = int(c.expect_ok(XS_TRANSACTION_START, b"\0").rstrip(b"\0"))
        c.expect_ack(XS_RM, b"/tx/5\0", tx_id=tx)
        c.expect_ack(XS_TRANSACTION_END, b"T\0", tx_id=tx)
        eq(guest_collect(g, BARRIER), [(b"/tx/5/0/state", b"state")],
           "the same RM committed by a transaction")

        # Nodes owned by a dying domain go as an RM does.
        c.write("/dd/6/x/y", "1")
        c.set_perms("/dd/6", ["n6"])
        c.set_perms("/dd/6/x", ["n6"])
        c.set_perms("/dd/6/x/y", ["n6", "r5"])
        g.watch("/dd/6/x/y", "y")
        g.watch("/dd/6/x", "x")
        eq(guest_collect(g, BARRIER), [(b"/dd/6/x/y", b"y"), (b"/dd/6/x", b"x")],
           "initial events under /dd")
        c.watch_initial("@releaseDomain", "rel")
        r.fx.set_state(6, "dying")
        r.fx.virq()
        deadline = time.monotonic() + 5
        while c.next_event(max(0.1, deadline - time.monotonic()),
                           "@releaseDomain") != ev("@releaseDomain", "rel"):
            pass
        eq(guest_collect(g, BARRIER), [(b"/dd/6/x/y", b"y")],
           "a dead domain's nodes: only the readable one below is told")
        r.store_check()
        r.check_alive()


# ================================================================ XSA-206

def _hammer(g, paths, seconds):
    """Pipelined WRITEs to `paths` in turn, 16 unanswered at a time, as fast
    as this guest's replies come, for `seconds`."""
    batch = b"".join(RawClient.packet(XS_WRITE, _p(paths[k % len(paths)]) + b"%d" % k,
                                      req_id=k + 1) for k in range(16))
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        g.send_bytes(batch)
        for _ in range(16):
            t, _, _, rp = recv_reply(g)
            if t != XS_WRITE:
                raise XsError("hammer: %s %s" % (type_name(t), short(rp)))
        n += 16
    return n


def _victim_transactions(v, shared, seconds, max_tries):
    """Transactions of round trips (read `shared` and the victim's own node,
    write the victim's node, commit), retried on EAGAIN, for `seconds`.
    Returns the number of tries of each; fails once one needs more than
    max_tries."""
    tries_list = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        tries = 0
        while True:
            tries += 1
            check(tries <= max_tries,
                  "dom%d's transaction failed with EAGAIN %d times in a row after %d "
                  "commits (tries of the earlier ones: %s)"
                  % (v.domid, max_tries, len(tries_list), tries_list[-20:]))
            tx = v.transaction_start()
            seen = v.read(shared, tx_id=tx)
            mine = v.read("victim/mine", tx_id=tx)
            v.write("victim/mine", b"%d %s" % (int(mine.split()[0]) + 1, seen), tx_id=tx)
            t, rp = v.request(XS_TRANSACTION_END, b"T\0", tx_id=tx)
            if t == XS_TRANSACTION_END:
                break
            eq(rp, b"EAGAIN\0", "commit error")
        tries_list.append(tries)
    return tries_list


def _xsa206_setup(r):
    """/shared/state: written by dom5 and dom7, read by dom6."""
    c = r.c
    c.write("/shared/state", "0")
    c.set_perms("/shared", ["n0", "r5", "r6", "r7"])
    c.set_perms("/shared/state", ["n0", "b5", "r6", "b7"])
    r.g[VICTIM].write("victim/mine", "0")


def test_xsa206_writes_elsewhere_never_fail_a_transaction():
    """Two guests writing as fast as they can, to their own nodes and a
    shared node the victim's transactions do not touch: every transaction
    of the victim commits at the first try, and stays fast."""
    if no_test_double():
        return
    with Rig(domids=(ATTACKER, VICTIM, 7)) as r:
        _xsa206_setup(r)
        v = r.g[VICTIM]
        v.write("victim/other", "x")
        pids = [in_child(lambda: _hammer(r.g[ATTACKER], ["/shared/state", "mine/a", "mine/b"],
                                         1.5)),
                in_child(lambda: _hammer(r.g[7], ["/shared/state", "own"], 1.5))]
        try:
            time.sleep(0.1)
            t0 = time.monotonic()
            tries = _victim_transactions(v, "victim/other", 1.0, 1)
            dt = time.monotonic() - t0
        finally:
            stop_children(pids)
        diag("%d transactions in %.2f s, all committed at the first try" % (len(tries), dt))
        check(len(tries) >= 20, "only %d transactions of the victim in 1 s" % len(tries))
        eq(int(v.read("victim/mine").split()[0]), len(tries), "commits counted")
        r.check_alive()


def test_xsa206_conflicting_writer_does_not_starve_a_transaction():
    """A guest with write access to a node the victim's transactions read
    rewrites it as fast as it can.  Each conflicting commit rightly fails
    with EAGAIN, but the victim must still get its transactions through
    within a bounded number of retries (upstream's test-xenstore gives up
    after 100): upstream C rate-limits the writes of a domain while
    transactions are open (200/s, domain.c wrl_*), oxenstored stalls the
    domains whose commits keep causing conflicts."""
    if no_test_double():
        return
    with Rig(domids=(ATTACKER, VICTIM, 7)) as r:
        _xsa206_setup(r)
        v = r.g[VICTIM]
        pids = [in_child(lambda: _hammer(r.g[ATTACKER], ["/shared/state"], 2.5))]
        try:
            time.sleep(0.1)
            tries = _victim_transactions(v, "/shared/state", 2.0, 100)
        finally:
            stop_children(pids)
        diag("%d transactions committed, tries: max %d, mean %.1f"
             % (len(tries), max(tries), sum(tries) / float(len(tries))))
        check(len(tries) >= 20, "only %d transactions of the victim in 2 s" % len(tries))
        r.check_alive()


# ================================================================ XSA-233

def test_xsa233_stubdom_and_target_dying_in_any_order_are_freed_once():
    """A device-model stub domain (SET_TARGET) holds a watch and a
    transaction on its target's nodes.  Whether the target dies first, the
    stub first, both in one VIRQ, or dom0 releases them, each is torn down
    once (@releaseDomain once each; ASan: no double free, no use after
    free) and nothing is left naming them."""
    if no_test_double():
        return
    pairs = [(6, 5), (8, 7), (10, 9), (12, 11), (13, 11)]   # (stub, target)
    doms = sorted({d for p in pairs for d in p})
    with Rig(domids=doms) as r:
        c = r.c
        c.watch_initial("@releaseDomain", "rel", depth=1)
        for stub, target in pairs:
            c.expect_ack(XS_SET_TARGET, args(stub, target))
        for target in {t for _, t in pairs}:
            r.g[target].write("data", "t%d" % target)
            r.g[target].watch("data", "own")
            eq(r.g[target].next_event(), (b"data", b"own"))
        for stub, target in pairs:
            s = r.g[stub]
            home = "/local/domain/%d" % target
            eq(s.read(home + "/data"), b"t%d" % target, "stub %d reads its target's node" % stub)
            s.watch(home + "/data", "stubwatch")
            eq(s.next_event(), (home.encode() + b"/data", b"stubwatch"))
            tx = s.transaction_start()
            s.write(home + "/from-stub-%d" % stub, "x", tx_id=tx)
            s.write("mine", "m")

        def died(*domids):
            for d in domids:
                r.fx.set_state(d, "dying")
            r.fx.virq()
            settle(r.g[12])
            got = c.collect()
            eq(sorted(got), sorted(ev("@releaseDomain/%d" % d, "rel") for d in domids),
               "@releaseDomain events for %s" % (domids,))
            for d in domids:
                eq(c.expect_ok(XS_IS_DOMAIN_INTRODUCED, args(d)), b"F\0", "dom%d introduced" % d)
                c.expect_error(XS_READ, _p("/local/domain/%d" % d), "ENOENT")
            r.store_check()

        died(5)             # the target first, then its stub
        died(6)
        died(8)             # the stub first, then its target
        died(7)
        died(9, 10)         # both in one VIRQ
        # Two stubs of one target: dom0 releases the target, then the stubs.
        for d in (11, 12, 13):
            c.expect_ack(XS_RELEASE, args(d))
            eq(c.collect(), [ev("@releaseDomain/%d" % d, "rel")], "RELEASE %d" % d)
        r.store_check()
        for d in doms:
            r.fx.set_state(d, "dying")
        r.fx.virq()
        settle_guest = r.guest(20)
        r.introduce_with_home(settle_guest)
        settle(settle_guest)
        eq(c.collect(), [], "events of a VIRQ after every pair is gone")
        # New domains with the same ids: no stub acts for anyone.
        t, s = r.guest(5, gfn=0x20005), r.guest(6, gfn=0x20006)
        r.introduce_with_home(t)
        r.introduce_with_home(s)
        t.write("data", "new")
        eq(guest_error(s, XS_READ, b"/local/domain/5/data\0"), "EACCES",
           "the new dom6 reads the new dom5's node")
        r.check_alive()


# ============================================================ XSA-322/417

def test_xsa322_acl_kept_for_a_domain_not_yet_introduced():
    """The toolstack names a domain that exists but is not introduced yet
    (it writes the home before INTRODUCE): the entry works once it is."""
    if no_test_double():
        return
    with Rig() as r:
        c = r.c
        g = r.guest(7)                      # exists, running, not introduced
        c.write("/vm7/name", "seven")
        c.set_perms("/vm7", ["n0", "r7"])
        c.set_perms("/vm7/name", ["n0", "r7"])
        r.introduce(g)
        eq(g.read("/vm7/name"), b"seven", "the introduced dom7 reads its node")


def test_xsa322_domid_reused_after_a_domain_never_introduced_inherits_nothing():
    """Domain 7 exists, the toolstack names it in ACLs and makes it own a
    node, then domain 7 dies before ever being introduced (a failed domain
    creation).  A new domain 7 must inherit neither the ACL nor the node:
    upstream records when each domain was created and ignores entries for
    domains younger than the node (XSA-322), for introduced domains or not."""
    if no_test_double():
        return
    with Rig() as r:
        c = r.c
        r.guest(7)                          # exists, never introduced
        c.write("/vm7/name", "old")
        c.set_perms("/vm7", ["n0", "r7"])
        c.set_perms("/vm7/name", ["n0", "r7"])
        c.write("/owned7", "old")
        c.set_perms("/owned7", ["n7"])
        r.fx.set_state(7, "dying")
        r.fx.virq()
        r.fx.set_state(7, None)             # gone from the hypervisor
        r.fx.virq()
        probe = r.guest(20)
        r.introduce_with_home(probe)
        settle(probe)
        new7 = r.guest(7, gfn=0x20007)      # a new domain, same id
        r.introduce_with_home(new7)
        err_read = try_request(new7, XS_READ, b"/vm7/name\0")
        err_write = try_request(new7, XS_WRITE, b"/owned7\0mine")
        eq((err_read, err_write), ("EACCES", "EACCES"),
           "the new dom7 reading /vm7/name (ACL r7 for the dead dom7) and writing "
           "/owned7 (owned by the dead dom7)")


def test_xsa322_acl_for_a_domain_that_does_not_exist_is_ignored():
    """An ACL entry naming a domain that does not exist (a stale
    configuration) must not grant anything to a domain created later with
    that id: upstream flags such entries as ignored at SET_PERMS."""
    if no_test_double():
        return
    with Rig() as r:
        c = r.c
        eq(r.fx.state(9), None, "domain 9 does not exist")
        c.write("/stale/secret", "s")
        c.set_perms("/stale", ["n0", "r9"])
        c.set_perms("/stale/secret", ["n0", "r9"])
        g = r.guest(9)                      # created after the ACL was set
        r.introduce_with_home(g)
        eq(try_request(g, XS_READ, b"/stale/secret\0"), "EACCES",
           "dom9, created after an ACL named a domain 9 that did not exist, reads the node")


# ================================================================ XSA-324

def test_xsa324_huge_watch_token_event_is_dropped_not_crashing(d):
    """A watch whose token fills the request: its initial event fits (it is
    the request's own payload), events for longer paths would pass 4096
    bytes and are dropped, with the connection kept and every other watcher
    served.  Runs against upstream too."""
    c, other = EvClient(d.socket_path), EvClient(d.socket_path)
    token = b"T" * 4090                      # "/w/a\0" + token + "\0" = 4096 bytes
    c.write("/w", "")
    c.watch_initial("/w", token)
    other.watch_initial("/w", "short")
    c.write("/w/a", "fits")                 # event of exactly 4096 bytes
    c.write("/w/ab", "too long")            # 4097 bytes: dropped
    c.write("/w/" + "x" * 2000, "far too long")
    c.write("/w", "again")                   # 4094 bytes
    eq(c.collect(), [(b"/w/a", token), (b"/w", token)],
       "events of the huge-token watch (the 4097- and 6100-byte ones dropped)")
    eq(other.collect(), [(b"/w/a", b"short"), (b"/w/ab", b"short"),
                         (b"/w/" + b"x" * 2000, b"short"), (b"/w", b"short")],
       "events of another watcher of /w")
    # A removal fires the huge-token watch for its own path: it fits.
    c.rm("/w/" + "x" * 2000)
    c.rm("/w")
    eq(c.collect(), [(b"/w", token)], "events of the RMs")
    eq(c.read("/tool"), b"", "the connection still works")
    # Many of them on many connections, all writes firing each.
    clients = []
    for i in range(10):
        k = EvClient(d.socket_path)
        k.watch_initial("/", b"%d" % i + token[:4093 - 1])
        clients.append(k)
    for i in range(50):
        other.write("/many/" + "y" * (100 + i), "v")
    for k in clients:
        eq(k.collect(), [], "events that could not fit")
        k.close()
    other.write("/alive", "yes")
    eq(c.read("/alive"), b"yes")


def test_xsa324_guest_watch_whose_event_exceeds_4096_bytes_is_dropped():
    """The same over a ring, relative watch included: dropped events cost
    the guest nothing, and it keeps being served."""
    if no_test_double():
        return
    with Rig(domids=(5,)) as r:
        g, c = r.g[5], r.c
        token = b"G" * 4000
        g.write("data", "")
        g.watch("data", token)               # relative: events are "data/..."
        eq(g.next_event(), (b"data", token))
        c.write("/local/domain/5/data/" + "z" * 80, "fits")
        c.write("/local/domain/5/data/" + "z" * 120, "dropped")
        g.write("data/x", "fits")
        eq(guest_collect(g, BARRIER), [(b"data/" + b"z" * 80, token), (b"data/x", token)],
           "events of the guest's huge-token watch")
        eq(r.usage(5)["watches"], 1, "the watch is still there")
        g.unwatch("data", token)
        r.check_alive()


# ================================================================ XSA-325

def test_xsa325_broken_ring_is_ignored_not_freed_so_release_domain_fires():
    """Guests that break the ring protocol (impossible indices, an oversized
    packet) stop being served but stay known: when they shut down, die or
    are released, @releaseDomain fires and their nodes are cleaned up."""
    if no_test_double():
        return
    with Rig(domids=(5, 6, 7, 8)) as r:
        c = r.c
        for d in (5, 6, 7, 8):
            r.g[d].write("data", "x")
        c.watch_initial("@releaseDomain", "rel", depth=1)
        bad_idx, bad_len, released, shutdown = (r.g[d] for d in (5, 6, 7, 8))
        bad_idx.req_prod = bad_idx.req_cons + RING_SIZE + 1
        bad_idx.notify()
        wait_error(bad_idx, XENSTORE_ERROR_RINGIDX)
        for g in (bad_len, released, shutdown):
            g.send_bytes(HEADER.pack(XS_WRITE, 1, 0, XENSTORE_PAYLOAD_MAX + 1))
            wait_error(g, XENSTORE_ERROR_PROTO)
        for d in (5, 6, 7, 8):
            eq(c.expect_ok(XS_IS_DOMAIN_INTRODUCED, args(d)), b"T\0",
               "dom%d in error is still known" % d)
        eq(c.collect(), [], "events of the errors")

        r.fx.set_state(8, "shutdown")
        r.fx.virq()
        eq(c.next_event(what="@releaseDomain/8"), ev("@releaseDomain/8", "rel"),
           "shutdown of a guest in error")
        c.expect_ack(XS_RELEASE, b"7\0")
        eq(c.collect(), [ev("@releaseDomain/7", "rel")], "RELEASE of a guest in error")
        r.fx.set_state(5, "dying")
        r.fx.set_state(6, "dying")
        r.fx.virq()
        got = [c.next_event(what="@releaseDomain of the dead") for _ in range(2)]
        eq(sorted(got), [ev("@releaseDomain/5", "rel"), ev("@releaseDomain/6", "rel")],
           "deaths of guests in error")
        for d in (5, 6, 7):
            eq(c.expect_ok(XS_IS_DOMAIN_INTRODUCED, args(d)), b"F\0", "dom%d introduced" % d)
            c.expect_error(XS_READ, _p("/local/domain/%d/data" % d), "ENOENT")
        r.store_check()
        r.check_alive()


# ============================================================ XSA-330/352/353

def test_xsa330_reset_watches_frees_everything_every_time():
    """RESET_WATCHES drops the guest's watches and transactions and gives
    back every byte they held, however often it is repeated."""
    if no_test_double():
        return
    # Under ASan the database's per-commit buffers, freed at once, sit in
    # the sanitizer's quarantine (hundreds of MB): what this test bounds
    # is what the daemon keeps, so that build runs without a database.
    with Rig(["--no-database"] if asan_build() else [], domids=(5,)) as r:
        g = r.g[5]
        for i in range(5):
            g.write("n%d" % i, "v" * 100)
        base = r.usage(5)
        rss0 = rss_kb(r.d.pid)
        token = b"t" * 1000
        for rnd in range(30):
            batch = [(XS_WATCH, b"w%d\0%s%d\0" % (i, token, rnd)) for i in range(60)]
            for k in range(0, len(batch), 15):   # within the unread-replies quota
                g.send_bytes(b"".join(RawClient.packet(t, p, req_id=k + i + 1)
                                      for i, (t, p) in enumerate(batch[k:k + 15])))
                for _ in batch[k:k + 15]:
                    t, _, _, rp = recv_reply(g)
                    eq(t, XS_WATCH, "WATCH reply (%s)" % short(rp))
            for _ in range(10):
                tx = g.transaction_start()
                for i in range(5):
                    g.read("n%d" % i, tx_id=tx)
                g.write("n0", "w" * 500, tx_id=tx)
            g.expect_ack(XS_RESET_WATCHES, b"")
            g.events = []               # the initial events, set aside
            use = r.usage(5)
            eq((use["watches"], use["transactions"], use["memory"]),
               (0, 0, base["memory"]), "watches, transactions, memory after round %d" % rnd)
        rss1 = rss_kb(r.d.pid)
        bound = 24 * 1024 if asan_build() else 3 * 1024
        diag("RSS %d -> %d kB over 30 rounds of 60 watches and 10 transactions"
             % (rss0, rss1))
        check(rss1 - rss0 < bound, "RSS grew by %d kB" % (rss1 - rss0))
        r.check_alive()


def test_xsa352_353_guest_cannot_change_owners_or_touch_the_root():
    """Only the privileged change a node's owner (XSA-352); "/" is checked
    like any node, so a guest may not remove, write or re-permission it
    (XSA-353)."""
    if no_test_double():
        return
    with Rig(domids=(5, 6)) as r:
        c, g = r.c, r.g[5]
        g.write("mine", "m")
        eq(guest_error(g, XS_SET_PERMS, args("mine", "n6")), "EPERM", "give a node to dom6")
        eq(guest_error(g, XS_SET_PERMS, args("mine", "n0", "b5")), "EPERM", "give it to dom0")
        tx = g.transaction_start()
        eq(guest_error(g, XS_SET_PERMS, args("mine", "n6"), tx_id=tx), "EPERM",
           "give it away in a transaction")
        g.transaction_end(tx)
        eq(c.get_perms("/local/domain/5/mine")[0], b"n5", "owner of mine")
        c.write("/dom0node", "d")
        c.set_perms("/dom0node", ["n0", "b5"])
        eq(guest_error(g, XS_SET_PERMS, args("/dom0node", "n5")), "EACCES",
           "take a dom0 node it may write")
        before = c.directory("/")
        for t, payload in ((XS_RM, b"/\0"), (XS_WRITE, b"/\0x"),
                           (XS_SET_PERMS, args("/", "b5")), (XS_RM, b"/local\0"),
                           (XS_RM, b"/tool\0"), (XS_SET_PERMS, args("/", "n5"))):
            err = guest_error(g, t, payload)
            check(err in ("EACCES", "EINVAL", "EPERM"),
                  "dom5 %s %s: %s" % (type_name(t), short(payload), err))
        eq(c.directory("/"), before, "children of / after the guest's attempts")
        eq(c.get_perms("/"), [b"n0"], "perms of /")
        eq(c.read("/"), b"", "value of /")
        r.check_alive()


# ================================================================ XSA-416

def test_xsa416_unread_replies_hold_no_request_memory():
    """A guest sends thousands of big requests and never reads a reply
    (its unread-replies quota lifted, so the daemon keeps reading): what a
    request needs while it is handled must be freed when it is handled, not
    when its reply is consumed, so the daemon's memory stays flat."""
    if no_test_double():
        return
    n, size = 4000, 2000           # 2000 bytes: within node-size
    with Rig(["-Q", "outstanding=0"], domids=(5, 6)) as r:
        g, h = r.g[5], r.g[6]
        g.write("big", "")
        rss0 = rss_kb(r.d.pid)
        value = lambda i: b"%06d" % i + b"v" * (size - 6)     # noqa: E731
        data = b"".join(RawClient.packet(XS_WRITE, b"big\0" + value(i), req_id=i + 1)
                        for i in range(n))
        g.send_bytes(data, timeout=10)
        wait_for(lambda: g.req_cons == g.req_prod, "the last request taken")
        wait_for(lambda: r.c.read("/local/domain/5/big") == value(n - 1),
                 "the last request handled")
        eq(h.read("/tool/alive"), b"yes", "another guest is served")
        grown = rss_kb(r.d.pid) - rss0
        diag("%d requests of %d bytes (%.1f MB) left unanswered: RSS +%d kB; "
             "%d reply bytes in the ring" % (n, size, n * size / 1e6, grown, g.rsp_avail()))
        if not asan_build():
            check(grown < 4 * 1024, "RSS grew by %d kB for %d unread replies of 19 bytes"
                  % (grown, n))
        for i in range(n):
            t, rid, _, rp = g.recv_packet()
            eq((t, rid, rp), (XS_WRITE, i + 1, b"OK\0"), "reply %d" % i)
        check(g.no_data_within(0.05), "extra replies")
        r.check_alive()


# ============================================================ XSA-418

def _limit_stack(pid, kb=512):
    """Lower the daemon's stack limit: recursion over a tree 1000+ levels
    deep with anything but tiny frames would now overflow it."""
    soft, hard = resource.prlimit(pid, resource.RLIMIT_STACK)
    want = kb * 1024
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    resource.prlimit(pid, resource.RLIMIT_STACK, (want, hard))


DEEP = "a/" * 1023 + "a"                # 2047 bytes, 1024 levels: a guest's deepest
DEEP0 = "/d" + "/a" * 1535               # 3072 bytes, 1536 levels: dom0's deepest
XSA418_QUOTAS = ["-Q", "nodes=0", "-Q", "memory=0", "-Q", "transaction-nodes=0"]


class Steps:
    """Names the step a test is at, so that a daemon that dies is reported
    with what killed it rather than as a timeout."""

    def __init__(self, r):
        self.r = r
        self.what = "start"

    def __call__(self, what):
        self.what = what

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not self.r.d.alive():
            raise AssertionError("the daemon died (%s) at: %s"
                                 % (self.r.d.proc.poll() if self.r.d.proc else "?", self.what))
        return False


def test_xsa418_thousand_level_trees_without_recursion():
    """Trees 1024 levels deep (a guest, within path-max) and 1536 levels
    (dom0, within 3072 bytes), with the daemon's stack cut to 512 KiB, over
    50 times what handling a request takes without recursion: created in
    one WRITE, listed, watched, checked (CONTROL check, memreport), removed
    by RM, and removed with the guest that owns them when it dies."""
    if no_test_double():
        return
    # Depth, not quotas, is the point: nodes and memory are lifted so that
    # a guest may own three such trees.
    with Rig(XSA418_QUOTAS, domids=(5, 6)) as r, Steps(r) as step:
        c, g = r.c, r.g[5]
        _limit_stack(r.d.pid)
        step("a guest's WRITE of a 1024-level path")
        g.write(DEEP, "bottom")
        eq(g.read(DEEP), b"bottom", "the deepest node")
        eq(g.directory(DEEP[:-2]), [b"a"], "DIRECTORY one level up")
        eq(g.get_perms(DEEP), [b"n5"], "GET_PERMS at the bottom")
        step("CONTROL check and memreport over 1024 levels")
        r.store_check()
        check(b"nodes" in c.expect_ok(XS_CONTROL, b"memreport\0"), "memreport")
        step("dom0's WRITE of a 1536-level path")
        c.write(DEEP0, "x")
        c.watch_initial("/d", "top")
        c.watch_initial(DEEP0, "bottom")
        r.store_check()
        step("dom0's RM of a 1536-level tree")
        c.rm("/d")
        eq(sorted(c.collect()), sorted([ev("/d", "top"), ev(DEEP0, "bottom")]),
           "events of the RM of dom0's deep tree")
        step("a guest's RM of its 1024-level tree")
        g.rm("a")
        eq(g.directory("/local/domain/5"), [], "dom5's home after its RM")
        r.store_check()
        # The guest's trees, in its home and outside it, go when it dies.
        step("a guest building three deep trees")
        c.mkdir("/g5")
        c.set_perms("/g5", ["n5"])
        outside = "/g5/" + "c/" * 1020 + "c"        # 2045 bytes, 1022 levels
        g.write(outside, "outside")
        g.write(DEEP, "again")
        g.write("t/" + "b/" * 1021 + "b", "third")
        c.watch_initial(outside, "g5bottom")
        c.watch_initial("/local/domain/5", "home")
        eq(r.usage(5)["nodes"], 1 + (1 + 1021) + 1024 + 1023, "nodes of dom5's trees")
        step("the death of the owner of three deep trees")
        r.fx.set_state(5, "dying")
        r.fx.virq()
        settle(r.g[6])
        eq(sorted(c.collect()), sorted([ev(outside, "g5bottom"),
                                        ev("/local/domain/5", "home")]),
           "events of the death of the deep trees' owner")
        c.expect_error(XS_READ, b"/g5\0", "ENOENT")
        c.expect_error(XS_READ, b"/local/domain/5\0", "ENOENT")
        r.store_check()
        eq(r.g[6].read("/tool/alive"), b"yes")
        r.check_alive()


def test_xsa418_thousand_level_trees_in_transactions_without_recursion():
    """The same depths inside transactions, with the daemon's stack cut to
    512 KiB: a guest creates a 1023-level tree and removes a 1024-level one
    in one transaction; dom0 removes a 1536-level tree and creates another
    in one transaction."""
    if no_test_double():
        return
    with Rig(XSA418_QUOTAS, domids=(5, 6)) as r, Steps(r) as step:
        c, g = r.c, r.g[5]
        g.write(DEEP, "bottom")
        c.write(DEEP0, "x")
        c.watch_initial("/d", "top")
        _limit_stack(r.d.pid)
        tx = g.transaction_start()
        step("a guest's WRITE of a 1023-level path in a transaction")
        g.write("t/" + "b/" * 1021 + "b", "in-tx", tx_id=tx)
        step("a guest's RM of a 1024-level tree in a transaction")
        g.rm("a", tx_id=tx)
        step("the commit of a guest's deep transaction")
        g.transaction_end(tx)
        eq(g.read("t/" + "b/" * 1021 + "b"), b"in-tx", "the tree made in a transaction")
        eq(guest_error(g, XS_READ, _p(DEEP)), "ENOENT", "the tree removed in a transaction")
        tx = int(c.expect_ok(XS_TRANSACTION_START, b"\0").rstrip(b"\0"))
        step("dom0's RM of a 1536-level tree in a transaction")
        c.expect_ack(XS_RM, b"/d\0", tx_id=tx)
        step("dom0's WRITE of a 1536-level path in a transaction")
        c.expect_ack(XS_WRITE, _p("/e" + "/f" * 1535) + b"y", tx_id=tx)
        step("the commit of dom0's deep transaction")
        c.expect_ack(XS_TRANSACTION_END, b"T\0", tx_id=tx)
        eq(c.collect(), [ev("/d", "top")], "events of dom0's deep transaction")
        step("CONTROL check after the deep transactions")
        r.store_check()
        r.check_alive()


# ================================================================ XSA-420

BAD_LENGTHS = (XENSTORE_PAYLOAD_MAX + 1, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0,
               0xFFFFFFFF)


def test_xsa420_negative_or_huge_length_closes_the_socket_without_livelock(d):
    """Lengths that are negative as a signed 32-bit number, or huge: the
    connection is closed at once, the daemon does not spin, everyone else
    is served.  Runs against upstream too."""
    ok = EvClient(d.socket_path)
    ok.write("/before", "1")
    for length in BAD_LENGTHS:
        for tail in (b"", b"x" * 100):
            bad = RawClient(d.socket_path)
            bad.send_raw(HEADER.pack(XS_WRITE, 7, 0, length) + tail)
            check(bad.is_closed(3), "a header with length %#x: connection not closed" % length)
            bad.close()
    assert_idle(d.pid, "after %d bad headers" % (2 * len(BAD_LENGTHS)))
    eq(ok.read("/before"), b"1", "another connection")
    ok.write("/after", "2")


def test_xsa420_negative_or_huge_length_on_a_ring_is_proto_without_livelock():
    if no_test_double():
        return
    with Rig(domids=(5, 6)) as r:
        g, v = r.g[5], r.g[6]
        for length in BAD_LENGTHS:
            g.send_bytes(RawClient.packet(XS_READ, b"/tool/alive\0", 1) +
                         HEADER.pack(XS_WRITE, 2, 0, length) + b"z" * 50)
            wait_error(g, XENSTORE_ERROR_PROTO)
            assert_idle(r.d.pid, "a ring in error after a length of %#x" % length, 0.3)
            eq(v.read("/tool/alive"), b"yes", "another guest")
            g.reconnect()
            eq(g.read("/tool/alive"), b"yes", "served again after reconnecting")
        r.check_alive()


# ================================================================ XSA-425

def test_xsa425_connections_freed_mid_io_by_release_introduce_and_kexec():
    """Connections freed while they have I/O in flight: guests with
    pipelined requests and unread replies are released, re-introduced (a
    fresh connection) by one batch of dom0's requests and by a privileged
    guest, which also re-introduces itself in the middle of its own batch;
    then many guests reconnect (kexec) at once with requests in flight.
    Under ASan any use of a freed connection is fatal."""
    if no_test_double():
        return
    flooders = (5, 6, 7, 8)
    with Rig(["--priv-domid", "4"], domids=(4,) + flooders) as r:
        c, p = r.c, r.g[4]

        def pipeline(g, k=12):
            g.send_bytes(b"".join(RawClient.packet(XS_WRITE, b"f%d\0%s" % (i, b"v" * 20),
                                                   req_id=100 + i) for i in range(k)))

        def resync(g):
            """The connection was replaced: what the guest still had to read
            went with it."""
            g._rx = bytearray()
            g.events = []

        # dom0 re-introduces every flooder in one batch, 10 times over.
        for rnd in range(10):
            for d in flooders:
                pipeline(r.g[d])
            c.send_raw(b"".join(RawClient.packet(XS_INTRODUCE, r.fx.introduce_args(r.g[d]),
                                                 req_id=1000 + d) for d in flooders))
            for d in flooders:
                eq(c.recv_packet(), (XS_INTRODUCE, 1000 + d, 0, b"OK\0"), "INTRODUCE %d" % d)
            for d in flooders:
                resync(r.g[d])
                eq(r.g[d].read("/tool/alive"), b"yes", "dom%d after round %d" % (d, rnd))
        # The privileged guest: RELEASE 5, INTRODUCE 6, RELEASE 7 and
        # INTRODUCE of itself, in one ring update, while 5..8 have requests
        # in flight.
        for d in flooders:
            pipeline(r.g[d])
        p.send_bytes(RawClient.packet(XS_RELEASE, b"5\0", 1) +
                     RawClient.packet(XS_INTRODUCE, r.fx.introduce_args(r.g[6]), 2) +
                     RawClient.packet(XS_RELEASE, b"7\0", 3) +
                     RawClient.packet(XS_INTRODUCE, r.fx.introduce_args(p), 4) +
                     RawClient.packet(XS_GET_DOMAIN_PATH, b"4\0", 5))
        wait_for(lambda: p.req_prod == 0 and p.req_cons == 0,
                 "the privileged guest's ring reset by its own INTRODUCE")
        resync(p)
        eq(p.get_domain_path(4), b"/local/domain/4", "dom4 served after re-introducing itself")
        for d, known in ((5, b"F\0"), (6, b"T\0"), (7, b"F\0"), (8, b"T\0")):
            eq(p.expect_ok(XS_IS_DOMAIN_INTRODUCED, args(d)), known, "dom%d introduced" % d)
        resync(r.g[6])
        eq(r.g[6].read("/tool/alive"), b"yes", "dom6 after its INTRODUCE")
        for i in range(12):
            eq(recv_reply(r.g[8]), (XS_WRITE, 100 + i, 0, b"OK\0"), "dom8's reply %d" % i)
        # kexec: the remaining guests reconnect at once, requests in flight.
        r.introduce(r.g[5])
        r.introduce(r.g[7])
        for rnd in range(20):
            for d in flooders:
                pipeline(r.g[d], 8)
            for d in flooders:
                r.g[d].connection = XENSTORE_RECONNECT
                r.g[d].notify()
            for d in flooders:
                g = r.g[d]
                wait_for(lambda: g.connection == XENSTORE_CONNECTED,
                         "dom%d reconnected in round %d" % (d, rnd))
                resync(g)
        for d in flooders:
            eq(r.g[d].read("/tool/alive"), b"yes", "dom%d after the reconnections" % d)
            eq(r.usage(d)["transactions"], 0)
        r.store_check()
        r.check_alive()


# ================================================================ XSA-481

EDGE_PATHS = [b"", b"/", b"//", b"///", b"/local/domain/", b"/local/domain//",
              b"/local/domain//5", b"/local/domain/5/", b"/local/domain/5//x",
              b"/local//domain/5", b"x/", b"x//y", b"/x/", b"//x", b"/local/domain/5/x/",
              b"/local/domain/" + b"9" * 40 + b"/", b"./x", b"/local/domain/-1/"]
INVALID_FOR_GUESTS = set(EDGE_PATHS) - {b"/"}


def _edge_payload(op, path):
    if op == XS_WRITE:
        return path + b"\0value"
    if op == XS_SET_PERMS:
        return path + b"\0n5\0"
    if op == XS_DIRECTORY_PART:
        return path + b"\x000\0"
    if op in (XS_WATCH, XS_UNWATCH):
        return path + b"\0tok\0"
    return path + b"\0"


def test_xsa481_guest_edge_paths_are_einval_never_a_crash():
    """Every path operation of a guest with "/local/domain/", its own home
    with a trailing slash, "//", an empty relative path (the home plus
    "/"), ...: EINVAL, in and out of a transaction, and the daemon
    serves on."""
    if no_test_double():
        return
    ops = (XS_READ, XS_WRITE, XS_MKDIR, XS_RM, XS_DIRECTORY, XS_DIRECTORY_PART,
           XS_GET_PERMS, XS_SET_PERMS, XS_WATCH, XS_UNWATCH)
    with Rig(domids=(5,)) as r:
        g, c = r.g[5], r.c
        g.write("x", "1")
        before = c.directory("/local/domain/5")
        tx = g.transaction_start()
        for tx_id in (0, tx):
            for path in EDGE_PATHS:
                for op in ops:
                    if tx_id and op in (XS_WATCH, XS_UNWATCH):
                        continue
                    t, rp = g.request(op, _edge_payload(op, path), tx_id=tx_id)
                    what = "dom5 %s %s (tx %d)" % (type_name(op), short(path), tx_id)
                    if path in INVALID_FOR_GUESTS:
                        # UNWATCH: no watch has such a path (4.17's ENOENT)
                        eq((t, rp), (XS_ERROR, b"ENOENT\0" if op == XS_UNWATCH
                                     else b"EINVAL\0"), what)
                    else:
                        check(t in (op, XS_ERROR), "%s: %s" % (what, type_name(t)))
        g.transaction_end(tx)
        eq(c.directory("/local/domain/5"), before, "dom5's home after the edge paths")
        eq(r.usage(5)["watches"], 0, "watches made by the edge paths")
        r.store_check()
        r.check_alive()


# ================================================================ XSA-484

def test_xsa484_reset_watches_with_a_live_tx_id_and_ring_errors_mid_transaction():
    """RESET_WATCHES sent with the id of an open transaction ends it (and
    the requests pipelined after it, with that id, answer ENOENT: nothing
    uses the freed transaction); a ring error (oversized packet, impossible
    indices) in the middle of a transaction's requests drops it
    uncommitted."""
    if no_test_double():
        return
    with Rig(domids=(5,)) as r:
        g, c = r.g[5], r.c
        g.write("x", "0")
        g.watch("x", "w")
        eq(g.next_event(), (b"x", b"w"))
        tx = g.transaction_start()
        g.send_bytes(RawClient.packet(XS_WRITE, b"x\0in-tx", 1, tx) +
                     RawClient.packet(XS_RESET_WATCHES, b"", 2, tx) +
                     RawClient.packet(XS_WRITE, b"x\0after", 3, tx) +
                     RawClient.packet(XS_READ, b"x\0", 4, tx) +
                     RawClient.packet(XS_TRANSACTION_END, b"T\0", 5, tx) +
                     RawClient.packet(XS_READ, b"x\0", 6))
        eq([recv_reply(g) for _ in range(6)],
           [(XS_WRITE, 1, tx, b"OK\0"), (XS_RESET_WATCHES, 2, tx, b"OK\0"),
            (XS_ERROR, 3, tx, b"ENOENT\0"), (XS_ERROR, 4, tx, b"ENOENT\0"),
            (XS_ERROR, 5, tx, b"ENOENT\0"), (XS_READ, 6, 0, b"0")],
           "replies around a RESET_WATCHES sent with the transaction's id")
        eq(guest_collect(g, BARRIER), [], "events after RESET_WATCHES")
        use = r.usage(5)
        eq((use["watches"], use["transactions"]), (0, 0), "watches and transactions")

        # An oversized packet after a transaction's writes and its commit.
        tx = g.transaction_start()
        g.send_bytes(RawClient.packet(XS_WRITE, b"x\0lost", 1, tx) +
                     RawClient.packet(XS_WRITE, b"y\0lost", 2, tx) +
                     HEADER.pack(XS_TRANSACTION_END, 3, tx, XENSTORE_PAYLOAD_MAX + 1))
        wait_error(g, XENSTORE_ERROR_PROTO)
        g.reconnect()
        eq(g.read("x"), b"0", "x after the transaction ended by a protocol error")
        eq(guest_error(g, XS_READ, b"y\0"), "ENOENT", "y")
        eq(guest_error(g, XS_READ, b"x\0", tx_id=tx), "ENOENT", "the dropped transaction")
        # Impossible indices with a transaction's commit in the ring.
        tx = g.transaction_start()
        g.write("x", "lost too", tx_id=tx)
        pkt = RawClient.packet(XS_TRANSACTION_END, b"T\0", 9, tx)
        for i, byte in enumerate(pkt):      # in the ring, but never published
            g.page[(g.req_prod + i) % RING_SIZE] = byte
        g.req_prod = g.req_cons + RING_SIZE + 1
        g.notify()
        wait_error(g, XENSTORE_ERROR_RINGIDX)
        g.reconnect()
        eq(g.read("x"), b"0", "x after the transaction ended by impossible indices")
        eq(r.usage(5)["transactions"], 0, "transactions after the errors")
        eq(c.read("/local/domain/5/x"), b"0")
        r.store_check()
        r.check_alive()


# ============================================================ @specials

def test_cef523b4a7_3e43914aa8_guest_special_watches_are_matched_as_given():
    """A guest's watches on @introduceDomain and @releaseDomain are gated
    by the special nodes' permissions (XSA-115), fire with the name as
    given (never prefixed with the guest's home nor stripped), and UNWATCH
    finds them by that name."""
    if no_test_double():
        return
    with Rig(domids=(5, 6)) as r:
        c, g = r.c, r.g[5]
        g.watch("@introduceDomain", "in")
        g.watch("@releaseDomain", "out")
        g.expect_ack(XS_WATCH, b"@releaseDomain\0one\x001\0")
        g.watch("@releaseDomain/7", "seven")
        g.watch("rel", "relative")             # a relative watch beside them
        eq(sorted(guest_collect(g, BARRIER)), sorted([(b"@introduceDomain", b"in"),
                                             (b"@releaseDomain", b"out"),
                                             (b"@releaseDomain", b"one"),
                                             (b"@releaseDomain/7", b"seven"),
                                             (b"rel", b"relative")]),
           "initial events")
        h = r.guest(7)
        r.introduce_with_home(h)
        c.expect_ack(XS_RELEASE, b"7\0")
        eq(guest_collect(g, BARRIER), [], "special events before dom0 granted them")
        c.set_perms("@introduceDomain", ["n0", "r5"])
        c.set_perms("@releaseDomain", ["n0", "r5"])
        h = r.guest(7, gfn=0x20007)
        r.introduce_with_home(h)
        eq(guest_collect(g, BARRIER), [(b"@introduceDomain", b"in")], "INTRODUCE 7")
        r.fx.set_state(7, "dying")
        r.fx.virq()
        settle(r.g[6])
        eq(sorted(guest_collect(g, BARRIER)), sorted([(b"@releaseDomain", b"out"),
                                             (b"@releaseDomain/7", b"one"),
                                             (b"@releaseDomain/7", b"seven")]),
           "death of dom7")
        for path, tok in ((b"@introduceDomain", b"in"), (b"@releaseDomain", b"out"),
                          (b"@releaseDomain", b"one"), (b"@releaseDomain/7", b"seven")):
            g.unwatch(path, tok)
            eq(guest_error(g, XS_UNWATCH, path + b"\0" + tok + b"\0"), "ENOENT",
               "second UNWATCH %s" % path.decode())
        eq(guest_error(g, XS_UNWATCH, b"introduceDomain\0in\0"), "ENOENT",
           "UNWATCH of the name without @")
        eq(r.usage(5)["watches"], 1, "watches left (the relative one)")
        r.check_alive()


# ============================================================== f6b801c36b

def test_f6b801c36b_commit_quota_only_for_unprivileged_transactions_that_create():
    """At commit the nodes quota is checked again only for an unprivileged
    caller whose transaction adds nodes: a guest over its quota may still
    commit changes and removals; dom0 and the privileged domain (a guest,
    3047df38e1: privilege comes from the domain, not a domid of 0) may
    create nodes owned by the guest beyond its quota."""
    if no_test_double():
        return
    with Rig(["-Q", "nodes=5", "--priv-domid", "4"], domids=(4, 5)) as r:
        c, p, g = r.c, r.g[4], r.g[5]
        for i in range(4):
            g.write("n%d" % i, "v")         # with its home: 5 nodes
        eq(r.usage(5)["nodes"], 5, "dom5 at its quota")
        c.write("/local/domain/5/gift", "g")
        c.set_perms("/local/domain/5/gift", ["n5"])
        eq(r.usage(5)["nodes"], 6, "dom5 over its quota")
        tx = g.transaction_start()
        g.write("n0", "changed", tx_id=tx)
        g.set_perms("n1", ["n5", "r4"], tx_id=tx)
        g.rm("n2", tx_id=tx)
        g.transaction_end(tx)
        eq(c.read("/local/domain/5/n0"), b"changed", "a commit without creations, over quota")
        eq(r.usage(5)["nodes"], 5, "nodes after it")
        for who in (c, p):
            if who is c:
                tx = int(c.expect_ok(XS_TRANSACTION_START, b"\0").rstrip(b"\0"))
                for i in range(10):
                    c.expect_ack(XS_WRITE, b"/local/domain/5/by0-%d\0x" % i, tx_id=tx)
                c.expect_ack(XS_TRANSACTION_END, b"T\0", tx_id=tx)
            else:
                tx = p.transaction_start()
                for i in range(10):
                    p.write("/local/domain/5/by4-%d" % i, "x", tx_id=tx)
                p.transaction_end(tx)
        eq(r.usage(5)["nodes"], 25, "dom5's nodes made by dom0 and dom4 in transactions")
        eq(c.get_perms("/local/domain/5/by4-0")[0], b"n5", "owner of a node dom4 made")
        tx = g.transaction_start()
        err = try_request(g, XS_WRITE, b"new\0x", tx_id=tx)
        if err is None:
            err = try_request(g, XS_TRANSACTION_END, b"T\0", tx_id=tx)
        eq(err, "ENOSPC", "dom5's transaction creating a node over its quota")
        eq(r.usage(5)["nodes"], 25)
        r.store_check()
        r.check_alive()


if __name__ == "__main__":
    run(globals())
