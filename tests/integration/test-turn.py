#!/usr/bin/python3
"""The loop turn's commit, through the real daemon's loop and sockets.

Every reply and watch event of a turn waits for the turn's one commit (with
the database), or for the end of its batch (without one): either way each
client must get every reply, in order, and a watcher every event, when
many clients pipeline at once.  tests/unit/test-turn.c proves the order
of commit and sends; this checks nothing is lost or held forever on the
way out of the real binary's loop (daemon/main.c's serve()).
"""

import os
import shutil
import sys
import tempfile
import threading

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xstest import *  # noqa: E402,F401,F403

CLIENTS = 8
WRITES = 200


def pipelining_clients_and_a_watcher(extra_args):
    with Daemon(extra_args) as d:
        w = EventClient(d.socket_path)
        w.watch(b"/turn", b"tok")
        eq(w.next_event(what="the watch's first event"), ev("/turn", "tok"))
        clients = [RawClient(d.socket_path, timeout=20) for _ in range(CLIENTS)]
        problems = []

        def run(i, c):
            try:
                reqs = b"".join(
                    RawClient.packet(XS_WRITE, b"/turn/c%d/k%d\0v" % (i, k),
                                     req_id=k + 1)
                    for k in range(WRITES))
                c.send_raw(reqs)
                for k in range(WRITES):
                    t, rid, _, p = c.recv_packet()
                    if t != XS_WRITE or rid != k + 1:
                        problems.append("client %d: reply %d is %s %d %r"
                                        % (i, k + 1, type_name(t), rid, p))
                        return
            except Exception as e:  # reported below, with the others
                problems.append("client %d: %s" % (i, e))

        threads = [threading.Thread(target=run, args=(i, c))
                   for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        check(not problems, "; ".join(problems[:4]))
        want = {b"/turn/c%d/k%d" % (i, k)
                for i in range(CLIENTS) for k in range(WRITES)}
        seen = set()
        while want - seen:
            path, token = w.next_event(what="%d more events" % len(want - seen))
            eq(token, b"tok", "token")
            seen.add(path)
        eq(clients[3].read(b"/turn/c3/k%d" % (WRITES - 1)), b"v", "a value")
        for c in clients:
            c.close()
        w.close()


def test_every_reply_and_event_of_many_pipelining_clients_arrives_with_the_database():
    pipelining_clients_and_a_watcher([])


def test_every_reply_and_event_of_many_pipelining_clients_arrives_without_the_database():
    pipelining_clients_and_a_watcher(["--no-database"])


BACKLOG = 3000   # WATCHes a client sends at once
CONN_BATCH_MIN = 8   # conn/conn.h


def test_a_neighbour_is_served_inside_a_pipelining_clients_batch():
    """A client with a backlog of slow requests (WATCHes, each longer than
    a slice of conn.h's CONN_SLICE_NS here) has a neighbour's waiting
    request served between any two of its own, through the socket
    transport's read_now (server/waiting.c), not only at the end of each
    batch (at least CONN_BATCH_MIN of them).  The trace gives the order
    requests were handled in: the number of the busy client's requests
    handled between two of the neighbour's is then mostly one or two (the
    neighbour's next READ comes while the busy client's next slice runs),
    where serving only between batches makes it a batch or more."""
    if skip_in_upstream_mode("our daemon's scheduling of connections"):
        return
    tmp = tempfile.mkdtemp(prefix="xsturn-")
    trace = os.path.join(tmp, "trace")
    with Daemon(["--trace-file", trace]) as d:
        busy = RawClient(d.socket_path, timeout=30)
        nb = RawClient(d.socket_path, timeout=30)
        nb.write(b"/turn-nb", b"x")
        problems = []
        done = threading.Event()

        def take_replies():
            try:
                replies = 0
                while replies < BACKLOG:
                    t, _, _, p = busy.recv_packet()
                    if t == XS_WATCH:
                        replies += 1
                    elif t != XS_WATCH_EVENT:
                        problems.append("busy client: %s %r" % (type_name(t), p))
                        return
            except Exception as e:  # reported below
                problems.append("busy client: %s" % e)
            finally:
                done.set()

        reader = threading.Thread(target=take_replies)
        reader.start()
        busy.send_raw(b"".join(
            RawClient.packet(XS_WATCH, b"/turn-w/%d\0t\0" % k, req_id=k + 1)
            for k in range(BACKLOG)))
        reads = 0
        while not done.is_set():
            eq(nb.read(b"/turn-nb"), b"x", "the neighbour's READ")
            reads += 1
        reader.join(30)
        check(not problems, "; ".join(problems[:4]))
        busy.close()
        nb.close()
    with open(trace, "rb") as f:
        lines = f.read().decode(errors="replace").splitlines()
    shutil.rmtree(tmp)
    handled = [l.split() for l in lines if " IN " in l]
    busy_id = next(f[2] for f in handled if "WATCH" in f)
    gaps, since = [], None
    for f in handled:
        if f[2] == busy_id:
            since = (since or 0) + 1
        elif "READ" in f and since is not None:
            gaps.append(since)
            since = 0
    # Only the neighbour's READs made while the backlog lasted count.
    while gaps and gaps[-1] == 0:
        gaps.pop()
    check(len(gaps) >= 20, "only %d of the neighbour's %d READs came during "
          "the backlog" % (len(gaps), reads))
    median = sorted(gaps)[len(gaps) // 2]
    check(median < CONN_BATCH_MIN,
          "the neighbour waited for batches, not slices: a median of %d of "
          "the busy client's requests between two of its READs (%s)"
          % (median, gaps[:40]))


if __name__ == "__main__":
    run(globals())
