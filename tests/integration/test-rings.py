#!/usr/bin/python3
"""The ring protocol (docs/misc/xenstore-ring.txt, docs/domains.md) as
guests see it, through the Xen test double (tests/fakexen/README.md).

Each test starts its own FakeXen directory and daemon, introduces its
guests through a socket client (the toolstack), and plays the guests with
fakexen.Guest: split and pipelined packets, replies larger than the ring,
free-running indices that wrap at 2^32, watches, reconnection, the error
indicator, the page's event channel field, signal storms and garbage.
"""

import os
import random
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xstest import *  # noqa: E402,F401,F403
from xstest import HEADER, RawClient  # noqa: E402
from fakexen import *  # noqa: E402,F401,F403
from fakexen import _send_signal  # noqa: E402
from guests import *  # noqa: E402,F401,F403

skip_unless_test_double()

RSP_OFFSET = 1024


# ----------------------------------------------------------------- helpers

class World(Rig):
    """Rig (guests.py) with a plain RawClient as the toolstack and /tool/alive
    for check_alive(); w.guests are introduced, each with a home
    /local/domain/<id> it owns (unless do_introduce=False)."""

    client_class = RawClient
    alive_node = True


def world(domids=(5,), dom0=False, prepare=None, do_introduce=True):
    """A World, to use in a with statement.  prepare(guests) runs before
    the daemon starts (the pages exist, nothing is introduced yet)."""
    # Values of up to 4 KiB and hundreds of pipelined requests from
    # guests: lift the node-size and outstanding quotas, which
    # test-quotas.py covers.
    return World(["--verbose", "--quota", "node-size=0", "--quota", "outstanding=0"],
                 domids=domids, introduce=do_introduce,
                 dom0_port=1 if dom0 else None, prepare=prepare)


def ring_peek(g, n):
    """n bytes of the response ring from rsp_cons on, without consuming."""
    cons = g.rsp_cons
    return bytes(g.page[RSP_OFFSET + (cons + i) % RING_SIZE] for i in range(n))


def park_indices(g, req, rsp, timeout=5.0):
    """Move the idle ring's four indices to req (request queue) and rsp
    (response queue), so that traffic crosses the 2^32 wrap soon.

    The guest may only write the server's indices (req_cons, rsp_prod)
    while no pass of the daemon can be using them: so one request is sent,
    its reply left unconsumed (no signal back to the daemon), and we wait
    for the daemon's signal, which ends the pass that wrote the reply."""
    g.wait_notify(0)                    # drain old signals
    n0 = g.notified
    rid = 0x5EED
    g.send_bytes(RawClient.packet(XS_GET_DOMAIN_PATH, b"%d\0" % g.domid, rid))
    body = b"/local/domain/%d\0" % g.domid
    want = HEADER.size + len(body)
    wait_for(lambda: g.rsp_avail() >= want and (g.wait_notify(0) or True)
             and g.notified > n0, "the parking request's reply and signal",
             timeout)
    eq(g.rsp_avail(), want, "bytes waiting after the parking request")
    eq(g.req_cons, g.req_prod, "request bytes consumed")
    eq(ring_peek(g, want), HEADER.pack(XS_GET_DOMAIN_PATH, rid, 0, len(body)) + body,
       "parking reply")
    g.req_cons = req
    g.req_prod = req
    g.rsp_cons = rsp
    g.rsp_prod = rsp




# ------------------------------------------------------------------- tests

def test_features_advertised_before_any_data():
    def prepare(guests):
        g = guests[1]           # a page left dirty by a previous life
        g.req_cons, g.req_prod = 7, 900
        g.rsp_cons, g.rsp_prod = 3, 3000
        g.connection = XENSTORE_RECONNECT
        g.error = XENSTORE_ERROR_RINGIDX

    with world((5, 6), prepare=prepare) as w:
        g, dirty = w.guests
        eq(g.server_features, ALL_FEATURES, "server_features after INTRODUCE")
        eq(g.connection, XENSTORE_CONNECTED, "connection after INTRODUCE")
        eq(g.error, XENSTORE_ERROR_NONE, "error after INTRODUCE")
        eq((g.req_cons, g.req_prod, g.rsp_cons, g.rsp_prod), (0, 0, 0, 0),
           "indices after INTRODUCE")
        # A stray packet in front of this reply would fail the read.
        eq(g.read("/tool/alive"), b"yes")
        # A page that asked for a reconnection: emptied, connected, signalled.
        eq(dirty.server_features, ALL_FEATURES, "dirty page: server_features")
        eq((dirty.req_cons, dirty.req_prod, dirty.rsp_cons, dirty.rsp_prod),
           (0, 0, 0, 0), "dirty page: INTRODUCE empties both queues")
        eq(dirty.connection, XENSTORE_CONNECTED, "dirty page: connection")
        check(dirty.wait_notify(2.0), "a guest that asked to reconnect is signalled")
        dirty.write("x", "1")
        eq(dirty.read("x"), b"1")
        # It is served, so the stale error indicator must go (as on a
        # second INTRODUCE or a reconnection).
        eq(dirty.error, XENSTORE_ERROR_NONE,
           "dirty page: error indicator of a ring that is served")


