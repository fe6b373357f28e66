#!/usr/bin/python3
"""A thousand guests at once, through the Xen test double.

The requirement: 1,000 domains introduced and served at once, with a
request from one domain costing the same whether 1 or 1,000 others are
connected (no scan of all rings per loop turn: a ring is looked at when its
channel fires; docs/domains.md, "Serving a ring").  The cost is the
daemon's own CPU time, from /proc (wall-clock time is too noisy).
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xstest import *  # noqa: E402,F401,F403
from xstest import RawClient  # noqa: E402
from fakexen import *  # noqa: E402,F401,F403
from guests import *  # noqa: E402,F401,F403

skip_unless_test_double()

NGUESTS = 1000


# ----------------------------------------------------------------- helpers

class Crowd(Rig):
    """Rig (guests.py) without a socket client: each test opens its own,
    with a longer timeout, and makes its guests with r.guest() once the
    daemon runs."""

    client_class = None


def drain(guests):
    """Take the daemon's signals off the guests' sockets.  A guest that finds
    its reply already in the ring never reads the signal that announced it;
    in the test double those datagrams stay charged to the daemon's one
    sending socket (SO_SNDBUF), and once a few hundred pile up across
    guests, further signals are lost and guests fall back to polling."""
    for g in guests:
        g.wait_notify(0)


def pipeline(c, requests, what):
    """Send every (type, payload) on socket client c at once, then read the
    replies in order; returns their payloads.  Any error reply fails."""
    first = c.next_req
    c.send_raw(b"".join(RawClient.packet(t, p, first + i) for i, (t, p) in enumerate(requests)))
    c.next_req += len(requests)
    out = []
    for i, (t, p) in enumerate(requests):
        rt, rid, tid, rp = c.recv_packet()
        eq((rid, tid), (first + i, 0), "%s: reply %d's ids" % (what, i))
        if rt != t:
            raise AssertionError("%s: %s %s -> %s %s" % (what, type_name(t), short(p),
                                                         type_name(rt), short(rp)))
        out.append(rp)
    return out


def homes(c, domids):
    """/local/domain/<id>, owned by the domain, as a toolstack makes them."""
    reqs = []
    for i in domids:
        reqs.append((XS_MKDIR, b"/local/domain/%d\0" % i))
        reqs.append((XS_SET_PERMS, b"/local/domain/%d\0n%d\0" % (i, i)))
    pipeline(c, reqs, "homes")


def introduce_all(c, fx, guests):
    pipeline(c, [(XS_INTRODUCE, fx.introduce_args(g)) for g in guests], "INTRODUCE")
    homes(c, [g.domid for g in guests])


def introduced(c, domids):
    return [rp for rp in pipeline(c, [(XS_IS_DOMAIN_INTRODUCED, b"%d\0" % i)
                                      for i in domids], "IS_DOMAIN_INTRODUCED")]


def read_events(c, n, timeout=20.0):
    """n WATCH_EVENT payloads from socket client c."""
    deadline = time.monotonic() + timeout
    out = []
    while len(out) < n:
        left = deadline - time.monotonic()
        check(left > 0, "%d of %d watch events within %.0f s" % (len(out), n, timeout))
        c.sock.settimeout(left)
        t, rid, tid, p = c.recv_packet()
        eq(t, XS_WATCH_EVENT, "packet type on the watching client")
        out.append(p)
    c.sock.settimeout(5.0)
    return out


def cpu_ns(pid):
    """CPU time the process has used, in ns: the sum of its threads'
    schedstat run time, or utime + stime (clock ticks) without schedstat."""
    total, ok = 0, True
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ok = False
    if ok and total > 0:
        return total
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 10 ** 9 // os.sysconf("SC_CLK_TCK")


def serve(g, n, tag):
    """n requests from guest g (WRITE and READ in turn), every reply checked."""
    for i in range(n // 2):
        value = b"%s-%d" % (tag, i)
        g.write("cost/node", value)
        eq(g.read("cost/node"), value, "read back %d" % i)


def measure(d, g, n, tag):
    """The daemon's CPU time (ns) for n requests from g."""
    serve(g, 200, tag + b"w")       # warm up (allocations, caches)
    before = cpu_ns(d.pid)
    serve(g, n, tag)
    return cpu_ns(d.pid) - before


