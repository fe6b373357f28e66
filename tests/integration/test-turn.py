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
import sys
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


if __name__ == "__main__":
    run(globals())