def test_indices_wrap_at_2_32():
    with world() as w:
        g = w.guests[0]
        starts = [(0xFFFFFFFB, 0xFFFFFC05),     # header split by the wrap
                  (0xFFFFFFFF, 0xFFFFFFFF),
                  (0xFFFFFC00, 0xFFFFFE01)]
        for k, (req, rsp) in enumerate(starts):
            park_indices(g, req, rsp)
            rounds = 300 if k == 0 else 40
            for i in range(rounds):
                value = (b"%d.%d:" % (k, i)) * 200
                value = value[:900]
                g.write("wrap/v%d" % (i % 7), value)
                eq(g.read("wrap/v%d" % (i % 7)), value, "read back in round %d.%d" % (k, i))
            check(g.req_prod < req and g.req_cons == g.req_prod,
                  "request index wrapped: start %#x now %#x/%#x"
                  % (req, g.req_cons, g.req_prod))
            check(g.rsp_prod < rsp and g.rsp_cons == g.rsp_prod,
                  "response index wrapped: start %#x now %#x/%#x"
                  % (rsp, g.rsp_cons, g.rsp_prod))
            eq(g.error, XENSTORE_ERROR_NONE, "error indicator after wrap %d" % k)


def test_linux_guest_writing_header_then_payload_is_answered():
    # Linux's xenbus writes a request's header and payload as two updates
    # and signals after the second only if the daemon had consumed the
    # first.  A daemon that keeps the header in the ring until the rest
    # comes is never signalled again: the guest waits for its reply
    # forever (seen on real Xen).  Wait here for the daemon to take the
    # header before the payload is written, every time.
    with world() as w:
        g = w.guests[0]
        for i in range(20):
            pkt = RawClient.packet(XS_WRITE, b"lx/n%d\0value %d" % (i, i), 900 + i)
            n0 = g.notified
            g.send_bytes(pkt[:HEADER.size])
            wait_for(lambda: g.req_cons == g.req_prod,
                     "the daemon to take header %d out of the ring" % i)
            g.send_bytes(pkt[HEADER.size:])
            eq(recv_reply(g), (XS_WRITE, 900 + i, 0, b"OK\0"), "reply %d" % i)
            check(g.notified > n0 or g.wait_notify(2.0), "no signal with reply %d" % i)
        # And with the payload in pieces, each after the daemon caught up.
        pkt = RawClient.packet(XS_WRITE, b"lx/pieces\0" + b"p" * 300, 999)
        for a in range(0, len(pkt), 40):
            g.send_bytes(pkt[a:a + 40])
            if a + 40 < len(pkt):
                wait_for(lambda: g.req_cons == g.req_prod, "piece at %d taken" % a)
        eq(recv_reply(g), (XS_WRITE, 999, 0, b"OK\0"), "reply to the pieces")
        eq(g.read("lx/pieces"), b"p" * 300, "value written in pieces")
        eq(g.read("lx/n19"), b"value 19", "value written header-first")
        eq(g.error, XENSTORE_ERROR_NONE, "error indicator")