# ------------------------------------------------------------------- tests

def test_a_thousand_guests_at_once():
    with Crowd() as r:
        fx, d = r.fx, r.d
        guests = [r.guest(i) for i in range(1, NGUESTS + 1)]
        c = RawClient(d.socket_path, timeout=20.0)
        watcher = RawClient(d.socket_path, timeout=20.0)
        for path, token in ((b"@introduceDomain", b"in"), (b"@releaseDomain", b"out")):
            watcher.expect_ack(XS_WATCH, path + b"\0" + token + b"\0")
            eq(read_events(watcher, 1), [path + b"\0" + token + b"\0"], "initial event")
        t0 = time.monotonic()
        introduce_all(c, fx, guests)
        t_intro = time.monotonic() - t0
        events = read_events(watcher, NGUESTS)
        eq(set(events), {b"@introduceDomain\0in\0"}, "event payloads")
        check(watcher.no_reply_within(0.2), "more than %d @introduceDomain events" % NGUESTS)
        eq(set(introduced(c, range(1, NGUESTS + 1))), {b"T\0"}, "IS_DOMAIN_INTRODUCED")
        for g in guests:
            eq(g.server_features, 15, "dom%d's features" % g.domid)
        # Every guest sends at once; then each reply is collected.
        t0 = time.monotonic()
        for g in guests:
            g.send_bytes(RawClient.packet(XS_WRITE, b"node\0v%d" % g.domid, 1))
        for g in guests:
            eq(g.recv_packet(10.0), (XS_WRITE, 1, 0, b"OK\0"), "dom%d's WRITE" % g.domid)
        drain(guests)
        # And one by one, each reads its node back.
        for g in guests:
            eq(g.read("node"), b"v%d" % g.domid, "dom%d reads back" % g.domid)
            eq(g.error, 0, "dom%d's error indicator" % g.domid)
            g.wait_notify(0)
        t_serve = time.monotonic() - t0
        # The toolstack sees every node where it belongs.
        vals = pipeline(c, [(XS_READ, b"/local/domain/%d/node\0" % i)
                            for i in range(1, NGUESTS + 1)], "toolstack READ")
        eq(vals, [b"v%d" % i for i in range(1, NGUESTS + 1)], "nodes seen by the toolstack")
        # Release them all.
        t0 = time.monotonic()
        pipeline(c, [(XS_RELEASE, b"%d\0" % i) for i in range(1, NGUESTS + 1)], "RELEASE")
        t_release = time.monotonic() - t0
        events = read_events(watcher, NGUESTS)
        eq(set(events), {b"@releaseDomain\0out\0"}, "release event payloads")
        check(watcher.no_reply_within(0.2), "more than %d @releaseDomain events" % NGUESTS)
        eq(set(introduced(c, range(1, NGUESTS + 1))), {b"F\0"},
           "IS_DOMAIN_INTRODUCED after RELEASE")
        # Their homes (owned by them) went with them.
        for i in (1, 2, 500, NGUESTS):
            check(not c.exists("/local/domain/%d" % i), "/local/domain/%d survives" % i)
        eq(c.directory("/local/domain"), [], "/local/domain after release")
        # A released ring is no longer served.
        g = guests[41]
        g.send_bytes(RawClient.packet(XS_READ, b"node\0", 2))
        check(g.no_data_within(0.2), "a released guest was answered")
        c.write("/still", "here")
        eq(c.read("/still"), b"here")
        print("# %d guests: introduce %.2f s, serve %.2f s, release %.2f s"
              % (NGUESTS, t_intro, t_serve, t_release))
        c.close()
        watcher.close()


