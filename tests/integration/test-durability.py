#!/usr/bin/python3
"""Durability: the tdb database that lets the daemon restart (kill -9,
SIGTERM) without losing what it acknowledged (persist/db.c, ops/state.c,
domains/domain.c domains_restore, daemon/main.c open_database).

Every committed change reaches the file before its reply leaves; a new
daemon on the same file loads the tree (values, permissions, children in
creation order), the quotas, the introduced domains (ring, channel,
features, SET_TARGET) and each guest's watches, maps the rings again
without resetting them, fires each restored watch once, and answers what
a guest wrote while no daemon ran.  Socket clients reconnect and lose
their watches and transactions; a guest's transaction from before the
crash works until its commit, which answers EAGAIN.  A file that is not
a usable database stops the daemon (status 1) before it serves anything,
and is left as it was.

Each test owns a directory: the daemon's socket, its default database
(xenstored.tdb, beside the socket) and one log per daemon life
(log, log.2, ...).  Guests are played through the Xen test double
(tests/fakexen, fakexen.py), so the whole file is skipped with
XS_DAEMON=upstream-c.

A killed daemon leaves its event channel socket behind with nobody
reading it: between a crash and the next start a guest writes its ring
without signalling (ring_put), and after a start the first socket round
trip proves the new daemon has bound its channels (it serves sockets
only once the rings are restored).
"""

import ctypes
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xstest import *  # noqa: E402,F401,F403
from xstest import RawClient, Daemon, ConnectionClosed, daemon_binary, _p  # noqa: E402
from fakexen import *  # noqa: E402,F401,F403
from guests import *  # noqa: E402,F401,F403
import guests  # noqa: E402

skip_unless_test_double()

BARRIER = b"/zz-durability-barrier"     # never written: watched by collect()
DB_NAME = "xenstored.tdb"


# ---------------------------------------------------------------- daemons

class Again(Daemon):
    """A Daemon started on the directory of an earlier one: same socket,
    same pid file, same default database; its own log (log.<life>)."""

    def __init__(self, dir, life, extra_args=(), env=None):
        Daemon.__init__(self, extra_args, env)
        self.reuse = dir
        self.life = life

    def start(self):
        self.dir = self.reuse
        self.socket_path = os.path.join(self.dir, "socket")
        self.log_path = os.path.join(self.dir, "log.%d" % self.life)
        self._start_ours()
        return self


def kill9(d):
    """SIGKILL the daemon d and reap it (it no longer counts as running)."""
    os.kill(d.pid, signal.SIGKILL)
    st = d.proc.wait(10)
    d.stopped = True
    d.status = st
    eq(st, -signal.SIGKILL, "exit status of the killed daemon")


class Box(guests.Rig):
    """guests.Rig whose daemon can be killed and started again on the same
    directory (socket, database), with the same FakeXen world.

        with Box(domids=(5,)) as b:
            b.crash()           # kill -9; b.c is closed
            b.start_again()     # new daemon, new b.c (one round trip done)
            b.restart()         # both
            b.term_restart()    # SIGTERM (must exit 0), then start again

    On failure, the logs of every life of the daemon go into the TAP output.
    """

    client_class = EvClient
    tmp_prefix = "fxd-"

    def __init__(self, extra_args=(), **kw):
        guests.Rig.__init__(self, extra_args, **kw)
        self.lives = []         # earlier daemons, oldest first

    @property
    def db_path(self):
        return os.path.join(self.d.dir, DB_NAME)

    def crash(self):
        if self.c is not None:
            self.c.close()
            self.c = None
        kill9(self.d)
        self.lives.append(self.d)

    def start_again(self, extra_args=None):
        if extra_args is not None:
            self.extra_args = list(extra_args)
        self.d = Again(self.d.dir, len(self.lives) + 1, self.extra_args,
                       env=self.fx.env())
        self.d.start()
        self.c = self.client_class(self.d.socket_path)
        # Served only after the rings are restored: the event channel is
        # bound when this returns.
        self.c.expect_ok(XS_GET_DOMAIN_PATH, b"0\0")
        return self.c

    def restart(self, extra_args=None):
        self.crash()
        return self.start_again(extra_args)

    def term_restart(self, extra_args=None):
        if self.c is not None:
            self.c.close()
            self.c = None
        self.d.stop()               # SIGTERM: DaemonError unless it exits 0
        eq(self.d.status, 0, "exit status after SIGTERM")
        self.lives.append(self.d)
        return self.start_again(extra_args)

    def _cleanup(self, ok):
        if not ok:
            for d in self.lives:
                diag("log of an earlier daemon (%s):" % d.log_path)
                diag(d.log()[-3000:] or "(empty)")
        return guests.Rig._cleanup(self, ok)


def ring_put(g, data):
    """Write data into g's request ring without signalling: no daemon runs
    to receive a signal.  It must fit."""
    data = bytes(data)
    check(len(data) <= g.req_space(), "ring_put: %d bytes do not fit" % len(data))
    prod = g.req_prod
    for i in range(len(data)):
        g.page[(prod + i) % RING_SIZE] = data[i]
    g.req_prod = prod + len(data)


def pkt(type_, payload, req_id, tx_id=0):
    return RawClient.packet(type_, payload, req_id, tx_id)


def read_many(c, paths, chunk=200):
    """READ every path, pipelined: {path: value, or None if ENOENT}."""
    out = {}
    for i in range(0, len(paths), chunk):
        part = paths[i:i + chunk]
        ids = [c.send(XS_READ, _p(p)) for p in part]
        for p, rid in zip(part, ids):
            t, got, _, payload = c.recv_packet()
            eq(got, rid, "req_id of the reply to READ %s" % p)
            if t == XS_READ:
                out[p] = payload
            elif payload == b"ENOENT\0":
                out[p] = None
            else:
                raise XsError("READ %s: %s %s" % (p, type_name(t), short(payload)))
    return out


def dump(c):
    """The whole tree as seen by c: {path: (value, perms, children)} from
    "/" down, plus the special nodes' READ reply and perms."""
    out = c.dump()
    for s in (b"@introduceDomain", b"@releaseDomain"):
        t, _, _, payload = c.op(XS_READ, _p(s))
        out[s] = ((t, payload), c.get_perms(s))
    return out


def diff_dumps(before, after):
    """A readable description of what differs, or ''."""
    lines = []
    for p in sorted(set(before) | set(after)):
        if before.get(p) != after.get(p):
            lines.append("%s: before %s, after %s"
                         % (p, short(before.get(p), 300), short(after.get(p), 300)))
    return "\n".join(lines[:20])


def same_tree(before, after, what):
    d = diff_dumps(before, after)
    check(not d, "%s: the tree differs:\n%s" % (what, d))


def usage(c, domid):
    """CONTROL quota <domid>: {"nodes": n, "watches": n, ...}."""
    out = c.expect_ok(XS_CONTROL, args("quota", domid)).rstrip(b"\0").decode()
    got = {}
    for line in out.splitlines()[1:]:
        k, _, v = line.partition(":")
        got[k.strip()] = int(v)
    return got


def wait_events(g, n, timeout=5.0):
    """The next n events of guest g."""
    return [g.next_event(timeout) for _ in range(n)]


# ---------------------------------------------------------- tdb by ctypes

TDB_NOLOCK = 4
TDB_INCOMPATIBLE_HASH = 2048
TDB_REPLACE = 1


class TDB_DATA(ctypes.Structure):
    _fields_ = [("dptr", ctypes.c_void_p), ("dsize", ctypes.c_size_t)]


_libtdb = None


def libtdb():
    global _libtdb
    if _libtdb is None:
        lib = ctypes.CDLL("libtdb.so.1")
        lib.tdb_open.restype = ctypes.c_void_p
        lib.tdb_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int,
                                 ctypes.c_int, ctypes.c_uint]
        lib.tdb_store.argtypes = [ctypes.c_void_p, TDB_DATA, TDB_DATA, ctypes.c_int]
        lib.tdb_store.restype = ctypes.c_int
        lib.tdb_delete.argtypes = [ctypes.c_void_p, TDB_DATA]
        lib.tdb_delete.restype = ctypes.c_int
        lib.tdb_fetch.argtypes = [ctypes.c_void_p, TDB_DATA]
        lib.tdb_fetch.restype = TDB_DATA
        lib.tdb_close.argtypes = [ctypes.c_void_p]
        _libtdb = lib
    return _libtdb


