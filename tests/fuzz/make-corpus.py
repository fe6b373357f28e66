#!/usr/bin/python3
"""Write the seed corpus of the fuzz targets (tests/fuzz/README.md).

    tests/fuzz/make-corpus.py      # rewrites tests/fuzz/corpus/{dispatch,ring,schema,journal,checkpoint}/

Every seed is a small, valid scenario in the input format the target's
header comment describes: each message type, transactions, watches and
writes, permissions between guests, oversized and split packets; for the
ring, requests through the ring page, wrap-around, and hostile indices.
The files are committed; run this again after changing the seeds.
"""
import ctypes
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# xen/io/xs_wire.h, and protocol/wire.h for the types after it.
(CONTROL, DIRECTORY, READ, GET_PERMS, WATCH, UNWATCH, TRANSACTION_START,
 TRANSACTION_END, INTRODUCE, RELEASE, GET_DOMAIN_PATH, WRITE, MKDIR, RM,
 SET_PERMS, WATCH_EVENT, ERROR, IS_DOMAIN_INTRODUCED, RESUME,
 SET_TARGET) = range(20)
RESTRICT, RESET_WATCHES, DIRECTORY_PART = 20, 21, 22
GET_FEATURE, SET_FEATURE, GET_QUOTA, SET_QUOTA = 23, 24, 25, 26
PAYLOAD_MAX = 4096


def args(*strings):
    """NUL-terminated strings, as requests carry them."""
    return b"".join(s.encode() + b"\0" for s in strings)


def pkt(mtype, payload=b"", req_id=1, tx_id=0, length=None):
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    return struct.pack("<4I", mtype, req_id, tx_id, n) + payload


# ---- fuzz-dispatch: flags byte, then commands (fuzz-dispatch.c) ----

DOM0, DOM5, DOM6, DOM0B = 0, 1, 2, 3    # slots


def send(slot, mtype, payload=b"", tx_id=0, req_id=None, length=None,
         queued=False):
    rid = req_id if req_id is not None else 0x100 + mtype
    ctl = slot | (0x80 if queued else 0)
    return bytes([ctl]) + pkt(mtype, payload, rid, tx_id, length)


def notify(slot):
    return bytes([0xC8 | slot])


def raw(slot, data):
    out = b""
    while data:
        out += bytes([0xC0 | slot, min(len(data), 255)]) + data[:255]
        data = data[255:]
    return out


def reads(slot, kb=None):
    """The client reads all its output, or about kb (16, 64 or 192) kB."""
    return bytes([0xD0 | slot | {None: 0, 16: 4, 64: 8, 192: 12}[kb]])


LOOP = bytes([0xE0])


def hang_up(slot):
    return bytes([0xF0 | slot])


def introduced(slot):
    return bytes([0xB0 | slot])


def gone(slot):
    return bytes([0xB4 | slot])


def set_target(slot):
    return bytes([0xB8 | slot])


def clear_target(slot):
    return bytes([0xBC | slot])


