#!/usr/bin/python3
"""The soak: a host's life at speed, every reply checked against a model.

`make soak` (SOAK_MINUTES, 10 by default) runs the daemon as deployed (its
defaults, the database on) with guests over the Xen test double
(tests/fakexen) and drives, one step at a time and at random (seeded; the
seed is printed and SOAK_SEED replays it):

  - toolstack writes, reads and removals of nodes under /soak, over a
    socket, watched (recursively) by the same connection;
  - transactions from two connections incrementing one counter, so that
    they conflict; each retries on EAGAIN, and the counter must equal the
    commits acknowledged;
  - domains booted (INTRODUCE, a home, the guest's own writes and a watch
    on them) and torn down (the domain dies: its nodes must go, and
    @releaseDomain fire);
  - guests' reads and writes over their rings;
  - live updates (xenstore-control) and kill -9 restarts at random
    moments (about one of each every two minutes): socket clients reconnect after a kill, guests carry on over
    their rings.

The model holds what every acknowledged request left; each READ is
checked against it, and the whole of it against the daemon every 200
steps and after each restart.  The daemon's RSS and open descriptors are
sampled; after the warm-up (the first fifth of each process's life) they
must stay flat (soak.flat says how that is judged).  The summary (steps per kind, restarts, memory and
descriptors) is printed and, with --summary FILE, written as Markdown
(docs/soak.md holds the one of a 10-minute run).

Usage: soak.py [--seconds N] [--summary FILE]    (exit status 1: a check failed)
"""

import argparse
import importlib.machinery
import os
import random
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from xstest import *  # noqa: E402,F401,F403
from fakexen import *  # noqa: E402,F401,F403

# The kill -9 rig of the durability tests (a daemon that can be killed and
# started again on the same directory, with the same FakeXen world).
durability = importlib.machinery.SourceFileLoader(
    "durability", os.path.join(HERE, "..", "integration", "test-durability.py")).load_module()

XSCONTROL = "/usr/lib/xen-4.17/bin/xenstore-control"
KEYS = 150                  # /soak/k<i>: overwritten, removed, made again
GUESTS_MAX = 6              # live guests at a time
GUEST_KEYS = 20
COUNTER = "/soak-counter"
CHECK_EVERY = 200           # steps between whole-model checks
WEIGHTS = {
    "write": 30, "read": 30, "rm": 8, "txn": 6, "guest_op": 20,
    "boot": 3, "teardown": 2,
}
# Live updates and kill -9 restarts come at random moments in time: the
# first of each at a set share of the run (so that a short run has both),
# then every RESTART_MEAN s on average.
RESTART_MEAN = 120.0