def test_split_packets():
    with world((5, 6)) as w:
        g = w.guests[0]
        # One byte per update, each signalled.
        g.send_bytes(RawClient.packet(XS_WRITE, b"split/a\0hello", 101), chunk=1)
        eq(recv_reply(g), (XS_WRITE, 101, 0, b"OK\0"), "byte-by-byte WRITE")
        # A header split across updates: nothing answers the first part.
        pkt = RawClient.packet(XS_READ, b"split/a\0", 102)
        g.send_bytes(pkt[:7])
        # The start of a request leaves the ring at once (saved in the
        # database), or the guest would not signal for the rest.
        wait_for(lambda: g.req_cons == g.req_prod, "a partial header to leave the ring")
        nothing_for(g, w.guests[1], "a reply to 7 bytes of a header")
        g.send_bytes(pkt[7:12])
        wait_for(lambda: g.req_cons == g.req_prod, "12 bytes of a header to leave the ring")
        nothing_for(g, w.guests[1], "a reply to 12 bytes of a header")
        g.send_bytes(pkt[12:])
        eq(recv_reply(g), (XS_READ, 102, 0, b"hello"), "READ with a split header")
        # The largest payload (4096 bytes) in chunks of 7.
        path = b"split/big\0"
        big = bytes((i * 7 + 3) % 251 + 1 for i in range(4096 - len(path)))
        g.send_bytes(RawClient.packet(XS_WRITE, path + big, 103), chunk=7)
        eq(recv_reply(g), (XS_WRITE, 103, 0, b"OK\0"), "4096-byte WRITE in 7-byte chunks")
        eq(g.read("split/big"), big, "4096-byte WRITE read back")
        # ... and whole: the first update fills the ring exactly (1024 bytes).
        big2 = bytes(reversed(big))
        g.send_bytes(RawClient.packet(XS_WRITE, path + big2, 104))
        eq(recv_reply(g), (XS_WRITE, 104, 0, b"OK\0"), "4096-byte WRITE, full ring updates")
        eq(g.read("split/big"), big2, "second 4096-byte WRITE read back")
        eq(g.error, XENSTORE_ERROR_NONE, "error indicator")
        # Pipelined: many requests in one stream, replies in order.
        reqs, want = [], []
        for i in range(40):
            rid = 1000 + i
            if i % 4 == 0:
                reqs.append(RawClient.packet(XS_WRITE, b"pipe/n%d\0v%d" % (i, i), rid))
                want.append((XS_WRITE, rid, 0, b"OK\0"))
            elif i % 4 == 1:
                reqs.append(RawClient.packet(XS_READ, b"pipe/n%d\0" % (i - 1), rid))
                want.append((XS_READ, rid, 0, b"v%d" % (i - 1)))
            elif i % 4 == 2:
                reqs.append(RawClient.packet(XS_READ, b"pipe/missing%d\0" % i, rid))
                want.append((XS_ERROR, rid, 0, b"ENOENT\0"))
            else:
                reqs.append(RawClient.packet(XS_GET_DOMAIN_PATH, b"5\0", rid))
                want.append((XS_GET_DOMAIN_PATH, rid, 0, b"/local/domain/5\0"))
        g.send_bytes(b"".join(reqs[:10]))           # one update, one signal
        g.send_bytes(b"".join(reqs[10:]), chunk=5)  # spread over many
        got = [recv_reply(g) for _ in reqs]
        eq(got, want, "pipelined replies")
        nothing_more(g, "extra data after the pipelined replies")
        # Header-only packets: 64 fill the ring, more than a batch per pass.
        g.send_bytes(b"".join(HEADER.pack(XS_GET_DOMAIN_PATH, 3000 + i, 0, 0)
                              for i in range(300)))
        for i in range(300):
            t, rid, tid, p = recv_reply(g)
            eq((rid, tid), (3000 + i, 0), "header-only packet %d" % i)
            check(t in (XS_GET_DOMAIN_PATH, XS_ERROR), "reply type %d" % t)
        nothing_more(g, "extra data after the header-only replies")


def test_replies_larger_than_the_ring():
    with world() as w:
        g = w.guests[0]
        value = bytes(b"0123456789abcdef"[i % 16] for i in range(4000))
        g.write("big", value)
        # The reply (16 + 4000 bytes) fills the ring and waits for room.
        g.send_bytes(RawClient.packet(XS_READ, b"big\0", 7))
        wait_for(lambda: g.rsp_avail() == RING_SIZE, "a full response ring")
        eq(recv_reply(g), (XS_READ, 7, 0, value), "4000-byte value over the ring")
        # A DIRECTORY reply of 400 children (4000 bytes), made with one
        # pipelined burst of MKDIRs.
        names = [b"child-%03d" % i for i in range(400)]
        g.send_bytes(b"".join(RawClient.packet(XS_MKDIR, b"dir/" + n + b"\0", 2000 + i)
                              for i, n in enumerate(names)))
        for i in range(len(names)):
            eq(recv_reply(g), (XS_MKDIR, 2000 + i, 0, b"OK\0"), "MKDIR %d" % i)
        kids = g.directory("dir")
        eq(sorted(kids), names, "DIRECTORY of 400 children")
        # Two big replies back to back, read by a slow guest in small bites.
        g.send_bytes(RawClient.packet(XS_READ, b"big\0", 8) +
                     RawClient.packet(XS_DIRECTORY, b"dir\0", 9))
        stream = b""
        want_len = 2 * HEADER.size + len(value) + sum(len(n) + 1 for n in names)
        deadline = time.monotonic() + 10
        while len(stream) < want_len:
            check(time.monotonic() < deadline, "slow reader: %d of %d bytes"
                  % (len(stream), want_len))
            avail = g.rsp_avail()
            if not avail:
                g.wait_notify(0.05)
                continue
            n = min(avail, 100)
            stream += ring_peek(g, n)
            g.rsp_cons = g.rsp_cons + n
            g.notify()
        eq(stream[:HEADER.size + len(value)],
           HEADER.pack(XS_READ, 8, 0, len(value)) + value, "first big reply")
        t, rid, tid, ln = HEADER.unpack(stream[HEADER.size + len(value):][:HEADER.size])
        eq((t, rid, tid), (XS_DIRECTORY, 9, 0), "second big reply's header")
        eq(sorted(split_strings(stream[2 * HEADER.size + len(value):])), names,
           "second big reply's children")
        eq(g.error, XENSTORE_ERROR_NONE, "error indicator")