def dispatch_seeds():
    s = {}
    home5 = (send(DOM0, MKDIR, args("/local/domain/5")) +
             send(DOM0, SET_PERMS, args("/local/domain/5", "n5")))
    home6 = (send(DOM0, MKDIR, args("/local/domain/6")) +
             send(DOM0, SET_PERMS, args("/local/domain/6", "n6")))

    # One of each message type, from dom0.
    s["read"] = send(DOM0, READ, args("/tool/xenstored"))
    s["write"] = send(DOM0, WRITE, args("/a/b") + b"hello")
    s["mkdir"] = send(DOM0, MKDIR, args("/vm/1/device"))
    s["rm"] = (send(DOM0, WRITE, args("/x/y/z") + b"1") +
               send(DOM0, RM, args("/x")))
    s["directory"] = (send(DOM0, WRITE, args("/d/a") + b"1") +
                      send(DOM0, WRITE, args("/d/b") + b"2") +
                      send(DOM0, DIRECTORY, args("/d")))
    s["directory-part"] = (send(DOM0, WRITE, args("/d/long-child-name") +
                                b"v") +
                           send(DOM0, DIRECTORY_PART, args("/d", "0")))
    s["get-perms"] = send(DOM0, GET_PERMS, args("/tool"))
    s["set-perms"] = (send(DOM0, MKDIR, args("/p")) +
                      send(DOM0, SET_PERMS, args("/p", "n0", "r5", "w6",
                                                 "b7")) +
                      send(DOM0, GET_PERMS, args("/p")))
    s["watch"] = send(DOM0, WATCH, args("/w", "tok"))
    s["watch-depth"] = send(DOM0, WATCH, args("/w", "tok", "1"))
    s["unwatch"] = (send(DOM0, WATCH, args("/w", "tok")) +
                    send(DOM0, UNWATCH, args("/w", "tok")))
    s["watch-special"] = (send(DOM0, WATCH, args("@introduceDomain", "i")) +
                          send(DOM0, WATCH, args("@releaseDomain", "r")))
    s["transaction-start"] = send(DOM0, TRANSACTION_START, args(""))
    s["transaction-end"] = (send(DOM0, TRANSACTION_START, args("")) +
                            send(DOM0, TRANSACTION_END, args("T"), tx_id=1))
    s["introduce"] = send(DOM0, INTRODUCE, args("5", "4096", "7"))
    s["release"] = send(DOM0, RELEASE, args("5"))
    s["resume"] = send(DOM0, RESUME, args("5"))
    s["set-target"] = send(DOM0, SET_TARGET, args("5", "6"))
    s["get-domain-path"] = send(DOM0, GET_DOMAIN_PATH, args("5"))
    s["is-domain-introduced"] = send(DOM0, IS_DOMAIN_INTRODUCED, args("0"))
    s["reset-watches"] = (send(DOM0, WATCH, args("/w", "tok")) +
                          send(DOM0, RESET_WATCHES, b""))
    s["get-feature"] = send(DOM0, GET_FEATURE, args("0"))
    s["set-feature"] = send(DOM0, SET_FEATURE, args("5", "1"))
    s["get-quota"] = (send(DOM0, GET_QUOTA, b"") +
                      send(DOM0, GET_QUOTA, args("nodes")) +
                      send(DOM0, GET_QUOTA, args("0", "watches")))
    s["set-quota"] = (send(DOM0, SET_QUOTA, args("nodes", "3")) +
                      send(DOM0, SET_QUOTA, args("0", "memory", "100")) +
                      home5 +
                      send(DOM5, WRITE, args("a") + b"1") +
                      send(DOM5, WRITE, args("b") + b"2") +
                      send(DOM5, WRITE, args("c") + b"3"))
    s["control-check"] = send(DOM0, CONTROL, args("check"))
    s["control-help"] = send(DOM0, CONTROL, args("help"))
    s["control-memreport"] = (send(DOM0, CONTROL, args("memreport")) +
                              send(DOM0, CONTROL,
                                   args("memreport", "/tmp/report")))
    s["control-log"] = (send(DOM0, CONTROL, args("logfile", "trace")) +
                        send(DOM0, CONTROL, args("log", "on", "+io",
                                                 "-conn")) +
                        send(DOM0, WRITE, args("/t") + b"traced\x01\xff") +
                        send(DOM0, CONTROL, args("log")) +
                        send(DOM0, CONTROL, args("log", "off")))
    s["control-print"] = send(DOM0, CONTROL, args("print", "hello"))
    s["control-quota"] = (send(DOM0, CONTROL, args("quota")) +
                          send(DOM0, CONTROL, args("quota", "nodes", "5")) +
                          send(DOM0, CONTROL, args("quota", "0")) +
                          send(DOM0, CONTROL, args("quota-soft")) +
                          send(DOM0, CONTROL, args("quota-soft", "memory",
                                                   "1000")))
    s["unknown-types"] = (send(DOM0, WATCH_EVENT, args("/a", "t")) +
                          send(DOM0, ERROR, args("EINVAL")) +
                          send(DOM0, RESTRICT, args("5")) +
                          send(DOM0, 99, args("x")) +
                          send(DOM0, 0xFFFF, b""))

    # Guests: relative paths, permissions, privilege.
    s["guest-home"] = (home5 +
                       send(DOM5, WRITE, args("data/x") + b"5") +
                       send(DOM5, READ, args("data/x")) +
                       send(DOM5, DIRECTORY, args("/local/domain/5")) +
                       send(DOM5, GET_PERMS, args("data")))
    s["guest-denied"] = (send(DOM0, WRITE, args("/secret") + b"s") +
                         send(DOM5, READ, args("/secret")) +
                         send(DOM5, WRITE, args("/secret") + b"x") +
                         send(DOM5, RM, args("/secret")) +
                         send(DOM5, CONTROL, args("check")) +
                         send(DOM5, INTRODUCE, args("6", "1", "1")))
    s["guest-share"] = (home5 + home6 +
                        send(DOM5, WRITE, args("shared") + b"v") +
                        send(DOM5, SET_PERMS, args("shared", "n5", "b6")) +
                        send(DOM6, READ, args("/local/domain/5/shared")) +
                        send(DOM6, WRITE, args("/local/domain/5/shared") +
                             b"from 6") +
                        send(DOM5, SET_PERMS, args("shared", "n5")) +
                        send(DOM6, READ, args("/local/domain/5/shared")))
    s["guest-set-perms-owner"] = (home5 +
                                  send(DOM5, MKDIR, args("d")) +
                                  send(DOM5, SET_PERMS, args("d", "n6")) +
                                  send(DOM5, WRITE, args("d/x") + b"1"))
    s["priv-domid"] = (send(DOM6, WRITE, args("/p6") + b"1") +
                       send(DOM6, CONTROL, args("check")) +
                       send(DOM6, SET_PERMS, args("/p6", "n5")))
    s["debug-log"] = (send(DOM0, READ, args("/missing")) +
                      send(DOM5, WRITE, args("/denied") + b"x"))

    # What domains/ does when guests come and go.
    s["domain-introduced"] = (send(DOM0, WATCH, args("@introduceDomain",
                                                     "i")) +
                              send(DOM0B, WATCH, args("@introduceDomain",
                                                      "d", "1")) +
                              send(DOM0B, WATCH, args("@introduceDomain/5",
                                                      "five")) +
                              introduced(DOM5) + introduced(DOM6) +
                              reads(DOM0) + reads(DOM0B))
    s["domain-gone"] = (home5 +
                        send(DOM0, WATCH, args("@releaseDomain", "r")) +
                        send(DOM0B, WATCH, args("/", "all")) +
                        send(DOM5, WRITE, args("a/b") + b"1") +
                        send(DOM0, WRITE, args("/shared") + b"s") +
                        send(DOM0, SET_PERMS, args("/shared", "n0", "r5",
                                                   "w6")) +
                        send(DOM0, SET_PERMS, args("@releaseDomain", "n0",
                                                   "r5")) +
                        send(DOM5, TRANSACTION_START, args("")) +
                        gone(DOM5) + LOOP + reads(DOM0) + reads(DOM0B) +
                        send(DOM0, GET_PERMS, args("/shared")) +
                        send(DOM5, READ, args("a/b")))
    s["domain-target"] = (home5 +
                          send(DOM5, WRITE, args("secret") + b"x") +
                          send(DOM6, READ, args("/local/domain/5/secret")) +
                          set_target(DOM6) +
                          send(DOM6, READ, args("/local/domain/5/secret")) +
                          send(DOM6, WRITE, args("/local/domain/5/new") +
                               b"y") +
                          clear_target(DOM6) +
                          send(DOM6, READ, args("/local/domain/5/new")))

    # Transactions.
    s["txn-write-commit"] = (send(DOM0, TRANSACTION_START, args("")) +
                             send(DOM0, WRITE, args("/t/a") + b"1", tx_id=1) +
                             send(DOM0, READ, args("/t/a"), tx_id=1) +
                             send(DOM0, READ, args("/t/a")) +
                             send(DOM0, TRANSACTION_END, args("T"), tx_id=1) +
                             send(DOM0, READ, args("/t/a")))
    s["txn-abort"] = (send(DOM0, TRANSACTION_START, args("")) +
                      send(DOM0, MKDIR, args("/t/b"), tx_id=1) +
                      send(DOM0, RM, args("/tool"), tx_id=1) +
                      send(DOM0, TRANSACTION_END, args("F"), tx_id=1))
    s["txn-conflict"] = (send(DOM0, WRITE, args("/c") + b"0") +
                         send(DOM0, TRANSACTION_START, args("")) +
                         send(DOM0B, TRANSACTION_START, args("")) +
                         send(DOM0, READ, args("/c"), tx_id=1) +
                         send(DOM0B, READ, args("/c"), tx_id=1) +
                         send(DOM0, WRITE, args("/c") + b"1", tx_id=1) +
                         send(DOM0B, WRITE, args("/c") + b"2", tx_id=1) +
                         send(DOM0, TRANSACTION_END, args("T"), tx_id=1) +
                         send(DOM0B, TRANSACTION_END, args("T"), tx_id=1))
    s["txn-guest"] = (home5 +
                      send(DOM5, TRANSACTION_START, args("")) +
                      send(DOM5, WRITE, args("x") + b"1", tx_id=1) +
                      send(DOM5, DIRECTORY, args(""), tx_id=1) +
                      send(DOM5, SET_PERMS, args("x", "n5", "r6"), tx_id=1) +
                      send(DOM5, RM, args("x"), tx_id=1) +
                      send(DOM5, TRANSACTION_END, args("T"), tx_id=1))
    s["txn-many"] = home5 + b"".join(
        send(DOM5, TRANSACTION_START, args(""), req_id=i) for i in range(12))
    s["txn-bad-id"] = (send(DOM0, READ, args("/tool"), tx_id=7) +
                       send(DOM0, TRANSACTION_END, args("T"), tx_id=7) +
                       send(DOM0, TRANSACTION_START, args("")) +
                       send(DOM0, TRANSACTION_START, args(""), tx_id=1) +
                       send(DOM0B, READ, args("/tool"), tx_id=1))
    s["txn-hang-up"] = (send(DOM0, TRANSACTION_START, args("")) +
                        send(DOM0, WRITE, args("/h") + b"1", tx_id=1) +
                        hang_up(DOM0) + LOOP +
                        send(DOM0, READ, args("/h")))

    # Watches and the writes that fire them.
    s["watch-write"] = (send(DOM5, WATCH, args("/local/domain/5", "t5")) +
                        home5 +
                        send(DOM0, WRITE, args("/local/domain/5/x") + b"1") +
                        reads(DOM5) +
                        send(DOM0, RM, args("/local/domain/5/x")) +
                        reads(DOM5))
    s["watch-relative"] = (home5 +
                           send(DOM5, WATCH, args("device", "rel")) +
                           send(DOM5, WRITE, args("device/vif/0") + b"x") +
                           reads(DOM5))
    s["watch-txn"] = (send(DOM0B, WATCH, args("/t", "tw")) +
                      send(DOM0, TRANSACTION_START, args("")) +
                      send(DOM0, WRITE, args("/t/a") + b"1", tx_id=1) +
                      send(DOM0, WRITE, args("/t/b") + b"2", tx_id=1) +
                      send(DOM0, TRANSACTION_END, args("T"), tx_id=1) +
                      reads(DOM0B))
    s["watch-perms"] = (send(DOM0, WRITE, args("/s/x") + b"1") +
                        send(DOM5, WATCH, args("/s", "t")) +
                        send(DOM0, SET_PERMS, args("/s/x", "n0", "r5")) +
                        send(DOM0, SET_PERMS, args("/s/x", "n0")) +
                        send(DOM0, RM, args("/s")) + reads(DOM5))
    s["watch-slow-reader"] = (
        send(DOM0B, WATCH, args("/", "t" * 2000)) +
        b"".join(send(DOM0, WRITE, args("/f/%d" % i) + b"v" * 64)
                 for i in range(40)) + LOOP + reads(DOM0B))
    # A watcher that does not read: past WATCH_QUEUE_MAX its events are
    # coalesced, and sent once it reads.
    s["watch-coalesced"] = (
        send(DOM0B, WATCH, args("/", "t" * 4000)) +
        b"".join(send(DOM0, WRITE, args("/f") + b"%d" % i, req_id=i)
                 for i in range(300)) +
        send(DOM0, RM, args("/f")) + reads(DOM0B, 192) + LOOP +
        reads(DOM0B))
    s["watch-removed-below"] = (send(DOM0, WRITE, args("/r/a/b") + b"1") +
                                send(DOM0B, WATCH, args("/r/a/b", "deep")) +
                                send(DOM5, WATCH, args("/r/a", "guest")) +
                                send(DOM0, RM, args("/r")) +
                                reads(DOM0B) + reads(DOM5))
    s["watch-hang-up"] = (send(DOM5, WATCH, args("/", "x")) + hang_up(DOM5) +
                          send(DOM0, WRITE, args("/y") + b"1") + LOOP +
                          send(DOM5, WRITE, args("/z") + b"1"))

    # Framing: oversized, split, truncated, many per turn.
    s["oversized"] = send(DOM0, WRITE, b"", length=PAYLOAD_MAX + 1)
    s["oversized-huge"] = send(DOM5, READ, b"", length=0xFFFFFFFF)
    s["oversized-then-control"] = (
        send(DOM0, WRITE, b"", length=PAYLOAD_MAX + 1) +
        send(DOM0B, CONTROL, args("help")))
    s["max-payload"] = send(DOM0, WRITE, args("/m") +
                            b"x" * (PAYLOAD_MAX - 3))
    s["split"] = raw(DOM0, pkt(WRITE, args("/s") + b"split", 1)[:7]) + LOOP + \
        raw(DOM0, pkt(WRITE, args("/s") + b"split", 1)[7:])
    s["truncated"] = bytes([DOM0]) + pkt(READ, args("/tool/xenstored"))[:20]
    s["batch"] = b"".join(send(DOM0, READ, args("/tool"), req_id=i,
                               queued=True) for i in range(80)) + \
        notify(DOM0) + LOOP + LOOP
    # A client that does not read: past CONN_OUT_HIGH of replies its
    # requests wait, until it reads.
    s["output-full"] = (send(DOM0, WRITE, args("/big") + b"b" * 4000) +
                        b"".join(send(DOM0, READ, args("/big"), req_id=i,
                                      queued=True) for i in range(100)) +
                        notify(DOM0) + LOOP + LOOP + reads(DOM0, 16) +
                        reads(DOM0, 64) + LOOP + reads(DOM0) + LOOP)
    s["guest-outstanding"] = (
        home5 + send(DOM5, WRITE, args("v") + b"x" * 1000) +
        b"".join(send(DOM5, READ, args("v"), req_id=i, queued=True)
                 for i in range(40)) + notify(DOM5) + LOOP +
        reads(DOM5, 16) + LOOP + reads(DOM5))
    s["no-terminator"] = (send(DOM0, READ, b"/tool") +
                          send(DOM0, WRITE, b"/a") +
                          send(DOM0, WATCH, b"/a\0tok") +
                          send(DOM0, SET_PERMS, b"/a\0n0"))
    s["bad-paths"] = (send(DOM0, READ, args("/a//b")) +
                      send(DOM0, WRITE, args("/a/") + b"x") +
                      send(DOM0, MKDIR, args("/" + "p" * 3100)) +
                      send(DOM5, MKDIR, args("x" * 2100)))
    # The flags byte: 1 makes domain 6 the privileged domain, 2 logs at
    # debug level.
    flags = {"priv-domid": 1, "debug-log": 2}
    return {k: bytes([flags.get(k, 0)]) + v for k, v in s.items()}


