"""Shared helpers for the Python integration tests of the Xenstore daemon.

Stdlib only.  Provides:
  * Daemon        -- start/stop a daemon on a fresh temp dir (context manager)
  * RawClient     -- raw xenstore wire-protocol client over the Unix socket
  * EventClient   -- RawClient that sets WATCH_EVENTs aside between replies
                     (next_event, watch_initial, collect: see its docstring)
  * run(globals()) -- a tiny TAP runner for the test_* functions of a file

Environment:
  XS_DAEMON  path of the daemon binary (default $XS_BUILD/xenstored), or
             "upstream-c" to run Debian's upstream C daemon through
             <repo>/../shared/anchors/start-upstream.
  XS_BUILD   build directory (default <repo>/build).
"""

import atexit
import inspect
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# ---------------------------------------------------------------- constants

XS_CONTROL = 0
XS_DEBUG = 0
XS_DIRECTORY = 1
XS_READ = 2
XS_GET_PERMS = 3
XS_WATCH = 4
XS_UNWATCH = 5
XS_TRANSACTION_START = 6
XS_TRANSACTION_END = 7
XS_INTRODUCE = 8
XS_RELEASE = 9
XS_GET_DOMAIN_PATH = 10
XS_WRITE = 11
XS_MKDIR = 12
XS_RM = 13
XS_SET_PERMS = 14
XS_WATCH_EVENT = 15
XS_ERROR = 16
XS_IS_DOMAIN_INTRODUCED = 17
XS_RESUME = 18
XS_SET_TARGET = 19
XS_RESTRICT = 20  # removed from the protocol
XS_RESET_WATCHES = 21
XS_DIRECTORY_PART = 22
XS_GET_FEATURE = 23
XS_SET_FEATURE = 24
XS_GET_QUOTA = 25
XS_SET_QUOTA = 26
XS_INVALID = 0xFFFF

XENSTORE_PAYLOAD_MAX = 4096
XENSTORE_ABS_PATH_MAX = 3072
XENSTORE_REL_PATH_MAX = 2048

HEADER = struct.Struct("=IIII")  # host byte order, no padding

TYPE_NAMES = {v: k for k, v in globals().items()
              if k.startswith("XS_") and isinstance(v, int) and k != "XS_DEBUG"}