def test_a_ring_is_read_only_when_its_channel_fires():
    """No scan of the rings: requests written without a signal stay in
    their rings, however many loop turns the other guests' traffic makes,
    and are served as soon as their channel fires."""
    with Crowd() as r:
        fx, d = r.fx, r.d
        guests = [r.guest(i) for i in range(1, NGUESTS + 1)]
        c = RawClient(d.socket_path, timeout=20.0)
        introduce_all(c, fx, guests)
        silent = guests[::100]                      # 10 guests
        busy = [g for g in guests if g not in silent]
        for g in silent:
            pkt = RawClient.packet(XS_WRITE, b"silent\0%d" % g.domid, 77)
            g.page[0:len(pkt)] = pkt
            g.req_prod = len(pkt)                   # published, never signalled
        for r in range(3):                          # thousands of loop turns
            for g in busy:
                g.send_bytes(RawClient.packet(XS_WRITE, b"busy\0%d" % r, 1 + r))
            for g in busy:
                eq(g.recv_packet(10.0), (XS_WRITE, 1 + r, 0, b"OK\0"), "dom%d" % g.domid)
            drain(busy)
        for g in silent:
            eq(g.req_cons, 0, "dom%d's ring was read without a signal" % g.domid)
            check(g.no_data_within(0), "dom%d was answered without a signal" % g.domid)
        for g in silent:
            g.notify()
        for g in silent:
            eq(g.recv_packet(5.0), (XS_WRITE, 77, 0, b"OK\0"), "dom%d after its signal" % g.domid)
            eq(g.read("silent"), b"%d" % g.domid)
        c.close()


def test_request_cost_independent_of_idle_guests():
    """The daemon's CPU time for n requests from one guest, alone and with
    1,000 idle guests introduced, in turn (the crowd is released and
    introduced again between rounds, so drift hits both sides alike)."""
    n = int(os.environ.get("XS_SCALE_REQUESTS", "2000"))
    rounds = 3
    with Crowd() as r:
        fx, d = r.fx, r.d
        me = r.guest(7000)
        others = [r.guest(i) for i in range(1, NGUESTS + 1)]
        c = RawClient(d.socket_path, timeout=20.0)
        introduce_all(c, fx, [me])
        alone, crowd = [], []
        for k in range(rounds):
            alone.append(measure(d, me, n, b"a%d" % k))
            introduce_all(c, fx, others)
            eq(set(introduced(c, range(1, NGUESTS + 1))), {b"T\0"}, "IS_DOMAIN_INTRODUCED")
            crowd.append(measure(d, me, n, b"b%d" % k))
            # The crowd is idle, but served.
            o = others[(k * 397) % NGUESTS]
            o.write("x", b"%d" % o.domid)
            eq(o.read("x"), b"%d" % o.domid, "dom%d in the crowd" % o.domid)
            o.wait_notify(0)
            pipeline(c, [(XS_RELEASE, b"%d\0" % g.domid) for g in others], "RELEASE")
        eq(c.read("/local/domain/7000/cost/node"), b"b%d-%d" % (rounds - 1, n // 2 - 1))
        a, b = min(alone), min(crowd)
        ratio = b / a
        print("# daemon CPU for %d requests: alone %.1f ms (%s), with %d idle guests "
              "%.1f ms (%s): ratio %.2f"
              % (n, a / 1e6, ", ".join("%.1f" % (x / 1e6) for x in alone), NGUESTS,
                 b / 1e6, ", ".join("%.1f" % (x / 1e6) for x in crowd), ratio))
        check(a > 0, "no CPU time measured")
        check(ratio < 2.0, "a request costs %.2f times as much with %d idle guests"
              % (ratio, NGUESTS))
        c.close()


if __name__ == "__main__":
    run(globals())