# ---- fuzz-ring: indices, then commands (fuzz-ring.c) ----

(OP_SEND, OP_SEND_NOTIFY, OP_RECV, OP_IO, OP_SET_INDEX, OP_READ, OP_WRITE,
 OP_READABLE, OP_RECONNECT, OP_POKE, OP_LOOP) = range(11)


def u16(n):
    return struct.pack("<H", n)


def idx(req_cons=0, req_prod=0, rsp_cons=0, rsp_prod=0):
    return struct.pack("<4I", req_cons, req_prod, rsp_cons, rsp_prod)


def gsend(data, notify=True):
    return bytes([OP_SEND_NOTIFY if notify else OP_SEND]) + u16(len(data)) + \
        data


def grecv(n=1024):
    return bytes([OP_RECV]) + u16(n)


IO = bytes([OP_IO])


def ring_seeds():
    s = {}
    s["write-read"] = idx() + gsend(pkt(WRITE, args("/local/domain/5/x") +
                                        b"1")) + grecv() + \
        gsend(pkt(READ, args("x"), 2)) + grecv()
    # Indices near the 2^32 wrap and a request across the ring's end.
    near = 0xFFFFFFF0
    s["wrap"] = idx(near, near, near, near) + \
        gsend(pkt(WRITE, args("/w") + b"y" * 40)) + grecv() + \
        gsend(pkt(READ, args("/w"), 2)) + grecv()
    s["ring-end"] = idx(1000, 1000, 1010, 1010) + \
        gsend(pkt(MKDIR, args("/local/domain/5/dir"))) + grecv()
    # A request in two notifications, and one bigger than the ring.
    p = pkt(WRITE, args("/big") + b"z" * 3000)
    s["split"] = idx() + gsend(p[:10]) + gsend(p[10:1000]) + grecv() + \
        gsend(p[1000:2000]) + gsend(p[2000:]) + grecv() + IO + grecv()
    # Replies larger than the free space: the guest reads slowly.
    many = b"".join(pkt(GET_DOMAIN_PATH, args("5"), i) for i in range(60))
    s["slow-reader"] = idx() + gsend(many[:1024]) + grecv(16) + IO + \
        grecv(100) + IO + grecv(1024) + gsend(many[1024:]) + \
        grecv(7) + IO + grecv()
    s["watch"] = idx() + gsend(pkt(WATCH, args("/local/domain/5", "t"))) + \
        grecv() + gsend(pkt(WRITE, args("data") + b"1", 2)) + grecv() + \
        IO + grecv()
    s["transaction"] = idx() + gsend(pkt(TRANSACTION_START, args(""))) + \
        grecv() + gsend(pkt(WRITE, args("t") + b"1", 2, 1)) + \
        gsend(pkt(TRANSACTION_END, args("T"), 3, 1)) + grecv()
    s["oversized"] = idx() + gsend(pkt(READ, b"", length=5000)) + grecv()
    # Impossible indices: the server must stop serving, then reconnect.
    s["bad-req-index"] = idx(0, 2000) + IO + bytes([OP_RECONNECT]) + \
        gsend(pkt(READ, args("/tool"))) + grecv()
    s["bad-rsp-index"] = idx() + gsend(pkt(READ, args("/tool"), 1, 0), False) + \
        bytes([OP_SET_INDEX, 3]) + struct.pack("<I", 5000) + IO
    s["set-index-mid"] = idx() + gsend(pkt(READ, args("/tool"))) + \
        bytes([OP_SET_INDEX, 0]) + struct.pack("<I", 0xFFFFFC00) + IO + \
        bytes([OP_READABLE])
    s["raw-ops"] = idx(5, 1029, 7, 7) + bytes([OP_READABLE]) + \
        bytes([OP_READ]) + u16(3000) + bytes([OP_WRITE]) + u16(20) + \
        b"w" * 20 + bytes([OP_READ]) + u16(0) + bytes([OP_READABLE])
    s["full-rsp"] = idx(0, 0, 0, 1024) + bytes([OP_WRITE]) + u16(10) + \
        b"0123456789" + gsend(pkt(READ, args("/tool"))) + grecv(512) + IO
    s["poke"] = idx() + bytes([OP_POKE]) + u16(2060) + b"\x01" + \
        gsend(pkt(READ, args("/tool"))) + grecv() + bytes([OP_LOOP])
    return s