class Tdb:
    """A tdb file opened through libtdb (flags as the daemon's by default)."""

    def __init__(self, path, flags=TDB_NOLOCK | TDB_INCOMPATIBLE_HASH, hash_size=0):
        self.lib = libtdb()
        self.t = self.lib.tdb_open(path.encode(), hash_size, flags,
                                   os.O_RDWR | os.O_CREAT, 0o600)
        check(self.t, "tdb_open %s failed" % path)
        self.keep = []

    def _d(self, b):
        buf = ctypes.create_string_buffer(b, len(b) or 1)
        self.keep.append(buf)
        return TDB_DATA(ctypes.cast(buf, ctypes.c_void_p), len(b))

    def store(self, key, value):
        eq(self.lib.tdb_store(self.t, self._d(key), self._d(value), TDB_REPLACE), 0,
           "tdb_store %s" % short(key))

    def fetch(self, key):
        d = self.lib.tdb_fetch(self.t, self._d(key))
        if not d.dptr:
            return None
        out = ctypes.string_at(d.dptr, d.dsize)
        ctypes.CDLL(None).free(ctypes.c_void_p(d.dptr))
        return out

    def delete(self, key):
        eq(self.lib.tdb_delete(self.t, self._d(key)), 0, "tdb_delete %s" % short(key))

    def close(self):
        self.lib.tdb_close(self.t)
        self.t = None


def u32(v):
    return struct.pack("<I", v)


def rstr(s):
    """A record string (record/record.h wr_str)."""
    return u32(len(s) + 1) + s + b"\0"


_libzstd = None


def _zstd():
    global _libzstd
    if _libzstd is None:
        _libzstd = ctypes.CDLL("libzstd.so.1")
        _libzstd.ZSTD_getFrameContentSize.restype = ctypes.c_ulonglong
        _libzstd.ZSTD_getFrameContentSize.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        _libzstd.ZSTD_decompress.restype = ctypes.c_size_t
        _libzstd.ZSTD_decompress.argtypes = [ctypes.c_void_p, ctypes.c_size_t,
                                             ctypes.c_char_p, ctypes.c_size_t]
        _libzstd.ZSTD_createCCtx.restype = ctypes.c_void_p
        _libzstd.ZSTD_CCtx_setParameter.argtypes = [ctypes.c_void_p, ctypes.c_int,
                                                    ctypes.c_int]
        _libzstd.ZSTD_compressBound.restype = ctypes.c_size_t
        _libzstd.ZSTD_compressBound.argtypes = [ctypes.c_size_t]
        _libzstd.ZSTD_compress2.restype = ctypes.c_size_t
        _libzstd.ZSTD_compress2.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                            ctypes.c_size_t, ctypes.c_char_p,
                                            ctypes.c_size_t]
        _libzstd.ZSTD_freeCCtx.argtypes = [ctypes.c_void_p]
    return _libzstd


def unzstd(frame):
    """A zstd frame's content, by libzstd (as the daemon reads a block)."""
    z = _zstd()
    size = z.ZSTD_getFrameContentSize(frame, len(frame))
    out = ctypes.create_string_buffer(size)
    eq(z.ZSTD_decompress(out, size, frame, len(frame)), size, "a block's size")
    return out.raw


def zstd(content):
    """content as one zstd frame with its checksum (as the daemon stores
    a block)."""
    z = _zstd()
    cctx = z.ZSTD_createCCtx()
    z.ZSTD_CCtx_setParameter(cctx, 201, 1)      # ZSTD_c_checksumFlag
    bound = z.ZSTD_compressBound(len(content))
    out = ctypes.create_string_buffer(bound)
    n = z.ZSTD_compress2(cctx, out, bound, content, len(content))
    z.ZSTD_freeCCtx(cctx)
    check(n <= bound, "zstd failed")
    return out.raw[:n]


def varint(content, at):
    """The LEB128 number at content[at:], and where it ends."""
    v, shift = 0, 0
    while True:
        b = content[at]
        at += 1
        v |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return v, at