def short(x, limit=160):
    """repr() of x, shortened in the middle for diagnostics."""
    r = repr(x)
    if len(r) <= limit:
        return r
    return "%s...(%d chars)...%s" % (r[:limit // 2], len(r), r[-limit // 4:])


def type_name(t):
    return TYPE_NAMES.get(t, str(t))


def upstream_mode():
    return os.environ.get("XS_DAEMON") == "upstream-c"


def skip_in_upstream_mode(reason):
    """True (and a note) when the test must not run against upstream."""
    if upstream_mode():
        print("# skipped against upstream: %s" % reason)
        return True
    return False


def need_pyxs():
    """Fail the test unless pyxs (python3-pyxs) can be imported."""
    try:
        import pyxs  # noqa: F401
    except ImportError:
        raise AssertionError("pyxs (python3-pyxs) is not installed for %s"
                             % sys.executable)


def pyclient(d):
    """A pyxs Client on daemon d's socket."""
    need_pyxs()
    from pyxs import Client
    return Client(unix_socket_path=d.socket_path)


def wait_for(cond, what, timeout=5.0):
    """Poll cond() until true; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s"
                                 % (timeout, what))
        time.sleep(0.002)


def daemon_binary():
    d = os.environ.get("XS_DAEMON")
    if d:
        return d
    build = os.environ.get("XS_BUILD", os.path.join(REPO, "build"))
    return os.path.join(build, "xenstored")


# ------------------------------------------------------------------ daemon

class DaemonError(Exception):
    pass


_shim_cache = None


def _prebuilt_shim():
    """Compile the upstream shim once per process, to save time per daemon."""
    global _shim_cache
    if _shim_cache is None:
        src = os.path.join(REPO, "..", "shared", "anchors", "xenshim.c")
        d = tempfile.mkdtemp(prefix="xstest-shim-")
        atexit.register(shutil.rmtree, d, True)
        out = os.path.join(d, "xenshim.so")
        try:
            subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", out, src, "-ldl"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _shim_cache = out
        except Exception:
            _shim_cache = ""  # let start-upstream compile it itself
    return _shim_cache


class Daemon:
    """A daemon on a fresh temporary directory.

        with Daemon() as d:
            c = RawClient(d.socket_path)

    On exit the daemon is stopped; stop() raises DaemonError if it exited
    badly (non-zero status, or killed by a signal other than our SIGTERM).
    """

    def __init__(self, extra_args=(), env=None):
        self.extra_args = list(extra_args)
        self.env = env  # environment of our daemon (None: inherit); unused upstream
        self.dir = None
        self.socket_path = None
        self.log_path = None
        self.proc = None
        self.pid = None
        self.upstream = upstream_mode()
        self.stopped = False
        self.status = None

    # -- start
    def start(self):
        self.dir = tempfile.mkdtemp(prefix="xstest-")
        self.socket_path = os.path.join(self.dir, "socket")
        self.log_path = os.path.join(self.dir, "log")
        if self.upstream:
            self._start_upstream()
        else:
            self._start_ours()
        return self

    def _start_ours(self):
        binary = daemon_binary()
        if not os.access(binary, os.X_OK):
            raise DaemonError("daemon binary %s is not executable" % binary)
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "-N", "--socket", self.socket_path,
             "--pid-file", os.path.join(self.dir, "pid")] + self.extra_args,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=self.env)
        log.close()
        self.pid = self.proc.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._socket_ready():
                return
            if self.proc.poll() is not None:
                raise DaemonError("daemon exited during start-up with status %s"
                                  % self.proc.returncode)
            time.sleep(0.01)
        self._kill_hard()
        raise DaemonError("socket %s did not appear within 10 s" % self.socket_path)

    def _start_upstream(self):
        script = os.path.join(REPO, "..", "shared", "anchors", "start-upstream")
        shim = _prebuilt_shim()
        if shim:
            shutil.copy(shim, os.path.join(self.dir, "xenshim.so"))
        r = subprocess.run([script, "c", self.dir] + self.extra_args,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        if r.returncode != 0:
            raise DaemonError("start-upstream failed (%d): %s"
                              % (r.returncode, r.stderr.decode(errors="replace")))
        self.pid = int(r.stdout.split()[-1])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._socket_ready():
                return
            time.sleep(0.01)
        raise DaemonError("upstream socket did not appear")

    def _socket_ready(self):
        if not os.path.exists(self.socket_path):
            return False
        try:
            connect_unix(self.socket_path, 0.5).close()
            return True
        except OSError:
            return False

    # -- liveness
    def alive(self):
        if self.proc is not None:
            return self.proc.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        # A zombie (not our child: start-upstream's) still answers kill 0.
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    # -- stop
    def _kill_hard(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def stop(self):
        """Stop the daemon; raise DaemonError on a bad exit."""
        if self.stopped or self.pid is None:
            return
        self.stopped = True
        if self.proc is not None:
            early = self.proc.poll()
            if early is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    st = self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self._kill_hard()
                    raise DaemonError("daemon did not exit within 10 s of SIGTERM")
                self.status = st
                if st == 0:
                    return
                if st == -signal.SIGTERM:
                    # Died by our SIGTERM without handling it: tolerated.
                    return
                raise DaemonError("daemon exited with %s after SIGTERM" % _status(st))
            self.status = early
            raise DaemonError("daemon had already exited (%s) before stop" % _status(early))
        # upstream: not our child, so no exit status is available.
        was_alive = self.alive()
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.alive():
            self._kill_hard()
            raise DaemonError("upstream daemon did not exit within 10 s of SIGTERM")
        if not was_alive:
            raise DaemonError("upstream daemon had already died before stop")

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except (OSError, TypeError):
            return ""

    def cleanup(self):
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            self.stop()
        finally:
            if exc[0] is None:
                self.cleanup()
        return False


def _status(st):
    if st is None:
        return "unknown status"
    if st < 0:
        try:
            return "signal %s" % signal.Signals(-st).name
        except ValueError:
            return "signal %d" % -st
    return "exit status %d" % st


# ------------------------------------------------------------------ client

class XsError(AssertionError):
    pass


class ConnectionClosed(Exception):
    pass


def connect_unix(path, timeout=5.0):
    """Connect to a Unix stream socket, retrying while the listen backlog
    is full (the upstream daemon listens with a backlog of 1)."""
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(path)
            s.setblocking(True)
            return s
        except (BlockingIOError, InterruptedError):
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)
        except BaseException:
            s.close()
            raise


def serving(path):
    """Does a daemon accept connections on the Unix socket at path?"""
    try:
        connect_unix(path, 0.2).close()
        return True
    except OSError:
        return False


class RawClient:
    """A raw wire-protocol client.

    c.op(type, payload)          -> (type, req_id, tx_id, payload)
    c.expect_ok(type, payload)   -> reply payload (asserts type echoed)
    c.expect_error(type, payload, "EINVAL")
    c.send_raw(bytes), c.recv_packet(), c.is_closed()
    """

    def __init__(self, socket_path, timeout=5.0):
        self.sock = connect_unix(socket_path, timeout)
        self.sock.settimeout(timeout)
        self.next_req = 1
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- low level
    @staticmethod
    def packet(type_, payload=b"", req_id=0, tx_id=0, length=None):
        if isinstance(payload, str):
            payload = payload.encode()
        if length is None:
            length = len(payload)
        return HEADER.pack(type_, req_id, tx_id, length) + payload

    def send_raw(self, data):
        self.sock.sendall(data)

    def _recv_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionClosed("server closed the connection "
                                       "(%d of %d bytes buffered)" % (len(self.buf), n))
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_packet(self):
        """Read exactly one packet: (type, req_id, tx_id, payload)."""
        t, rid, tid, ln = HEADER.unpack(self._recv_exact(HEADER.size))
        if ln > XENSTORE_PAYLOAD_MAX:
            raise XsError("reply payload length %d exceeds %d" % (ln, XENSTORE_PAYLOAD_MAX))
        return t, rid, tid, self._recv_exact(ln)

    def send(self, type_, payload=b"", req_id=None, tx_id=0):
        if req_id is None:
            req_id = self.next_req
            self.next_req += 1
        self.send_raw(self.packet(type_, payload, req_id, tx_id))
        return req_id

    def op(self, type_, payload=b"", tx_id=0, req_id=None):
        """Send one request and return its reply, checking req_id/tx_id echo."""
        rid = self.send(type_, payload, req_id=req_id, tx_id=tx_id)
        rt, rrid, rtid, rp = self.recv_packet()
        if rrid != rid:
            raise XsError("reply req_id %d != request req_id %d" % (rrid, rid))
        if rtid != tx_id:
            raise XsError("reply tx_id %d != request tx_id %d" % (rtid, tx_id))
        return rt, rrid, rtid, rp

    def expect_ok(self, type_, payload=b"", tx_id=0):
        rt, _, _, rp = self.op(type_, payload, tx_id=tx_id)
        if rt != type_:
            raise XsError("%s %s: expected success, got %s %s"
                          % (type_name(type_), short(payload), type_name(rt), short(rp)))
        return rp

    def expect_error(self, type_, payload, name, tx_id=0):
        rt, _, _, rp = self.op(type_, payload, tx_id=tx_id)
        want = name.encode() + b"\0"
        if rt != XS_ERROR or rp != want:
            raise XsError("%s %s: expected ERROR %r, got %s %s"
                          % (type_name(type_), short(payload), want, type_name(rt), short(rp)))
        return rp

    def expect_ack(self, type_, payload=b"", tx_id=0):
        rp = self.expect_ok(type_, payload, tx_id=tx_id)
        if rp != b"OK\0":
            raise XsError("%s %s: expected 'OK\\0', got %s"
                          % (type_name(type_), short(payload), short(rp)))

    # -- convenience wrappers (paths are str or bytes, no NUL needed)
    @staticmethod
    def _p(path):
        if isinstance(path, str):
            path = path.encode()
        return path + b"\0"

    def read(self, path):
        return self.expect_ok(XS_READ, self._p(path))

    def write(self, path, value=b""):
        if isinstance(value, str):
            value = value.encode()
        self.expect_ack(XS_WRITE, self._p(path) + value)

    def mkdir(self, path):
        self.expect_ack(XS_MKDIR, self._p(path))

    def rm(self, path):
        self.expect_ack(XS_RM, self._p(path))

    def directory(self, path):
        rp = self.expect_ok(XS_DIRECTORY, self._p(path))
        return split_strings(rp)

    def get_perms(self, path):
        return split_strings(self.expect_ok(XS_GET_PERMS, self._p(path)))

    def dump(self, root=b"/"):
        """{path: (value, perms, children)} of the tree below root."""
        out = {}
        stack = [root]
        while stack:
            p = stack.pop()
            kids = self.directory(p)
            out[p] = (self.read(p), self.get_perms(p), kids)
            for k in reversed(kids):
                stack.append((p if p != b"/" else b"") + b"/" + k)
        return out

    def set_perms(self, path, perms):
        self.expect_ack(XS_SET_PERMS, self._p(path) + b"".join(
            (p.encode() if isinstance(p, str) else p) + b"\0" for p in perms))

    def exists(self, path):
        rt, _, _, rp = self.op(XS_READ, self._p(path))
        if rt == XS_READ:
            return True
        if rp == b"ENOENT\0":
            return False
        raise XsError("READ %s: unexpected %s %s" % (short(path), type_name(rt), short(rp)))

    # -- connection state
    def is_closed(self, timeout=2.0):
        """True if the server has closed the connection (EOF / reset) within
        `timeout`.  Any data received meanwhile is discarded."""
        deadline = time.monotonic() + timeout
        old = self.sock.gettimeout()
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    return False
                except (ConnectionResetError, BrokenPipeError):
                    return True
                if not chunk:
                    return True
        finally:
            try:
                self.sock.settimeout(old)
            except OSError:
                pass

    def no_reply_within(self, seconds):
        """True if nothing arrives within `seconds` and the connection stays
        open; False on data or EOF.  Nothing is consumed."""
        if self.buf:
            return False
        old = self.sock.gettimeout()
        self.sock.settimeout(seconds)
        try:
            self.sock.recv(1, socket.MSG_PEEK)
        except socket.timeout:
            return True
        except OSError:
            return False
        finally:
            self.sock.settimeout(old)
        return False


def split_strings(payload):
    """Split a NUL-terminated string list: b"a\\0b\\0" -> [b"a", b"b"]."""
    if payload == b"":
        return []
    if not payload.endswith(b"\0"):
        raise XsError("string list %s is not NUL-terminated" % short(payload))
    return payload[:-1].split(b"\0")


# ------------------------------------------------------------- assertions

def eq(actual, expected, what=""):
    if actual != expected:
        raise AssertionError("%s%sexpected %s, got %s"
                             % (what, ": " if what else "", short(expected, 2000),
                                short(actual, 2000)))


def check(cond, msg="check failed"):
    if not cond:
        raise AssertionError(msg)


# ------------------------------------------------------------ watch events

def _b(x):
    """str -> bytes (UTF-8); bytes unchanged.  Import it by name: names
    starting with "_" are not exported by "from xstest import *"."""
    return x.encode() if isinstance(x, str) else x


def _p(path):
    """A NUL-terminated string (str or bytes) as bytes; import by name."""
    return _b(path) + b"\0"


def ev(path, token):
    """An expected event: (path, token) as bytes."""
    return (_b(path), _b(token))


def parse_event(payload):
    """b"path\\0token\\0" -> (path, token); anything else is an error."""
    parts = payload.split(b"\0")
    if len(parts) != 3 or parts[2] != b"" or not parts[0]:
        raise XsError("malformed WATCH_EVENT payload %s: expected "
                      "<path>\\0<token>\\0" % short(payload))
    return parts[0], parts[1]


class EventClient(RawClient):
    """RawClient that sets aside the WATCH_EVENTs arriving between replies.

    c.op(...)                           RawClient.op; events are set aside
    c.watch(path, token[, depth, tx])   WATCH, checks the ack
    c.unwatch(path, token[, tx])        UNWATCH, checks the ack
    c.watch_initial(path, token[, depth])
                                        WATCH, then its initial event
    c.next_event(timeout, what)         the next event (set aside or new)
    c.collect()                         all events generated so far
    c.error(type, payload[, tx])        error name of a request that must fail
    c.events                            the events set aside, oldest first

    How collect() sees "every event so far" without sleeping: events of one
    connection arrive in the order they were generated, and a new watch's
    initial event is generated when the WATCH is handled.  So collect()
    registers a throw-away watch on `barrier` (a path no test writes) and
    returns the events that arrived before that watch's initial event.
    """

    barrier = b"/zz-event-barrier"   # never written: watched only by collect()

    def __init__(self, socket_path, timeout=5.0):
        RawClient.__init__(self, socket_path, timeout)
        self.events = []
        self.barriers = 0

    def _recv(self):
        """One packet; an event is checked, set aside, and None returned."""
        t, rid, tid, p = self.recv_packet()
        if t != XS_WATCH_EVENT:
            return t, rid, tid, p
        if rid != 0 or tid != 0:
            raise XsError("WATCH_EVENT %s with req_id %d, tx_id %d: both must be 0"
                          % (short(p), rid, tid))
        self.events.append(parse_event(p))
        return None

    def op(self, type_, payload=b"", tx_id=0, req_id=None):
        rid = self.send(type_, payload, req_id=req_id, tx_id=tx_id)
        while True:
            r = self._recv()
            if r is not None:
                break
        rt, rrid, rtid, rp = r
        if rrid != rid:
            raise XsError("%s %s: reply req_id %d != request req_id %d"
                          % (type_name(type_), short(payload), rrid, rid))
        if rtid != tx_id:
            raise XsError("%s %s: reply tx_id %d != request tx_id %d"
                          % (type_name(type_), short(payload), rtid, tx_id))
        return r

    def next_event(self, timeout=5.0, what="an event"):
        if self.events:
            return self.events.pop(0)
        deadline = time.monotonic() + timeout
        old = self.sock.gettimeout()
        try:
            while not self.events:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout()
                self.sock.settimeout(left)
                r = self._recv()
                if r is not None:
                    raise XsError("waiting for %s: got an unsolicited reply %s %s"
                                  % (what, type_name(r[0]), short(r[3])))
        except socket.timeout:
            raise AssertionError("no WATCH_EVENT (%s) within %.1f s" % (what, timeout))
        finally:
            self.sock.settimeout(old)
        return self.events.pop(0)

    def watch(self, path, token, depth=None, tx=0):
        payload = _p(path) + _p(token)
        if depth is not None:
            payload += _p(str(depth))
        self.expect_ack(XS_WATCH, payload, tx_id=tx)

    def unwatch(self, path, token, tx=0):
        self.expect_ack(XS_UNWATCH, _p(path) + _p(token), tx_id=tx)

    def watch_initial(self, path, token, depth=None):
        """WATCH, then its initial event must be the next event."""
        self.watch(path, token, depth)
        got = self.next_event(what="initial event of %s %s" % (short(path), short(token)))
        eq(got, ev(path, token), "initial event of WATCH %s %s" % (short(path), short(token)))

    def error(self, type_, payload, tx=0):
        """The error name of a request that must fail."""
        rt, _, _, rp = self.op(type_, payload, tx_id=tx)
        if rt != XS_ERROR:
            raise XsError("%s %s: expected an error, got %s %s"
                          % (type_name(type_), short(payload), type_name(rt), short(rp)))
        return rp.rstrip(b"\0").decode()

    def collect(self):
        """Every event generated for this connection so far, in arrival
        order (see the class docstring)."""
        self.barriers += 1
        tok = b"barrier-%d" % self.barriers
        self.watch(self.barrier, tok)
        out = []
        while True:
            e = self.next_event(what="barrier event (%s, %s)"
                                % (self.barrier.decode(), tok.decode()))
            if e == (self.barrier, tok):
                break
            out.append(e)
        self.unwatch(self.barrier, tok)
        return out


# ------------------------------------------------------------------ runner

def _diag(text, out=None):
    for line in str(text).rstrip("\n").split("\n"):
        print("# " + line, file=out or sys.stdout)


class TestTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise TestTimeout("test did not finish within its time limit "
                      "(XS_TEST_TIMEOUT=%s s)" % os.environ.get("XS_TEST_TIMEOUT", "30"))


def run(namespace, shared_daemon=False):
    """Run every test_* function of `namespace` (a module's globals()) in
    file order, printing TAP.  A test function takes one argument, a started
    Daemon (fresh per test unless shared_daemon=True; then one more TAP test
    checks that the shared daemon exits cleanly), or none.
    Env: XS_TEST_ONLY=substring selects tests; XS_TEST_TIMEOUT (s, default
    30) bounds each test.  Exits 1 if any test failed."""
    tests = [(n, f) for n, f in namespace.items()
             if n.startswith("test_") and callable(f)]
    tests.sort(key=lambda nf: nf[1].__code__.co_firstlineno)
    only = os.environ.get("XS_TEST_ONLY")
    if only:
        tests = [(n, f) for n, f in tests if only in n]
    limit = int(os.environ.get("XS_TEST_TIMEOUT", "30"))
    signal.signal(signal.SIGALRM, _on_alarm)
    print("1..%d" % (len(tests) + (1 if shared_daemon else 0)))
    sys.stdout.flush()
    failed = 0
    shared = None
    for i, (name, fn) in enumerate(tests, 1):
        nparams = len(inspect.signature(fn).parameters)
        d = None
        ok = True
        msgs = []
        t0 = time.monotonic()
        signal.alarm(limit)
        try:
            if nparams:
                if shared_daemon:
                    if shared is None:
                        shared = Daemon()
                        shared.start()
                    d = shared
                else:
                    d = Daemon()
                    d.start()
                fn(d)
            else:
                fn()
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            ok = False
            msgs.append(traceback.format_exc())
        finally:
            signal.alarm(0)
        if d is not None and not shared_daemon:
            try:
                d.stop()
            except Exception as e:
                ok = False
                msgs.append("daemon: %s" % e)
        elif d is not None and shared_daemon and d.pid is not None and not d.alive():
            ok = False
            msgs.append("shared daemon died during this test")
        if ok:
            print("ok %d - %s" % (i, name))
        else:
            failed += 1
            print("not ok %d - %s" % (i, name))
            sys.stdout.flush()
            # On stderr, which prove shows without --verbose: a CI log
            # then says why, not only which.
            for m in msgs:
                _diag(m, sys.stderr)
            if d is not None and d.log_path:
                _diag("daemon log (%s):" % d.log_path, sys.stderr)
                _diag(d.log()[-8000:] or "(empty)", sys.stderr)
            sys.stderr.flush()
        dt = time.monotonic() - t0
        if dt > 5:
            _diag("%s took %.1f s" % (name, dt))
        sys.stdout.flush()
        if d is not None and not shared_daemon and ok:
            d.cleanup()
    if shared_daemon:
        n = len(tests) + 1
        try:
            if shared is not None:
                shared.stop()
            print("ok %d - shared daemon exits cleanly" % n)
            if shared is not None:
                shared.cleanup()
        except Exception as e:
            failed += 1
            print("not ok %d - shared daemon exits cleanly" % n)
            _diag(str(e))
            _diag(shared.log()[-8000:])
    sys.stdout.flush()
    sys.exit(1 if failed else 0)