# ---- fuzz-schema: a record's selector byte, then its bytes (fuzz-schema.c) ----

def le32(n):
    return struct.pack("<I", n)


def rbytes(b):
    return le32(len(b)) + b


def rstr(s):
    return rbytes(s.encode() + b"\0")


def schema_seeds():
    s = {}
    s["format"] = b"\x00" + rstr("xenstored-db") + le32(2)
    s["node"] = b"\x01" + struct.pack("<Q", 5) + le32(2) + le32(0) + le32(1) + \
        le32(7) + le32(3) + rbytes(b"abc")
    s["domain"] = b"\x02" + le32(5) + struct.pack("<Q", 0x1234) + le32(7) + le32(3) + \
        le32(0xffffffff) + b"\x01\x00"
    s["input"] = b"\x03" + le32(99) + rbytes(struct.pack("<IIII", 11, 1, 0, 20) + b"/a\0")
    s["watches"] = b"\x04" + le32(2) + rstr("/local/domain/5/device") + rstr("tok") + \
        le32(15) + le32(0xffffffff) + b"\x00" + rstr("@releaseDomain") + rstr("") + \
        le32(0) + le32(1) + b"\x01"
    s["quotas"] = b"\x05" + le32(2097152) + le32(2) + le32(0xffffffff) + rstr("nodes") + \
        le32(1000) + le32(5) + rstr("watches") + le32(3)
    s["image"] = b"\x06" + rstr("xenstored-lu") + le32(1) + le32(3) + rstr("/run/socket") + \
        le32(1) + le32(4) + rbytes(b"ab") + rbytes(b"cd") + le32(1) + rstr("/a") + \
        rstr("t") + le32(0) + le32(0xffffffff) + b"\x00" + \
        le32(1) + le32(5) + rbytes(b"") + rbytes(b"x")
    return s