def block_nodes(content):
    """The (path, node record) entries of a version-4 block's content
    (schema.h): the heads, the names and the values apart."""
    head_len, at = varint(content, 0)
    names_len, at = varint(content, at)
    head_end = names_at = at + head_len
    values_at = names_at + names_len
    prev, born, perms = b"", 0, b""
    while at < head_end:
        shared, at = varint(content, at)
        rest_len, at = varint(content, at)
        delta, at = varint(content, at)
        born = (born + (delta >> 1 ^ -(delta & 1))) % 2**64
        n, at = varint(content, at)
        if n:
            perms = b""
            for _ in range(n):
                domid, at = varint(content, at)
                perms += u32(domid) + u32(content[at])
                at += 1
        value_len, at = varint(content, at)
        path = prev[:shared] + content[names_at:names_at + rest_len]
        names_at += rest_len
        value = content[values_at:values_at + value_len]
        values_at += value_len
        yield path, (struct.pack("<Q", born) + u32(len(perms) // 8) + perms
                     + u32(value_len) + value)
        prev = path


def unpack_to_per_node(t, version):
    """Rewrite the tdb t as an older daemon kept it: version 1 or 2, a
    record a node, keyed by its path; version 3, the nodes in blocks of
    version 3's entries (each path whole, then its node record).  #format
    says version."""
    blocks, _ = struct.unpack("<IQ", t.fetch(b"#nodes"))
    for i in range(blocks):
        key = b"#nodes/%d" % i
        nodes = list(block_nodes(unzstd(t.fetch(key))))
        if version == 3:
            t.store(key, zstd(b"".join(u32(0) + u32(len(p)) + p + u32(len(r)) + r
                                       for p, r in nodes)))
            continue
        for path, rec in nodes:
            t.store(path, rec)
        t.delete(key)
    if version < 3:
        t.delete(b"#nodes")
    t.store(b"#format", rstr(b"xenstored-db") + u32(version))


# --------------------------------------------------- start-up that fails

def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def inotify_creates(dir):
    """Start recording the names created in dir; returns a function that
    stops and returns them (None where inotify is unavailable)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        return lambda: None
    IN_CREATE, IN_MOVED_TO = 0x100, 0x80
    if libc.inotify_add_watch(fd, dir.encode(), IN_CREATE | IN_MOVED_TO) < 0:
        os.close(fd)
        return lambda: None

    def stop():
        names = []
        data = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        os.close(fd)
        pos = 0
        while pos + 16 <= len(data):
            _, _, _, ln = struct.unpack_from("iIII", data, pos)
            names.append(data[pos + 16:pos + 16 + ln].rstrip(b"\0").decode())
            pos += 16 + ln
        return names
    return stop


def start_must_fail(dir, db_file, extra=(), what=""):
    """Run the daemon on dir (socket dir/socket) where db_file holds a bad
    database.  It must exit with status 1, name "database" and the file in
    its log, leave the file's bytes alone and leave no socket behind.
    Returns a list of what went wrong (empty: refused as it should be), so
    that a test can try every case before failing.  A daemon that serves
    (answers a request) has accepted the file: it is killed at once."""
    before = read_bytes(db_file)
    sock = os.path.join(dir, "socket")
    log_path = os.path.join(dir, "log-fail")
    wrong = []
    with open(log_path, "wb") as log:
        p = subprocess.Popen([daemon_binary(), "-N", "--socket", sock,
                              "--pid-file", os.path.join(dir, "pid")] + list(extra),
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    served = False
    deadline = time.monotonic() + 10
    while p.poll() is None and time.monotonic() < deadline:
        try:
            with RawClient(sock, timeout=0.5) as c:
                c.sock.settimeout(2)
                c.op(XS_GET_DOMAIN_PATH, b"0\0")
                served = True
                break
        except (OSError, ConnectionClosed, XsError):
            time.sleep(0.01)
    if p.poll() is None:
        p.kill()
    st = p.wait(10)
    text = read_bytes(log_path).decode(errors="replace")
    changed = read_bytes(db_file) != before
    if served or st != 1:
        wrong.append("%s: the daemon %s (exit %s); the file was %s; log: %s"
                     % (what, "started and served requests" if served else "did not exit with 1",
                        st, "REWRITTEN" if changed else "left alone", text.strip()[-300:]))
    else:
        if not ("database" in text and db_file in text):
            wrong.append("%s: the log does not name the database %s: %r" % (what, db_file, text))
        if changed:
            wrong.append("%s: the file was changed" % what)
    if not served and os.path.exists(sock):
        wrong.append("%s: the socket is left behind" % what)
    for name in os.listdir(dir):
        if name.startswith(DB_NAME) and os.path.join(dir, name) != db_file:
            wrong.append("%s: a new file %s appeared" % (what, name))
    if os.path.exists(db_file) and read_bytes(db_file) != before:
        with open(db_file, "wb") as f:       # for the next case
            f.write(before)
    return wrong


def make_valid_db(dir):
    """Run a daemon on dir, write a few nodes, stop it: its database path."""
    d = Again(dir, 1)
    d.start()
    try:
        with RawClient(d.socket_path) as c:
            c.write("/fid/a", "alpha")
            c.write("/fid/b", "beta")
            c.write("/fid/c/d", "delta")
    finally:
        d.stop()
    path = os.path.join(dir, DB_NAME)
    check(os.path.getsize(path) > 0, "the daemon wrote no database in %s" % dir)
    return path


class TmpDir:
    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="xsdur-")
        return self.dir

    def __exit__(self, exc_type, *rest):
        if exc_type is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            diag("kept %s" % self.dir)
        return False


def crash_under_load(b, nclients, load, ready, what, problems, killed):
    """Run load(i) in nclients threads until ready() holds (at least 0.4 s),
    then kill -9 the daemon of box b while they work, and wait for them."""
    threads = [threading.Thread(target=load, args=(i,), daemon=True)
               for i in range(nclients)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    wait_for(lambda: problems or (time.monotonic() - t0 > 0.4 and ready()),
             what, timeout=10)
    eq(problems, [], "problems during the load")
    check(all(t.is_alive() for t in threads), "a client stopped before the kill")
    killed.set()
    b.crash()
    for t in threads:
        t.join(10)
    check(not any(t.is_alive() for t in threads), "a client still runs after the kill")
    eq(problems, [], "problems during the load")


# ===================================================================== tests

# ------------------------------------------------------- 1: kill -9 load

def test_kill9_during_write_load_keeps_every_acknowledged_write():
    nclients, window = 4, 16

    def value(i, k):
        return b"v%d.%d:" % (i, k) + b"x" * (k % 61)

    with Box() as b:
        sock = b.d.socket_path
        acked = [[] for _ in range(nclients)]
        sent = [0] * nclients
        problems = []
        killed = threading.Event()

        def load(i):
            try:
                c = RawClient(sock)
            except OSError as e:
                problems.append("client %d: connect: %s" % (i, e))
                return
            pending = deque()
            k = 0
            try:
                while True:
                    while len(pending) < window:
                        c.send(XS_WRITE, b"/load/c%d/k%d\0" % (i, k) + value(i, k),
                               req_id=k + 1)
                        pending.append(k)
                        k += 1
                        sent[i] = k
                    t, rid, _, p = c.recv_packet()
                    want = pending.popleft()
                    if (t, rid, p) != (XS_WRITE, want + 1, b"OK\0"):
                        problems.append("client %d: WRITE k%d answered %s %d %s"
                                        % (i, want, type_name(t), rid, short(p)))
                        return
                    acked[i].append(want)
            except socket.timeout:
                if not killed.is_set():
                    problems.append("client %d: no reply within 5 s" % i)
            except (ConnectionClosed, OSError):
                if not killed.is_set():
                    problems.append("client %d: connection lost before the kill" % i)
            finally:
                c.close()

        crash_under_load(b, nclients, load, lambda: all(len(a) >= 50 for a in acked),
                         "50 acknowledged writes per client", problems, killed)
        total = sum(len(a) for a in acked)
        diag("%d writes acknowledged before kill -9 (%s sent)" % (total, sum(sent)))

        c = b.start_again()
        for i in range(nclients):
            paths = [b"/load/c%d/k%d" % (i, k) for k in range(sent[i])]
            got = read_many(c, paths)
            present = [k for k in range(sent[i]) if got[paths[k]] is not None]
            missing = [k for k in acked[i] if got[paths[k]] is None]
            eq(missing, [], "client %d: acknowledged writes missing after the restart" % i)
            wrong = [k for k in present if got[paths[k]] != value(i, k)]
            eq(wrong, [], "client %d: writes with a wrong value after the restart" % i)
            # One connection's writes are handled and committed in order:
            # what survived is a prefix of what was sent.
            eq(present, list(range(len(present))),
               "client %d: the writes that survived are not a prefix" % i)
            check(len(present) >= len(acked[i]), "client %d: fewer present than acked" % i)
        # Still a working store.
        c.write("/load/after", "1")
        eq(c.read("/load/after"), b"1")


def test_kill9_during_transaction_commits_is_all_or_nothing():
    # Clients commit groups of nodes in transactions, and remove an older
    # group with one RM, as fast as they can; kill -9 lands in the middle.
    # After the restart every group is whole or absent; an acknowledged
    # creation is there unless its removal was sent; an acknowledged
    # removal holds.
    nclients, size = 3, 24

    with Box() as b:
        sock = b.d.socket_path
        for i in range(nclients):
            b.c.mkdir("/atom/c%d" % i)
        created = [set() for _ in range(nclients)]     # acked commits
        removed = [set() for _ in range(nclients)]     # acked RMs
        rm_sent = [set() for _ in range(nclients)]     # RMs sent
        tried = [0] * nclients
        problems = []
        killed = threading.Event()

        def load(i):
            c = RawClient(sock)
            k = 0
            try:
                while True:
                    tried[i] = k + 1
                    t, _, _, p = c.op(XS_TRANSACTION_START, b"\0")
                    if t != XS_TRANSACTION_START:
                        problems.append("client %d: START: %s" % (i, short(p)))
                        return
                    tx = int(p.rstrip(b"\0"))
                    ids = [c.send(XS_WRITE, b"/atom/c%d/g%d/n%d\0%d" % (i, k, j, k), tx_id=tx)
                           for j in range(size)]
                    ids.append(c.send(XS_TRANSACTION_END, b"T\0", tx_id=tx))
                    again = False
                    for n, rid in enumerate(ids):
                        t, got, _, p = c.recv_packet()
                        if n == size and t == XS_ERROR and p == b"EAGAIN\0":
                            again = True        # a conflict: nothing done, redo
                        elif got != rid or t == XS_ERROR:
                            problems.append("client %d group %d: %s %s"
                                            % (i, k, type_name(t), short(p)))
                            return
                    if again:
                        continue
                    created[i].add(k)
                    if k >= 2:
                        rm_sent[i].add(k - 2)
                        c.expect_ack(XS_RM, b"/atom/c%d/g%d\0" % (i, k - 2))
                        removed[i].add(k - 2)
                    k += 1
            except (socket.timeout, ConnectionClosed, OSError, XsError) as e:
                if not killed.is_set():
                    problems.append("client %d: %r before the kill" % (i, e))
            finally:
                c.close()

        crash_under_load(b, nclients, load, lambda: all(len(s) >= 5 for s in created),
                         "5 groups committed per client", problems, killed)

        c = b.start_again()
        for i in range(nclients):
            for k in range(tried[i]):
                paths = [b"/atom/c%d/g%d/n%d" % (i, k, j) for j in range(size)]
                got = read_many(c, paths)
                present = [p for p in paths if got[p] is not None]
                check(len(present) in (0, size),
                      "client %d group %d: %d of %d nodes after the restart"
                      % (i, k, len(present), size))
                check(all(got[p] == b"%d" % k for p in present),
                      "client %d group %d: wrong values" % (i, k))
                if k in removed[i]:
                    check(not present, "client %d group %d: back after its RM was "
                          "acknowledged" % (i, k))
                elif k in created[i] and k not in rm_sent[i]:
                    check(present, "client %d group %d: acknowledged commit lost" % (i, k))


# ----------------------------------------------------- 2: tree fidelity

def build_tree(c):
    rnd = random.Random(2024)
    c.write("/fid/bytes", bytes(range(256)) * 3)         # NULs and every byte
    c.write("/fid/empty", b"")
    c.write("/fid/big", bytes(rnd.randrange(256) for _ in range(2000)))
    c.write("/fid/utf", "h\u00e9llo\n\t\u2603")
    for name in ("zeta", "alpha", "m", "b2", "b10", "_x", "a-b", "Z", "0"):
        c.write("/fid/order/" + name, name)
    c.rm("/fid/order/alpha")
    c.write("/fid/order/alpha", "again")                 # now the last child
    names = ["n%04d" % rnd.randrange(10000) for _ in range(60)]
    names = list(dict.fromkeys(names))
    for n in names:
        c.mkdir("/fid/many/" + n)
    c.write("/fid/deep/a/b/c/d/e/f/g/h", "deep")          # implicit parents
    c.write("/fid/perm/one", "1")
    c.set_perms("/fid/perm/one", ["r0"])
    c.write("/fid/perm/five", "5")
    c.set_perms("/fid/perm/five", ["n5", "r6", "w7", "b8", "n9"])
    c.write("/fid/perm/inherit/child", "c")              # shares its parent's list
    c.set_perms("/fid/perm/inherit", ["b6", "r5"])
    c.write("/fid/perm/inherit/child2", "c2")
    c.set_perms("@introduceDomain", ["n0", "r5"])
    c.set_perms("@releaseDomain", ["n0", "r6", "r7"])
    # A transaction's creations, interleaved with creations outside it.
    c.write("/fid/tx/first", "f")
    tx = int(c.expect_ok(XS_TRANSACTION_START, b"\0").rstrip(b"\0"))
    c.expect_ack(XS_WRITE, b"/fid/tx/t-b\0b", tx_id=tx)
    c.expect_ack(XS_WRITE, b"/fid/tx/t-a\0a", tx_id=tx)
    c.expect_ack(XS_MKDIR, b"/fid/tx/t-dir/sub\0", tx_id=tx)
    c.write("/fid/tx/outside", "o")
    c.expect_ack(XS_TRANSACTION_END, b"T\0", tx_id=tx)
    c.write("/fid/gone/x", "x")
    c.rm("/fid/gone")


def test_tree_survives_kill9_exactly():
    with Box(domids=(5,)) as b:
        for d in (6, 7, 8, 9):
            b.fx.set_state(d, "running")
        c = b.c
        build_tree(c)
        g = b.g[5]
        g.write("data/g", "guest")                       # owned by dom5
        eq(c.get_perms("/local/domain/5/data/g"), [b"n5"], "owner of the guest's node")
        eq(c.directory("/fid/order"),
           [b"zeta", b"m", b"b2", b"b10", b"_x", b"a-b", b"Z", b"0", b"alpha"],
           "DIRECTORY before the restart")
        eq(c.get_perms("/fid/perm/five"), [b"n5", b"r6", b"w7", b"b8", b"n9"])
        before = dump(c)

        c = b.restart()
        after = dump(c)
        same_tree(before, after, "after kill -9")
        eq(c.read("/fid/bytes"), bytes(range(256)) * 3, "value with every byte")
        eq(c.get_perms("@introduceDomain"), [b"n0", b"r5"], "@introduceDomain perms")
        eq(c.get_perms("@releaseDomain"), [b"n0", b"r6", b"r7"], "@releaseDomain perms")
        eq(g.read("data/g"), b"guest", "the guest reads its node")
        eq(g.read("/fid/perm/five"), b"5", "the owner (dom5) reads /fid/perm/five")

        # New nodes go after the loaded ones, and survive a second restart
        # with the order intact (generations continue after the loaded ones).
        c.write("/fid/order/new1", "n1")
        c.write("/fid/order/b2", "rewritten")            # keeps its place
        c.write("/fid/new2/x", "2")
        c.set_perms("/fid/perm/one", ["n0", "r5"])
        c.rm("/fid/deep/a/b/c")
        tx = int(c.expect_ok(XS_TRANSACTION_START, b"\0").rstrip(b"\0"))
        c.expect_ack(XS_WRITE, b"/fid/order/new-tx\0t", tx_id=tx)
        c.expect_ack(XS_TRANSACTION_END, b"T\0", tx_id=tx)
        eq(c.directory("/fid/order"),
           [b"zeta", b"m", b"b2", b"b10", b"_x", b"a-b", b"Z", b"0", b"alpha",
            b"new1", b"new-tx"], "DIRECTORY after additions")
        before2 = dump(c)
        c = b.restart()
        same_tree(before2, dump(c), "after a second kill -9")
        check(not c.exists("/fid/deep/a/b/c/d"), "a removed subtree came back")
        # And a third, after a clean stop.
        c = b.term_restart()
        same_tree(before2, dump(c), "after SIGTERM")


# ----------------------------------------------------------- 3: quotas

def test_quotas_set_at_run_time_survive():
    with Box(domids=(5,)) as b:
        c = b.c
        g = b.g[5]
        c.expect_ack(XS_SET_QUOTA, args("nodes", 777))
        c.expect_ack(XS_SET_QUOTA, args("watches", 33))
        c.expect_ack(XS_SET_QUOTA, args(5, "nodes", 4))
        c.expect_ack(XS_SET_QUOTA, args(5, "watches", 2))
        c.expect_ack(XS_CONTROL, args("quota", "set", "transactions", 7))
        c.expect_ack(XS_CONTROL, args("quota-soft", "set", "memory", 123456))
        eq(c.expect_ok(XS_GET_QUOTA, args("transactions")), b"7\0", "transactions before")
        g.watch("w1", "t1")
        g.watch("w2", "t2")
        eq(wait_events(g, 2), [(b"w1", b"t1"), (b"w2", b"t2")], "initial events")
        g.write("n0", "0")
        eq(usage(c, 5)["nodes"], 2, "dom5's nodes before the restart (home, n0)")

        c = b.restart()
        eq(c.expect_ok(XS_GET_QUOTA, args("nodes")), b"777\0", "global nodes")
        eq(c.expect_ok(XS_GET_QUOTA, args("watches")), b"33\0", "global watches")
        eq(c.expect_ok(XS_GET_QUOTA, args("transactions")), b"7\0",
           "transactions (CONTROL quota set)")
        eq(c.expect_ok(XS_GET_QUOTA, args(5, "nodes")), b"4\0", "dom5 nodes override")
        eq(c.expect_ok(XS_GET_QUOTA, args(5, "watches")), b"2\0", "dom5 watches override")
        eq(c.expect_ok(XS_GET_QUOTA, args(5, "transactions")), b"7\0",
           "dom5 transactions (the global)")
        soft = c.expect_ok(XS_CONTROL, args("quota-soft")).decode()
        check("123456" in soft, "quota-soft after the restart: %r" % soft)
        eq(usage(c, 5)["nodes"], 2, "dom5's nodes after the restart")
        # Enforced: two more nodes, then ENOSPC; the restored watches count.
        eq(sorted(wait_events(g, 2)), [(b"w1", b"t1"), (b"w2", b"t2")],
           "restored watches fire once")
        g.write("n1", "1")
        g.write("n2", "2")
        eq(guest_error(g, XS_WRITE, b"n3\0x"), "ENOSPC", "dom5's fifth node")
        eq(guest_error(g, XS_WATCH, args("w3", "t3")), "ENOSPC",
           "a third watch with two restored and a quota of 2")
        g.unwatch("w1", "t1")
        g.watch("w3", "t3")
        eq(g.next_event(), (b"w3", b"t3"), "initial event of a new watch")
        # And a second life keeps them too.
        c = b.term_restart()
        eq(c.expect_ok(XS_GET_QUOTA, args(5, "nodes")), b"4\0", "dom5 nodes, second restart")
        eq(c.expect_ok(XS_GET_QUOTA, args("nodes")), b"777\0", "nodes, second restart")


# ------------------------------------------------------- 4: guest watch

def test_guest_ring_and_watches_come_back():
    with Box(domids=(5,)) as b:
        c = b.c
        g = b.g[5]
        g.write("data/x", "1")
        g.watch("data", "gw")
        g.watch("/local/domain/5/abs", "ga")
        g.expect_ack(XS_WATCH, args("depth", "gd0", 0))
        eq(wait_events(g, 3), [(b"data", b"gw"), (b"/local/domain/5/abs", b"ga"),
                               (b"depth", b"gd0")], "initial events")
        c.write("/local/domain/5/data/pre", "p")
        eq(g.next_event(), (b"data/pre", b"gw"), "event before the restart")
        req_prod = g.req_prod
        check(req_prod > 0, "the guest sent requests")

        c = b.restart()
        got = wait_events(g, 3)
        eq((g.req_prod, g.req_cons), (req_prod, req_prod),
           "request indices are those of before (the ring was not reset)")
        eq(sorted(got), [(b"/local/domain/5/abs", b"ga"), (b"data", b"gw"),
                         (b"depth", b"gd0")],
           "each restored watch fires once with its own path")
        eq(guest_collect(g, BARRIER), [], "more events after the restart")
        # The depth came back with the watch.
        c.write("/local/domain/5/depth/child", "c")
        eq(guest_collect(g, BARRIER), [], "a depth-0 watch fired for a child")
        c.write("/local/domain/5/depth", "d")
        eq(g.next_event(), (b"depth", b"gd0"), "the depth-0 watch fires for its node")
        eq(g.connection, XENSTORE_CONNECTED, "connection field")
        eq(g.error, XENSTORE_ERROR_NONE, "error field")
        eq(g.server_features, ALL_FEATURES, "server_features")
        c.write("/local/domain/5/data/y", "2")
        eq(g.next_event(), (b"data/y", b"gw"), "a toolstack write fires the restored watch")
        c.write("/local/domain/5/abs", "a")
        eq(g.next_event(), (b"/local/domain/5/abs", b"ga"), "the absolute watch")
        eq(g.read("data/x"), b"1", "the guest reads over the ring")
        g.write("data/z", "3")
        eq(g.next_event(), (b"data/z", b"gw"), "the guest's own write fires its watch")
        eq(c.read("/local/domain/5/data/z"), b"3", "the toolstack reads the guest's write")
        eq(c.introduced(5), b"T\0", "IS_DOMAIN_INTRODUCED 5")
        eq(c.expect_ok(XS_GET_DOMAIN_PATH, b"5\0"), b"/local/domain/5\0", "GET_DOMAIN_PATH")
        eq(g.get_domain_path(5), b"/local/domain/5", "GET_DOMAIN_PATH from the guest")
        eq(c.expect_ok(XS_GET_FEATURE, b"5\0"), b"%d\0" % ALL_FEATURES, "GET_FEATURE 5")
        # The restored watch is a real one: UNWATCH takes it away, and the
        # next life restores only what is left.
        g.unwatch("data", "gw")
        c.write("/local/domain/5/data/w", "4")
        eq(guest_collect(g, BARRIER), [], "events after UNWATCH of a restored watch")
        g.unwatch("depth", "gd0")
        c = b.restart()
        eq(g.next_event(), (b"/local/domain/5/abs", b"ga"), "the one watch left fires")
        eq(guest_collect(g, BARRIER), [], "events of the removed watch after a restart")
        eq(g.wrong_signals, [], "signals with a wrong {domid, port}")
        # A RELEASE forgets the domain for good.
        c.expect_ack(XS_RELEASE, b"5\0")
        c = b.restart()
        eq(c.introduced(5), b"F\0", "IS_DOMAIN_INTRODUCED after RELEASE and a restart")
        g.send_bytes(pkt(XS_READ, b"data/x\0", 77))
        check(g.no_data_within(0.3), "a released guest is served after a restart")


def test_dom0_ring_watch_comes_back():
    with Box(dom0_port=1) as b:
        z = b.dom0
        wait_for(lambda: z.server_features != 0, "dom0's ring to be served")
        z.watch("/tool", "zt")
        eq(z.next_event(), (b"/tool", b"zt"), "initial event")
        b.restart()
        eq(z.next_event(), (b"/tool", b"zt"), "dom0's restored watch fires once")
        b.c.write("/tool/x", "1")
        eq(z.next_event(), (b"/tool/x", b"zt"), "dom0's watch fires again")
        eq(guest_collect(z, BARRIER), [], "more events for dom0")
        eq(z.read("/tool/x"), b"1")


# ------------------------------------------------- 5: mid-request crash

def test_request_written_while_daemon_is_down_is_answered():
    with Box(domids=(5,)) as b:
        g = b.g[5]
        g.write("data/x", "1")
        b.crash()
        ring_put(g, pkt(XS_WRITE, b"data/y\0two", 201) + pkt(XS_READ, b"data/x\0", 202)
                 + pkt(XS_READ, b"data/y\0", 203))
        c = b.start_again()
        eq(recv_reply(g), (XS_WRITE, 201, 0, b"OK\0"), "WRITE written while down")
        eq(recv_reply(g), (XS_READ, 202, 0, b"1"), "READ written while down")
        eq(recv_reply(g), (XS_READ, 203, 0, b"two"), "READ of the WRITE written while down")
        check(g.no_data_within(0.2), "extra data after the replies")
        eq(c.read("/local/domain/5/data/y"), b"two", "the toolstack sees the write")
        eq(g.req_cons, g.req_prod, "the requests left the ring")


def test_request_signalled_to_a_stopped_daemon_is_answered_after_kill9():
    with Box(domids=(5,)) as b:
        g = b.g[5]
        g.write("data/x", "1")
        os.kill(b.d.pid, signal.SIGSTOP)
        try:
            cons = g.req_cons
            g.send_bytes(pkt(XS_WRITE, b"data/s\0stopped", 301))
            g.send_bytes(pkt(XS_READ, b"data/x\0", 302))
            eq(g.req_cons, cons, "a stopped daemon consumed requests")
        finally:
            b.crash()           # SIGKILL ends a stopped process too
        c = b.start_again()
        eq(recv_reply(g), (XS_WRITE, 301, 0, b"OK\0"), "WRITE sent to the stopped daemon")
        eq(recv_reply(g), (XS_READ, 302, 0, b"1"), "READ sent to the stopped daemon")
        eq(c.read("/local/domain/5/data/s"), b"stopped")
        check(g.no_data_within(0.2), "extra data after the replies")


def test_partial_request_and_unread_reply_survive_a_crash():
    with Box(domids=(5,)) as b:
        g = b.g[5]
        g.write("data/x", "1")
        # A reply the guest has not read yet stays in the ring.
        g.send_bytes(pkt(XS_READ, b"data/x\0", 401))
        want = HEADER.size + 1
        wait_for(lambda: g.rsp_avail() >= want and g.req_cons == g.req_prod,
                 "the reply to be written")
        # And 7 bytes of the next request's header: they leave the ring
        # (Linux would not signal for the rest otherwise) and are saved.
        p = pkt(XS_WRITE, b"data/split\0s", 402)
        g.send_bytes(p[:7])
        wait_for(lambda: g.req_cons == g.req_prod, "the partial header to leave the ring")
        b.restart()
        eq(recv_reply(g), (XS_READ, 401, 0, b"1"), "the reply left unread before the crash")
        g.send_bytes(p[7:])
        eq(recv_reply(g), (XS_WRITE, 402, 0, b"OK\0"),
           "a request split across the crash")
        check(g.no_data_within(0.2), "extra data (a request answered twice?)")
        eq(b.c.read("/local/domain/5/data/split"), b"s")
        eq(g.error, XENSTORE_ERROR_NONE, "error field")


def test_request_larger_than_the_ring_split_by_a_crash_completes():
    # 1,500 bytes of a 2,025-byte WRITE (a value of the largest size a
    # guest may store): more than the ring holds, so some left the ring
    # before the crash; the restarted daemon has them.
    with Box(domids=(5,)) as b:
        g = b.g[5]
        path = b"data/big\0"
        value = bytes((i * 13) % 251 + 1 for i in range(2000))
        p = pkt(XS_WRITE, path + value, 451)
        g.send_bytes(p[:1500])
        wait_for(lambda: g.req_cons == g.req_prod, "the first 1,500 bytes to be taken")
        b.restart()
        g.send_bytes(p[1500:])
        eq(recv_reply(g), (XS_WRITE, 451, 0, b"OK\0"), "the WRITE split by the crash")
        eq(b.c.read("/local/domain/5/data/big"), value, "its value")
        eq(g.read("data/big"), value, "read by the guest")
        eq(g.error, XENSTORE_ERROR_NONE, "error field")


def test_saved_request_start_is_not_restored_once_handled():
    # The start of a request is saved when it leaves the ring; once the
    # request is complete and handled, a restart must not put those bytes
    # in front of the guest's next request.
    with Box(domids=(5,)) as b:
        g = b.g[5]
        p = pkt(XS_WRITE, b"data/once\0v", 461)
        g.send_bytes(p[:10])
        wait_for(lambda: g.req_cons == g.req_prod, "the partial header to be taken")
        g.send_bytes(p[10:])
        eq(recv_reply(g), (XS_WRITE, 461, 0, b"OK\0"), "the completed request")
        b.restart()
        eq(g.read("data/once"), b"v", "a request after the restart")
        check(g.no_data_within(0.2), "extra data (old bytes restored?)")
        # The same after a ring reconnection dropped a saved start.
        g.send_bytes(pkt(XS_WRITE, b"data/dropped\0x", 462)[:12])
        wait_for(lambda: g.req_cons == g.req_prod, "the second partial header")
        g.reconnect()
        b.restart()
        eq(g.read("data/once"), b"v", "a request after reconnection and restart")
        g.expect_error(XS_READ, b"data/dropped\0", "ENOENT")
        check(g.no_data_within(0.2), "extra data after the reconnection")
        eq(g.error, XENSTORE_ERROR_NONE, "error field")


def test_requests_handled_but_not_consumed_at_the_crash_are_replayed():
    # The daemon dies after committing requests but before their replies
    # reach the ring and before req_cons moves: the restarted daemon finds
    # them in the ring again.  Played here by putting the page back as it
    # was before them (the request bytes are still in the ring).  A WATCH
    # answered before must not fail with EEXIST, and fires once.
    with Box(domids=(5,)) as b:
        g = b.g[5]
        g.write("data/x", "1")
        cons0, rsp0 = g.req_cons, g.rsp_prod
        check(g.rsp_cons == rsp0, "nothing unread in the response ring")
        g.send_bytes(pkt(XS_WATCH, b"data\0gw\0", 601) + pkt(XS_WRITE, b"data/y\0w", 602))
        eq(recv_reply(g), (XS_WATCH, 601, 0, b"OK\0"), "WATCH before the crash")
        eq(recv_reply(g), (XS_WRITE, 602, 0, b"OK\0"), "WRITE before the crash")
        eq(g.next_event(), (b"data", b"gw"), "initial event before the crash")
        b.crash()
        g.req_cons = cons0                  # the daemon's view before them
        g.rsp_prod = rsp0
        g.rsp_cons = rsp0
        g.events = []
        b.start_again()
        eq(recv_reply(g), (XS_WATCH, 601, 0, b"OK\0"), "the replayed WATCH")
        eq(recv_reply(g), (XS_WRITE, 602, 0, b"OK\0"), "the replayed WRITE")
        evs = [tuple(split_strings(e)) for e in g.events]
        g.events = []
        evs += guest_collect(g, BARRIER)
        # The restored watch fires once; the replayed WRITE may fire it too
        # (a spurious event is allowed: watchers read again).
        eq(evs.count((b"data", b"gw")), 1, "events of the restored watch in %s" % evs)
        check(set(evs) <= {(b"data", b"gw"), (b"data/y", b"gw")},
              "events after the replay: %s" % evs)
        eq(b.c.read("/local/domain/5/data/y"), b"w")
        b.c.write("/local/domain/5/data/z", "z")
        eq(g.next_event(), (b"data/z", b"gw"), "the watch works")
        eq(guest_collect(g, BARRIER), [], "a second watch was made by the replay")


# ----------------------------------------- 6: a domain dies while down

def test_domain_dead_while_daemon_is_down_is_released():
    with Box(domids=(5, 6, 7), dom0_port=1) as b:
        c = b.c
        g5, g6, g7 = b.guests
        z = b.dom0
        wait_for(lambda: z.server_features != 0, "dom0's ring to be served")
        g5.write("data/x", "1")
        g7.write("data/x", "7")
        c.write("/vm5/a", "a")
        c.set_perms("/vm5", ["n5"])
        c.write("/shared", "s")
        c.set_perms("/shared", ["n0", "r5"])
        c.write("/other", "o")
        c.set_perms("/other", ["n0", "r6", "b5", "r7"])
        c.set_perms("@releaseDomain", ["n0", "r6"])
        c.expect_ack(XS_SET_QUOTA, args(5, "nodes", 50))
        g5.watch("/shared", "g5w")
        eq(g5.next_event(), (b"/shared", b"g5w"))
        g6.watch("@releaseDomain", "g6rel")
        eq(g6.next_event(), (b"@releaseDomain", b"g6rel"))
        z.watch("@releaseDomain", "zrel")
        eq(z.next_event(), (b"@releaseDomain", b"zrel"))

        b.crash()
        b.fx.set_state(5, "dying")
        b.fx.set_state(7, None)         # gone altogether
        c = b.start_again()
        c.watch_initial("@releaseDomain", "rel")
        eq(c.introduced(5), b"F\0", "IS_DOMAIN_INTRODUCED of a domain that died while down")
        eq(c.introduced(7), b"F\0", "IS_DOMAIN_INTRODUCED of a domain gone while down")
        eq(c.introduced(6), b"T\0", "IS_DOMAIN_INTRODUCED of a live domain")
        for path in ("/vm5", "/vm5/a", "/local/domain/5/data", "/local/domain/7/data"):
            check(not c.exists(path), "%s still exists" % path)
        eq(c.get_perms("/shared"), [b"n0"], "perms of /shared")
        eq(c.get_perms("/other"), [b"n0", b"r6"], "perms of /other")
        eq(c.error(XS_GET_QUOTA, args(5, "nodes")), "ENOENT", "dom5's quota override")
        # The watchers that outlive the crash hear of it.
        check((b"@releaseDomain", b"zrel") in guest_collect(z, BARRIER),
              "dom0's restored @releaseDomain watch did not fire")
        check((b"@releaseDomain", b"g6rel") in guest_collect(g6, BARRIER),
              "dom6's restored @releaseDomain watch did not fire")
        eq(g6.read("/other"), b"o", "dom6 still reads /other")
        c.write("/shared", "s2")
        check(g5.no_data_within(0.3), "the dead dom5 got data (its old watch?)")
        g5.send_bytes(pkt(XS_READ, b"data/x\0", 54))
        check(g5.no_data_within(0.3), "the dead dom5's ring is served")

        # Its record is gone: a new domain 5 (same domid) is not served.
        c = b.restart()
        b.fx.set_state(5, "running")
        b.fx.set_state(7, "running")
        c = b.restart()
        eq(c.introduced(5), b"F\0", "a new dom5 after the next restart")
        eq(c.introduced(7), b"F\0", "a new dom7 after the next restart")
        g5.send_bytes(pkt(XS_READ, b"data/x\0", 55))
        check(g5.no_data_within(0.3), "the dead dom5's ring is served again")


def test_death_while_down_keeps_the_rest_of_the_database():
    # Releasing a domain found dead at start-up changes the database
    # (its record, its nodes, the quotas): the start must survive that,
    # and the file must keep everything else.
    with Box(domids=(5, 6)) as b:
        b.c.write("/keep/me", "1")
        b.crash()
        size = os.path.getsize(b.db_path)
        b.fx.set_state(5, None)
        try:
            b.start_again()
            eq(b.c.read("/keep/me"), b"1", "a node after dom5 was released at start-up")
        except (DaemonError, ConnectionClosed, OSError) as e:
            raise AssertionError("the daemon did not survive a start that released a "
                                 "dead domain (%s); the database is now %d bytes (was %d)"
                                 % (e, os.path.getsize(b.db_path), size))
        check(b.d.alive(), "the daemon died after the start")
        check(os.path.getsize(b.db_path) > 0, "the database file was emptied")
        eq(b.c.introduced(6), b"T\0", "dom6 after the start")
        c = b.restart()
        eq(c.read("/keep/me"), b"1", "a node after one more restart")
        eq(c.introduced(6), b"T\0", "dom6 after one more restart")


def test_death_while_down_reaches_restored_depth_watchers():
    # A watcher with a depth learns which domain went: @releaseDomain/<id>,
    # as on a death seen while running (test-domains test_release).
    with Box(domids=(5, 6), dom0_port=1) as b:
        z = b.dom0
        wait_for(lambda: z.server_features != 0, "dom0's ring to be served")
        z.expect_ack(XS_WATCH, args("@releaseDomain", "zrel1", 1))
        eq(z.next_event(), (b"@releaseDomain", b"zrel1"))
        b.crash()
        b.fx.set_state(5, "dying")
        b.start_again()
        got = guest_collect(z, BARRIER)
        check((b"@releaseDomain/5", b"zrel1") in got,
              "dom0's restored depth-1 watch on @releaseDomain got %s, without "
              "@releaseDomain/5 for the domain that died while the daemon was down"
              % got)


def test_shutdown_seen_before_the_crash_stays_latched():
    with Box(domids=(5, 6)) as b:
        c = b.c
        g5, g6 = b.guests
        c.watch_initial("@releaseDomain", "rel")
        b.fx.set_state(5, "shutdown")
        b.fx.virq()
        eq(c.next_event(what="@releaseDomain on shutdown"), ev("@releaseDomain", "rel"))
        c = b.restart()
        c.watch_initial("@releaseDomain", "rel")
        b.fx.virq()
        settle(g6)
        eq(c.collect(), [], "a VIRQ after the restart: dom5's shutdown was seen already")
        eq(c.introduced(5), b"T\0", "a shut-down domain stays introduced")
        g5.write("x", "1")                       # and served
        # Shut down while the daemon was down: noticed at the restart, so a
        # later VIRQ fires nothing more.
        b.crash()
        b.fx.set_state(6, "shutdown")
        c = b.start_again()
        c.watch_initial("@releaseDomain", "rel")
        b.fx.virq()
        settle(g5)
        eq(c.collect(), [], "a VIRQ after dom6 shut down while the daemon was down")
        eq(c.introduced(6), b"T\0", "dom6 shut down, still introduced")
        c.expect_ack(XS_RESUME, b"6\0")
        b.fx.set_state(6, "running")
        b.fx.virq()
        settle(g6)
        b.fx.set_state(6, "shutdown")
        b.fx.virq()
        eq(c.next_event(what="@releaseDomain on the next shutdown"), ev("@releaseDomain", "rel"))


# ------------------------------------------------------ 7: transactions

def test_socket_transactions_are_gone_after_restart():
    with Box() as b:
        c = b.c
        c.write("/t/base", "0")
        tx = int(c.expect_ok(XS_TRANSACTION_START, b"\0").rstrip(b"\0"))
        c.expect_ack(XS_WRITE, b"/t/intx\0v", tx_id=tx)
        c.watch_initial("/t", "tw")
        c = b.restart()
        eq(c.error(XS_READ, b"/t/base\0", tx=tx), "ENOENT", "READ with an old tx id")
        eq(c.error(XS_WRITE, b"/t/w\0v", tx=tx), "ENOENT", "WRITE with an old tx id")
        eq(c.error(XS_TRANSACTION_END, b"T\0", tx=tx), "ENOENT", "commit of an old tx id")
        check(not c.exists("/t/intx"), "the lost transaction's write is visible")
        check(not c.exists("/t/w"), "a write with the old tx id is visible")
        c.write("/t/base", "1")
        eq(c.collect(), [], "events for the socket client's watch from before")
        eq(c.read("/t/base"), b"1")


def test_guest_transaction_open_at_crash_is_retried():
    with Box(domids=(5,)) as b:
        g = b.g[5]
        g.write("data/a", "0")
        t1 = g.transaction_start()
        g.write("data/a", "1", tx_id=t1)
        t2 = g.transaction_start()
        t3 = g.transaction_start()
        g.write("data/c", "3", tx_id=t3)
        c = b.restart()
        # t1: used again, then committed.
        g.write("data/b", "1", tx_id=t1)
        eq(g.read("data/b", tx_id=t1), b"1", "read inside the transaction")
        eq(g.read("data/a", tx_id=t1), b"0",
           "the transaction sees the store (its old write is lost)")
        check(not c.exists("/local/domain/5/data/b"),
              "an uncommitted write is visible outside")
        g.expect_error(XS_TRANSACTION_END, b"T\0", "EAGAIN", tx_id=t1)
        check(not c.exists("/local/domain/5/data/b"), "the failed commit applied a write")
        eq(c.read("/local/domain/5/data/a"), b"0", "the failed commit applied a write")
        # t2: committed at once; t3: abandoned.
        g.expect_error(XS_TRANSACTION_END, b"T\0", "EAGAIN", tx_id=t2)
        g.transaction_end(t3, commit=False)
        check(not c.exists("/local/domain/5/data/c"), "the abandoned transaction's write")
        # The retry: a new transaction, with an id unlike the old ones.
        t = g.transaction_start()
        check(t not in (t1, t2, t3), "a new transaction reuses an old id %d" % t)
        g.write("data/a", "1", tx_id=t)
        g.write("data/b", "1", tx_id=t)
        g.transaction_end(t)
        eq(c.read("/local/domain/5/data/a"), b"1", "the retry's write")
        eq(c.read("/local/domain/5/data/b"), b"1", "the retry's write")
        # A guest introduced after the restart gets no such leniency.
        h = b.guest(6)
        b.introduce_with_home(h)
        eq(guest_error(h, XS_READ, b"x\0", tx_id=t1), "ENOENT",
           "an unknown tx id on a new connection")


# -------------------------------------------------- 8: unusable files

def test_garbage_or_truncated_file_is_refused():
    with TmpDir() as dir:
        valid = read_bytes(make_valid_db(dir))
        dbf = os.path.join(dir, DB_NAME)
        cases = [("random bytes", random.Random(8).randbytes(65536)),
                 ("a text file", b"this is not a database\n" * 10),
                 ("the first half of a database", valid[:len(valid) // 2]),
                 ("the first 100 bytes of a database", valid[:100])]
        wrong = []
        for what, data in cases:
            with open(dbf, "wb") as f:
                f.write(data)
            wrong += start_must_fail(dir, dbf, what=what)
        # The same through --database.
        other = os.path.join(dir, "elsewhere.db")
        with open(other, "wb") as f:
            f.write(random.Random(9).randbytes(5000))
        os.unlink(dbf)
        wrong += start_must_fail(dir, other, extra=["--database", other],
                                 what="--database garbage")
        if os.path.exists(dbf):
            wrong.append("--database garbage: the default database was made")
        eq(wrong, [], "unusable files the daemon did not refuse as it should")


def test_foreign_or_damaged_tdb_is_refused():
    with TmpDir() as dir:
        dbf = os.path.join(dir, DB_NAME)
        valid = read_bytes(make_valid_db(dir))

        def case(what, change, flags=TDB_NOLOCK | TDB_INCOMPATIBLE_HASH, fresh=False):
            if fresh:
                os.unlink(dbf)
            else:
                with open(dbf, "wb") as f:
                    f.write(valid)
            t = Tdb(dbf, flags=flags)
            try:
                change(t)
            finally:
                t.close()
            wrong.extend(start_must_fail(dir, dbf, what=what))

        wrong = []
        case("a foreign tdb", lambda t: t.store(b"hello", b"world"), fresh=True)
        case("a foreign tdb (old hash)", lambda t: t.store(b"hello", b"world"),
             flags=TDB_NOLOCK, fresh=True)
        case("a wrong version", lambda t: t.store(b"#format", rstr(b"xenstored-db") + u32(99)))
        case("version 0", lambda t: t.store(b"#format", rstr(b"xenstored-db") + u32(0)))
        case("a wrong magic", lambda t: t.store(b"#format", rstr(b"xenstored-xx") + u32(1)))
        case("no format record", lambda t: t.delete(b"#format"))

        def check_layout(t):
            check(t.fetch(b"#format") == rstr(b"xenstored-db") + u32(4),
                  "the format record is %r" % t.fetch(b"#format"))
            blocks, _ = struct.unpack("<IQ", t.fetch(b"#nodes"))
            paths = [p for i in range(blocks)
                     for p, _ in block_nodes(unzstd(t.fetch(b"#nodes/%d" % i)))]
            check(b"/fid/a" in paths, "no node /fid/a in the daemon's blocks")

        def flip(t, key):
            b = bytearray(t.fetch(key))
            b[len(b) // 2] ^= 0x10
            t.store(key, bytes(b))
        case("a node block with a byte changed",
             lambda t: (check_layout(t), flip(t, b"#nodes/0")))
        case("a node block missing", lambda t: t.delete(b"#nodes/0"))
        case("a malformed quota record", lambda t: t.store(b"#quotas", b"\x05"))
        # The nodes' own damage, in a file kept as version 2 did (a
        # record a node), which is still read: the same decoders judge
        # the nodes of either layout.
        v2 = lambda t, f: (unpack_to_per_node(t, 2), f(t))
        case("a malformed node record",
             lambda t: v2(t, lambda t: t.store(b"/fid/a", b"\x01\x02")))
        case("a node without its parent",
             lambda t: v2(t, lambda t: t.delete(b"/fid/c")))
        case("special nodes missing",
             lambda t: v2(t, lambda t: t.delete(b"@releaseDomain")))
        case("two nodes of one generation",
             lambda t: v2(t, lambda t: t.store(b"/fid/b", t.fetch(b"/fid/a"))))
        eq(wrong, [], "damaged databases the daemon did not refuse as it should")


def test_version_1_file_is_read_and_rewritten_as_version_4():
    """An upgrade (restart or live update onto this build) finds a file of
    version 1, a record a node, whose quotas were kept by position
    (schema/schema.h): the state comes back, and the file is version 4
    after a clean stop (its nodes in blocks)."""
    with TmpDir() as dir:
        dbf = make_valid_db(dir)
        t = Tdb(dbf)
        try:
            unpack_to_per_node(t, 1)
            # nodes watches transactions outstanding transaction-nodes
            # memory node-size path-max permissions; soft; domain 5 sets
            # nodes (bit 0) and permissions (bit 8).
            hard = [777, 128, 10, 20, 1024, 2621440, 2048, 2048, 5]
            dom5 = [4, 0, 0, 0, 0, 0, 0, 0, 3]
            t.store(b"#quotas", u32(9) + b"".join(map(u32, hard)) + u32(123456) + u32(1)
                    + u32(5) + u32(1 | 1 << 8) + b"".join(map(u32, dom5)))
        finally:
            t.close()

        def state_is_back(life):
            d = Again(dir, life)
            d.start()
            try:
                with RawClient(d.socket_path) as c:
                    eq(c.read("/fid/a"), b"alpha", "a node, life %d" % life)
                    eq(c.expect_ok(XS_GET_QUOTA, args("nodes")), b"777\0",
                       "the global nodes quota, life %d" % life)
                    eq(c.expect_ok(XS_GET_QUOTA, args("permissions")), b"5\0",
                       "the global permissions quota, life %d" % life)
                    soft = c.expect_ok(XS_CONTROL, args("quota-soft")).decode()
                    check("123456" in soft, "quota-soft, life %d: %r" % (life, soft))
                    c.write("/fid/after", "x")
            finally:
                d.stop()
            return d

        d = state_is_back(2)
        log = open(d.log_path).read()
        check("version 1 read" in log, "the log does not say the file was upgraded: %r" % log)
        t = Tdb(dbf)
        try:
            eq(t.fetch(b"#format"), rstr(b"xenstored-db") + u32(4), "the format record after")
            check(t.fetch(b"/fid/a") is None and t.fetch(b"#nodes") is not None,
                  "the nodes are not in blocks after the upgrade")
            q = t.fetch(b"#quotas")
            # Domain 5 is not running here (GET_QUOTA would answer ENOENT):
            # its overrides are read in the rewritten record, by name.
            check(q is not None and q.startswith(u32(123456))
                  and u32(5) + rstr(b"nodes") + u32(4) in q
                  and u32(5) + rstr(b"permissions") + u32(3) in q
                  and u32(5) + rstr(b"watches") not in q,
                  "#quotas is not version 2's with dom5's overrides: %r" % q)
        finally:
            t.close()
        state_is_back(3)


def test_version_3_file_is_read_and_rewritten_as_version_4():
    """A version-3 file (each block's entries a path and a node record
    whole) is read as it is; after a clean stop the blocks are version
    4's, every node in them, and the next start reads them."""
    with TmpDir() as dir:
        dbf = make_valid_db(dir)
        t = Tdb(dbf)
        try:
            unpack_to_per_node(t, 3)
        finally:
            t.close()
        def life(n, fn):
            d = Again(dir, n)
            d.start()
            try:
                with RawClient(d.socket_path) as c:
                    fn(c)
            finally:
                d.stop()
            return d

        def first(c):
            eq(c.read("/fid/c/d"), b"delta", "a node of the version-3 file")
            c.write("/fid/after", "x")
        d = life(2, first)
        check("version 3 read" in open(d.log_path).read(),
              "the log does not say the file was upgraded")
        t = Tdb(dbf)
        try:
            eq(t.fetch(b"#format"), rstr(b"xenstored-db") + u32(4), "the format record after")
            blocks, _ = struct.unpack("<IQ", t.fetch(b"#nodes"))
            paths = [p for i in range(blocks)
                     for p, _ in block_nodes(unzstd(t.fetch(b"#nodes/%d" % i)))]
            check(b"/fid/a" in paths and b"/fid/after" in paths,
                  "the version-4 blocks lack a node: %r" % paths)
        finally:
            t.close()
        def again(c):
            eq(c.read("/fid/a"), b"alpha", "a node, after the upgrade")
            eq(c.read("/fid/after"), b"x", "the node written, after the upgrade")
        life(3, again)


def test_empty_file_is_new_and_no_database_ignores_a_bad_one():
    with TmpDir() as dir:
        dbf = os.path.join(dir, DB_NAME)
        open(dbf, "wb").close()
        d = Again(dir, 1)
        d.start()
        try:
            with RawClient(d.socket_path) as c:
                c.write("/kept", "yes")
        finally:
            d.stop()
        check(os.path.getsize(dbf) > 0, "the empty file was not made a database")
        d = Again(dir, 2)
        d.start()
        try:
            with RawClient(d.socket_path) as c:
                eq(c.read("/kept"), b"yes", "a database started from an empty file")
        finally:
            d.stop()
        # --no-database: a bad file is neither read nor touched.
        junk = random.Random(3).randbytes(4096)
        with open(dbf, "wb") as f:
            f.write(junk)
        d = Again(dir, 3, ["--no-database"])
        d.start()
        try:
            with RawClient(d.socket_path) as c:
                check(not c.exists("/kept"), "--no-database loaded something")
                c.write("/mem", "1")
                eq(c.read("/mem"), b"1")
        finally:
            d.stop()
        check(read_bytes(dbf) == junk, "--no-database changed the file")


# --------------------------------------------------- 9: clean restart

def test_sigterm_keeps_the_database():
    with Box(domids=(5,)) as b:
        c = b.c
        g = b.g[5]
        c.write("/clean/a", "1")
        c.set_perms("/clean/a", ["n0", "r5"])
        g.watch("data", "gw")
        eq(g.next_event(), (b"data", b"gw"))
        g.write("data/x", "x")
        eq(g.next_event(), (b"data/x", b"gw"))
        c = b.term_restart()
        eq(c.read("/clean/a"), b"1", "a node after SIGTERM and a new start")
        eq(c.get_perms("/clean/a"), [b"n0", b"r5"], "its perms")
        eq(c.introduced(5), b"T\0", "the guest is still introduced")
        eq(g.next_event(), (b"data", b"gw"), "the guest's watch fires once")
        eq(guest_collect(g, BARRIER), [], "more events")
        eq(g.read("data/x"), b"x", "the guest is served")
        eq(g.read("/clean/a"), b"1", "the guest reads with its restored perms")


def test_no_database_writes_and_restores_nothing():
    with Box(["--no-database"]) as b:
        c = b.c
        c.write("/mem/a", "1")
        files = sorted(os.listdir(b.d.dir))
        check(not any(f.endswith(".tdb") or "tdb" in f for f in files),
              "--no-database made a file: %s" % files)
        c = b.term_restart()
        check(not c.exists("/mem/a"), "a node came back with --no-database")
        check(not os.path.exists(b.db_path), "--no-database made %s" % b.db_path)
        # With a valid database present: not loaded, not changed.
        c = b.term_restart([])
        c.write("/disk/a", "1")
        c = b.term_restart(["--no-database"])
        saved = read_bytes(b.db_path)
        check(not c.exists("/disk/a"), "--no-database loaded the database")
        c.write("/mem/b", "2")
        c.rm("/disk")
        c = b.term_restart([])
        eq(c.read("/disk/a"), b"1", "the database after a --no-database life")
        check(not c.exists("/mem/b"), "a memory-only write reached the database")
        check(len(saved) > 0, "no database")


def test_database_option_names_the_file():
    with Box() as b:
        other = os.path.join(b.d.dir, "custom.tdb")
        c = b.term_restart(["--database", other])
        check(os.path.exists(other), "--database did not make %s" % other)
        c.write("/custom", "c")
        c = b.restart(["--database", other])
        eq(c.read("/custom"), b"c", "restored from --database")
        c = b.restart([])
        check(not c.exists("/custom"), "the default database holds --database's node")


# ----------------------------------------------- 10: SET_TARGET, features

def test_target_and_features_survive():
    with Box(domids=(5, 6)) as b:
        c = b.c
        g, s = b.guests
        g.write("x", "five")
        c.write("/secret", "s")
        c.expect_ack(XS_SET_TARGET, b"6\0005\0")
        eq(s.read("/local/domain/5/x"), b"five", "the stub reads its target's node")
        k = b.guest(7)
        c.expect_ack(XS_SET_FEATURE, b"7\0003\0")
        b.introduce_with_home(k)
        eq(k.server_features, 3, "features offered to dom7")

        c = b.restart()
        eq(s.read("/local/domain/5/x"), b"five", "the stub reads its target's node")
        s.write("/local/domain/5/x", "six")
        eq(g.read("x"), b"six", "the target reads the stub's write")
        eq(s.read("/local/domain/5"), b"", "the stub reads its target's home")
        eq(guest_error(s, XS_READ, b"/secret\0"), "EACCES", "the stub is not privileged")
        eq(guest_error(g, XS_READ, b"/local/domain/6\0"), "EACCES",
           "the target does not act for the stub")
        eq(c.expect_ok(XS_GET_FEATURE, b"7\0"), b"3\0", "GET_FEATURE 7")
        eq(c.expect_ok(XS_GET_FEATURE, b"5\0"), b"%d\0" % ALL_FEATURES, "GET_FEATURE 5")
        eq(k.server_features, 3, "the page's server_features after the restart")
        eq(k.expect_ok(XS_GET_FEATURE, b""), b"3\0", "dom7's own features")
        eq(guest_error(k, XS_WATCH, b"data\0tok\x001\0"), "EINVAL",
           "a watch depth for a guest not offered WATCHDEPTH")
        eq(c.error(XS_SET_FEATURE, b"7\0001\0"), "EBUSY", "SET_FEATURE of an introduced domain")


def test_target_dead_while_down_leaves_the_stub_acting_for_nobody():
    with Box(domids=(5, 6)) as b:
        c = b.c
        g, s = b.guests
        g.write("x", "five")
        c.expect_ack(XS_SET_TARGET, b"6\0005\0")
        eq(s.read("/local/domain/5/x"), b"five", "the stub reads its target's node")
        b.crash()
        b.fx.set_state(5, "dying")
        c = b.start_again()
        g2 = b.guest(5, gfn=0x20005)
        b.introduce(g2)
        c.write("/new5", "n")
        c.set_perms("/new5", ["n5"])
        eq(guest_error(s, XS_READ, b"/new5\0"), "EACCES", "the stub reads the new dom5's node")


if __name__ == "__main__":
    run(globals())
