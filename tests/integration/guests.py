"""Scaffolding shared by the integration tests that play guests over the
Xen test double (tests/fakexen, driven through fakexen.py): test-domains,
test-quotas, test-attacks, test-rings and test-guest-scale.

Stdlib only.  Provides:
  * skip_unless_test_double()  -- in upstream mode (XS_DAEMON=upstream-c),
                                  print the TAP skip line and exit 0: the
                                  upstream daemon cannot load the fake
  * Rig            -- a FakeXen directory, a daemon with the fake preloaded,
                      a socket client (dom0) and guests (context manager)
  * guest_error(g, type, payload[, tx_id])
                   -- the error name of a guest request that must fail
  * settle(g)      -- two round trips over g's ring: the signals sent to
                      the daemon before (a VIRQ) have been handled
  * wait_for(cond, what[, timeout]), wait_error(g, value[, timeout])
  * recv_reply(g[, timeout])  -- the next reply over g's ring, events set aside
  * args(*items)   -- a payload of NUL-terminated strings
  * diag(text)     -- TAP diagnostics ("# " lines), flushed
  * guest_collect(g, barrier) -- every event generated for g so far
  * EvClient       -- the socket client of the guest tests (introduced())
  * nothing_more(g, what), nothing_for(g, witness, what)
                   -- nothing more came for g, proved by a barrier
  * rss_kb(pid), cpu_seconds(pid), asan_build()  -- measuring the daemon
  * the ring's error indicator values (XENSTORE_ERROR_*), ALL_FEATURES and
    ERRNO_NAMES (every error name the daemon may reply)
"""

import os
import shutil
import sys
import tempfile
import time

from xstest import (XS_ERROR, XS_GET_DOMAIN_PATH, XS_INTRODUCE,
                    XS_IS_DOMAIN_INTRODUCED, XS_WATCH_EVENT, Daemon, DaemonError,
                    EventClient, XsError, _diag, _p, check, daemon_binary, eq,
                    short, type_name, upstream_mode, wait_for)
from fakexen import FakeXen

# The ring page's error field (docs/misc/xenstore-ring.txt).
XENSTORE_ERROR_NONE = 0
XENSTORE_ERROR_COMM = 1
XENSTORE_ERROR_RINGIDX = 2
XENSTORE_ERROR_PROTO = 3

ALL_FEATURES = 15   # reconnection | error | watch depth | DOMID_ANY

ERRNO_NAMES = {b"EINVAL", b"EACCES", b"EEXIST", b"EISDIR", b"ENOENT",
               b"ENOMEM", b"ENOSPC", b"EIO", b"ENOTEMPTY", b"ENOSYS",
               b"EROFS", b"EBUSY", b"EAGAIN", b"EISCONN", b"E2BIG",
               b"EPERM", b"EQUOTA", b"ENOTSUP"}


def skip_unless_test_double():
    """The upstream daemon cannot load the Xen test double: in upstream
    mode, skip the whole file (TAP "1..0 # SKIP") and exit 0."""
    if upstream_mode():
        print("1..0 # SKIP the upstream daemon cannot load the Xen test double")
        sys.stdout.flush()
        sys.exit(0)


def diag(text):
    """xstest's TAP diagnostics, flushed at once (tests print them while
    other threads run)."""
    _diag(text)
    sys.stdout.flush()


# ---------------------------------------------------------------- helpers

def args(*items):
    """A payload of NUL-terminated strings (ints are written in decimal)."""
    return b"".join(_p(str(i) if isinstance(i, int) else i) for i in items)


def guest_error(g, type_, payload, tx_id=0):
    """The error name of a guest request that must fail."""
    t, rp = g.request(type_, payload, tx_id=tx_id)
    if t != XS_ERROR:
        raise XsError("dom%d %s %s: expected an error, got %s %s"
                      % (g.domid, type_name(type_), short(payload), type_name(t), short(rp)))
    return rp.rstrip(b"\0").decode()


def settle(g):
    """Two round trips over g's ring: every signal sent to the daemon before
    (a VIRQ, another guest's) has been handled when this returns, since the
    guest's signals queue behind them on the daemon's one event channel
    socket."""
    for _ in range(2):
        g.expect_ok(XS_GET_DOMAIN_PATH, b"0\0")


