"""The test harness for tests/fakexen: plays the hypervisor and the guests.

The daemon runs with LD_PRELOAD=libfakexen.so and FAKEXEN_DIR=<dir> (see
tests/fakexen/README.md for the contract).  This module makes and drives the
files and sockets in that directory:

    fx = FakeXen(tempfile.mkdtemp())
    g = fx.new_guest(5)                         # a running domain 5 with a ring
    with Daemon(env=fx.env()) as d:
        RawClient(d.socket_path).expect_ack(XS_INTRODUCE, fx.introduce_args(g))
        g.write("data/x", "1")                  # over the ring, as domain 5
        fx.set_state(5, "dying"); fx.virq()     # the domain dies

Guest follows docs/misc/xenstore-ring.txt: it only writes the request ring
and its consumer index, never more than the free space.  It signals as
Linux's xenbus does (drivers/xen/xenbus/xenbus_comms.c), not after every
update: after writing requests only if the server had consumed everything
written before, after reading replies only if the reply ring had been
full; and it writes a request's header and payload as two updates.  A
server that holds bytes in the ring without coming back for them hangs
here as it would with a real guest.  Its fields can also be read and
written raw, to corrupt them.

Stdlib only.
"""

import mmap
import os
import resource
import select
import socket
import struct
import time

from xstest import (REPO, XS_DIRECTORY, XS_ERROR, XS_GET_DOMAIN_PATH,
                    XS_GET_PERMS, XS_MKDIR, XS_READ, XS_RM, XS_SET_PERMS,
                    XS_TRANSACTION_END, XS_TRANSACTION_START, XS_UNWATCH,
                    XS_WATCH, XS_WATCH_EVENT, XS_WRITE, HEADER,
                    XENSTORE_PAYLOAD_MAX, RawClient, XsError, short,
                    split_strings, type_name)

PAGE_SIZE = 4096
RING_SIZE = 1024            # XENSTORE_RING_SIZE
MASK32 = 0xFFFFFFFF
REQ_OFFSET = 0              # guest -> server bytes
RSP_OFFSET = 1024           # server -> guest bytes
FIELDS_OFFSET = 2048        # the uint32 fields below, in this order
FIELDS = ("req_cons", "req_prod", "rsp_cons", "rsp_prod",
          "server_features", "connection", "error", "evtchn_port")

XENSTORE_CONNECTED = 0
XENSTORE_RECONNECT = 1
XENSTORE_SERVER_FEATURE_RECONNECTION = 1
XENSTORE_SERVER_FEATURE_ERROR = 2

GNTTAB_RESERVED_XENSTORE = 1
VIRQ_DOM_EXC = 3
VIRQ_DOMID = 0xFFFF         # the "domid" of a VIRQ signal

SIGNAL = struct.Struct("=II")   # { domid, port }, native endian
STATES = {None: 0, "running": 1, "shutdown": 2, "dying": 3}
NR_DOMIDS = 65536
SEND_TIMEOUT = 5.0          # how long a signal may wait for room in `evtchn`


def library_path():
    """Where `make` puts libfakexen.so for the build under test."""
    build = os.environ.get("XS_BUILD", os.path.join(REPO, "build"))
    return os.path.join(build, "tests", "fakexen", "libfakexen.so")


def _send_signal(sock, path, domid, port, timeout=SEND_TIMEOUT):
    """Send one signal datagram to `path`.  The receiver's queue is short
    (net.unix.max_dgram_qlen, often 10): while it is full, retry until
    `timeout`, since a dropped signal is a lost event, unlike in Xen."""
    msg = SIGNAL.pack(domid, port)
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock.sendto(msg, path)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError("signal {%d, %d} to %s: queue full for %.1f s"
                                   % (domid, port, path, timeout))
            time.sleep(0.0005)