class Soak:
    def __init__(self, seconds, seed):
        self.seconds = seconds
        self.rng = random.Random(seed)
        self.seed = seed
        self.model = {}         # path -> value (bytes) of acknowledged state
        self.counter = 0
        self.guests = {}        # domid -> guest
        self.free_domids = list(range(10, 60))   # a domid comes back after
                                                  # its domain died
        self.steps = {k: 0 for k in list(WEIGHTS) + ["live_update", "kill9"]}
        self.retries = 0
        self.samples = []       # (life, t, rss_kb, fds)
        self.life = 0
        self.life_start = 0.0
        self.checks = 0

    # -- the daemon's resources
    def sample(self, now):
        pid = self.b.d.pid
        try:
            # The heap's resident pages: RssShmem is the journal's and
            # the checkpoint's mapped pages, which grow to the journal's
            # limit and fall at each compaction.
            with open("/proc/%d/status" % pid) as f:
                rss = next(int(l.split()[1]) for l in f if l.startswith("RssAnon:"))
            fds = len(os.listdir("/proc/%d/fd" % pid))
        except OSError:
            return
        self.samples.append((self.life, now - self.life_start, rss, fds))

    def new_life(self, now):
        self.life += 1
        self.life_start = now

    # -- checks
    def read_socket(self, path):
        rt, _, _, rp = self.b.c.op(XS_READ, path.encode() + b"\0")
        if rt == XS_ERROR:
            eq(rp, b"ENOENT\0", "READ %s" % path)
            return None
        return rp

    def check_all(self, what):
        self.checks += 1
        for path, value in sorted(self.model.items()):
            eq(self.read_socket(path), value, "%s: %s" % (what, path))
        for i in range(KEYS):
            p = "/soak/k%d" % i
            if p not in self.model:
                eq(self.read_socket(p), None, "%s: %s should not exist" % (what, p))
        eq(self.read_socket(COUNTER), b"%d" % self.counter, "%s: the counter" % what)
        for domid in self.guests:
            check(self.b.c.introduced(domid) == b"T\0", "%s: dom%d introduced" % (what, domid))
        eq(self.b.c.expect_ok(XS_CONTROL, b"check\0"), b"OK\0", "%s: CONTROL check" % what)
        self.b.c.events.clear()

    # -- steps
    def step_write(self):
        path = "/soak/k%d" % self.rng.randrange(KEYS)
        value = b"v%d-%d" % (self.rng.randrange(1 << 30), len(self.model))
        self.b.c.write(path, value)
        self.model[path] = value

    def step_read(self):
        path = "/soak/k%d" % self.rng.randrange(KEYS)
        eq(self.read_socket(path), self.model.get(path), "READ %s" % path)

    def step_rm(self):
        path = "/soak/k%d" % self.rng.randrange(KEYS)
        self.b.c.rm(path)       # OK whether or not it exists (/soak does)
        self.model.pop(path, None)

    def step_txn(self):
        """Two connections increment the counter in overlapping
        transactions: at most one commits first time; each retries."""
        cs = [RawClient(self.b.d.socket_path) for _ in range(2)]
        try:
            pending = list(range(2))
            while pending:
                txs = {}
                for i in pending:
                    tx = int(cs[i].expect_ok(XS_TRANSACTION_START, b"\0").rstrip(b"\0"))
                    v = int(cs[i].expect_ok(XS_READ, COUNTER.encode() + b"\0", tx_id=tx))
                    txs[i] = (tx, v)
                for i in pending:
                    tx, v = txs[i]
                    cs[i].expect_ack(XS_WRITE, COUNTER.encode() + b"\0%d" % (v + 1), tx_id=tx)
                done = []
                for i in pending:
                    rt, _, _, rp = cs[i].op(XS_TRANSACTION_END, b"T\0", tx_id=txs[i][0])
                    if rt == XS_ERROR:
                        eq(rp, b"EAGAIN\0", "a conflicting commit")
                        self.retries += 1
                    else:
                        self.counter += 1
                        done.append(i)
                pending = [i for i in pending if i not in done]
        finally:
            for c in cs:
                c.close()

    def step_boot(self):
        if len(self.guests) >= GUESTS_MAX:
            return self.step_teardown()
        domid = self.free_domids.pop(self.rng.randrange(len(self.free_domids)))
        g = self.b.guest(domid)
        self.b.introduce_with_home(g)
        home = "/local/domain/%d" % domid
        self.model[home] = b""
        for k in range(3):
            g.write("data/k%d" % k, "boot%d" % k)
            self.model["%s/data/k%d" % (home, k)] = b"boot%d" % k
        self.model[home + "/data"] = b""
        g.watch("data", "gw")
        eq(g.next_event(), (b"data", b"gw"), "a new guest's initial event")
        self.guests[domid] = g

    def step_teardown(self):
        if not self.guests:
            return self.step_boot()
        domid = self.rng.choice(sorted(self.guests))
        g = self.guests.pop(domid)
        c = self.b.c
        c.events.clear()
        c.watch_initial("@releaseDomain", "rel")
        self.b.fx.set_state(domid, "dying")
        self.b.fx.virq()
        deadline = time.monotonic() + 10
        while c.next_event(max(0.1, deadline - time.monotonic()),
                           "@releaseDomain") != ev("@releaseDomain", "rel"):
            pass
        c.unwatch("@releaseDomain", "rel")
        self.b.c.events.clear()
        home = "/local/domain/%d" % domid
        for p in [p for p in self.model if p == home or p.startswith(home + "/")]:
            del self.model[p]
        eq(self.read_socket(home), None, "a dead domain's home")
        eq(self.b.c.introduced(domid), b"F\0", "a dead domain is released")
        g.close()
        self.b._made.remove(g)      # the rig closes the others at its end
        self.free_domids.append(domid)

    def step_guest_op(self):
        if not self.guests:
            return self.step_boot()
        domid = self.rng.choice(sorted(self.guests))
        g = self.guests[domid]
        rel = "data/k%d" % self.rng.randrange(GUEST_KEYS)
        path = "/local/domain/%d/%s" % (domid, rel)
        if self.rng.random() < 0.5:
            value = b"g%d" % self.rng.randrange(1 << 30)
            g.write(rel, value)
            self.model[path] = value
        else:
            rt, rp = g.request(XS_READ, rel.encode() + b"\0")
            if rt == XS_ERROR:
                eq(rp, b"ENOENT\0", "guest READ %s" % path)
                rp = None
            eq(rp, self.model.get(path), "guest READ %s" % path)
        g.events.clear()

    def step_live_update(self):
        env = dict(os.environ, XENSTORED_PATH=self.b.d.socket_path)
        r = subprocess.run([XSCONTROL, "live-update", os.path.abspath(daemon_binary())],
                           env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        eq(r.returncode, 0, "xenstore-control live-update: %s" % r.stdout.decode(errors="replace"))
        self.new_life(time.monotonic())
        self.check_all("after a live update")

    def step_kill9(self):
        self.b.restart()
        self.new_life(time.monotonic())
        self.b.c.watch("/soak", "soak")
        self.check_all("after kill -9 and a restart")

    # -- the run
    def run(self):
        kinds = list(WEIGHTS)
        weights = [WEIGHTS[k] for k in kinds]
        with durability.Box(domids=()) as b:
            self.b = b
            b.c.mkdir("/soak")
            b.c.write(COUNTER, "0")
            b.c.watch("/soak", "soak")
            t0 = time.monotonic()
            self.new_life(t0)
            last_sample = 0.0
            n = 0
            due = {"kill9": t0 + 0.4 * self.seconds, "live_update": t0 + 0.7 * self.seconds}
            if os.environ.get("SOAK_RESTARTS") == "0":
                due = {}
            while time.monotonic() - t0 < self.seconds:
                kind = self.rng.choices(kinds, weights)[0]
                for k, at in due.items():
                    if time.monotonic() >= at:
                        kind = k
                        due[k] = at + self.rng.expovariate(1 / RESTART_MEAN)
                        break
                getattr(self, "step_" + kind)()
                self.steps[kind] += 1
                n += 1
                if n % CHECK_EVERY == 0:
                    self.check_all("step %d" % n)
                now = time.monotonic()
                if now - last_sample >= 1.0:
                    self.sample(now)
                    last_sample = now
            self.check_all("the end")
            self.sample(time.monotonic())
            for g in self.guests.values():
                g.close()
        return n

    def flat(self):
        """Per life of 30 samples or more: after the warm-up (its first
        fifth), the median RSS of the last two fifths may not exceed that
        of the two fifths before by more than 10% and 2 MiB (medians, and
        that slack: the compaction thread's buffers, about 1.5 MiB, come
        and go), nor the descriptors their highest by more than 2.
        Returns (ok, lines)."""
        def median(xs):
            xs = sorted(xs)
            return xs[len(xs) // 2]

        ok, lines = True, []
        for life in sorted({s[0] for s in self.samples}):
            ss = [s for s in self.samples if s[0] == life]
            if len(ss) < 30:
                continue
            k = len(ss)
            mid = ss[k // 5:3 * k // 5]
            end = ss[3 * k // 5:]
            rss_m, rss_e = median([s[2] for s in mid]), median([s[2] for s in end])
            fds_m, fds_e = max(s[3] for s in mid), max(s[3] for s in end)
            good = rss_e <= rss_m * 1.1 + 2048 and fds_e <= fds_m + 2
            ok = ok and good
            lines.append("| %d | %.0f s | %d | %.1f MB | %.1f MB | %.1f MB | %d | %d | %s |"
                         % (life, ss[-1][1], k, rss_m / 1024, rss_e / 1024,
                            max(s[2] for s in ss) / 1024, fds_m, fds_e,
                            "flat" if good else "GREW"))
        return ok, lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float,
                    default=float(os.environ.get("SOAK_MINUTES", "10")) * 60)
    ap.add_argument("--summary")
    a = ap.parse_args()
    seed = int(os.environ.get("SOAK_SEED", str(int(time.time()))))
    s = Soak(a.seconds, seed)
    print("soak: %.0f s, seed %d (SOAK_SEED replays it)" % (a.seconds, seed))
    sys.stdout.flush()
    t0 = time.monotonic()
    n = s.run()
    took = time.monotonic() - t0
    ok, lines = s.flat()
    out = ["# Soak", "",
           "The summary of one `make soak` run (tests/soak/soak.py: what it does, and how "
           "each reply is checked against a model of the store).", "",
           "Seed %d, %.0f s, %d steps (%.0f a second), %d whole-model checks, every one "
           "passed; %d transaction retries after EAGAIN; the counter ended at %d."
           % (seed, took, n, n / took, s.checks, s.retries, s.counter), "",
           "| step | count |", "|---|---:|"]
    out += ["| %s | %d |" % (k, v) for k, v in s.steps.items()]
    out += ["", "The daemon's anonymous resident memory (RssAnon: the heap, not the "
            "journal's mapped pages) and open descriptors, per process life of 30 s or "
            "more (a kill -9 or a live update starts a new one), sampled every second, "
            "the warm-up (the first fifth) left out: the median RSS of the middle two "
            "fifths and of the last two, the highest of all, and the most descriptors "
            "open in each part.", "",
            "| life | length | samples | RSS middle | RSS end | RSS highest | fds middle "
            "| fds end | |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---|"] + lines
    text = "\n".join(out) + "\n"
    print(text)
    if a.summary:
        with open(a.summary, "w") as f:
            f.write(text)
    if not ok:
        print("soak: the daemon's memory or descriptors grew after the warm-up")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