def wait_error(g, value, timeout=5.0):
    """Wait for g's error indicator to become `value`."""
    wait_for(lambda: g.error == value,
             "dom%d's error indicator to become %d (it is %d)"
             % (g.domid, value, g.error), timeout)


def recv_reply(g, timeout=5.0):
    """The next non-event packet over g's ring (events go to g.events)."""
    while True:
        t, rid, tid, p = g.recv_packet(timeout)
        if t == XS_WATCH_EVENT:
            g.events.append(p)
            continue
        return t, rid, tid, p


# -------------------------------------------------------------------- rig


class EvClient(EventClient):
    """xstest.EventClient for the guest tests: a barrier path of their own,
    and introduced()."""

    barrier = b"/zz-guests-barrier"     # never written: watched by collect()

    def introduced(self, domid):
        return self.expect_ok(XS_IS_DOMAIN_INTRODUCED, args(domid))


# Absence is checked after a barrier, never after a sleep: a sleep proves
# nothing on a loaded machine, a barrier proves the daemon got that far.

def nothing_more(g, what):
    """g is served: one more round trip over its ring must be the next
    packet, and no event may have come before its reply (WATCH_EVENTs
    arriving meanwhile are set aside in g.events; anything else in front
    of the reply fails the request)."""
    g.events = []
    g.expect_ok(XS_GET_DOMAIN_PATH, b"%d\0" % g.domid)
    check(not g.events and not g._rx and not g.rsp_avail(),
          "%s: %r" % (what, g.events or bytes(g._rx)))


def nothing_for(g, witness, what):
    """g is not served (an error, a partial request, a wrong port): once the
    daemon handled everything g signalled (two round trips of a served
    witness guest, whose signals queue behind g's on the daemon's event
    channel), g's response ring must still be empty."""
    settle(witness)
    check(not g.rsp_avail() and not g._rx, what)


def guest_collect(g, barrier):
    """Every event generated for guest g so far, as (path, token) pairs:
    a watch on `barrier` (a path never written) fires once all came."""
    tok = b"gbarrier"
    g.watch(barrier, tok)
    out = []
    while True:
        e = g.next_event()
        if e == (barrier, tok):
            break
        out.append(e)
    g.unwatch(barrier, tok)
    return out


def rss_kb(pid):
    """The daemon's own resident memory, RssAnon: its heap and stacks,
    without the pages of files it maps (its journal, up to the journal's
    limit; guests' rings), which are the files' memory and bounded."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon for pid %d" % pid)


def cpu_seconds(pid):
    """User + system CPU time of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_asan = None


def asan_build():
    """Is the daemon under test built with AddressSanitizer?  Its RSS is
    inflated by redzones and keeps freed memory in quarantine, so RSS
    bounds are loose there."""
    global _asan
    if _asan is None:
        try:
            with open(daemon_binary(), "rb") as f:
                _asan = b"__asan_init" in f.read()
        except OSError:
            _asan = False
    return _asan