def push_what_fits(g, data, sent):
    """Write as much of data[sent:] as the request ring takes now."""
    k = min(g.req_space(), len(data) - sent)
    if k:
        g.send_bytes(data[sent:sent + k])
    return sent + k


def test_flow_control_stalled_reader():
    """Replies pile up for a guest that does not read them: above 256 KiB
    queued the daemon stops taking requests off the ring (conn/conn.h),
    and takes them again once the guest has drained the replies."""
    with world((5, 6)) as w:
        g, other = w.guests
        value = b"f" * 4000
        g.write("big", value)
        n = 300                             # 300 x 4016 bytes of replies
        data = b"".join(RawClient.packet(XS_READ, b"big\0", 500 + i) for i in range(n))
        sent, last = 0, time.monotonic()
        while sent < len(data) and time.monotonic() - last < 0.3:
            was = sent
            sent = push_what_fits(g, data, sent)
            if sent != was:
                last = time.monotonic()
            else:
                g.wait_notify(0.02)
        print("# the daemon stopped taking requests after %d of %d bytes" % (sent, len(data)))
        check(sent < len(data), "the daemon took every request while 1.2 MB of "
              "replies waited")
        eq(g.req_space(), 0, "the request ring is left full")
        eq(g.rsp_avail(), RING_SIZE, "the response ring is full")
        eq(other.read("/tool/alive"), b"yes", "another guest meanwhile")
        w.check_alive()
        for i in range(n):
            eq(recv_reply(g), (XS_READ, 500 + i, 0, value), "reply %d of %d" % (i, n))
            sent = push_what_fits(g, data, sent)
        eq(sent, len(data), "every request was sent")
        eq(g.req_cons, g.req_prod, "every request was taken in the end")
        nothing_more(g, "extra replies")
        eq(g.error, XENSTORE_ERROR_NONE)


def test_watch_events_held_back_for_a_stalled_ring():
    """docs/watches.md, slow readers: past 1 MiB of unread output a watch's
    further events are held back, and one event with the watch's own path
    follows once the guest has read its queue."""
    with world() as w:
        g, c = w.guests[0], w.c
        g.watch("data", "t")
        eq(g.next_event(), (b"data", b"t"))
        name = b"n" * 200
        n = 6000                            # ~230 bytes per event: > 1 MiB
        c.send_raw(b"".join(RawClient.packet(
            XS_WRITE, b"/local/domain/5/data/%s%d\0v" % (name, i), 9000 + i)
            for i in range(n)))
        for i in range(n):
            eq(c.recv_packet(), (XS_WRITE, 9000 + i, 0, b"OK\0"), "socket write %d" % i)
        got = []
        while True:
            try:
                got.append(g.next_event(timeout=1.0))
            except TimeoutError:
                break
        check(len(got) >= 2, "only %d events" % len(got))
        eq(got[-1], (b"data", b"t"), "the last event: the watch's own path")
        head = got[:-1]
        eq(head, [(b"data/%s%d" % (name, i), b"t") for i in range(len(head))],
           "events before the hold-back, in order")
        print("# %d events delivered of %d writes, then the watch's own path"
              % (len(head), n))
        check(len(head) * 230 >= 1 << 20, "only %d events before the hold-back" % len(head))
        check(len(head) < n, "nothing was held back")
        # The watch keeps working.
        c.write("/local/domain/5/data/later", "1")
        eq(g.next_event(), (b"data/later", b"t"))


def test_features_restricted_before_introduce():
    with world((5, 6), do_introduce=False) as w:
        c = w.c
        no_reconnect, no_error = w.guests
        c.expect_ack(XS_SET_FEATURE, b"5\0%d\0" % XENSTORE_SERVER_FEATURE_ERROR)
        c.expect_ack(XS_SET_FEATURE, b"6\0%d\0" % XENSTORE_SERVER_FEATURE_RECONNECTION)
        for g in w.guests:
            w.introduce_with_home(g)
        eq(no_reconnect.server_features, XENSTORE_SERVER_FEATURE_ERROR)
        eq(no_error.server_features, XENSTORE_SERVER_FEATURE_RECONNECTION)
        c.expect_error(XS_SET_FEATURE, b"5\0" b"15\0", "EBUSY")
        # Without the reconnection feature, connection = 1 is not acted on.
        no_reconnect.write("x", "1")
        no_reconnect.connection = XENSTORE_RECONNECT
        no_reconnect.notify()
        eq(no_reconnect.read("x"), b"1", "served while asking to reconnect")
        eq(no_reconnect.connection, XENSTORE_RECONNECT, "connection acted on")
        no_reconnect.connection = XENSTORE_CONNECTED
        # With it, but without the error feature: the error is not written.
        no_error.write("y", "1")
        no_error.req_prod = no_error.req_cons + 2000
        no_error.notify()
        # Nothing in the page tells: the daemon's log does.
        wait_for(lambda: "domain 6: impossible ring index" in w.d.log(),
                 "the daemon to log dom6's impossible ring index")
        no_error.req_prod = no_error.req_cons
        no_error.send_bytes(RawClient.packet(XS_READ, b"y\0", 4))
        nothing_for(no_error, no_reconnect, "served after impossible indices")
        eq(no_error.error, XENSTORE_ERROR_NONE, "error written though not offered")
        no_error.reconnect()
        eq(no_error.read("y"), b"1", "served again after reconnecting")