def _make_page(path):
    """A fresh page of zeros.  Unlinked first, never truncated: the daemon may
    still map the old file, and truncating it would SIGBUS the daemon."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    with open(path, "wb") as f:
        f.write(bytes(PAGE_SIZE))


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class XsErrorReply(XsError):
    """An XS_ERROR reply; `name` is the error, e.g. "ENOENT"."""

    def __init__(self, what, name):
        XsError.__init__(self, "%s: error %s" % (what, name))
        self.name = name


# ------------------------------------------------------------- hypervisor

class FakeXen:
    """The directory that libfakexen.so reads: domain table, pages, sockets.

    Domain 0 exists (running) from the start, as on any Xen host; pass
    dom0=False for an empty table."""

    def __init__(self, dir, dom0=True):
        self.dir = os.path.abspath(dir)
        os.makedirs(self.dir, exist_ok=True)
        self.evtchn_path = os.path.join(self.dir, "evtchn")
        if len(self.evtchn_path) + 16 > 107:    # sun_path, with guest-NNNNN
            raise ValueError("FAKEXEN_DIR %s is too long for socket paths" % self.dir)
        _raise_fd_limit()
        with open(self.path("domains"), "wb") as f:
            f.write(bytes(NR_DOMIDS))
        self._domains = os.open(self.path("domains"), os.O_RDWR | os.O_CLOEXEC)
        # An unbound socket to send hypervisor signals (VIRQ) from.
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        if dom0:
            self.set_state(0, "running")

    def path(self, name):
        return os.path.join(self.dir, name)

    def env(self, base_env=None):
        """The daemon's environment: `base_env` (default os.environ) with
        the fake preloaded.  ASan would refuse a library loaded before its
        runtime, so verify_asan_link_order=0 is added to ASAN_OPTIONS."""
        lib = library_path()
        if not os.path.exists(lib):
            raise FileNotFoundError("%s is missing: make %s"
                                    % (lib, os.path.relpath(lib, REPO)))
        e = dict(os.environ if base_env is None else base_env)
        e["LD_PRELOAD"] = lib + (" " + e["LD_PRELOAD"] if e.get("LD_PRELOAD") else "")
        e["FAKEXEN_DIR"] = self.dir
        asan = e.get("ASAN_OPTIONS", "")
        e["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
        return e

    # -- domains
    def set_state(self, domid, state):
        """state: 'running', 'shutdown', 'dying' or None (no such domain)."""
        os.pwrite(self._domains, bytes([STATES[state]]), domid)

    def state(self, domid):
        code = os.pread(self._domains, 1, domid)[0]
        return {v: k for k, v in STATES.items()}.get(code, code)

    def fail_bind(self, domid, fail=True):
        """Make binding an event channel to `domid` fail with EINVAL (or not)."""
        p = self.path("fail-bind-%d" % domid)
        if fail:
            open(p, "wb").close()
        else:
            _unlink(p)

    # -- signals
    def signal(self, domid, port, timeout=SEND_TIMEOUT):
        """Send any signal {domid, port} to the daemon."""
        _send_signal(self._sock, self.evtchn_path, domid, port, timeout)

    def virq(self, timeout=SEND_TIMEOUT):
        """Fire VIRQ_DOM_EXC: some domain changed state."""
        self.signal(VIRQ_DOMID, VIRQ_DOM_EXC, timeout)

    # -- guests
    def new_guest(self, domid, gfn=None, port=None, grant=True, state="running"):
        """A domain with a zeroed ring page gfn-<domid>-<gfn> (granted as
        ref 1 if `grant`), its signal socket, and the given state.  Defaults:
        gfn 0x10000 + domid, port 10 + domid % 4000."""
        if gfn is None:
            gfn = 0x10000 + domid
        if port is None:
            port = 10 + domid % 4000
        page = self.path("gfn-%d-%d" % (domid, gfn))
        _make_page(page)
        grant_path = self.path("grant-%d-%d" % (domid, GNTTAB_RESERVED_XENSTORE))
        _unlink(grant_path)
        if grant:
            os.link(page, grant_path)
        self.set_state(domid, state)
        return Guest(self, domid, page, port, gfn)

    def dom0_guest(self, port=1):
        """Dom0's own ring: xsd_kva and xsd_port, read by the daemon at start."""
        page = self.path("xsd_kva")
        _make_page(page)
        with open(self.path("xsd_port"), "w") as f:
            f.write("%d" % port)
        self.set_state(0, "running")
        return Guest(self, 0, page, port, None)

    @staticmethod
    def introduce_args(guest):
        """The payload of XS_INTRODUCE for `guest`."""
        return b"%d\0%d\0%d\0" % (guest.domid, guest.gfn or 0, guest.port)

    def close(self):
        self._sock.close()
        if self._domains >= 0:
            os.close(self._domains)
            self._domains = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _raise_fd_limit():
    """Each guest holds a socket and a mapping's descriptor: let a test have
    thousands of guests."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 16384 if hard == resource.RLIM_INFINITY else min(hard, 16384)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# ------------------------------------------------------------------- guest

def _field(index):
    def get(self):
        return self._fields[index]

    def set(self, value):
        self._fields[index] = value & MASK32
    return property(get, set, doc="the raw uint32 ring field %s" % FIELDS[index])


class Guest:
    """The guest side of one ring.

    Raw access: the uint32 properties req_cons, req_prod, rsp_cons, rsp_prod,
    server_features, connection, error, evtchn_port; `page` (the mmap).
    Counters: `notified` (signals received from the daemon), `wrong_signals`
    (datagrams whose {domid, port} were not this guest's).
    """

    def __init__(self, fx, domid, page_path, port, gfn):
        self.fx = fx
        self.domid = domid
        self.port = port
        self.gfn = gfn
        self.page_path = page_path
        self.sock_path = fx.path("guest-%d" % domid)
        self.events = []        # raw payloads of WATCH_EVENTs seen by request()
        self.notified = 0
        self.wrong_signals = []
        self._rx = bytearray()  # received bytes not yet parsed into packets
        self._next_req = 1
        fd = os.open(page_path, os.O_RDWR | os.O_CLOEXEC)
        try:
            self.page = mmap.mmap(fd, PAGE_SIZE, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        # Native 'I' items are stored and loaded whole (one 4-byte access),
        # so the daemon never sees a half-written index.
        self._view = memoryview(self.page)
        self._fields = self._view[FIELDS_OFFSET:FIELDS_OFFSET + 4 * len(FIELDS)].cast("I")
        _unlink(self.sock_path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind(self.sock_path)

    def __repr__(self):
        return "<Guest dom%d port %d gfn %s>" % (self.domid, self.port, self.gfn)

    req_cons, req_prod, rsp_cons, rsp_prod, server_features, connection, error, \
        evtchn_port = (_field(i) for i in range(len(FIELDS)))

    # -- signals
    def notify(self, timeout=SEND_TIMEOUT):
        """Signal the daemon on this guest's port."""
        _send_signal(self.sock, self.fx.evtchn_path, self.domid, self.port, timeout)

    def _drain(self):
        n = 0
        while True:
            try:
                msg = self.sock.recv(64)
            except BlockingIOError:
                return n
            n += 1
            if len(msg) != SIGNAL.size or SIGNAL.unpack(msg) != (self.domid, self.port):
                self.wrong_signals.append(msg)
            else:
                self.notified += 1

    def wait_notify(self, timeout=5.0):
        """Drain the signals from the daemon; wait up to `timeout` for one if
        none is queued.  True if a signal came."""
        if self._drain():
            return True
        p = select.poll()
        p.register(self.sock, select.POLLIN)
        p.poll(max(0, int(timeout * 1000)))
        return self._drain() > 0

    # -- ring space
    def req_space(self):
        """Free bytes in the request ring (0 if its indices are inconsistent)."""
        used = (self.req_prod - self.req_cons) & MASK32
        return RING_SIZE - used if used <= RING_SIZE else 0

    def rsp_avail(self):
        """Bytes waiting in the response ring; XsError if inconsistent."""
        avail = (self.rsp_prod - self.rsp_cons) & MASK32
        if avail > RING_SIZE:
            raise XsError("dom%d: response ring indices inconsistent: prod %#x cons %#x"
                          % (self.domid, self.rsp_prod, self.rsp_cons))
        return avail

    # -- bytes
    def send_bytes(self, data, chunk=None, timeout=5.0):
        """Write all of `data` into the request ring, at most `chunk` bytes
        (and never more than the free space) per update, each followed by
        a signal if the server had caught up with the bytes before it.
        Waits for space when the ring is full; TimeoutError if none comes
        within `timeout` of the last progress."""
        data = bytes(data)
        pos = 0
        deadline = time.monotonic() + timeout
        while pos < len(data):
            space = self.req_space()
            if space == 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("dom%d: request ring full for %.1f s, %d of %d bytes sent"
                                       % (self.domid, timeout, pos, len(data)))
                self.wait_notify(min(0.05, left))
                continue
            n = min(space, len(data) - pos, chunk or RING_SIZE)
            prod = self.req_prod
            start = prod % RING_SIZE
            first = min(n, RING_SIZE - start)
            self.page[REQ_OFFSET + start:REQ_OFFSET + start + first] = data[pos:pos + first]
            if n > first:
                self.page[REQ_OFFSET:REQ_OFFSET + n - first] = data[pos + first:pos + n]
            self.req_prod = prod + n        # after the data (x86 keeps store order)
            # The server had consumed all before ours (Linux: prod <= cons).
            if (self.req_cons - prod) & MASK32 <= n:
                self.notify()
            pos += n
            deadline = time.monotonic() + timeout

    def _pull(self):
        """Move every byte waiting in the response ring into self._rx."""
        avail = self.rsp_avail()
        if not avail:
            return 0
        cons = self.rsp_cons
        start = cons % RING_SIZE
        first = min(avail, RING_SIZE - start)
        self._rx += self.page[RSP_OFFSET + start:RSP_OFFSET + start + first]
        if avail > first:
            self._rx += self.page[RSP_OFFSET:RSP_OFFSET + avail - first]
        self.rsp_cons = cons + avail
        if (self.rsp_prod - cons) & MASK32 >= RING_SIZE:   # it was full
            self.notify()
        return avail

    def _fill(self, n, deadline):
        """Wait until self._rx holds at least n bytes."""
        while len(self._rx) < n:
            if self._pull():
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("dom%d: %d of %d bytes received"
                                   % (self.domid, len(self._rx), n))
            self.wait_notify(min(0.05, left))

    def recv_bytes(self, n, timeout=5.0):
        """Exactly n bytes from the response ring (TimeoutError otherwise;
        what did arrive stays buffered)."""
        self._fill(n, time.monotonic() + timeout)
        out = bytes(self._rx[:n])
        del self._rx[:n]
        return out

    def recv_packet(self, timeout=5.0):
        """One packet: (type, req_id, tx_id, payload)."""
        deadline = time.monotonic() + timeout
        self._fill(HEADER.size, deadline)
        t, rid, tid, ln = HEADER.unpack(bytes(self._rx[:HEADER.size]))
        if ln > XENSTORE_PAYLOAD_MAX:
            raise XsError("dom%d: reply payload length %d exceeds %d"
                          % (self.domid, ln, XENSTORE_PAYLOAD_MAX))
        self._fill(HEADER.size + ln, deadline)
        payload = bytes(self._rx[HEADER.size:HEADER.size + ln])
        del self._rx[:HEADER.size + ln]
        return t, rid, tid, payload

    def no_data_within(self, seconds):
        """True if no response byte arrives within `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            if self._rx or self.rsp_avail():
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            self.wait_notify(min(0.05, left))

    # -- requests
    def request(self, type_, payload=b"", tx_id=0, req_id=None, timeout=5.0):
        """Send one request and return its reply (type, payload).  WATCH_EVENT
        packets arriving meanwhile go to self.events."""
        if isinstance(payload, str):
            payload = payload.encode()
        if req_id is None:
            req_id = self._next_req
            self._next_req = (self._next_req + 1) & MASK32
        packet = RawClient.packet(type_, payload, req_id, tx_id)
        # Header, then payload, as Linux writes them.
        self.send_bytes(packet[:HEADER.size], timeout=timeout)
        if len(packet) > HEADER.size:
            self.send_bytes(packet[HEADER.size:], timeout=timeout)
        deadline = time.monotonic() + timeout
        while True:
            t, rid, tid, rp = self.recv_packet(max(0.0, deadline - time.monotonic()))
            if t == XS_WATCH_EVENT:
                self.events.append(rp)
                continue
            if rid != req_id:
                raise XsError("dom%d: reply req_id %d != request req_id %d"
                              % (self.domid, rid, req_id))
            if tid != tx_id:
                raise XsError("dom%d: reply tx_id %d != request tx_id %d"
                              % (self.domid, tid, tx_id))
            return t, rp

    def next_event(self, timeout=5.0):
        """The next watch event, (path, token), stashed or newly read."""
        if self.events:
            return tuple(split_strings(self.events.pop(0)))
        t, _, _, rp = self.recv_packet(timeout)
        if t != XS_WATCH_EVENT:
            raise XsError("dom%d: expected a WATCH_EVENT, got %s %s"
                          % (self.domid, type_name(t), short(rp)))
        return tuple(split_strings(rp))

    def expect_ok(self, type_, payload=b"", tx_id=0):
        """The reply payload; XsErrorReply on XS_ERROR, XsError on another type."""
        t, rp = self.request(type_, payload, tx_id=tx_id)
        what = "dom%d %s %s" % (self.domid, type_name(type_), short(payload))
        if t == XS_ERROR:
            raise XsErrorReply(what, rp.rstrip(b"\0").decode(errors="replace"))
        if t != type_:
            raise XsError("%s: reply type %s %s" % (what, type_name(t), short(rp)))
        return rp

    def expect_ack(self, type_, payload=b"", tx_id=0):
        rp = self.expect_ok(type_, payload, tx_id)
        if rp != b"OK\0":
            raise XsError("dom%d %s %s: expected 'OK\\0', got %s"
                          % (self.domid, type_name(type_), short(payload), short(rp)))

    def expect_error(self, type_, payload, name, tx_id=0):
        t, rp = self.request(type_, payload, tx_id=tx_id)
        if t != XS_ERROR or rp != name.encode() + b"\0":
            raise XsError("dom%d %s %s: expected ERROR %s, got %s %s"
                          % (self.domid, type_name(type_), short(payload), name,
                             type_name(t), short(rp)))

    # -- conveniences (paths and values: str or bytes)
    _p = staticmethod(RawClient._p)

    def read(self, path, tx_id=0):
        return self.expect_ok(XS_READ, self._p(path), tx_id)

    def write(self, path, value=b"", tx_id=0):
        if isinstance(value, str):
            value = value.encode()
        self.expect_ack(XS_WRITE, self._p(path) + value, tx_id)

    def mkdir(self, path, tx_id=0):
        self.expect_ack(XS_MKDIR, self._p(path), tx_id)

    def rm(self, path, tx_id=0):
        self.expect_ack(XS_RM, self._p(path), tx_id)

    def directory(self, path, tx_id=0):
        return split_strings(self.expect_ok(XS_DIRECTORY, self._p(path), tx_id))

    def get_perms(self, path, tx_id=0):
        return split_strings(self.expect_ok(XS_GET_PERMS, self._p(path), tx_id))

    def set_perms(self, path, perms, tx_id=0):
        self.expect_ack(XS_SET_PERMS, self._p(path) + b"".join(
            (p.encode() if isinstance(p, str) else p) + b"\0" for p in perms), tx_id)

    def watch(self, path, token):
        self.expect_ack(XS_WATCH, self._p(path) + self._p(token))

    def unwatch(self, path, token):
        self.expect_ack(XS_UNWATCH, self._p(path) + self._p(token))

    def get_domain_path(self, domid):
        return self.expect_ok(XS_GET_DOMAIN_PATH, b"%d\0" % domid).rstrip(b"\0")

    def transaction_start(self):
        return int(self.expect_ok(XS_TRANSACTION_START, b"\0").rstrip(b"\0"))

    def transaction_end(self, tx_id, commit=True):
        self.expect_ack(XS_TRANSACTION_END, b"T\0" if commit else b"F\0", tx_id)

    # -- connection
    def reconnect(self, timeout=5.0, force=False):
        """Ask for a ring reset (connection = 1, signal) and wait until the
        server sets connection back to 0.  Refused (XsError) unless the server
        advertises the feature, as the ring document requires, or `force`."""
        if not force and not self.server_features & XENSTORE_SERVER_FEATURE_RECONNECTION:
            raise XsError("dom%d: server does not advertise ring reconnection (features %#x)"
                          % (self.domid, self.server_features))
        self.connection = XENSTORE_RECONNECT
        self.notify()
        deadline = time.monotonic() + timeout
        while self.connection != XENSTORE_CONNECTED:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("dom%d: connection still %d after %.1f s"
                                   % (self.domid, self.connection, timeout))
            self.wait_notify(min(0.05, left))
        self._rx = bytearray()  # the server dropped partial packets too

    def close(self):
        """Close the socket (removing it) and the mapping; files stay."""
        if self.sock is None:
            return
        self.sock.close()
        self.sock = None
        _unlink(self.sock_path)
        self._fields.release()
        self._view.release()
        self.page.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


__all__ = ["FakeXen", "Guest", "XsErrorReply", "library_path", "PAGE_SIZE",
           "RING_SIZE", "FIELDS", "VIRQ_DOM_EXC", "VIRQ_DOMID",
           "GNTTAB_RESERVED_XENSTORE", "XENSTORE_CONNECTED", "XENSTORE_RECONNECT",
           "XENSTORE_SERVER_FEATURE_RECONNECTION", "XENSTORE_SERVER_FEATURE_ERROR",
           "SIGNAL", "STATES"]