# ---- fuzz-journal: a mode byte, then a journal file or a frame's payload ----

def xxh3_low32(b):
    """The frames' checksum (schema/schema.h): XXH3-64's low 32 bits, from
    the libxxhash the daemon links."""
    lib = ctypes.CDLL("libxxhash.so.0")
    lib.XXH3_64bits.restype = ctypes.c_uint64
    lib.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    return lib.XXH3_64bits(b, len(b)) & 0xffffffff


def journal_head(version=2):
    return rstr("xenstored-journal") + le32(version)


def frame(*changes):
    payload = b"".join(changes)
    head = le32(len(payload)) + le32(xxh3_low32(payload))
    return head + le32(xxh3_low32(head)) + payload


def put(key, value):
    return b"\x01" + rbytes(key.encode()) + rbytes(value)


def delete(key):
    return b"\x02" + rbytes(key.encode())


def node(born, value, perms=((0, 0),)):
    return struct.pack("<Q", born) + le32(len(perms)) + \
        b"".join(le32(d) + le32(a) for d, a in perms) + rbytes(value)


def journal_seeds():
    s = {}
    one = frame(put("/local/domain/5/name", node(9, b"guest", ((5, 0), (0, 1)))))
    many = (frame(put("#domain/5", b"\x05\x00\x00\x00" + bytes(22)),
                  put("/vm", node(3, b"")), delete("/old")) +
            frame(put("/vm/1", node(4, b"a\0b")), put("/vm", node(3, b"x"))) +
            frame(delete("#watches/5"), put("#quotas", le32(0) + le32(0))))
    s["empty"] = b"\x00"
    s["head"] = b"\x00" + journal_head()
    s["head-cut"] = b"\x00" + journal_head()[:11]
    s["one-frame"] = b"\x00" + journal_head() + one
    s["frames"] = b"\x00" + journal_head() + many
    s["torn-tail"] = b"\x00" + journal_head() + many + one[:len(one) // 2]
    bad = bytearray(one)
    bad[-1] ^= 1
    s["bad-last"] = b"\x00" + journal_head() + many + bytes(bad)
    s["bad-middle"] = b"\x00" + journal_head() + bytes(bad) + many
    # Version 1 (every put gives its birth), and version 2's "as before"
    # (born 0): a fold keeps the birth of the key's put before.
    s["version-1"] = b"\x00" + journal_head(1) + many
    s["as-before"] = b"\x00" + journal_head() + \
        frame(put("/vm", node(3, b"")), put("/vm", node(0, b"changed"))) + \
        frame(put("/vm", node(0, b"again")), delete("/vm"),
              put("/vm", node(0, b"orphan")))
    s["payload-node"] = b"\x01" + put("/a", node(7, b"value", ((0, 3),)))
    s["payload-mixed"] = b"\x01" + put("#format", rstr("xenstored-db") + le32(2)) + \
        delete("/a/b") + put("/a", node(1, b"", ((1, 0), (2, 4))))
    return s


# ---- fuzz-checkpoint: a mode byte, then a block as stored or its content ----

def zstd_frame(content):
    """A block as the daemon stores it: one zstd frame with its content's
    size and checksum, from the libzstd the daemon links."""
    lib = ctypes.CDLL("libzstd.so.1")
    lib.ZSTD_createCCtx.restype = ctypes.c_void_p
    lib.ZSTD_CCtx_setParameter.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.ZSTD_compressBound.restype = ctypes.c_size_t
    lib.ZSTD_compressBound.argtypes = [ctypes.c_size_t]
    lib.ZSTD_compress2.restype = ctypes.c_size_t
    lib.ZSTD_compress2.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                   ctypes.c_char_p, ctypes.c_size_t]
    lib.ZSTD_freeCCtx.argtypes = [ctypes.c_void_p]
    cctx = lib.ZSTD_createCCtx()
    lib.ZSTD_CCtx_setParameter(cctx, 201, 1)    # ZSTD_c_checksumFlag
    bound = lib.ZSTD_compressBound(len(content))
    out = ctypes.create_string_buffer(bound)
    n = lib.ZSTD_compress2(cctx, out, bound, content, len(content))
    lib.ZSTD_freeCCtx(cctx)
    return out.raw[:n]