def test_watches_over_the_ring():
    with world() as w:
        g, c = w.guests[0], w.c
        g.watch("data", "t")
        eq(g.next_event(), (b"data", b"t"), "initial event of a relative watch")
        c.write("/local/domain/5/data/x", "1")
        eq(g.next_event(), (b"data/x", b"t"), "relative watch, socket client's write")
        g.watch("/local/domain/5/abs", "a")
        eq(g.next_event(), (b"/local/domain/5/abs", b"a"),
           "initial event of an absolute watch")
        c.write("/local/domain/5/abs/y", "2")
        eq(g.next_event(), (b"/local/domain/5/abs/y", b"a"), "absolute watch's event")
        g.write("data/own", "3")
        eq(g.next_event(), (b"data/own", b"t"), "event from the guest's own write")
        c.rm("/local/domain/5/data/x")
        eq(g.next_event(), (b"data/x", b"t"), "event of a removal")
        # Depth 0 (feature 4): the node only.
        g.watch("d0", "z\0" "0")
        eq(g.next_event(), (b"d0", b"z"), "initial event of a depth-0 watch")
        c.write("/local/domain/5/d0/below", "4")
        c.write("/local/domain/5/d0", "5")
        eq(g.next_event(), (b"d0", b"z"), "depth-0 watch: the node itself only")
        # Events go out while the guest is not reading: queued, in order.
        for i in range(60):
            c.write("/local/domain/5/data/q%d" % i, "x" * 50)
        for i in range(60):
            eq(g.next_event(), (b"data/q%d" % i, b"t"), "queued event %d" % i)
        g.unwatch("data", "t")
        c.write("/local/domain/5/data/after", "1")
        nothing_more(g, "an event after UNWATCH")
        check(not g.events, "stray events: %r" % g.events)


def test_reconnection():
    with world((5, 6)) as w:
        g, other, c = w.guests[0], w.guests[1], w.c
        g.watch("data", "t")
        eq(g.next_event(), (b"data", b"t"))
        tx = g.transaction_start()
        g.write("data/intx", "1", tx_id=tx)
        other.watch("/local/domain/6/o", "keep")
        eq(other.next_event(), (b"/local/domain/6/o", b"keep"))
        partial = RawClient.packet(XS_WRITE, b"data/partial\0zzz", 55)
        g.send_bytes(partial[:20])
        wait_for(lambda: g.req_cons == g.req_prod, "the partial packet to leave the ring")
        n0 = g.notified
        g.reconnect()
        eq(g.connection, XENSTORE_CONNECTED, "connection after reconnect")
        eq((g.req_cons, g.req_prod, g.rsp_cons, g.rsp_prod), (0, 0, 0, 0),
           "indices after reconnect")
        eq(g.error, XENSTORE_ERROR_NONE, "error after reconnect")
        check(g.notified > n0 or g.wait_notify(2.0),
              "the daemon signals the end of the reconnection")
        # The old watch is gone.
        c.write("/local/domain/5/data/z", "after")
        nothing_more(g, "the old watch fired after the reconnection")
        # The old transaction is gone, and its write never happened.
        g.expect_error(XS_READ, b"data/z\0", "ENOENT", tx_id=tx)
        g.expect_error(XS_TRANSACTION_END, b"T\0", "ENOENT", tx_id=tx)
        g.expect_error(XS_READ, b"data/intx\0", "ENOENT")
        # The partial packet was dropped: a new request works.
        eq(g.read("data/z"), b"after")
        g.expect_error(XS_READ, b"data/partial\0", "ENOENT")
        g.watch("data", "t")        # not EEXIST: the old one is really gone
        eq(g.next_event(), (b"data", b"t"))
        c.write("/local/domain/5/data/w", "1")
        eq(g.next_event(), (b"data/w", b"t"))
        check(not g.events, "stray events: %r" % g.events)
        # The other guest kept its watch.
        c.write("/local/domain/6/o", "1")
        eq(other.next_event(), (b"/local/domain/6/o", b"keep"), "other guest's watch")
        # A reconnection while a reply is only half delivered.
        value = b"r" * 3000
        g.write("data/big", value)
        g.send_bytes(RawClient.packet(XS_READ, b"data/big\0", 77))
        wait_for(lambda: g.rsp_avail() == RING_SIZE, "a full response ring")
        g.reconnect()
        eq((g.req_cons, g.req_prod, g.rsp_cons, g.rsp_prod), (0, 0, 0, 0),
           "indices after reconnect with a reply pending")
        nothing_more(g, "the rest of the old reply came after reconnect")
        eq(g.read("data/big"), value, "after the second reconnect")
        eq(w.c.expect_ok(XS_IS_DOMAIN_INTRODUCED, b"5\0"), b"T\0")


