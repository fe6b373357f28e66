#!/usr/bin/python3
"""Tests of the Xen test double itself (tests/fakexen/README.md) and of its
harness (fakexen.py), without the daemon.

libfakexen.so is loaded into this process with ctypes and called directly,
as the daemon would call it; a few tests run a real program under
LD_PRELOAD.  The ring tests pair a harness Guest with a small server thread
that maps the guest's page and binds its port through the library.
"""

import ctypes
import fcntl
import mmap
import os
import select
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xstest import *  # noqa: E402,F401,F403
from xstest import HEADER, RawClient  # noqa: E402
from fakexen import *  # noqa: E402,F401,F403

EAGAIN, EINVAL, ENOENT, ESRCH = 11, 22, 2, 3
PROT_RW = mmap.PROT_READ | mmap.PROT_WRITE
XEN_DOMINF_dying, XEN_DOMINF_shutdown, XEN_DOMINF_running = 1 << 0, 1 << 2, 1 << 5

vp, u32, cint = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int

_lib = None


def lib():
    """libfakexen.so, loaded once, with the prototypes of the Xen headers."""
    global _lib
    if _lib is None:
        path = library_path()
        check(os.path.exists(path), "%s is missing: build it with make" % path)
        L = ctypes.CDLL(path, use_errno=True)
        protos = {
            "xenevtchn_open": (vp, [vp, ctypes.c_uint]),
            "xenevtchn_close": (cint, [vp]),
            "xenevtchn_fd": (cint, [vp]),
            "xenevtchn_bind_interdomain": (cint, [vp, u32, u32]),
            "xenevtchn_bind_virq": (cint, [vp, ctypes.c_uint]),
            "xenevtchn_unbind": (cint, [vp, u32]),
            "xenevtchn_pending": (cint, [vp]),
            "xenevtchn_unmask": (cint, [vp, u32]),
            "xenevtchn_notify": (cint, [vp, u32]),
            "xengnttab_open": (vp, [vp, ctypes.c_uint]),
            "xengnttab_close": (cint, [vp]),
            "xengnttab_set_max_grants": (cint, [vp, u32]),
            "xengnttab_map_grant_ref": (vp, [vp, u32, u32, cint]),
            "xengnttab_unmap": (cint, [vp, vp, u32]),
            "xenforeignmemory_open": (vp, [vp, ctypes.c_uint]),
            "xenforeignmemory_close": (cint, [vp]),
            "xenforeignmemory_map": (vp, [vp, u32, cint, ctypes.c_size_t,
                                          ctypes.POINTER(ctypes.c_ulong),
                                          ctypes.POINTER(cint)]),
            "xenforeignmemory_unmap": (cint, [vp, vp, ctypes.c_size_t]),
            "xc_interface_open": (vp, [vp, vp, ctypes.c_uint]),
            "xc_interface_close": (cint, [vp]),
            "xc_domain_getinfolist": (cint, [vp, u32, ctypes.c_uint, vp]),
            "xc_domain_getinfo": (cint, [vp, u32, ctypes.c_uint, vp]),
            "__open_2": (cint, [ctypes.c_char_p, cint]),
            "__open64_2": (cint, [ctypes.c_char_p, cint]),
        }
        for name, (res, args) in protos.items():
            f = getattr(L, name)
            f.restype, f.argtypes = res, args
        for name in ("open", "open64", "openat", "openat64"):
            getattr(L, name).restype = cint   # variadic: no argtypes
        _lib = L
    return _lib


def failed_with(result, err, what):
    """Check that a call returned -1 / NULL and set errno to `err`."""
    got = ctypes.get_errno()
    check(result in (-1, None), "%s: expected failure, got %r" % (what, result))
    eq(os.strerror(got), os.strerror(err), what + " errno")


@contextmanager
def fake(dom0=True):
    """A FakeXen on a fresh directory, exported as FAKEXEN_DIR."""
    d = tempfile.mkdtemp(prefix="fakexen-")
    fx = FakeXen(d, dom0=dom0)
    os.environ["FAKEXEN_DIR"] = d
    try:
        yield fx
    finally:
        os.environ.pop("FAKEXEN_DIR", None)
        fx.close()
        shutil.rmtree(d, ignore_errors=True)


def set_nonblocking(fd):
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


@contextmanager
def evtchn(nonblocking=True):
    """A handle, made non-blocking as the daemon makes it (the device, and
    the double, block a read with nothing pending otherwise)."""
    L = lib()
    h = L.xenevtchn_open(None, 0)
    check(h, "xenevtchn_open failed: %s" % os.strerror(ctypes.get_errno()))
    if nonblocking:
        set_nonblocking(L.xenevtchn_fd(h))
    try:
        yield h
    finally:
        L.xenevtchn_close(h)