def v3_block_content(*nodes):
    """Version 3's entries: each path after what it shares with the one
    before, then the node record whole."""
    out, prev = b"", b""
    for path, rec in nodes:
        path = path.encode()
        shared = 0
        while shared < min(len(prev), len(path) - 1) and prev[shared] == path[shared]:
            shared += 1
        out += le32(shared) + rbytes(path[shared:]) + rbytes(rec)
        prev = path
    return out


def varint(n):
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7f | 0x80])
        n >>= 7
    return out + bytes([n])


def block_content(*nodes):
    """Version 4's content as schema/schema.h lays it out: the lengths of
    the heads and the names, then the heads, the names, the values."""
    heads, names, values = b"", b"", b""
    prev, prev_born, prev_perms = b"", 0, None
    for path, born, value, perms in nodes:
        path = path.encode()
        shared = 0
        while shared < min(len(prev), len(path) - 1) and prev[shared] == path[shared]:
            shared += 1
        delta = (born - prev_born) & (2**64 - 1)
        zz = ((delta << 1) ^ (2**64 - 1 if delta >> 63 else 0)) & (2**64 - 1)
        heads += varint(shared) + varint(len(path) - shared) + varint(zz)
        if perms == prev_perms:
            heads += varint(0)
        else:
            heads += varint(len(perms)) + b"".join(varint(d) + bytes([a]) for d, a in perms)
        heads += varint(len(value))
        names += path[shared:]
        values += value
        prev, prev_born, prev_perms = path, born, perms
    return varint(len(heads)) + varint(len(names)) + heads + names + values