def test_ringidx_request_indices():
    with world((5, 6, 7)) as w:
        bad_prod, bad_cons, good = w.guests
        for g in (bad_prod, bad_cons):
            g.write("x", "before")
            g.watch("x", "t")
            eq(g.next_event(), (b"x", b"t"))
        # More than 1024 unread bytes.
        n0 = bad_prod.notified
        bad_prod.req_prod = bad_prod.req_cons + RING_SIZE + 1
        bad_prod.notify()
        wait_error(bad_prod, XENSTORE_ERROR_RINGIDX)
        check(bad_prod.wait_notify(2.0) or bad_prod.notified > n0,
              "the daemon signals after setting the error indicator")
        # The consumer index ahead of the producer (2^32 - 1 unread).
        bad_cons.req_cons = bad_cons.req_prod + 1
        bad_cons.notify()
        wait_error(bad_cons, XENSTORE_ERROR_RINGIDX)
        w.check_alive()
        eq(good.read("/tool/alive"), b"yes", "another guest is served")
        for g in (bad_prod, bad_cons):
            # The domain stays known; its ring is no longer read.
            eq(w.c.expect_ok(XS_IS_DOMAIN_INTRODUCED, b"%d\0" % g.domid), b"T\0")
            g.req_prod = g.req_cons
            cons = g.req_cons
            g.send_bytes(RawClient.packet(XS_READ, b"x\0", 9))
            nothing_for(g, good, "dom%d answered after RINGIDX" % g.domid)
            eq(g.req_cons, cons, "dom%d's ring was read after RINGIDX" % g.domid)
            eq(g.error, XENSTORE_ERROR_RINGIDX)
        # Its watches went with the connection.
        w.c.write("/local/domain/5/x", "changed")
        nothing_for(bad_prod, good, "event to a guest in error")
        eq(good.read("/tool/alive"), b"yes")
        eq(good.error, XENSTORE_ERROR_NONE)


def test_ringidx_response_indices():
    with world((5, 6, 7)) as w:
        behind, ahead, good = w.guests
        value = b"v" * 3000
        for g, bad in ((behind, lambda g: g.rsp_prod - 2000),
                       (ahead, lambda g: g.rsp_prod + 1)):
            g.write("big", value)
            g.send_bytes(RawClient.packet(XS_READ, b"big\0", 3))
            wait_for(lambda: g.rsp_avail() == RING_SIZE, "a full response ring")
            g.rsp_cons = bad(g)        # while 2000 more reply bytes are queued
            g.notify()
            wait_error(g, XENSTORE_ERROR_RINGIDX)
            w.check_alive()
            eq(good.read("/tool/alive"), b"yes", "another guest is served")
            # The rest of the reply went with the connection: once the
            # guest has "consumed" everything, nothing more comes.
            g.rsp_cons = g.rsp_prod
            g.notify()
            nothing_for(g, good, "dom%d's response ring written after RINGIDX" % g.domid)
        eq(good.error, XENSTORE_ERROR_NONE)


def test_proto_error():
    with world((5, 6, 7)) as w:
        g, huge, good = w.guests
        # A header announcing 4097 bytes: the error shows before the payload.
        g.send_bytes(HEADER.pack(XS_WRITE, 1, 0, XENSTORE_PAYLOAD_MAX + 1))
        wait_error(g, XENSTORE_ERROR_PROTO)
        huge.send_bytes(RawClient.packet(XS_READ, b"/tool/alive\0", 1))
        eq(recv_reply(huge), (XS_READ, 1, 0, b"yes"), "before the bad header")
        huge.send_bytes(HEADER.pack(XS_READ, 2, 0, 0xFFFFFFFF) + b"\0" * 64)
        wait_error(huge, XENSTORE_ERROR_PROTO)
        w.check_alive()
        eq(good.read("/tool/alive"), b"yes", "another guest is served")
        for b in (g, huge):
            b.send_bytes(RawClient.packet(XS_READ, b"/tool/alive\0", 5))
            nothing_for(b, good, "dom%d answered after PROTO" % b.domid)
            eq(w.c.expect_ok(XS_IS_DOMAIN_INTRODUCED, b"%d\0" % b.domid), b"T\0")
        eq(good.error, XENSTORE_ERROR_NONE)
        good.write("after", "1")


