#!/usr/bin/python3
"""Crash points: the daemon killed at every step of a commit and of a
compaction, then the normal daemon on the same files (persist/, the
journal and the tdb checkpoint; docs/durability.md).

build/tests/xenstored-crash is the daemon with crash points compiled in
(persist/crash.h); XENSTORED_CRASH_AT=POINT[:N] makes the Nth pass through
POINT kill it with SIGKILL, as kill -9 would:

  commit-write       a commit's frame is sealed, not written
  commit-half        half of it copied into the journal (a copy cut short)
  commit-written     written, the reply not yet sent
  rotate-renamed     the full journal renamed .journal.old, no new one yet
  rotate-reused      the spare renamed .journal, not yet open (journals
                     that fill within a second of each other: the merged
                     one is kept, its head renewed with a new salt and its
                     frames left there, as .journal.spare, for the next)
  rotate-created     the new journal made, the compaction not started
  checkpoint-block   a new checkpoint (.next) has N blocks of nodes so far
  checkpoint-written the new checkpoint is whole, not renamed over the old
  checkpoint-renamed renamed, the old journal not removed
  compact-unlinked   removed
  compact-spared     (instead) renamed .journal.spare, not yet renewed
  compact-renewed    renewed, the loop not yet told

The checkpoint points are passed first by a new database's first state,
at start-up (N = 1): the compaction cases count from 2.

A client writes (new nodes, the same few nodes again and again, removals,
three-node transactions) and remembers each acknowledged change, with
XENSTORED_JOURNAL_LIMIT small so that compactions come every few
commits.  After the kill, the normal daemon must start and hold exactly
the acknowledged state: every acknowledged change, and the one in flight
either whole or not at all (never one node of a transaction).  It is
killed and started once more (what the recovery wrote must itself be
whole), then stopped cleanly: the tdb file alone then holds the state,
and a last start reads it.

Also: the installed daemon has no crash points; a damaged journal stops
the start (status 1, files left as they were); a torn tail is cut with a
warning; compaction keeps the journal near its limit under load.
"""

import ctypes
import ctypes.util
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xstest import *  # noqa: E402,F401,F403
from xstest import RawClient, ConnectionClosed, REPO, connect_unix, daemon_binary  # noqa: E402
from guests import asan_build  # noqa: E402

# How long to wait for a compaction's work: its thread runs at SCHED_IDLE,
# so beside the other tests of a parallel `make check` it may wait its turn.
COMPACTION_S = 30

DB = "xenstored.tdb"
LIMIT = "2048"          # bytes: a compaction every dozen commits or so
PAD = "p" * 100         # values long enough to fill journals quickly


def build_dir():
    return os.environ.get("XS_BUILD", os.path.join(REPO, "build"))


def crash_binary():
    return os.path.join(build_dir(), "tests", "xenstored-crash")


LIVES = []  # every Life started: Scratch kills what a failed test left


class Life:
    """One run of a daemon binary on dir (socket, pid file, database)."""

    def __init__(self, dir, n, binary=None, env=None, extra=()):
        self.dir = dir
        self.sock = os.path.join(dir, "socket")
        self.log_path = os.path.join(dir, "log.%d" % n)
        self.binary = binary or daemon_binary()
        self.env = dict(os.environ)
        self.env.pop("XENSTORED_CRASH_AT", None)
        self.env.update(env or {})
        self.extra = list(extra)
        self.proc = None

    def start(self):
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-N", "--socket", self.sock,
                 "--pid-file", os.path.join(self.dir, "pid")] + self.extra,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env)
        LIVES.append(self)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("the daemon exited at start (%s): %s"
                                     % (self.proc.returncode, self.log()[-2000:]))
            try:
                connect_unix(self.sock, 0.5).close()
                return self
            except OSError:
                time.sleep(0.01)
        self.proc.kill()
        raise AssertionError("the daemon did not serve within 10 s")

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def logged(self, text, timeout=5.0):
        """Whether the log says text within timeout s: the socket may
        take connections before the database's warnings are written."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def kill9(self):
        self.proc.kill()
        self.proc.wait(10)

    def term(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def died(self, timeout=10):
        """Wait for the process to end (a crash point): its status."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("the daemon did not die within %d s" % timeout)


# --------------------------------------------------------------- the load