def checkpoint_seeds():
    s = {}
    g = ((5, 0), (0, 1))
    nodes = (("/local", 2, b"", ((0, 0),)),
             ("/local/domain", 3, b"", ((0, 0),)),
             ("/local/domain/5", 9, b"", g),
             ("/local/domain/5/name", 10, b"guest", g),
             ("/local/domain/5/device/vif/0/mac", 11, b"00:16:3e:00:00:05", ((0, 0),)),
             ("@releaseDomain", 1, b"", ((0, 0),)))
    host = block_content(*nodes)
    s["content-host"] = b"\x01" + host
    s["content-one"] = b"\x01" + block_content(("/a", 7, b"value", ((0, 3),)))
    bad = varint(3) + varint(1) + varint(2) + varint(1) + varint(0) + b"\x00" + varint(0)
    s["content-bad-shared"] = b"\x01" + varint(len(bad)) + varint(1) + bad + b"x"
    s["block-host"] = b"\x00" + zstd_frame(host)
    s["block-cut"] = b"\x00" + zstd_frame(host)[:-5]
    v3 = v3_block_content(*((p, node(b, v, perms)) for p, b, v, perms in nodes))
    s["v3-content-host"] = b"\x03" + v3
    s["v3-content-bad-shared"] = b"\x03" + le32(3) + rbytes(b"x") + rbytes(node(1, b""))
    s["v3-block-host"] = b"\x02" + zstd_frame(v3)
    return s


def write_dir(name, seeds):
    d = os.path.join(HERE, "corpus", name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for seed, data in sorted(seeds.items()):
        with open(os.path.join(d, seed), "wb") as f:
            f.write(data)
    return len(seeds), sum(len(v) for v in seeds.values())


def main():
    for name, seeds in (("dispatch", dispatch_seeds()),
                        ("ring", ring_seeds()),
                        ("schema", schema_seeds()),
                        ("journal", journal_seeds()),
                        ("checkpoint", checkpoint_seeds())):
        n, size = write_dir(name, seeds)
        print("corpus/%s: %d seeds, %d bytes" % (name, n, size))


if __name__ == "__main__":
    main()