def test_reconnect_after_error():
    with world((5, 6)) as w:
        g, p = w.guests
        g.watch("x", "t")
        eq(g.next_event(), (b"x", b"t"))
        g.req_prod = g.req_cons + 5000
        g.notify()
        wait_error(g, XENSTORE_ERROR_RINGIDX)
        p.send_bytes(HEADER.pack(XS_READ, 1, 0, 10000))
        wait_error(p, XENSTORE_ERROR_PROTO)
        for b in (g, p):
            b.reconnect()
            eq(b.error, XENSTORE_ERROR_NONE, "dom%d: reconnection clears the error" % b.domid)
            eq(b.connection, XENSTORE_CONNECTED)
            eq((b.req_cons, b.req_prod, b.rsp_cons, b.rsp_prod), (0, 0, 0, 0),
               "dom%d: indices after reconnect" % b.domid)
            b.write("back", "1")
            eq(b.read("back"), b"1", "dom%d served again" % b.domid)
        # The watch set before the error did not survive it.
        w.c.write("/local/domain/5/x", "1")
        nothing_more(g, "a watch survived the error")
        g.expect_error(XS_UNWATCH, b"x\0t\0", "ENOENT")
        # And the ring can fail and recover again.
        g.req_cons = g.req_prod + 3
        g.notify()
        wait_error(g, XENSTORE_ERROR_RINGIDX)
        g.reconnect()
        eq(g.read("back"), b"1")


def test_introduce_after_release_of_a_failed_ring():
    """A ring released in error and introduced again is served, and its
    error indicator says so (xenstore-ring.txt: 0, "connection is valid")."""
    with world((5, 6)) as w:
        g, again = w.guests
        for b in (g, again):
            b.req_prod = b.req_cons + 4000
            b.notify()
            wait_error(b, XENSTORE_ERROR_RINGIDX)
        # INTRODUCE of a domain still known: a fresh connection.
        w.c.expect_ack(XS_INTRODUCE, w.fx.introduce_args(again))
        eq(again.error, XENSTORE_ERROR_NONE, "error after INTRODUCE of a served domain")
        eq(again.read("/tool/alive"), b"yes", "served after INTRODUCE again")
        # RELEASE, then INTRODUCE of the same page.
        w.c.expect_ack(XS_RELEASE, b"5\0")
        eq(w.c.expect_ok(XS_IS_DOMAIN_INTRODUCED, b"5\0"), b"F\0")
        w.introduce_with_home(g)
        eq((g.req_cons, g.req_prod, g.rsp_cons, g.rsp_prod), (0, 0, 0, 0),
           "indices after INTRODUCE")
        eq(g.read("/tool/alive"), b"yes", "served after RELEASE and INTRODUCE")
        eq(g.error, XENSTORE_ERROR_NONE,
           "error indicator of a ring served again after RELEASE and INTRODUCE")


def test_page_evtchn_port_field():
    def prepare(guests):
        guests[0].evtchn_port = 777     # written by Xen (dom0less)

    with world((5, 6), prepare=prepare) as w:
        g, plain = w.guests
        check(g.port != 777, "the INTRODUCE port differs from the page's")
        pkt = RawClient.packet(XS_READ, b"/tool/alive\0", 31)
        g.send_bytes(pkt)       # signalled on the INTRODUCE port: not bound
        nothing_for(g, plain, "served on the INTRODUCE port, not the page's")
        eq(g.req_cons, 0, "the ring was read after a signal on the wrong port")
        g.port = 777
        g.notify()
        eq(recv_reply(g), (XS_READ, 31, 0, b"yes"), "served after a signal on the page's port")
        g.write("p", "1")
        eq(g.read("p"), b"1")
        check(g.wait_notify(2.0) or g.notified > 0, "the daemon signals the guest")
        eq(g.wrong_signals, [], "signals from the daemon on another port than the page's")
        # A guest without the field is served on its INTRODUCE port.
        eq(plain.evtchn_port, 0)
        eq(plain.read("/tool/alive"), b"yes")
        eq(plain.wrong_signals, [])