def wait_readable(fd, timeout=2.0):
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(int(timeout * 1000)))


def u32_at(addr):
    return ctypes.c_uint32.from_address(addr)


# ------------------------------------------------------------ a ring server

class RingServer(threading.Thread):
    """The server end of one guest's ring, driven through libfakexen as the
    daemon would drive it: grant map, interdomain bind, pending/notify.

    `handler(type, req_id, tx_id, payload)` returns the bytes to answer each
    complete request packet (None: keep the raw bytes in self.received).
    `outgoing` is written into the response ring as space allows."""

    def __init__(self, guest, handler=None, features=0):
        threading.Thread.__init__(self, daemon=True)
        L = lib()
        self.guest = guest
        self.handler = handler
        self.received = bytearray()
        self.outgoing = bytearray()
        self.signals = 0
        self.errors = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.xce = L.xenevtchn_open(None, 0)
        check(self.xce, "xenevtchn_open")
        set_nonblocking(L.xenevtchn_fd(self.xce))
        self.local = L.xenevtchn_bind_interdomain(self.xce, guest.domid, guest.port)
        check(self.local > 0, "bind_interdomain: %s" % os.strerror(ctypes.get_errno()))
        self.gt = L.xengnttab_open(None, 0)
        self.page = L.xengnttab_map_grant_ref(self.gt, guest.domid, GNTTAB_RESERVED_XENSTORE,
                                              PROT_RW)
        check(self.page, "map_grant_ref: %s" % os.strerror(ctypes.get_errno()))
        self.f = {name: u32_at(self.page + 2048 + 4 * i) for i, name in enumerate(FIELDS)}
        self.f["server_features"].value = features

    def send(self, data):
        with self.lock:
            self.outgoing += data

    def run(self):
        L = lib()
        fd = L.xenevtchn_fd(self.xce)
        try:
            while not self.stopping.is_set():
                wait_readable(fd, 0.02)
                while True:
                    p = L.xenevtchn_pending(self.xce)
                    if p < 0:
                        break
                    if p != self.local:
                        self.errors.append("pending returned port %d, not %d" % (p, self.local))
                    self.signals += 1
                    L.xenevtchn_unmask(self.xce, p)
                self.service()
        except Exception as e:  # reported by stop()
            self.errors.append(repr(e))

    def service(self):
        L = lib()
        f = self.f
        if f["connection"].value == XENSTORE_RECONNECT:
            for k in ("req_cons", "req_prod", "rsp_cons", "rsp_prod"):
                f[k].value = 0
            with self.lock:
                self.outgoing = bytearray()
            f["connection"].value = XENSTORE_CONNECTED
            L.xenevtchn_notify(self.xce, self.local)
            return
        moved = False
        # requests
        cons, prod = f["req_cons"].value, f["req_prod"].value
        n = (prod - cons) & 0xFFFFFFFF
        if 0 < n <= RING_SIZE:
            for i in range(n):
                self.received.append(ctypes.c_uint8.from_address(
                    self.page + (cons + i) % RING_SIZE).value)
            f["req_cons"].value = (cons + n) & 0xFFFFFFFF
            moved = True
            self.answer()
        # responses
        cons, prod = f["rsp_cons"].value, f["rsp_prod"].value
        space = RING_SIZE - ((prod - cons) & 0xFFFFFFFF)
        with self.lock:
            n = min(space, len(self.outgoing))
            for i in range(n):
                ctypes.c_uint8.from_address(
                    self.page + 1024 + (prod + i) % RING_SIZE).value = self.outgoing[i]
            del self.outgoing[:n]
        if n > 0:
            f["rsp_prod"].value = (prod + n) & 0xFFFFFFFF
            moved = True
        if moved:
            L.xenevtchn_notify(self.xce, self.local)

    def answer(self):
        if self.handler is None:
            return
        while len(self.received) >= HEADER.size:
            t, rid, tid, ln = HEADER.unpack(bytes(self.received[:HEADER.size]))
            if len(self.received) < HEADER.size + ln:
                return
            payload = bytes(self.received[HEADER.size:HEADER.size + ln])
            del self.received[:HEADER.size + ln]
            self.send(self.handler(t, rid, tid, payload))

    def stop(self):
        L = lib()
        self.stopping.set()
        self.join(5)
        L.xengnttab_unmap(self.gt, self.page, 1)
        L.xengnttab_close(self.gt)
        L.xenevtchn_close(self.xce)
        eq(self.errors, [], "server thread errors")

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


# ------------------------------------------------------------ library tests