class Rig:
    """A FakeXen directory, a daemon under it, a socket client (dom0) and
    guests.

        with Rig(["-Q", "nodes=20"], domids=(5, 6)) as r:
            g, h = r.guests         # or r.g[5], r.g[6]
            k = r.guest(7); r.home(7); r.introduce(k)
            r.c (client_class), r.d (Daemon), r.fx (FakeXen), r.dom0

    extra_args  the daemon's extra command-line arguments.
    domids      guests made before the daemon starts (r.guests, in this
                order, and r.g[domid]); unless `introduce` is false, each is
                introduced when the client is up, with a home it owns
                (introduce_with_home).
    dom0_port   if not None, dom0's own ring (r.dom0) on that event channel
                port, made before the daemon starts (it reads it at start).
    prepare     prepare(r.guests) runs before the daemon starts: the pages
                exist, nothing is introduced yet.

    Per file (class attributes): client_class, the class of r.c (None: no
    client); alive_node, write /tool/alive = "yes" readable by all before
    the guests are introduced (check_alive() reads it back); tmp_prefix.

    On exit the client and guests are closed, the daemon is stopped and the
    FakeXen directory removed.  After a clean body the daemon must still
    run and stop cleanly, else the test fails.  After a failure (or a bad
    stop) the daemon's log goes into the TAP output, and its directory (the
    log, path given) is kept.
    """

    client_class = EventClient
    alive_node = False
    tmp_prefix = "fx-"

    def __init__(self, extra_args=(), domids=(), introduce=True, dom0_port=None,
                 prepare=None):
        self.extra_args = list(extra_args)
        self.domids = tuple(domids)
        self.introduce_domids = introduce
        self.dom0_port = dom0_port
        self.prepare = prepare
        self.guests = []        # the guests of `domids`, in order
        self.g = {}             # and by domid
        self.dom0 = None
        self.tmp = None
        self.fx = None
        self.d = None
        self.c = None
        self._made = []         # every guest made, closed on exit

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix=self.tmp_prefix, dir="/tmp")
        try:
            self.fx = FakeXen(self.tmp)
            if self.dom0_port is not None:
                self.dom0 = self.fx.dom0_guest(self.dom0_port)
                self._made.append(self.dom0)
            for i in self.domids:
                self.g[i] = self.guest(i)
                self.guests.append(self.g[i])
            if self.prepare:
                self.prepare(self.guests)
            self.d = Daemon(self.extra_args, env=self.fx.env())
            self.d.start()
            if self.client_class is not None:
                self.c = self.client_class(self.d.socket_path)
            if self.alive_node:
                self.c.write("/tool/alive", "yes")
                self.c.set_perms("/tool", ["r0"])
                self.c.set_perms("/tool/alive", ["r0"])
            if self.introduce_domids:
                for g in self.guests:
                    self.introduce_with_home(g)
        except BaseException:
            self._cleanup(False)
            raise
        return self

    def guest(self, domid, **kw):
        """A new guest (FakeXen.new_guest), closed on exit."""
        g = self.fx.new_guest(domid, **kw)
        self._made.append(g)
        return g

    def introduce(self, g, client=None):
        """INTRODUCE g through `client` (default r.c)."""
        (client or self.c).expect_ack(XS_INTRODUCE, self.fx.introduce_args(g))

    def home(self, domid, perms=None):
        """Make /local/domain/<domid> as a toolstack would: by default owned
        by dom0, readable and writable by the domain."""
        path = "/local/domain/%d" % domid
        self.c.mkdir(path)
        self.c.set_perms(path, perms or ["n0", "b%d" % domid])
        return path

    def introduce_with_home(self, g):
        """INTRODUCE g, then make its home /local/domain/<id>, owned by the
        domain (so its nodes there count against its own quota)."""
        self.introduce(g)
        self.home(g.domid, ["n%d" % g.domid])

    def check_alive(self):
        """The daemon runs and serves its socket (needs alive_node)."""
        check(self.d.alive(), "the daemon died")
        eq(self.c.read("/tool/alive"), b"yes", "socket client read")

    def _cleanup(self, ok):
        """Close and stop everything; returns the daemon's stop error."""
        if self.c is not None:
            self.c.close()
        stop_error = None
        if self.d is not None:
            try:
                self.d.stop()
            except DaemonError as e:
                stop_error = e
                if not ok:
                    diag("daemon: %s" % e)
            if ok and not stop_error:
                self.d.cleanup()
            else:                   # the log goes into the TAP output
                diag("daemon log (tail; kept in %s):" % self.d.log_path)
                diag(self.d.log()[-6000:] or "(empty)")
        for g in self._made:
            g.close()
        if self.fx is not None:
            self.fx.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return stop_error

    def __exit__(self, exc_type, exc, tb):
        ok = exc_type is None
        died = ok and self.d is not None and not self.d.alive()
        stop_error = self._cleanup(ok and not died)
        if died:
            raise AssertionError("the daemon died during the test (%s)"
                                 % (stop_error or "no exit status"))
        if ok and stop_error:
            raise stop_error
        return False


__all__ = ["skip_unless_test_double", "diag", "args", "guest_error", "settle",
           "wait_for", "wait_error", "recv_reply", "Rig", "guest_collect", "rss_kb",
           "cpu_seconds", "asan_build", "EvClient", "nothing_more", "nothing_for",
           "XENSTORE_ERROR_NONE", "XENSTORE_ERROR_COMM", "XENSTORE_ERROR_RINGIDX",
           "XENSTORE_ERROR_PROTO", "ALL_FEATURES", "ERRNO_NAMES"]