def test_signal_storm():
    with world((5, 6)) as w:
        storm, victim = w.guests
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sent = [0]
        errors = []

        def storm_body():
            try:
                for _ in range(5000):
                    _send_signal(sock, w.fx.evtchn_path, storm.domid, storm.port, 10.0)
                    sent[0] += 1
            except BaseException as e:      # noqa: BLE001
                errors.append(repr(e))

        t = threading.Thread(target=storm_body, daemon=True)
        t.start()
        worst, during = 0.0, 0
        try:
            i = 0
            while t.is_alive() or during < 5:
                i += 1
                t0 = time.monotonic()
                victim.write("v", b"%d" % i)
                eq(victim.read("v"), b"%d" % i)
                dt = time.monotonic() - t0
                worst = max(worst, dt)
                if t.is_alive():
                    during += 1
                check(i < 100000, "storm never ended")
        finally:
            t.join(20)
            sock.close()
        eq(errors, [], "storm sender")
        eq(sent[0], 5000, "signals sent")
        print("# %d victim round trips during the storm, worst %.3f s" % (during, worst))
        check(during >= 1, "no victim request ran during the storm")
        check(worst < 1.0, "victim round trip took %.3f s during the storm" % worst)
        w.check_alive()
        eq(storm.error, XENSTORE_ERROR_NONE)
        eq((storm.req_cons, storm.req_prod), (0, 0), "the storm's empty ring")
        storm.write("after", "1")
        eq(storm.read("after"), b"1", "the storming guest is still served")


def test_garbage_requests():
    rng = random.Random(20240611)
    with world((5, 6)) as w:
        g, other = w.guests
        types = list(range(0, 30)) + [0x1234, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]
        rid = 1
        for batch in range(6):
            reqs, sent = [], []
            for _ in range(50):
                t = rng.choice(types)
                if t in (XS_INTRODUCE, XS_RELEASE, XS_SET_TARGET, XS_RESUME,
                         XS_CONTROL) and rng.random() < 0.5:
                    t = rng.choice(types)
                n = rng.choice((0, 1, 2, 5, 17, 100, 600))
                if rng.random() < 0.5:
                    payload = bytes(rng.randrange(256) for _ in range(n))
                else:       # string-ish: NUL-separated printable words
                    words = [bytes(rng.choice(b"abc/@-_.0123~ ") for _ in range(rng.randrange(8)))
                             for _ in range(rng.randrange(4))]
                    payload = b"\0".join(words) + (b"\0" if rng.random() < 0.7 else b"")
                tx = 0 if rng.random() < 0.8 else rng.choice((1, 2, 0xFFFFFFFF))
                reqs.append(RawClient.packet(t, payload, rid, tx))
                sent.append((t, rid, tx, payload))
                rid += 1
            g.send_bytes(b"".join(reqs))
            for t, r, tx, payload in sent:
                rt, rrid, rtid, rp = recv_reply(g)
                eq((rrid, rtid), (r, tx), "reply to type %d %s" % (t, short(payload)))
                check(rt in (t, XS_ERROR), "type %d %s: reply type %d %s"
                      % (t, short(payload), rt, short(rp)))
                if rt == XS_ERROR:
                    check(rp.endswith(b"\0") and rp[:-1] in ERRNO_NAMES,
                          "type %d: error payload %s" % (t, short(rp)))
                elif t >= 30:
                    raise AssertionError("unknown type %#x succeeded: %s" % (t, short(rp)))
            eq(g.error, XENSTORE_ERROR_NONE, "error indicator after batch %d" % batch)
            w.check_alive()
            eq(other.read("/tool/alive"), b"yes")
        # Unknown types answer an error, specifically.
        for t in (0x1234, 0xFFFFFFFF, XS_WATCH_EVENT, XS_ERROR):
            tt, rp = g.request(t, b"x\0")
            eq(tt, XS_ERROR, "reply type to type %#x" % t)
        w.check_alive()
        g.write("still", "ok")
        eq(g.read("still"), b"ok")
        eq(w.c.expect_ok(XS_IS_DOMAIN_INTRODUCED, b"5\0"), b"T\0")


def test_dom0_ring():
    with world((5,), dom0=True) as w:
        d0, g = w.dom0, w.guests[0]
        wait_for(lambda: d0.server_features == ALL_FEATURES, "dom0's server_features")
        eq(d0.connection, XENSTORE_CONNECTED)
        d0.write("/tool/dom0", "kernel")
        eq(d0.read("/tool/dom0"), b"kernel", "dom0's ring")
        eq(d0.expect_ok(XS_IS_DOMAIN_INTRODUCED, b"5\0"), b"T\0",
           "dom0's ring is privileged")
        eq(g.read("/tool/alive"), b"yes", "a guest alongside dom0's ring")
        eq(w.c.read("/tool/dom0"), b"kernel", "socket client sees dom0's write")
        d0.watch("/local/domain/5", "g")
        eq(d0.next_event(), (b"/local/domain/5", b"g"))
        g.write("hello", "1")
        eq(d0.next_event(), (b"/local/domain/5/hello", b"g"), "dom0 sees the guest's write")


if __name__ == "__main__":
    run(globals())