# Our nodes, in directories of at most 64 (a DIRECTORY reply holds 4 KiB).
def plain_path(k):
    return "/crash/b%d/n%d" % (k // 64, k)


def txn_path(k, x):
    return "/crash/x%d/t%d/%s" % (k // 64, k, x)


def plain_index(path):
    return int(path.rsplit("/n", 1)[1])


class Writer:
    """Drives a daemon with a mix of changes and keeps what was
    acknowledged: acked maps each of our nodes to its value; inflight is
    the change set of the operation under way ({path: value or None})."""

    def __init__(self, acked=None):
        self.acked = dict(acked or {})
        self.inflight = {}
        self.k = 0
        self.plain = []         # plain_path(k) written and not removed, oldest first

    def next_op(self):
        k = self.k
        self.k += 1
        if k % 5 == 4:
            return ("txn", {txn_path(k, x): "t%d-%s" % (k, x) for x in "abc"})
        if k % 7 == 6 and len(self.plain) > 3:
            return ("rm", {self.plain[0]: None})
        if k % 2:
            return ("write", {plain_path(k): "n%d-%s" % (k, PAD)})
        return ("write", {"/crash/hot%d" % (k % 6): "hot%d-%s" % (k, PAD)})

    def do(self, c, op):
        kind, changes = op
        if kind == "write":
            (path, value), = changes.items()
            c.write(path, value)
        elif kind == "rm":
            (path, _), = changes.items()
            c.rm(path)
        else:
            tx = int(c.expect_ok(XS_TRANSACTION_START, b"\0").rstrip(b"\0"))
            for path, value in changes.items():
                c.expect_ack(XS_WRITE, path.encode() + b"\0" + value.encode(), tx_id=tx)
            c.expect_ack(XS_TRANSACTION_END, b"T\0", tx_id=tx)

    def acknowledged(self, op):
        kind, changes = op
        self.last = changes
        for path, value in changes.items():
            if value is None:
                self.acked.pop(path, None)
                self.plain.remove(path)
            else:
                self.acked[path] = value
                if kind == "write" and path.startswith("/crash/b"):
                    self.plain.append(path)

    def run_until_closed(self, sock, limit=5000):
        """Operations until the daemon goes away; the number done."""
        c = RawClient(sock)
        try:
            for i in range(limit):
                op = self.next_op()
                self.inflight = op[1]
                try:
                    self.do(c, op)
                except (ConnectionClosed, OSError):
                    return i
                self.acknowledged(op)
                self.inflight = {}
        finally:
            c.close()
        raise AssertionError("the daemon was still serving after %d operations" % limit)

    def run(self, sock, n):
        with RawClient(sock) as c:
            for _ in range(n):
                op = self.next_op()
                self.do(c, op)
                self.acknowledged(op)


def our_nodes(c):
    """{path: value} of every node the Writer makes, as the daemon has
    them (the directories above them are not ours)."""
    out = {}
    if not c.exists("/crash"):
        return out
    todo = ["/crash"]
    while todo:
        p = todo.pop()
        for k in c.directory(p):
            q = p + "/" + k.decode()
            todo.append(q)
            name = q.rsplit("/", 1)[1]
            if name.startswith(("n", "hot")) or (q.count("/") == 4 and name in "abc"):
                out[q] = c.read(q).decode()
    return out


def same_state(sock, w, what):
    """The daemon at sock holds w.acked, with w.inflight whole or not at
    all; w then takes what it holds as acknowledged."""
    with RawClient(sock) as c:
        got = our_nodes(c)
    before = dict(w.acked)
    after = dict(w.acked)
    for path, value in w.inflight.items():
        if value is None:
            after.pop(path, None)
        else:
            after[path] = value
    if got != before and got != after:
        wrong = sorted(p for p in set(got) | set(before) | set(after)
                       if got.get(p) not in (before.get(p), after.get(p)))
        half = sorted(p for p in w.inflight if got.get(p) != before.get(p))
        raise AssertionError("%s: not the acknowledged state: %d nodes wrong (%s); "
                             "in flight %s, of which changed %s"
                             % (what, len(wrong), wrong[:5], sorted(w.inflight), half))
    w.acked = got
    w.inflight = {}
    w.plain = sorted((p for p in got if p.startswith("/crash/b")), key=plain_index)


def journal_files(dir):
    return sorted(f for f in os.listdir(dir) if f.startswith(DB + ".journal"))


def set_journals_aside(dir):
    """Rename the journals out of the daemon's way: their names."""
    aside = journal_files(dir)
    for f in aside:
        os.rename(os.path.join(dir, f), os.path.join(dir, "aside." + f))
    return aside


def scratch_dir():
    """A new directory on tmpfs where there is one, as a host keeps the
    database: the tests read a journal's allocation from st_blocks, as
    tmpfs reports it (on ext4 a journal cut at rest was once seen holding
    a page more than its size)."""
    shm = "/dev/shm"
    return tempfile.mkdtemp(prefix="xscrash-",
                            dir=shm if os.path.isdir(shm) and
                            os.access(shm, os.W_OK) else None)


def crash_and_recover(point, n, at_stop=0):
    """Run the crash daemon on a new directory until POINT:N kills it,
    then check the normal daemon's view (see the module's docstring).
    at_stop: that many operations, then a SIGTERM, whose checkpoint
    reaches the point (not the load)."""
    dir = scratch_dir()
    ok = False
    try:
        w = Writer()
        env = {"XENSTORED_CRASH_AT": "%s:%d" % (point, n)}
        if at_stop:
            # No compaction while serving: the stop applies the journal.
            env["XENSTORED_JOURNAL_LIMIT"] = "64M"
            life = Life(dir, 1, crash_binary(), env).start()
            w.run(life.sock, at_stop)
            life.proc.send_signal(signal.SIGTERM)
            st = life.died()
        else:
            env["XENSTORED_JOURNAL_LIMIT"] = LIMIT
            life = Life(dir, 1, crash_binary(), env).start()
            w.run_until_closed(life.sock)
            st = life.died()
        eq(st, -signal.SIGKILL, "%s:%d: the crash daemon's end" % (point, n))
        check("crash point %s:%d" % (point, n) in life.log(),
              "%s:%d: the crash daemon died elsewhere: %s" % (point, n, life.log()[-500:]))
        files = journal_files(dir)

        # The normal daemon: the acknowledged state, exactly.
        life = Life(dir, 2, env={"XENSTORED_JOURNAL_LIMIT": LIMIT}).start()
        same_state(life.sock, w, "%s:%d, restart (files %s)" % (point, n, files))
        if point == "commit-half":
            check(life.logged("cut short"), "%s:%d: no warning of the torn tail: %s"
                  % (point, n, life.log()))
        # More changes, then a kill -9: what the recovery wrote is whole.
        w.run(life.sock, 40)
        life.kill9()
        life = Life(dir, 3, env={"XENSTORED_JOURNAL_LIMIT": LIMIT}).start()
        same_state(life.sock, w, "%s:%d, a second restart" % (point, n))
        # A clean stop leaves it all in the tdb file.
        eq(life.term(), 0, "%s:%d: exit status after SIGTERM" % (point, n))
        eq(journal_files(dir), [], "%s:%d: journals after a clean stop" % (point, n))
        life = Life(dir, 4).start()
        same_state(life.sock, w, "%s:%d, from the tdb file alone" % (point, n))
        eq(life.term(), 0, "%s:%d: exit status" % (point, n))
        ok = True
    finally:
        if ok:
            shutil.rmtree(dir, ignore_errors=True)
        else:
            print("# kept %s" % dir)


class Scratch:
    """A directory for one test's daemons, removed after it (kept and
    named when the test fails)."""

    def __enter__(self):
        self.dir = scratch_dir()
        return self.dir

    def __exit__(self, exc_type, *rest):
        # A test that failed midway leaves its daemon running: not after it.
        for life in [x for x in LIVES if x.dir == self.dir]:
            if life.proc.poll() is None:
                life.proc.kill()
                life.proc.wait(10)
            LIVES.remove(life)
        if exc_type is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print("# kept %s" % self.dir)
        return False


def filled(dir, ops, limit="64M"):
    """A daemon on dir that took ops operations of a Writer: (w, life).
    Without the quiet rule: its journal stays however long the test
    looks at it."""
    w = Writer()
    life = Life(dir, 1, env={"XENSTORED_JOURNAL_LIMIT": limit,
                             "XENSTORED_JOURNAL_QUIET_MS": "0"}).start()
    w.run(life.sock, ops)
    return w, life


def killed(dir, ops):
    """The same daemon killed: its Writer and the journal it left."""
    w, life = filled(dir, ops)
    life.kill9()
    return w, os.path.join(dir, DB + ".journal")


# ===================================================================== tests

def test_installed_daemon_has_no_crash_points():
    if skip_in_upstream_mode("our build's binaries"):
        return
    with open(os.path.join(build_dir(), "xenstored"), "rb") as f:
        check(b"XENSTORED_CRASH_AT" not in f.read(), "build/xenstored reads XENSTORED_CRASH_AT")
    with open(crash_binary(), "rb") as f:
        check(b"XENSTORED_CRASH_AT" in f.read(), "the crash build has no crash points")


def crash_at_each(points, **kw):
    if skip_in_upstream_mode("crash points are ours"):
        return
    for point, n in points:
        crash_and_recover(point, n, **kw)


def test_crash_in_a_commit():
    crash_at_each((p, n) for p in ("commit-write", "commit-half", "commit-written")
                  for n in (1, 37))


def test_crash_in_a_rotation():
    crash_at_each((("rotate-renamed", 1), ("rotate-renamed", 3), ("rotate-created", 2),
                   ("rotate-reused", 1), ("rotate-reused", 3)))


def test_crash_in_a_compaction():
    crash_at_each((("checkpoint-block", 2), ("checkpoint-block", 5),
                   ("checkpoint-written", 2), ("checkpoint-written", 4)))


def test_crash_after_a_compaction():
    # Journals fill within a second of each other here: the first merged
    # one is removed, those after it kept as the spare, one at a time.
    crash_at_each((("checkpoint-renamed", 2), ("checkpoint-renamed", 3),
                   ("compact-unlinked", 1), ("compact-spared", 1), ("compact-spared", 3),
                   ("compact-renewed", 2)))


def test_crash_in_the_checkpoint_of_a_clean_stop():
    crash_at_each((("checkpoint-block", 2), ("checkpoint-written", 2),
                   ("checkpoint-renamed", 2), ("compact-unlinked", 1)), at_stop=60)
    # Nodes enough for two blocks: a crash between the two, and after.
    crash_at_each((("checkpoint-block", 3), ("checkpoint-written", 2)), at_stop=3000)


def test_crash_in_the_first_state_leaves_a_new_database():
    """Killed while it writes a new database's first state (the first
    pass through each checkpoint point): the next start finds no
    database, only perhaps the unfinished .next, which it removes."""
    if skip_in_upstream_mode("crash points are ours"):
        return
    for point in ("checkpoint-block", "checkpoint-written", "checkpoint-renamed"):
        dir = scratch_dir()
        try:
            life = Life(dir, 1, crash_binary(), {"XENSTORED_CRASH_AT": point})
            try:
                life.start()    # it may listen before it loads
            except AssertionError:
                pass
            eq(life.died(), -signal.SIGKILL, "%s: the crash daemon's end" % point)
            check("crash point %s:1" % point in life.log(),
                  "%s: the crash daemon died elsewhere: %s" % (point, life.log()[-500:]))
            had_next = os.path.exists(os.path.join(dir, DB + ".next"))
            eq(had_next, point != "checkpoint-renamed", "%s: a .next file" % point)
            life = Life(dir, 2).start()
            with RawClient(life.sock) as c:
                eq(c.read("/"), b"", "%s: the root after the restart" % point)
                c.write("/after", "x")
            if had_next:
                check(life.logged("a checkpoint left unfinished"),
                      "%s: no word of the .next removed: %s" % (point, life.log()))
            check(not os.path.exists(os.path.join(dir, DB + ".next")),
                  "%s: the .next file is still there" % point)
            eq(life.term(), 0, "%s: exit status" % point)
            life = Life(dir, 3).start()
            with RawClient(life.sock) as c:
                eq(c.read("/after"), b"x", "%s: a node after the restart" % point)
            eq(life.term(), 0, "%s: exit status" % point)
        finally:
            shutil.rmtree(dir, ignore_errors=True)


def test_torn_tail_is_cut_with_a_warning():
    if skip_in_upstream_mode("the journal is ours"):
        return
    with Scratch() as dir:
        w, j = killed(dir, 30)
        # The live journal ends in the zeros allocated ahead: its last
        # frame loses its last 7 bytes to zeros, as a copy cut short.
        with open(j, "rb") as f:
            data = f.read()
        frames = data[:journal_frames_end(j)]
        check(len(frames) < len(data), "no space allocated ahead of the journal's frames")
        with open(j, "wb") as f:
            f.write(frames[:-7] + bytes(len(data) - len(frames) + 7))
        life = Life(dir, 2).start()
        check(life.logged("cut short"), "no warning of the torn tail: %r" % life.log())
        # The last commit is gone with its frame; the rest is there.
        with RawClient(life.sock) as c:
            got = our_nodes(c)
        lost = [p for p in w.acked if got.get(p) != w.acked[p]]
        check(lost and set(lost) <= set(w.last),
              "not exactly the last commit lost: %s (last: %s)" % (lost, sorted(w.last)))
        # Written on: whole again after another crash.
        c = RawClient(life.sock)
        c.write("/crash/after", "x")
        c.close()
        life.kill9()
        life = Life(dir, 3).start()
        with RawClient(life.sock) as c:
            eq(c.read("/crash/after"), b"x", "a write after the cut")
        check("cut short" not in life.log(), "the cut journal is torn again: %r" % life.log())
        eq(life.term(), 0, "exit status")


def test_damaged_journal_stops_the_start():
    if skip_in_upstream_mode("the journal is ours"):
        return
    with Scratch() as dir:
        w, j = killed(dir, 30)
        with open(j, "rb") as f:
            good = f.read()
        bad = bytearray(good)
        # A frame in the middle (of the frames: the zeros allocated ahead
        # of them may hold anything, an earlier life's bytes even).
        bad[journal_frames_end(j) // 2] ^= 0x40
        with open(j, "wb") as f:
            f.write(bad)
        before = {f: open(os.path.join(dir, f), "rb").read() for f in (DB, DB + ".journal")}
        with open(os.path.join(dir, "log.fail"), "wb") as log:
            p = subprocess.run([daemon_binary(), "-N", "--socket", os.path.join(dir, "socket"),
                                "--pid-file", os.path.join(dir, "pid")],
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                               timeout=20)
        eq(p.returncode, 1, "exit status on a damaged journal")
        text = open(os.path.join(dir, "log.fail")).read()
        check("journal" in text and "unusable" in text, "the log does not say why: %r" % text)
        after = {f: open(os.path.join(dir, f), "rb").read() for f in (DB, DB + ".journal")}
        check(after == before, "the files were changed")
        # Put back, it starts and has everything.
        with open(j, "wb") as f:
            f.write(good)
        life = Life(dir, 2).start()
        same_state(life.sock, w, "the journal put back")
        eq(life.term(), 0, "exit status")


def test_compaction_keeps_the_journal_near_its_limit():
    if skip_in_upstream_mode("the journal is ours"):
        return
    with Scratch() as dir:
        w, life = filled(dir, 1500, limit="8k")
        j = os.path.join(dir, DB + ".journal")
        # While a compaction runs the journal grows on (a slow machine,
        # a sanitizer build: any length); once it is done, the next
        # commit starts another, and the journal is small again.
        old = j + ".old"
        for _ in range(2):
            wait_for(lambda: not os.path.exists(old), "the compaction's end", timeout=COMPACTION_S)
            w.run(life.sock, 1)
        # Between a compaction's end (its thread removes the old journal)
        # and the loop's next rotation, the live journal may still hold
        # what came meanwhile: small again once the compactions caught up.
        # Its bytes up to its last whole frame: a reused spare keeps the
        # size of its last life, whose frames follow the new ones.
        wait_for(lambda: not os.path.exists(old) and journal_frames_end(j) < 16 * 1024,
                 "the compactions to catch up: the journal under 16 KiB, "
                 "its limit 8k", timeout=COMPACTION_S)
        life.kill9()
        # The tdb file alone (the journals set aside) has most of it:
        # what the compactions applied.
        aside = set_journals_aside(dir)
        life = Life(dir, 2).start()
        with RawClient(life.sock) as c:
            got = our_nodes(c)
        same = sum(1 for p in w.acked if got.get(p) == w.acked[p])
        check(same > len(w.acked) // 2, "the tdb file alone has %d of %d nodes"
              % (same, len(w.acked)))
        life.kill9()
        for f in aside:
            os.rename(os.path.join(dir, "aside." + f), os.path.join(dir, f))
        life = Life(dir, 3).start()
        same_state(life.sock, w, "after a kill")
        eq(life.term(), 0, "exit status")


def test_a_quiet_journal_is_compacted_and_a_busy_one_is_not():
    if skip_in_upstream_mode("the journal is ours"):
        return
    with Scratch() as dir:
        db = os.path.join(dir, DB)
        w = Writer()
        life = Life(dir, 1, env={"XENSTORED_JOURNAL_QUIET_MS": "400"}).start()
        w.run(life.sock, 1500)          # about 200 KiB of journal
        first = os.stat(db).st_ino      # the new database's first state
        # Writes every 100 ms: never a quiet period, no compaction.
        for _ in range(15):
            w.run(life.sock, 1)
            time.sleep(0.1)
        eq(os.stat(db).st_ino, first, "the checkpoint while writes go on")
        check(not os.path.exists(db + ".journal.old"), "a journal set aside")
        # Quiet: compacted (a new checkpoint renamed over the old) and
        # the journal then is a new one.
        wait_for(lambda: os.stat(db).st_ino != first, "a new checkpoint", timeout=COMPACTION_S)
        wait_for(lambda: not os.path.exists(db + ".journal.old"),
                 "the compaction's end", timeout=COMPACTION_S)
        life.kill9()
        # The tdb file alone has every node.
        set_journals_aside(dir)
        life = Life(dir, 2).start()
        same_state(life.sock, w, "the checkpoint alone")
        eq(life.term(), 0, "exit status")


def test_a_pause_of_a_second_and_a_half_is_not_quiet_by_default():
    """The default quiet period (3 s) outlasts the pauses inside one
    activity: a burst, 1.5 s without a request, another burst and pause,
    and the journal is still the live one, the checkpoint untouched; the
    period after the last write merges it."""
    if skip_in_upstream_mode("the journal is ours"):
        return
    with Scratch() as dir:
        db = os.path.join(dir, DB)
        w = Writer()
        life = Life(dir, 1).start()
        w.run(life.sock, 1500)          # about 200 KiB of journal
        first = os.stat(db).st_ino
        for _ in range(2):
            time.sleep(1.5)
            eq(os.stat(db).st_ino, first, "the checkpoint after a pause of 1.5 s")
            check(not os.path.exists(db + ".journal.old"), "a journal set aside")
            w.run(life.sock, 1)
        wait_for(lambda: os.stat(db).st_ino != first, "a new checkpoint",
                 timeout=COMPACTION_S)
        eq(life.term(), 0, "exit status")


@functools.lru_cache(maxsize=None)
def _xxh3_seeded():
    """libxxhash's XXH3-64 with a seed (the daemon's own library), loaded
    once."""
    lib = ctypes.CDLL(ctypes.util.find_library("xxhash") or "libxxhash.so.0")
    fn = lib.XXH3_64bits_withSeed
    fn.restype = ctypes.c_uint64
    fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
    return fn


def journal_frames_end(path):
    """Where the whole frames of the journal at path end, by their head
    sums under its salt (schema/schema.h): not at the zeros after them,
    since a reused spare's last life's frames follow a new life's."""
    with open(path, "rb") as f:
        data = f.read()
    head = journal_head(path)
    if not head:
        return 0
    salt = int.from_bytes(head[1], "little") if head[1] else 0
    at = 34 if head[0] >= 3 else 26
    xxh3 = _xxh3_seeded()
    while at + 12 <= len(data):
        n = int.from_bytes(data[at:at + 4], "little")
        head_sum = int.from_bytes(data[at + 8:at + 12], "little")
        if (not n or at + 12 + n > len(data) or
                head_sum != xxh3(data[at:at + 8], 8, salt) & 0xffffffff):
            break
        at += 12 + n
    return at


def journal_head(path):
    """(version, salt) of the journal at path (salt None before version
    3), or None when it has no whole head."""
    with open(path, "rb") as f:
        h = f.read(34)
    if len(h) < 26:
        return None
    version = int.from_bytes(h[22:26], "little")
    if version < 3:
        return version, None
    return (version, h[26:34]) if len(h) == 34 else None


def test_journals_that_fill_fast_reuse_a_renewed_spare():
    """Journals that fill within a second of each other: the merged one is
    kept as .journal.spare, its head renewed with a salt it never had as a
    live journal (its frames left there, no longer of its life), and a
    later rotation
    makes that file the live journal (its pages allocated already).  A
    quiet period removes it, and so does a clean stop; one left behind
    (a crash, whatever it holds) is removed at the next start."""
    if skip_in_upstream_mode("the journal is ours"):
        return
    with Scratch() as dir:
        j = os.path.join(dir, DB + ".journal")
        spare = j + ".spare"
        w = Writer()
        env = {"XENSTORED_JOURNAL_LIMIT": "8k", "XENSTORED_JOURNAL_QUIET_MS": "400"}
        life = Life(dir, 1, env=env).start()
        spares, reused, carried, renewed = set(), False, False, False
        before = {}     # inode: where the daemon mapped it, not live
        live_salts = {}  # inode: the salts it had as the live journal
        deadline = time.monotonic() + 30
        while not (reused and carried and renewed) and time.monotonic() < deadline:
            w.run(life.sock, 10)
            try:
                head = journal_head(j)
                if head:
                    eq(head[0], 3, "the live journal's version")
                    live_salts.setdefault(os.stat(j).st_ino, set()).add(head[1])
            except FileNotFoundError:
                pass
            # A spare seen with a salt its file never had while live: its
            # head renewed (seen between its rename and its renewal, the
            # old one is still there, so this waits for one such sight).
            try:
                ino = os.stat(spare).st_ino
                head = journal_head(spare)
                renewed = renewed or (bool(head) and ino in live_salts and
                                      head[1] not in live_salts[ino])
            except FileNotFoundError:
                pass
            try:
                spares.add(os.stat(spare).st_ino)
                reused = os.stat(j).st_ino in spares
            except FileNotFoundError:
                reused = os.stat(j).st_ino in spares
            maps = journal_mappings(life.proc.pid)
            check(len(maps) <= 2, "more than the live journal's mapping "
                  "and the spare's: %s" % maps)
            # The spare's mapping, page tables and all, is the one its
            # next life writes through.
            for start, ino, name in maps:
                if name.endswith(".journal"):
                    carried = carried or start in before.get(ino, ())
                else:
                    before.setdefault(ino, set()).add(start)
        check(spares, "no spare journal while journals filled fast")
        check(renewed, "no spare with a salt of its own (its head renewed)")
        check(reused, "no spare became the live journal")
        check(carried, "no spare was written through the mapping it had")
        # At rest (a 400 ms quiet period): the spare goes.
        w.run(life.sock, 60)
        wait_for(lambda: not os.path.exists(spare), "the quiet rule to remove the spare",
                 timeout=COMPACTION_S)
        # At rest, once the compactions have caught up (their thread runs
        # only on an idle CPU: on a loaded machine a while after), the
        # live journal keeps no pages past its frames (a reused spare's
        # file has its last life's size, that life's frames after the
        # new ones), and no
        # other journal's pages are held by a mapping.
        def at_rest():
            used = journal_frames_end(j)
            st = os.stat(j)
            return max(st.st_size, 512 * st.st_blocks) <= (used + 4095) // 4096 * 4096
        def live_mapped_alone():
            return all(name.endswith(".journal")
                       for _, _, name in journal_mappings(life.proc.pid))
        wait_for(lambda: at_rest() and live_mapped_alone(),
                 "the live journal cut to its frames at rest, and its "
                 "mapping alone", timeout=COMPACTION_S)
        # A clean stop leaves none either.
        again = time.monotonic() + 30
        while not os.path.exists(spare) and time.monotonic() < again:
            w.run(life.sock, 10)
        check(os.path.exists(spare), "no spare again when journals filled fast")
        eq(life.term(), 0, "exit status")
        check(not os.path.exists(spare), "a spare left after a clean stop")
        # One left by a crash, garbage even: removed, and the state whole.
        with open(spare, "wb") as f:
            f.write(b"\xff" * 20000)
        life = Life(dir, 2, env=env).start()
        same_state(life.sock, w, "after a start beside a damaged spare")
        check(not os.path.exists(spare), "the spare left by a crash is still there")
        eq(life.term(), 0, "exit status")


def journal_mappings(pid):
    """The daemon's shared writable mappings of journal files: (start,
    inode, name), the name as it is now (" (deleted)" after it)."""
    found = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            fields = line.split(None, 5)
            if (len(fields) == 6 and fields[1] == "rw-s"
                    and DB + ".journal" in fields[5]):
                found.append((fields[0].split("-")[0], int(fields[4]),
                              fields[5].strip()))
    return found


def anon_kb(pid):
    """The process's anonymous resident memory (its heaps; not the
    journal's shared mapping)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def distinct_value(chunk, i):
    """Node /big/d<chunk>/k<i>'s value: its number, then 24 hex digits
    that compress badly (a checkpoint of such nodes is mostly values)."""
    h = (chunk * 1000 + i + 1) * 0x9E3779B97F4A7C15 % 2**96
    return b"v%06d-%024x" % (i, h)


def write_distinct(sock, thousands):
    """That many thousand new nodes (/big/d<k>/k<i>, distinct_value), a
    thousand WRITEs in flight at a time."""
    with RawClient(sock) as c:
        for chunk in range(thousands):
            c.send_raw(b"".join(
                RawClient.packet(XS_WRITE, b"/big/d%d/k%d\0" % (chunk, i)
                                 + distinct_value(chunk, i), req_id=i)
                for i in range(1000)))
            for _ in range(1000):
                eq(c.recv_packet()[0], XS_WRITE, "a WRITE's reply")


def test_a_big_compaction_gives_its_memory_back():
    """A compaction folds a journal of 100,000 distinct nodes (several MB
    of table and keys on its thread); once it is over, the daemon's RSS is
    what it was before it: its heaps' resident memory does not grow (glibc
    kept the fold in the thread's arena)."""
    if skip_in_upstream_mode("the journal is ours"):
        return
    if asan_build():
        print("# skipped: the sanitizer's allocator keeps what is freed")
        return
    with Scratch() as dir:
        db = os.path.join(dir, DB)
        life = Life(dir, 1, env={"XENSTORED_JOURNAL_LIMIT": "256M",
                                 "XENSTORED_JOURNAL_QUIET_MS": "1000"}).start()
        # The socket takes connections before the first state is written.
        wait_for(lambda: os.path.exists(db), "the new database's first state")
        first = os.stat(db).st_ino
        write_distinct(life.sock, 100)
        before = anon_kb(life.proc.pid)
        eq(os.stat(db).st_ino, first, "the checkpoint before the quiet period")
        wait_for(lambda: os.stat(db).st_ino != first, "the compaction", timeout=COMPACTION_S)
        wait_for(lambda: not os.path.exists(db + ".journal.old"),
                 "the compaction's end", timeout=COMPACTION_S)
        # The thread's exit (its arena is released then), not a guess at
        # its time: a loaded machine ran past a fixed 0.2 s.
        tasks = "/proc/%d/task" % life.proc.pid
        wait_for(lambda: len(os.listdir(tasks)) == 1,
                 "the compaction thread's exit", timeout=COMPACTION_S)
        after = anon_kb(life.proc.pid)
        check(after < before + 1024,
              "anonymous RSS %d KB after the compaction, %d KB before"
              % (after, before))
        eq(life.term(), 0, "exit status")


def test_a_checkpoint_holds_no_free_space():
    """libtdb grows a file by room for a hundred records ahead and pads
    it; the checkpoint is never written again, so that space is punched
    out (persist/tdb_space.h) and the file holds little more than its
    records.  It still loads, and a later compaction still reads it."""
    if skip_in_upstream_mode("the checkpoint is ours"):
        return
    with Scratch() as dir:
        db = os.path.join(dir, DB)
        life = Life(dir, 1, env={"XENSTORED_JOURNAL_QUIET_MS": "0"}).start()
        write_distinct(life.sock, 20)
        eq(life.term(), 0, "exit status")       # the stop's checkpoint
        st = os.stat(db)
        held = st.st_blocks * 512
        check(held < st.st_size // 2, "the checkpoint holds %d bytes of its %d"
              % (held, st.st_size))
        life = Life(dir, 2).start()
        with RawClient(life.sock) as c:
            eq(c.read("/big/d19/k999"), distinct_value(19, 999), "a node")
            c.write("/big/d0/k0", "again")
        eq(life.term(), 0, "exit status")       # a merge of the punched file
        life = Life(dir, 3).start()
        with RawClient(life.sock) as c:
            eq(c.read("/big/d0/k0"), b"again", "the node written")
            eq(c.read("/big/d7/k7"), distinct_value(7, 7), "a node")
            eq(len(c.directory("/big")), 20, "the directories")
        eq(life.term(), 0, "exit status")


if __name__ == "__main__":
    run(globals())