def test_opens_fail_without_fakexen_dir():
    L = lib()
    os.environ.pop("FAKEXEN_DIR", None)
    failed_with(L.xenevtchn_open(None, 0), ENOENT, "xenevtchn_open")
    failed_with(L.xengnttab_open(None, 0), ENOENT, "xengnttab_open")
    failed_with(L.xenforeignmemory_open(None, 0), ENOENT, "xenforeignmemory_open")
    failed_with(L.xc_interface_open(None, None, 0), ENOENT, "xc_interface_open")
    for p in (b"/proc/xen/xsd_port", b"/proc/xen/xsd_kva", b"/dev/xen/xsd_kva"):
        failed_with(L.open(p, os.O_RDONLY), ENOENT, "open %s" % p)
    # Other paths pass through.
    fd = L.open(b"/proc/self/stat", os.O_RDONLY)
    check(fd >= 0, "open of an ordinary file failed")
    os.close(fd)


def test_evtchn_blocks_unless_nonblocking_and_replaces_stale_file():
    # As /dev/xen/evtchn: opened blocking, so xenevtchn_pending() waits for
    # a signal; with O_NONBLOCK set by the caller it fails with EAGAIN.
    # (A daemon that drains the device until EAGAIN without setting it
    # hangs at its first signal on real Xen.)
    L = lib()
    with fake() as fx:
        open(fx.evtchn_path, "w").close()   # stale leftover
        with evtchn(nonblocking=False) as h:
            check(stat.S_ISSOCK(os.stat(fx.evtchn_path).st_mode), "evtchn is not a socket")
            fd = L.xenevtchn_fd(h)
            check(not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK,
                  "evtchn fd is non-blocking from the start")
            check(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC, "evtchn fd lacks CLOEXEC")
            check(not wait_readable(fd, 0.05), "fd readable with nothing sent")
            g = fx.new_guest(5, port=42)
            local = L.xenevtchn_bind_interdomain(h, 5, 42)
            got = []
            t = threading.Thread(target=lambda: got.append(L.xenevtchn_pending(h)),
                                 daemon=True)
            t.start()
            t.join(0.3)
            check(t.is_alive(), "pending did not block with nothing pending")
            g.notify()
            t.join(2)
            eq(got, [local], "the blocked pending returns the signalled port")
            eq(L.xenevtchn_unmask(h, local), 0, "unmask")
            set_nonblocking(fd)
            failed_with(L.xenevtchn_pending(h), EAGAIN, "pending, non-blocking, empty")


def test_port_is_masked_until_unmask_and_signals_collapse():
    # As the device: a port pending() reported stays masked until the
    # caller unmasks it; signals meanwhile collapse into one, reported
    # after the unmask (a daemon that forgot to unmask would stop hearing
    # that guest on real Xen).
    L = lib()
    with fake() as fx, evtchn() as h:
        fd = L.xenevtchn_fd(h)
        g, o = fx.new_guest(5, port=42), fx.new_guest(6, port=43)
        p5 = L.xenevtchn_bind_interdomain(h, 5, 42)
        p6 = L.xenevtchn_bind_interdomain(h, 6, 43)
        g.notify()
        g.notify()
        g.notify()
        o.notify()
        check(wait_readable(fd), "signals did not arrive")
        eq(L.xenevtchn_pending(h), p5, "first signal")
        eq(L.xenevtchn_pending(h), p6, "the other port is not masked")
        failed_with(L.xenevtchn_pending(h), EAGAIN, "masked port's signals held back")
        check(not wait_readable(fd, 0.05), "readable while the signals are held")
        eq(L.xenevtchn_unmask(h, p5), 0, "unmask")
        check(wait_readable(fd), "held signal not delivered at unmask")
        eq(L.xenevtchn_pending(h), p5, "the held signals, once")
        failed_with(L.xenevtchn_pending(h), EAGAIN, "the held signals collapsed into one")
        eq(L.xenevtchn_unmask(h, p5), 0, "unmask again")
        eq(L.xenevtchn_unmask(h, p6), 0, "unmask the other")
        check(not wait_readable(fd, 0.05), "a signal with nothing held")
        g.notify()
        eq(L.xenevtchn_pending(h) if wait_readable(fd) else -2, p5,
           "a new signal after the unmask")
        failed_with(L.xenevtchn_unmask(h, 99), EINVAL, "unmask of an unbound port")


