#!/usr/bin/python3
"""Domains: INTRODUCE, RELEASE, RESUME, SET_TARGET, GET/SET_FEATURE,
IS_DOMAIN_INTRODUCED, GET_DOMAIN_PATH, the death of a domain, dom0's own
ring and the daemon without Xen (docs/domains.md).

Every test runs its own daemon under the Xen test double (tests/fakexen,
driven through fakexen.py): guests talk over real rings, the hypervisor's
domain table and VIRQ_DOM_EXC are played by the harness.

How "no event" is checked without sleeping: events of one connection
arrive in the order they were generated, and a new watch's initial event
follows the WATCH reply.  So collect() sets a throw-away watch and returns
the events that arrived before its initial event: exactly the events
generated so far.  A VIRQ or a guest's signal arrives on the daemon's event
channel, not on the socket: settle(g) makes two round trips over a guest's
ring, whose signals queue behind the VIRQ, so that the daemon has handled
the VIRQ before collect() looks.

The upstream daemon cannot load the test double: with XS_DAEMON=upstream-c
the whole file is skipped.
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xstest import *  # noqa: E402,F401,F403
from xstest import RawClient, Daemon  # noqa: E402
from fakexen import *  # noqa: E402,F401,F403
from guests import *  # noqa: E402,F401,F403
import guests  # noqa: E402

skip_unless_test_double()

DOMID_SELF = 0x7FF0
BARRIER = b"/zz-domains-barrier"    # never written: watched only by collect()


# ---------------------------------------------------------------- helpers



class Rig(guests.Rig):
    """guests.Rig with an EvClient; no guests made up front.

        with Rig() as r:
            g = r.guest(5); r.home(5); r.introduce(g)
            r.c (EvClient), r.fx (FakeXen), r.d (Daemon), r.dom0 (dom0_port=1)
    """

    client_class = EvClient


# -------------------------------------------------------------- introduce

def test_introduce_serves_the_ring():
    with Rig() as r:
        c = r.c
        c.watch_initial("@introduceDomain", "intro")
        c.watch_initial("@introduceDomain", "intro1", depth=1)
        c.watch_initial("@introduceDomain/5", "intro5")
        eq(c.introduced(5), b"F\0", "IS_DOMAIN_INTRODUCED 5 before INTRODUCE")
        g = r.guest(5)
        r.home(5)
        r.introduce(g)
        evs = c.collect()
        eq(sorted(evs), sorted([ev("@introduceDomain", "intro"),
                                ev("@introduceDomain/5", "intro1"),
                                ev("@introduceDomain/5", "intro5")]),
           "events of INTRODUCE 5")
        eq(c.introduced(5), b"T\0", "IS_DOMAIN_INTRODUCED 5")
        eq(c.introduced(9), b"F\0", "IS_DOMAIN_INTRODUCED of an unknown domid")
        eq(c.introduced(DOMID_SELF), b"T\0", "IS_DOMAIN_INTRODUCED DOMID_SELF")
        eq(c.error(XS_IS_DOMAIN_INTRODUCED, b"x\0"), "EINVAL", "IS_DOMAIN_INTRODUCED x")
        eq(c.expect_ok(XS_GET_DOMAIN_PATH, b"5\0"), b"/local/domain/5\0", "GET_DOMAIN_PATH 5")
        eq(g.server_features, ALL_FEATURES, "server_features in the page")
        eq(g.connection, XENSTORE_CONNECTED, "connection field")
        eq(g.error, 0, "error field")
        # Over the ring, as domain 5: relative paths land in its home.
        g.write("data/x", "1")
        eq(c.read("/local/domain/5/data/x"), b"1", "socket reads the guest's relative write")
        eq(g.read("data/x"), b"1", "guest reads back (relative)")
        eq(g.read("/local/domain/5/data/x"), b"1", "guest reads back (absolute)")
        eq(g.get_domain_path(5), b"/local/domain/5", "GET_DOMAIN_PATH from the guest")
        c.write("/local/domain/5/data/y", "from-dom0")
        eq(g.read("data/y"), b"from-dom0", "guest reads a socket write")
        # The replies above were signalled (drain the queued signals).
        check(g.wait_notify(2.0) or g.notified > 0, "the daemon never signalled the guest")
        eq(g.wrong_signals, [], "signals with a wrong {domid, port}")


def test_introduce_argument_errors():
    with Rig() as r:
        c = r.c
        g = r.guest(5)
        bad = [b"", b"5\0", b"5\0%d\0" % g.gfn,
               b"x\0%d\0%d\0" % (g.gfn, g.port), b"5\0abc\0%d\0" % g.port,
               b"5\0%d\0x\0" % g.gfn, b"5\0%d\0\0" % g.gfn, b"-1\0%d\0%d\0" % (g.gfn, g.port),
               b"5\0%d\0%d\0" % (g.gfn, 0),
               b"%d\0%d\0%d\0" % (0x7FF0, g.gfn, g.port),
               b"%d\0%d\0%d\0" % (0x7FF5, g.gfn, g.port),
               b"%d\0%d\0%d\0" % (65536, g.gfn, g.port)]
        for payload in bad:
            eq(c.error(XS_INTRODUCE, payload), "EINVAL", "INTRODUCE %s" % short(payload))
        eq(c.introduced(5), b"F\0", "nothing introduced by bad requests")
        r.introduce(g)   # the good form still works afterwards
        eq(c.introduced(5), b"T\0", "IS_DOMAIN_INTRODUCED 5")


def _reintroduce(new_port):
    with Rig() as r:
        c = r.c
        g = r.guest(5)
        r.home(5)
        r.introduce(g)
        c.watch_initial("@introduceDomain", "intro")
        g.write("w", "0")
        g.watch("w", "old")
        eq(g.next_event(), (b"w", b"old"), "guest's initial event")
        tx = g.transaction_start()
        if new_port:
            g.port += 100     # the guest allocated a new channel
        c.expect_ack(XS_INTRODUCE, r.fx.introduce_args(g))
        eq(c.introduced(5), b"T\0", "IS_DOMAIN_INTRODUCED after the second INTRODUCE")
        eq(c.collect(), [], "events of INTRODUCE of an introduced domain")
        # The ring was emptied: the guest's indices follow the page.
        eq((g.req_cons, g.req_prod, g.rsp_cons, g.rsp_prod), (0, 0, 0, 0),
           "ring indices after the second INTRODUCE")
        g.events = []
        c.write("/local/domain/5/w", "1")
        eq(guest_collect(g, BARRIER), [], "the guest's old watch after the connection was reset")
        rt, rp = g.request(XS_READ, b"w\0", tx_id=tx)
        eq((rt, rp), (XS_ERROR, b"ENOENT\0"), "the guest's old transaction after the reset")
        eq(g.read("w"), b"1", "the guest is served on the new connection")


def test_introduce_twice_new_port_resets_connection():
    _reintroduce(new_port=True)


def test_introduce_twice_same_port_resets_connection():
    _reintroduce(new_port=False)


def test_introduce_without_grant_uses_foreign_map():
    with Rig() as r:
        c = r.c
        g = r.guest(8, grant=False)
        r.home(8)
        r.introduce(g)
        eq(g.server_features, ALL_FEATURES, "server_features through the gfn mapping")
        g.write("data/x", "gfn")
        eq(c.read("/local/domain/8/data/x"), b"gfn", "socket reads the guest's write")
        eq(g.read("data/x"), b"gfn", "guest reads back")
        # Neither grant nor the named frame: the map fails, nothing is introduced.
        h = r.guest(9, grant=False)
        name = c.error(XS_INTRODUCE, b"9\0%d\0%d\0" % (h.gfn + 1, h.port))
        check(name != "", "INTRODUCE without any mapping: empty error")
        eq(c.introduced(9), b"F\0", "IS_DOMAIN_INTRODUCED 9 after a failed map")


def test_introduce_bind_failure():
    with Rig() as r:
        c = r.c
        c.watch_initial("@introduceDomain", "intro")
        g = r.guest(5)
        r.fx.fail_bind(5)
        eq(c.error(XS_INTRODUCE, r.fx.introduce_args(g)), "EINVAL", "INTRODUCE, bind fails")
        eq(c.introduced(5), b"F\0", "IS_DOMAIN_INTRODUCED after a failed bind")
        eq(c.collect(), [], "events after a failed INTRODUCE")
        # A domain Xen does not know: the bind fails with ESRCH, which is not
        # in xsd_errors, so it goes on the wire as EINVAL (as upstream).
        h = r.guest(6)
        r.fx.set_state(6, None)
        eq(c.error(XS_INTRODUCE, r.fx.introduce_args(h)), "EINVAL", "INTRODUCE of a missing domain")
        eq(c.introduced(6), b"F\0", "IS_DOMAIN_INTRODUCED 6")
        # Once the bind works, the same request succeeds.
        r.fx.fail_bind(5, False)
        r.introduce(g)
        eq(c.collect(), [ev("@introduceDomain", "intro")], "events of the good INTRODUCE")
        r.home(5)
        g.write("ok", "1")
        eq(c.read("/local/domain/5/ok"), b"1", "guest served after the retry")


# -------------------------------------------------------------- privilege

def test_unprivileged_guest_is_refused():
    with Rig() as r:
        c = r.c
        g = r.guest(5)
        h = r.guest(6)
        r.home(5)
        r.introduce(g)
        r.introduce(h)
        refused = [(XS_INTRODUCE, b"7\0%d\0%d\0" % (0x10007, 17)),
                   (XS_RELEASE, b"6\0"), (XS_RELEASE, b"5\0"),
                   (XS_RESUME, b"6\0"),
                   (XS_SET_TARGET, b"5\0006\0"),
                   (XS_SET_FEATURE, b"6\0003\0"), (XS_SET_FEATURE, b"5\0003\0"),
                   (XS_GET_FEATURE, b"6\0"), (XS_GET_FEATURE, b"5\0"),
                   (XS_IS_DOMAIN_INTRODUCED, b"6\0")]
        for t, payload in refused:
            eq(guest_error(g, t, payload), "EACCES", "dom5 %s %s" % (type_name(t), short(payload)))
        eq(c.introduced(6), b"T\0", "dom6 still introduced after dom5's RELEASE")
        eq(c.expect_ok(XS_GET_FEATURE, b"6\0"), b"%d\0" % ALL_FEATURES, "dom6 features unchanged")
        # GET_DOMAIN_PATH is for everyone.
        eq(g.get_domain_path(6), b"/local/domain/6", "GET_DOMAIN_PATH 6 from dom5")

        # Default perms n0: dom0 only.
        c.write("/secret", "s")
        eq(guest_error(g, XS_READ, b"/secret\0"), "EACCES", "dom5 reads a dom0-only node")
        eq(guest_error(g, XS_WRITE, b"/secret\0x"), "EACCES", "dom5 writes a dom0-only node")
        c.set_perms("/secret", ["n0", "r5"])
        eq(g.read("/secret"), b"s", "dom5 reads after r5 was granted")
        eq(guest_error(g, XS_WRITE, b"/secret\0x"), "EACCES", "dom5 writes a read-only node")
        eq(guest_error(h, XS_READ, b"/secret\0"), "EACCES", "dom6 is not named by r5")

        # What an unprivileged guest creates, it owns (parents included).
        g.write("data/x", "1")
        eq(c.get_perms("/local/domain/5/data/x")[0], b"n5", "owner of data/x")
        eq(c.get_perms("/local/domain/5/data")[0], b"n5", "owner of the implicit parent")
        eq(c.get_perms("/local/domain/5")[0], b"n0", "the home stays dom0's")
        eq(guest_error(h, XS_READ, b"/local/domain/5/data/x\0"), "EACCES",
           "dom6 reads dom5's node")


def test_priv_domid_guest_is_privileged():
    with Rig(["--priv-domid", "7"]) as r:
        c = r.c
        c.watch_initial("@introduceDomain", "intro")
        p = r.guest(7)
        r.introduce(p)
        eq(c.collect(), [], "@introduceDomain for the privileged domain")
        eq(p.server_features, ALL_FEATURES, "server_features of dom7")
        c.write("/secret", "s")
        eq(p.read("/secret"), b"s", "dom7 reads a dom0-only node")
        p.write("/secret/sub", "t")
        eq(c.get_perms("/secret/sub")[0], b"n0", "a privileged creator does not take ownership")
        eq(p.expect_ok(XS_IS_DOMAIN_INTRODUCED, b"7\0"), b"T\0", "dom7 IS_DOMAIN_INTRODUCED")
        # dom7 manages domains.
        g = r.guest(8)
        r.introduce(g, client=p)
        eq(c.collect(), [ev("@introduceDomain", "intro")], "@introduceDomain for dom8")
        eq(c.introduced(8), b"T\0", "dom8 introduced by dom7")
        r.home(8)
        g.write("x", "8")
        eq(p.read("/local/domain/8/x"), b"8", "dom7 reads dom8's node")
        eq(guest_error(g, XS_READ, b"/secret\0"), "EACCES", "dom8 stays unprivileged")
        eq(p.expect_ok(XS_GET_FEATURE, b"8\0"), b"%d\0" % ALL_FEATURES, "dom7 GET_FEATURE 8")
        eq(c.error(XS_RELEASE, b"7\0"), "EINVAL", "RELEASE of the privileged domain")
        eq(c.error(XS_RESUME, b"7\0"), "EINVAL", "RESUME of the privileged domain")
        p.expect_ack(XS_RELEASE, b"8\0")
        eq(c.introduced(8), b"F\0", "dom8 released by dom7")


def test_master_domid():
    with Rig(["--master-domid", "3"]) as r:
        c = r.c
        # Socket clients are domain 3: relative paths land in its home.
        c.write("rel", "3")
        eq(c.read("/local/domain/3/rel"), b"3", "relative write of a socket client")
        eq(c.introduced(3), b"T\0", "IS_DOMAIN_INTRODUCED of the master")
        eq(c.error(XS_RELEASE, b"3\0"), "EINVAL", "RELEASE of the master domid")
        eq(c.error(XS_RESUME, b"3\0"), "EINVAL", "RESUME of the master domid")
        g = r.guest(5)
        r.introduce(g)
        eq(guest_error(g, XS_READ, b"/local/domain/3/rel\0"), "EACCES", "dom5 reads dom3's node")
        c.expect_ack(XS_RELEASE, b"5\0")


# ----------------------------------------------------------------- release

def test_release():
    with Rig() as r:
        c = r.c
        g = r.guest(5)
        r.home(5)
        r.introduce(g)
        c.watch_initial("@releaseDomain", "rel")
        c.watch_initial("@releaseDomain", "rel1", depth=1)
        c.watch_initial("@releaseDomain/5", "rel5")
        c.watch_initial("@releaseDomain/6", "rel6")
        g.write("w", "0")
        g.watch("w", "gw")
        eq(g.next_event(), (b"w", b"gw"), "guest's initial event")
        eq(c.error(XS_RELEASE, b"9\0"), "ENOENT", "RELEASE of an unknown domid")
        for payload in (b"x\0", b"\0", b"", b"-1\0"):
            eq(c.error(XS_RELEASE, payload), "EINVAL", "RELEASE %s" % short(payload))
        eq(c.error(XS_RELEASE, b"0\0"), "EINVAL", "RELEASE 0")
        eq(c.collect(), [], "events of the failed RELEASEs")

        c.expect_ack(XS_RELEASE, b"5\0")
        eq(sorted(c.collect()), sorted([ev("@releaseDomain", "rel"),
                                        ev("@releaseDomain/5", "rel1"),
                                        ev("@releaseDomain/5", "rel5")]),
           "events of RELEASE 5")
        eq(c.introduced(5), b"F\0", "IS_DOMAIN_INTRODUCED after RELEASE")
        eq(c.error(XS_RELEASE, b"5\0"), "ENOENT", "second RELEASE 5")
        # The ring is no longer served.
        g.send_bytes(RawClient.packet(XS_READ, b"w\0", req_id=99))
        check(g.no_data_within(0.3), "the released guest got a reply")
        # Its watch went with it: a new domain 5 gets nothing for /local/domain/5/w.
        g2 = r.guest(5, gfn=0x20005)
        r.introduce(g2)
        c.write("/local/domain/5/w", "1")
        eq(guest_collect(g2, BARRIER), [], "events of the new dom5 after a write to the old watch's path")


def test_domain_death_cleans_up():
    with Rig() as r:
        c = r.c
        g = r.guest(5)
        h = r.guest(6)
        r.fx.set_state(7, "running")    # exists, never introduced: its entries stay
        r.home(5)
        r.introduce(g)
        r.introduce(h)
        # Nodes that name dom5.
        c.write("/vm5/a", "a")
        c.write("/vm5/keep", "k")
        c.set_perms("/vm5", ["n5"])         # owned by 5, its subtree goes with it
        c.set_perms("/vm5/a", ["n5"])
        c.write("/shared", "s")
        c.set_perms("/shared", ["n0", "r5"])
        c.write("/other", "o")
        c.set_perms("/other", ["n0", "r6", "b5", "r7"])
        c.write("/both", "b")
        c.set_perms("/both", ["n6", "w5"])
        c.write("/shared2", "before")
        c.set_perms("/shared2", ["n0", "b5"])
        c.set_perms("@introduceDomain", ["n0", "r5"])
        g.write("data/x", "1")
        eq(g.read("/shared"), b"s", "dom5 reads /shared before dying")
        # dom5's watch and open transaction.
        g.watch("/shared2", "gw")
        eq(g.next_event(), (b"/shared2", b"gw"), "guest's initial event")
        tx = g.transaction_start()
        g.write("/shared2", "from-tx", tx_id=tx)
        g.write("data/tx", "t", tx_id=tx)

        c.watch_initial("/vm5", "vm")
        c.watch_initial("/local/domain/5/data", "data")
        c.watch_initial("@releaseDomain", "rel")
        r.fx.set_state(5, "dying")
        r.fx.virq()
        deadline = time.monotonic() + 5
        got = []
        while ev("@releaseDomain", "rel") not in got:
            got.append(c.next_event(max(0.1, deadline - time.monotonic()), "@releaseDomain"))
        got += c.collect()
        eq(sorted(got), sorted([ev("/vm5", "vm"), ev("/local/domain/5/data", "data"),
                                ev("@releaseDomain", "rel")]),
           "events of dom5's death")
        eq(got[-1], ev("@releaseDomain", "rel"), "@releaseDomain fires last")
        eq(c.introduced(5), b"F\0", "IS_DOMAIN_INTRODUCED after death")
        # Once only: another VIRQ finds nothing new.
        r.fx.virq()
        settle(h)
        eq(c.collect(), [], "events of a second VIRQ")

        # Owned nodes are gone with their subtrees; entries naming 5 stripped.
        for path in ("/vm5", "/vm5/a", "/vm5/keep", "/local/domain/5/data"):
            check(not c.exists(path), "%s still exists after dom5 died" % path)
        eq(c.get_perms("/shared"), [b"n0"], "perms of /shared")
        eq(c.get_perms("/other"), [b"n0", b"r6", b"r7"], "perms of /other")
        eq(c.get_perms("/both"), [b"n6"], "perms of /both")
        eq(c.get_perms("/local/domain/5"), [b"n0"], "perms of dom5's home")
        eq(c.get_perms("@introduceDomain"), [b"n0"], "perms of @introduceDomain")
        # The open transaction died uncommitted.
        eq(c.read("/shared2"), b"before", "/shared2 after dom5's transaction died")
        # dom6 is untouched.
        eq(c.introduced(6), b"T\0", "dom6 still introduced")
        eq(guest_error(h, XS_READ, b"/shared\0"), "EACCES", "dom6 reads /shared")

        # A new domain 5 inherits nothing.
        g2 = r.guest(5, gfn=0x20005)
        r.introduce(g2)
        eq(guest_error(g2, XS_READ, b"/shared\0"), "EACCES", "new dom5 reads /shared")
        eq(guest_error(g2, XS_READ, b"/other\0"), "EACCES", "new dom5 reads /other")
        eq(guest_error(g2, XS_WRITE, b"/both\0x"), "EACCES", "new dom5 writes /both")
        eq(guest_error(g2, XS_READ, b"/local/domain/5\0"), "EACCES", "new dom5 reads its old home")
        c.write("/shared2", "after")
        eq(guest_collect(g2, BARRIER), [], "events of the new dom5 (the old one's watch)")


def test_shutdown_and_resume():
    with Rig() as r:
        c = r.c
        g = r.guest(5)
        r.home(5)
        r.introduce(g)
        c.watch_initial("@releaseDomain", "rel")
        r.fx.set_state(5, "shutdown")
        r.fx.virq()
        eq(c.next_event(what="@releaseDomain on shutdown"), ev("@releaseDomain", "rel"),
           "event of the shutdown")
        eq(c.introduced(5), b"T\0", "IS_DOMAIN_INTRODUCED while shut down")
        # Still served while shut down.
        g.write("x", "1")
        eq(c.read("/local/domain/5/x"), b"1", "a shut-down guest's write")
        # Latched: another VIRQ fires nothing.
        r.fx.virq()
        settle(g)
        eq(c.collect(), [], "events of a second VIRQ while shut down")
        c.expect_ack(XS_RESUME, b"5\0")
        eq(c.collect(), [], "events of RESUME")
        r.fx.set_state(5, "running")
        r.fx.virq()
        settle(g)
        eq(c.collect(), [], "events of a VIRQ while running")
        r.fx.set_state(5, "shutdown")
        r.fx.virq()
        eq(c.next_event(what="@releaseDomain on the second shutdown"),
           ev("@releaseDomain", "rel"), "event of the second shutdown")
        settle(g)
        eq(c.collect(), [], "more events of the second shutdown")
        # Without RESUME, no further event even across running/shutdown.
        eq(c.error(XS_RESUME, b"9\0"), "ENOENT", "RESUME of an unknown domid")
        eq(c.error(XS_RESUME, b"0\0"), "EINVAL", "RESUME 0")
        eq(c.error(XS_RESUME, b"x\0"), "EINVAL", "RESUME x")
        # Dying after a shutdown: torn down, @releaseDomain once more.
        r.fx.set_state(5, "dying")
        r.fx.virq()
        eq(c.next_event(what="@releaseDomain on death"), ev("@releaseDomain", "rel"),
           "event of the death")
        eq(c.introduced(5), b"F\0", "IS_DOMAIN_INTRODUCED after death")
        eq(c.collect(), [], "more events of the death")


# --------------------------------------------------------------- set target

def test_set_target():
    with Rig() as r:
        c = r.c
        g = r.guest(5)
        s = r.guest(6)
        r.home(5)
        r.introduce(g)
        r.introduce(s)
        g.write("x", "five")
        eq(c.get_perms("/local/domain/5/x")[0], b"n5", "owner of /local/domain/5/x")
        eq(guest_error(s, XS_READ, b"/local/domain/5/x\0"), "EACCES", "stub reads before SET_TARGET")
        eq(guest_error(s, XS_READ, b"/local/domain/5\0"), "EACCES", "stub reads the home before")
        for payload in (b"6\0", b"6\0x\0", b"x\0005\0", b"6\0005\0007\0", b""):
            eq(c.error(XS_SET_TARGET, payload), "EINVAL", "SET_TARGET %s" % short(payload))
        eq(c.error(XS_SET_TARGET, b"7\0005\0"), "ENOENT", "SET_TARGET of an unintroduced stub")
        eq(c.error(XS_SET_TARGET, b"6\0007\0"), "ENOENT", "SET_TARGET to an unintroduced target")
        eq(guest_error(s, XS_READ, b"/local/domain/5/x\0"), "EACCES", "stub after failed SET_TARGETs")

        c.expect_ack(XS_SET_TARGET, b"6\0005\0")
        eq(s.read("/local/domain/5/x"), b"five", "stub reads its target's node")
        s.write("/local/domain/5/x", "six")
        eq(g.read("x"), b"six", "the target reads the stub's write")
        eq(s.read("/local/domain/5"), b"", "stub reads the node its target may read (b5)")
        c.write("/secret", "s")
        eq(guest_error(s, XS_READ, b"/secret\0"), "EACCES", "stub is still unprivileged")

        # The target dies: the stub acts for nobody, even for a new dom5.
        r.fx.set_state(5, "dying")
        r.fx.virq()
        settle(s)
        eq(c.introduced(5), b"F\0", "IS_DOMAIN_INTRODUCED 5 after death")
        g2 = r.guest(5, gfn=0x20005)
        r.introduce(g2)
        c.write("/new5", "n")
        c.set_perms("/new5", ["n5"])
        eq(guest_error(s, XS_READ, b"/new5\0"), "EACCES", "stub reads the new dom5's node")


# ----------------------------------------------------------------- features

def test_get_and_set_feature():
    with Rig() as r:
        c = r.c
        g = r.guest(5)
        eq(c.expect_ok(XS_GET_FEATURE, b"5\0"), b"%d\0" % ALL_FEATURES, "GET_FEATURE 5 (default)")
        eq(c.expect_ok(XS_GET_FEATURE, b""), b"%d\0" % ALL_FEATURES, "socket's own GET_FEATURE")
        c.expect_ack(XS_SET_FEATURE, b"5\0003\0")
        eq(c.expect_ok(XS_GET_FEATURE, b"5\0"), b"3\0", "GET_FEATURE 5 after SET_FEATURE")
        eq(c.introduced(5), b"F\0", "SET_FEATURE does not introduce")
        r.home(5)
        r.introduce(g)
        eq(g.server_features, 3, "server_features offered after SET_FEATURE 3")
        eq(c.error(XS_SET_FEATURE, b"5\0001\0"), "EBUSY", "SET_FEATURE after INTRODUCE")
        eq(c.expect_ok(XS_GET_FEATURE, b"5\0"), b"3\0", "GET_FEATURE 5 after EBUSY")
        # The guest's own features, without a domid.
        eq(g.expect_ok(XS_GET_FEATURE, b""), b"3\0", "dom5 GET_FEATURE (empty payload)")
        eq(g.expect_ok(XS_GET_FEATURE, b"\0"), b"3\0", "dom5 GET_FEATURE (empty string)")
        eq(guest_error(g, XS_GET_FEATURE, b"5\0"), "EACCES", "dom5 GET_FEATURE with a domid")
        # Errors.
        h = r.guest(6)
        eq(c.error(XS_GET_FEATURE, b"5\0006\0"), "EINVAL", "GET_FEATURE with two domids")
        eq(c.error(XS_GET_FEATURE, b"x\0"), "EINVAL", "GET_FEATURE x")
        eq(c.error(XS_GET_FEATURE, b"9\0"), "ENOENT", "GET_FEATURE of a missing domain")
        eq(c.error(XS_SET_FEATURE, b"9\0001\0"), "ENOENT", "SET_FEATURE of a missing domain")
        eq(c.error(XS_SET_FEATURE, b"6\00016\0"), "EINVAL", "SET_FEATURE of an unknown bit")
        for payload in (b"6\0", b"6\0x\0", b"x\0001\0", b"6\0001\0001\0", b""):
            eq(c.error(XS_SET_FEATURE, payload), "EINVAL", "SET_FEATURE %s" % short(payload))
        # No features at all: still served, nothing advertised.
        c.expect_ack(XS_SET_FEATURE, b"6\0000\0")
        r.introduce(h)
        eq(h.server_features, 0, "server_features after SET_FEATURE 0")
        eq(h.expect_ok(XS_GET_FEATURE, b""), b"0\0", "dom6 GET_FEATURE")
        eq(h.get_domain_path(6), b"/local/domain/6", "dom6 is served")
        # A watch depth only for a guest offered WATCHDEPTH (4).
        eq(guest_error(g, XS_WATCH, b"data\0tok\x001\0"), "EINVAL", "dom5 (3) WATCH with a depth")
        eq(guest_error(h, XS_WATCH, b"data\0tok\x001\0"), "EINVAL", "dom6 (0) WATCH with a depth")
        g.watch("data", "tok")
        eq(g.next_event(), (b"data", b"tok"), "dom5 WATCH without a depth")
        k = r.guest(7)
        r.introduce(k)
        k.expect_ack(XS_WATCH, b"data\0tok\x001\0")
        eq(k.next_event(), (b"data", b"tok"), "dom7 (15) WATCH with a depth")


# ------------------------------------------------------- dom0 and no Xen

def test_dom0_ring():
    with Rig(dom0_port=1) as r:
        c = r.c
        z = r.dom0
        # The socket listens before the rings are set up: wait for the
        # daemon to write its features into dom0's page (its event channel
        # exists by then), since the fake drops signals sent before.
        deadline = time.monotonic() + 5
        while z.server_features == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        eq(z.server_features, ALL_FEATURES, "server_features of dom0's ring")
        eq(z.expect_ok(XS_GET_DOMAIN_PATH, b"0\0"), b"/local/domain/0\0", "dom0 GET_DOMAIN_PATH")
        z.write("/dom0node", "v")
        eq(z.read("/dom0node"), b"v", "dom0 reads back")
        eq(c.read("/dom0node"), b"v", "socket reads dom0's write")
        z.write("rel", "r")
        eq(c.read("/local/domain/0/rel"), b"r", "dom0's relative path")
        c.write("/priv5", "p")
        c.set_perms("/priv5", ["n5"])
        eq(z.read("/priv5"), b"p", "dom0 reads a node owned by dom5 (n5)")
        eq(z.expect_ok(XS_IS_DOMAIN_INTRODUCED, b"0\0"), b"T\0", "dom0 IS_DOMAIN_INTRODUCED 0")
        # dom0's ring may manage domains.
        g = r.guest(5)
        r.introduce(g, client=z)
        eq(c.introduced(5), b"T\0", "dom5 introduced over dom0's ring")
        eq(g.read("/priv5"), b"p", "dom5 reads its node")


def test_no_xen():
    # The fake preloaded without FAKEXEN_DIR: every *_open fails with ENOENT,
    # as on a machine without Xen, whatever this machine is.
    env = dict(os.environ)
    env.pop("FAKEXEN_DIR", None)
    env["LD_PRELOAD"] = library_path()
    env["ASAN_OPTIONS"] = ((env["ASAN_OPTIONS"] + ":") if env.get("ASAN_OPTIONS") else "") \
        + "verify_asan_link_order=0"
    with Daemon(env=env) as d:
        try:
            c = EvClient(d.socket_path)
            c.write("/a", "1")
            eq(c.read("/a"), b"1", "socket works without Xen")
            eq(c.error(XS_INTRODUCE, b"5\0%d\0%d\0" % (0x10005, 15)), "EIO", "INTRODUCE without Xen")
            eq(c.introduced(5), b"F\0", "IS_DOMAIN_INTRODUCED 5 without Xen")
            eq(c.introduced(0), b"T\0", "IS_DOMAIN_INTRODUCED 0 without Xen")
            eq(c.error(XS_RELEASE, b"5\0"), "ENOENT", "RELEASE 5 without Xen")
            eq(c.read("/a"), b"1", "socket still works")
            deadline = time.monotonic() + 5
            while "guest rings are unavailable" not in d.log() and time.monotonic() < deadline:
                time.sleep(0.01)
            check("guest rings are unavailable" in d.log(),
                  "daemon log lacks 'guest rings are unavailable':\n" + d.log()[-2000:])
            c.close()
        except BaseException:
            diag("daemon log:\n" + d.log()[-4000:])
            raise


if __name__ == "__main__":
    run(globals())