def test_interdomain_signal_round_trip():
    L = lib()
    with fake() as fx, evtchn() as h:
        g = fx.new_guest(5, port=42)
        fd = L.xenevtchn_fd(h)
        local = L.xenevtchn_bind_interdomain(h, 5, 42)
        eq(local, 1, "first local port")
        g.notify()
        check(wait_readable(fd), "evtchn fd not readable after the guest's signal")
        eq(L.xenevtchn_pending(h), local, "pending")
        failed_with(L.xenevtchn_pending(h), EAGAIN, "pending after draining")
        eq(L.xenevtchn_unmask(h, local), 0, "unmask")
        # Daemon to guest: {domid, remote port} arrives at guest-5.
        eq(L.xenevtchn_notify(h, local), 0, "notify")
        check(g.wait_notify(2), "the guest got no signal")
        eq((g.notified, g.wrong_signals), (1, []), "guest signal count")
        check(not g.wait_notify(0.05), "a second signal appeared")
        # The same remote port cannot be bound twice; after unbind it can,
        # with a new local port.
        failed_with(L.xenevtchn_bind_interdomain(h, 5, 42), EINVAL, "second bind")
        eq(L.xenevtchn_unbind(h, local), 0, "unbind")
        failed_with(L.xenevtchn_unbind(h, local), EINVAL, "unbind twice")
        failed_with(L.xenevtchn_notify(h, local), EINVAL, "notify an unbound port")
        g.notify()   # now unbound: skipped
        check(wait_readable(fd), "datagram did not arrive")
        failed_with(L.xenevtchn_pending(h), EAGAIN, "pending for an unbound port")
        eq(L.xenevtchn_bind_interdomain(h, 5, 42), 2, "rebind gets a new port")
        # A guest without a socket: notify still succeeds (signal lost).
        g.close()
        eq(L.xenevtchn_notify(h, 2), 0, "notify with no guest socket")
        g.close()


def test_bind_errors():
    L = lib()
    with fake() as fx, evtchn() as h:
        failed_with(L.xenevtchn_bind_interdomain(h, 9, 3), ESRCH, "bind to a missing domain")
        failed_with(L.xenevtchn_bind_interdomain(h, 70000, 3), ESRCH, "bind to domid 70000")
        fx.set_state(9, "running")
        failed_with(L.xenevtchn_bind_interdomain(h, 9, 0), EINVAL, "bind to port 0")
        fx.fail_bind(9)
        failed_with(L.xenevtchn_bind_interdomain(h, 9, 3), EINVAL, "bind with fail-bind-9")
        fx.fail_bind(9, False)
        eq(L.xenevtchn_bind_interdomain(h, 9, 3), 1, "bind after fail-bind-9 removed")
        fx.set_state(10, "dying")   # exists, though dying
        eq(L.xenevtchn_bind_interdomain(h, 10, 3), 2, "bind to a dying domain")
        fx.set_state(9, None)       # only new binds are refused
        failed_with(L.xenevtchn_bind_interdomain(h, 9, 4), ESRCH, "bind to a gone domain")


def test_virq_and_signals_of_unbound_ports():
    L = lib()
    with fake() as fx, evtchn() as h:
        fd = L.xenevtchn_fd(h)
        fx.virq()     # not bound yet: dropped
        check(wait_readable(fd), "virq datagram did not arrive")
        failed_with(L.xenevtchn_pending(h), EAGAIN, "unbound virq")
        v = L.xenevtchn_bind_virq(h, VIRQ_DOM_EXC)
        check(v > 0, "bind_virq")
        fx.signal(7, 9)           # nobody bound: skipped
        fx.virq()
        eq(L.xenevtchn_pending(h), v, "pending skips to the virq")
        failed_with(L.xenevtchn_pending(h), EAGAIN, "after the virq")
        eq(L.xenevtchn_unmask(h, v), 0, "unmask the virq")
        eq(L.xenevtchn_notify(h, v), 0, "notify on a virq port")
        # Garbage of the wrong size is skipped too.
        fx._sock.sendto(b"xyz", fx.evtchn_path)
        fx.virq()
        eq(L.xenevtchn_pending(h), v, "pending skips a short datagram")


def test_thousand_domains_map_to_their_ports():
    L = lib()
    with fake() as fx, evtchn() as h:
        guests = [fx.new_guest(d) for d in range(1, 1001)]
        t0 = time.monotonic()
        ports = {}
        for g in guests:
            ports[g.domid] = L.xenevtchn_bind_interdomain(h, g.domid, g.port)
        eq(sorted(ports.values()), list(range(1, 1001)), "local ports")
        for g in reversed(guests):
            g.notify()
            eq(L.xenevtchn_pending(h), ports[g.domid], "pending for dom%d" % g.domid)
        for g in guests[::7]:
            eq(L.xenevtchn_notify(h, ports[g.domid]), 0, "notify dom%d" % g.domid)
            check(g.wait_notify(1), "dom%d got no signal" % g.domid)
            eq(g.wrong_signals, [], "dom%d signals" % g.domid)
        dt = time.monotonic() - t0
        check(dt < 10, "1000 domains took %.1f s" % dt)
        for g in guests:
            g.close()


def test_grant_map_shares_the_guest_page():
    L = lib()
    with fake() as fx, evtchn():
        g = fx.new_guest(3)
        gt = L.xengnttab_open(None, 0)
        check(gt, "xengnttab_open")
        eq(L.xengnttab_set_max_grants(gt, 128), 0, "set_max_grants")
        p = L.xengnttab_map_grant_ref(gt, 3, 1, PROT_RW)
        check(p, "map of grant 1 failed: %s" % os.strerror(ctypes.get_errno()))
        # guest -> mapping
        g.page[0:5] = b"hello"
        g.req_prod = 5
        eq(ctypes.string_at(p, 5), b"hello", "request bytes seen through the grant")
        eq(u32_at(p + 2052).value, 5, "req_prod seen through the grant")
        # mapping -> guest
        ctypes.memmove(p + 1024, b"world", 5)
        u32_at(p + 2060).value = 5
        eq(g.recv_bytes(5, timeout=1), b"world", "response bytes")
        eq(u32_at(p + 2056).value, 5, "rsp_cons written by the guest")
        eq(L.xengnttab_unmap(gt, p, 1), 0, "unmap")
        failed_with(L.xengnttab_map_grant_ref(gt, 3, 2, PROT_RW), ENOENT, "map of grant 2")
        failed_with(L.xengnttab_map_grant_ref(gt, 4, 1, PROT_RW), ENOENT, "map for dom4")
        g2 = fx.new_guest(4, grant=False)
        failed_with(L.xengnttab_map_grant_ref(gt, 4, 1, PROT_RW), ENOENT, "map without grant")
        eq(L.xengnttab_close(gt), 0, "close")
        g.close()
        g2.close()


def test_foreign_map_fallback():
    L = lib()
    with fake() as fx, evtchn():
        g = fx.new_guest(4, gfn=0x1234, grant=False)
        fm = L.xenforeignmemory_open(None, 0)
        check(fm, "xenforeignmemory_open")
        gfns = (ctypes.c_ulong * 2)(0x1234, 0x9999)
        err = (cint * 2)(-1, -1)
        p = L.xenforeignmemory_map(fm, 4, PROT_RW, 1, gfns, err)
        check(p, "foreign map failed: %s" % os.strerror(ctypes.get_errno()))
        eq(err[0], 0, "err[0]")
        g.page[100:103] = b"abc"
        eq(ctypes.string_at(p + 100, 3), b"abc", "guest write seen through the foreign map")
        ctypes.memmove(p + 200, b"xyz", 3)
        eq(g.page[200:203], b"xyz", "foreign-map write seen by the guest")
        eq(L.xenforeignmemory_unmap(fm, p, 1), 0, "unmap")
        # Two pages, the second missing: with err, a partial map.
        p = L.xenforeignmemory_map(fm, 4, PROT_RW, 2, gfns, err)
        check(p, "partial map returned NULL")
        eq((err[0], err[1]), (0, ENOENT), "per-page errors")
        eq(ctypes.string_at(p + 100, 3), b"abc", "first page of a partial map")
        L.xenforeignmemory_unmap(fm, p, 2)
        failed_with(L.xenforeignmemory_map(fm, 4, PROT_RW, 2, gfns, None), ENOENT,
                    "map of a missing page without err")
        failed_with(L.xenforeignmemory_map(fm, 5, PROT_RW, 1, gfns, None), ENOENT,
                    "map of another domain's gfn")
        eq(L.xenforeignmemory_close(fm), 0, "close")
        g.close()


def _entries(fn, first, max_):
    """Call a getinfo function into a 0xFF-filled buffer.  Returns (count,
    buffer, stride): the fake zeroes each whole entry it fills, so the
    first untouched byte after one entry is the entry size."""
    L = lib()
    buf = ctypes.create_string_buffer(b"\xff" * 8192, 8192)
    xch = L.xc_interface_open(None, None, 0)
    check(xch, "xc_interface_open: %s" % os.strerror(ctypes.get_errno()))
    try:
        n = fn(L)(xch, first, max_, buf)
    finally:
        L.xc_interface_close(xch)
    return n, buf.raw


def _stride(fn):
    n, raw = _entries(fn, 0, 1)
    eq(n, 1, "one entry asked")
    stride = raw.index(b"\xff" * 8)
    check(stride >= 8 and stride % 8 == 0 and raw[stride:] == b"\xff" * (8192 - stride),
          "the fake wrote past one entry (%d bytes)" % stride)
    return stride


def test_getinfolist_reports_states():
    def fn(L):
        return L.xc_domain_getinfolist
    with fake() as fx:
        fx.set_state(1, "running")
        fx.set_state(2, "shutdown")
        fx.set_state(3, "dying")
        fx.set_state(65535, "running")
        stride = _stride(fn)
        n, raw = _entries(fn, 0, 10)
        eq(n, 5, "domain count")
        got = [(int.from_bytes(raw[i * stride:i * stride + 2], "little"),
                int.from_bytes(raw[i * stride + 4:i * stride + 8], "little")) for i in range(n)]
        eq(got, [(0, XEN_DOMINF_running), (1, XEN_DOMINF_running), (2, XEN_DOMINF_shutdown),
                 (3, XEN_DOMINF_dying), (65535, XEN_DOMINF_running)], "domains and flags")
        eq(raw[5 * stride:], b"\xff" * (8192 - 5 * stride), "bytes after the 5 entries")
        # From a domid that does not exist: the next one.
        n, raw = _entries(fn, 4, 1)
        eq((n, int.from_bytes(raw[0:2], "little")), (1, 65535), "first domain >= 4")
        # State changes are seen by an open handle.
        L = lib()
        xch = L.xc_interface_open(None, None, 0)
        buf = ctypes.create_string_buffer(stride)
        fx.set_state(2, None)
        eq(L.xc_domain_getinfolist(xch, 2, 1, buf), 1, "count")
        eq(int.from_bytes(buf.raw[0:2], "little"), 3, "domain 2 is gone")
        fx.set_state(65535, None)
        eq(L.xc_domain_getinfolist(xch, 4, 1, buf), 0, "no domain >= 4")
        L.xc_interface_close(xch)


def test_getinfo_reports_states():
    def fn(L):
        return L.xc_domain_getinfo
    with fake(dom0=False) as fx:
        fx.set_state(6, "running")
        fx.set_state(7, "shutdown")
        fx.set_state(8, "dying")
        stride = _stride(fn)
        n, raw = _entries(fn, 0, 10)
        eq(n, 3, "domain count")
        got = []
        for i in range(n):
            e = raw[i * stride:]
            bits = int.from_bytes(e[8:12], "little")   # dying:1 crashed:1 shutdown:1 ...
            got.append((int.from_bytes(e[0:4], "little"),
                        bool(bits & 1), bool(bits & 4), bool(bits & 32)))
        eq(got, [(6, False, False, True), (7, False, True, False), (8, True, False, False)],
           "(domid, dying, shutdown, running)")


def test_open_redirects_dom0_ring_files():
    L = lib()
    with fake() as fx:
        g = fx.dom0_guest(17)
        g.page[0:4] = b"RING"
        for name, fn, args in [("open", L.open, ()), ("open64", L.open64, ()),
                               ("__open_2", L.__open_2, ()), ("__open64_2", L.__open64_2, ())]:
            fd = fn(b"/proc/xen/xsd_port", os.O_RDONLY, *args)
            check(fd >= 0, "%s xsd_port failed" % name)
            eq(os.read(fd, 100), b"17", "%s xsd_port content" % name)
            os.close(fd)
        for name, fn in [("openat", L.openat), ("openat64", L.openat64)]:
            for path in (b"/dev/xen/xsd_kva", b"/proc/xen/xsd_kva"):
                fd = fn(-100, path, os.O_RDWR)   # AT_FDCWD
                check(fd >= 0, "%s %s failed" % (name, path))
                eq(os.read(fd, 4), b"RING", "%s %s content" % (name, path))
                os.close(fd)
        # Creating a file through the interposer keeps the mode argument.
        old = os.umask(0)
        try:
            target = os.path.join(fx.dir, "created").encode()
            fd = L.openat(-100, target, os.O_CREAT | os.O_WRONLY, 0o640)
            check(fd >= 0, "openat O_CREAT failed")
            os.close(fd)
            eq(stat.S_IMODE(os.stat(target).st_mode), 0o640, "mode of a created file")
        finally:
            os.umask(old)
        g.close()
        os.unlink(fx.path("xsd_port"))
        failed_with(L.open(b"/proc/xen/xsd_port", os.O_RDONLY), ENOENT, "missing xsd_port")


def test_preloaded_program_reads_redirected_files():
    with fake() as fx:
        g = fx.dom0_guest(23)
        env = fx.env({"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        r = subprocess.run(["cat", "/proc/xen/xsd_port"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        eq((r.returncode, r.stdout), (0, b"23"), "cat /proc/xen/xsd_port under LD_PRELOAD")
        del env["FAKEXEN_DIR"]
        r = subprocess.run(["cat", "/proc/xen/xsd_port"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        check(r.returncode != 0 and b"No such file" in r.stderr,
              "without FAKEXEN_DIR: %r" % (r,))
        g.close()


def test_env_for_the_daemon():
    with fake() as fx:
        e = fx.env({"ASAN_OPTIONS": "detect_leaks=1", "LD_PRELOAD": "/x.so"})
        eq(e["LD_PRELOAD"], library_path() + " /x.so", "LD_PRELOAD")
        eq(e["FAKEXEN_DIR"], fx.dir, "FAKEXEN_DIR")
        eq(e["ASAN_OPTIONS"], "detect_leaks=1:verify_asan_link_order=0", "ASAN_OPTIONS")
        e = fx.env({})
        eq(e["ASAN_OPTIONS"], "verify_asan_link_order=0", "ASAN_OPTIONS alone")
        eq(os.path.getsize(fx.path("domains")), 65536, "domains size")


def test_new_guest_files():
    with fake() as fx:
        g = fx.new_guest(12, gfn=77, port=5)
        page = fx.path("gfn-12-77")
        eq(open(page, "rb").read(), bytes(4096), "page content")
        eq(os.stat(fx.path("grant-12-1")).st_ino, os.stat(page).st_ino, "grant is a hard link")
        check(stat.S_ISSOCK(os.stat(fx.path("guest-12")).st_mode), "guest socket")
        eq(fx.state(12), "running", "state")
        eq(fx.introduce_args(g), b"12\x0077\x005\x00", "INTRODUCE payload")
        g.close()
        check(not os.path.exists(fx.path("guest-12")), "socket removed on close")
        g = fx.new_guest(13, grant=False, state="shutdown")
        check(not os.path.exists(fx.path("grant-13-1")), "no grant when grant=False")
        eq(fx.state(13), "shutdown", "state")
        g.close()
        g = fx.dom0_guest(9)
        eq(open(fx.path("xsd_port")).read(), "9", "xsd_port")
        eq(os.path.getsize(fx.path("xsd_kva")), 4096, "xsd_kva size")
        eq((g.domid, fx.introduce_args(g)), (0, b"0\x000\x009\x00"), "dom0 guest")
        g.close()


# --------------------------------------------------------------- ring tests

def test_send_never_overfills_the_ring():
    with fake() as fx, evtchn():
        g = fx.new_guest(2)
        g.req_cons = g.req_prod = 0xFFFFFF00     # near the 2^32 wrap
        data = bytes(range(256)) * 8
        try:
            g.send_bytes(data, timeout=0.3)
            raise AssertionError("send_bytes of 2048 bytes into a 1024-byte ring returned")
        except TimeoutError:
            pass
        eq(g.req_prod, (0xFFFFFF00 + 1024) & 0xFFFFFFFF, "req_prod after filling")
        eq(g.req_space(), 0, "space")
        ring = bytes(g.page[0:1024])
        eq(ring[0xF00 % 1024:] + ring[:0xF00 % 1024], data[:1024], "ring content")
        # Inconsistent indices: no space at all.
        g.req_cons = g.req_prod + 5
        eq(g.req_space(), 0, "space with cons ahead of prod")
        g.close()


def test_send_and_receive_through_a_server_with_wraparound():
    with fake() as fx:
        g = fx.new_guest(8)
        for k in ("req_cons", "req_prod", "rsp_cons", "rsp_prod"):
            setattr(g, k, 0xFFFFFC00)
        data = os.urandom(5000)
        with RingServer(g) as s:
            g.send_bytes(data, chunk=7)
            chunks = (len(data) + 6) // 7
            deadline = time.monotonic() + 5
            while len(s.received) < len(data) and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.02)        # and no extra signal after them
            eq(bytes(s.received), data, "bytes the server received")
            # Linux's rule: a signal only for chunks written when the
            # server had caught up, so at most one per chunk.
            check(0 < s.signals <= chunks, "%d signals for %d chunks" % (s.signals, chunks))
            s.send(data[::-1])
            eq(g.recv_bytes(len(data)), data[::-1], "bytes the guest received")
            check(g.no_data_within(0.05), "extra bytes")
            eq(g.wrong_signals, [], "signals to the guest")
            check(g.notified > 0, "the server never signalled")
        eq(g.rsp_cons, (0xFFFFFC00 + len(data)) & 0xFFFFFFFF, "rsp_cons wrapped")
        g.close()


def test_guest_signals_as_linux_xenbus_does():
    # The harness guest signals after writing only if the server had
    # consumed everything before (xb_write), and after reading only if the
    # response ring had been full (xb_read).
    L = lib()
    with fake() as fx, evtchn() as h:
        fd = L.xenevtchn_fd(h)
        g = fx.new_guest(5, port=42)
        local = L.xenevtchn_bind_interdomain(h, 5, 42)

        def signalled():
            if not wait_readable(fd, 0.1):
                return False
            p = L.xenevtchn_pending(h)
            L.xenevtchn_unmask(h, local)
            return p == local

        g.send_bytes(b"abc")
        check(signalled(), "no signal for bytes written into an empty ring")
        g.send_bytes(b"def")
        check(not signalled(), "a signal while the server is 3 bytes behind")
        g.req_cons = g.req_prod                 # the server caught up
        g.send_bytes(b"ghi")
        check(signalled(), "no signal once the server caught up")
        # Replies: the server fills the response ring, then writes a little.
        page = g.page
        page[1024:2048] = bytes(range(256)) * 4
        g.rsp_prod = g.rsp_prod + 1024
        eq(g.recv_bytes(1024), bytes(range(256)) * 4, "a full ring of replies")
        check(signalled(), "no signal after emptying a full response ring")
        page[1024:1034] = b"0123456789"
        g.rsp_prod = g.rsp_prod + 10
        eq(g.recv_bytes(10), b"0123456789", "ten bytes of replies")
        check(not signalled(), "a signal after reading a ring that was not full")
        g.close()


def test_request_replies_events_and_errors():
    def handler(t, rid, tid, payload):
        out = b""
        if payload.startswith(b"/ev"):      # an event first, then the reply
            out += RawClient.packet(XS_WATCH_EVENT, b"/ev/x\0tok\0", 0, 0)
        if payload.startswith(b"/missing"):
            return out + RawClient.packet(XS_ERROR, b"ENOENT\0", rid, tid)
        if t == XS_WRITE:
            return out + RawClient.packet(t, b"OK\0", rid, tid)
        if t == XS_TRANSACTION_START:
            return RawClient.packet(t, b"42\0", rid, tid)
        if t == XS_DIRECTORY:
            return RawClient.packet(t, b"a\0b\0", rid, tid)
        return out + RawClient.packet(t, b"v:" + payload, rid, tid)

    with fake() as fx:
        g = fx.new_guest(9)
        with RingServer(g, handler):
            eq(g.request(XS_READ, b"/a\0"), (XS_READ, b"v:/a\0"), "request")
            eq(g.request(XS_READ, b"/b\0", tx_id=5, req_id=99), (XS_READ, b"v:/b\0"),
               "request with ids")
            eq(g.read("/ev"), b"v:/ev\0", "read with an event before the reply")
            eq(g.events, [b"/ev/x\0tok\0"], "stashed event")
            eq(g.next_event(), (b"/ev/x", b"tok"), "next_event")
            eq(g.events, [], "events after next_event")
            g.write("/w", "1")
            eq(g.directory("/d"), [b"a", b"b"], "directory")
            eq(g.transaction_start(), 42, "transaction_start")
            try:
                g.read("/missing")
                raise AssertionError("no error raised")
            except XsErrorReply as e:
                eq(e.name, "ENOENT", "error name")
            g.expect_error(XS_READ, b"/missing\0", "ENOENT")
            try:
                g.write("/missing", "x")
                raise AssertionError("no error raised")
            except XsError:
                pass
            # An event alone: next_event reads it from the ring.
            g.request(XS_READ, b"/ev2\0")   # stashes one more
            eq(g.next_event(), (b"/ev/x", b"tok"), "second event")
            try:
                g.next_event(timeout=0.2)
                raise AssertionError("next_event returned with nothing sent")
            except TimeoutError:
                pass
        g.close()


def test_reconnect_resets_the_ring():
    with fake() as fx:
        g = fx.new_guest(11)
        with RingServer(g):
            try:
                g.reconnect(timeout=0.2)
                raise AssertionError("reconnect without the feature advertised")
            except XsError:
                pass
            eq(g.connection, 0, "connection untouched")
        with RingServer(g, features=XENSTORE_SERVER_FEATURE_RECONNECTION) as s:
            g.send_bytes(b"partial")
            s.send(b"junk")
            time.sleep(0.1)
            g.reconnect()
            eq((g.connection, g.req_prod, g.req_cons, g.rsp_prod, g.rsp_cons), (0, 0, 0, 0, 0),
               "fields after reconnect")
            check(g.no_data_within(0.05), "data after reconnect")
        g.close()


def test_corrupt_response_indices_are_reported():
    with fake() as fx, evtchn():
        g = fx.new_guest(14)
        g.rsp_cons = 10
        g.rsp_prod = 10 + 1025
        try:
            g.recv_bytes(1, timeout=0.2)
            raise AssertionError("recv_bytes accepted inconsistent indices")
        except XsError as e:
            check("inconsistent" in str(e), str(e))
        g.rsp_prod = 10
        try:
            g.recv_bytes(1, timeout=0.1)
            raise AssertionError("recv_bytes returned with nothing in the ring")
        except TimeoutError:
            pass
        g.close()


if __name__ == "__main__":
    run(globals())
