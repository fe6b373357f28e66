#!/usr/bin/python3
"""Drive the daemon with Debian's pyxs 0.4 (python3-pyxs) over its socket.

Each test gets a fresh daemon (see xstest.py).  Values and replies are
checked, not only that the calls ran.
"""

import errno
import os
import sys
import threading

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xstest import *  # noqa: E402,F401,F403

try:
    import pyxs
    from pyxs import Client, PyXSError
except ImportError:
    print("1..0 # SKIP pyxs (python3-pyxs) is not installed for %s" % sys.executable)
    sys.exit(0)


def expect_errno(code, fn, *args):
    """fn(*args) must raise PyXSError whose first argument is errno `code`."""
    try:
        r = fn(*args)
    except PyXSError as e:
        if not e.args or e.args[0] != code:
            raise AssertionError("%s%s: expected errno %s, got PyXSError%r"
                                 % (fn.__name__, short(args), errno.errorcode[code], e.args))
        return e
    raise AssertionError("%s%s: expected errno %s, got return value %s"
                         % (fn.__name__, short(args), errno.errorcode[code], short(r)))


# ------------------------------------------------------------ read/write

def test_write_then_read_returns_the_value(d):
    with pyclient(d) as c:
        c.write(b"/py/key", b"value 1")
        eq(c.read(b"/py/key"), b"value 1")
        c.write(b"/py/key", b"v2")
        eq(c.read(b"/py/key"), b"v2")


def test_value_with_inner_nul_bytes_round_trips(d):
    with pyclient(d) as c:
        c.write(b"/py/bin", b"a\x00b\x00\x00c")
        eq(c.read(b"/py/bin"), b"a\x00b\x00\x00c")
    # pyxs strips trailing NULs from replies; check the stored bytes raw.
    r = RawClient(d.socket_path)
    eq(r.read("/py/bin"), b"a\x00b\x00\x00c")


def test_empty_value_reads_back_empty(d):
    with pyclient(d) as c:
        c.write(b"/py/empty", b"not yet")
        c.write(b"/py/empty", b"")
        eq(c.read(b"/py/empty"), b"")


def test_read_of_missing_node_raises_enoent(d):
    with pyclient(d) as c:
        expect_errno(errno.ENOENT, c.read, b"/py/missing")


def test_read_with_default_returns_default_only_when_missing(d):
    with pyclient(d) as c:
        eq(c.read(b"/py/missing", b"dflt"), b"dflt")
        c.write(b"/py/present", b"real")
        eq(c.read(b"/py/present", b"dflt"), b"real")


def test_item_access_reads_writes_and_deletes(d):
    with pyclient(d) as c:
        c[b"/py/item"] = b"via setitem"
        eq(c[b"/py/item"], b"via setitem")
        del c[b"/py/item"]
        eq(c.exists(b"/py/item"), False)
        eq(c.exists(b"/py"), True)


def test_write_creates_parents_with_empty_values(d):
    with pyclient(d) as c:
        c.write(b"/py/a/b/c", b"leaf")
        eq(c.read(b"/py/a"), b"")
        eq(c.read(b"/py/a/b"), b"")
        eq(c.list(b"/py/a"), [b"b"])
        eq(c.list(b"/py/a/b"), [b"c"])


def test_relative_path_lands_under_local_domain_0(d):
    with pyclient(d) as c:
        c.write(b"xenstore-test/42/k", b"rel")
        eq(c.read(b"/local/domain/0/xenstore-test/42/k"), b"rel")
        eq(c.list(b"xenstore-test"), [b"42"])
        eq(c.list(b"/local/domain/0"), [b"xenstore-test"])


def test_special_path_read_raises_einval(d):
    with pyclient(d) as c:
        expect_errno(errno.EINVAL, c.read, b"@introduceDomain")
        expect_errno(errno.EINVAL, c.write, b"@releaseDomain", b"x")
        expect_errno(errno.EINVAL, c.mkdir, b"@foo")


# ------------------------------------------------------------ mkdir/delete/list

def test_mkdir_creates_empty_node_and_keeps_existing_value(d):
    with pyclient(d) as c:
        c.mkdir(b"/py/dir/sub")
        eq(c.read(b"/py/dir/sub"), b"")
        eq(c.list(b"/py/dir/sub"), [])
        c.write(b"/py/dir", b"keep me")
        c.mkdir(b"/py/dir")
        eq(c.read(b"/py/dir"), b"keep me")
        eq(c.list(b"/py/dir"), [b"sub"])


def test_list_returns_exactly_the_children_in_creation_order(d):
    with pyclient(d) as c:
        eq(c.list(b"/"), [b"tool"])
        eq(c.list(b"/tool"), [b"xenstored"])
        for name in [b"zz", b"aa", b"mm", b"0", b"Z-_@"]:
            c.write(b"/py/l/" + name, b"")
        c.write(b"/py/l/aa/grandchild", b"")
        eq(c.list(b"/py/l"), [b"zz", b"aa", b"mm", b"0", b"Z-_@"])
        eq(c.list(b"/py/l/mm"), [])
        eq(sorted(c.list(b"/")), [b"py", b"tool"])


def test_list_of_missing_node_raises_enoent(d):
    with pyclient(d) as c:
        expect_errno(errno.ENOENT, c.list, b"/py/nothing")


def test_delete_removes_subtree_and_exists_becomes_false(d):
    with pyclient(d) as c:
        c.write(b"/py/t/a/b", b"1")
        c.write(b"/py/t/c", b"2")
        eq(c.exists(b"/py/t/a/b"), True)
        c.delete(b"/py/t/a")
        eq(c.exists(b"/py/t/a"), False)
        eq(c.exists(b"/py/t/a/b"), False)
        eq(c.exists(b"/py/t/c"), True)
        eq(c.list(b"/py/t"), [b"c"])


def test_delete_of_missing_node_with_existing_parent_is_ok(d):
    with pyclient(d) as c:
        c.mkdir(b"/py/p")
        eq(c.delete(b"/py/p/absent"), None)
        eq(c.list(b"/py/p"), [])


def test_delete_with_missing_parent_raises_enoent(d):
    with pyclient(d) as c:
        expect_errno(errno.ENOENT, c.delete, b"/py/nope/absent")


def test_delete_of_root_raises_einval(d):
    with pyclient(d) as c:
        expect_errno(errno.EINVAL, c.delete, b"/")
        eq(c.list(b"/tool"), [b"xenstored"])


def test_exists_is_false_for_missing_and_true_for_existing(d):
    with pyclient(d) as c:
        eq(c.exists(b"/tool/xenstored"), True)
        eq(c.exists(b"/"), True)
        eq(c.exists(b"/no/such/node"), False)


# ------------------------------------------------------------ permissions

def test_get_perms_of_fresh_nodes_is_n0(d):
    with pyclient(d) as c:
        eq(c.get_perms(b"/"), [b"n0"])
        eq(c.get_perms(b"/tool/xenstored"), [b"n0"])
        c.write(b"/py/new", b"")
        eq(c.get_perms(b"/py/new"), [b"n0"])


def test_set_perms_round_trips(d):
    with pyclient(d) as c:
        c.write(b"/py/perm", b"")
        perms = [b"b5", b"r7", b"w8", b"n9"]
        c.set_perms(b"/py/perm", perms)
        eq(c.get_perms(b"/py/perm"), perms)
        c.set_perms(b"/py/perm", [b"r3"])
        eq(c.get_perms(b"/py/perm"), [b"r3"])


def test_new_children_inherit_parent_perms(d):
    with pyclient(d) as c:
        c.write(b"/py/inh", b"")
        c.set_perms(b"/py/inh", [b"w4", b"r6"])
        c.write(b"/py/inh/x/y", b"v")
        eq(c.get_perms(b"/py/inh/x"), [b"w4", b"r6"])
        eq(c.get_perms(b"/py/inh/x/y"), [b"w4", b"r6"])


def test_perms_on_missing_node_raise_enoent(d):
    with pyclient(d) as c:
        expect_errno(errno.ENOENT, c.get_perms, b"/py/none")
        expect_errno(errno.ENOENT, c.set_perms, b"/py/none", [b"n0"])


def test_set_perms_with_empty_list_raises_einval(d):
    with pyclient(d) as c:
        c.write(b"/py/perm", b"")
        c.set_perms(b"/py/perm", [b"b1"])
        expect_errno(errno.EINVAL, c.set_perms, b"/py/perm", [])
        eq(c.get_perms(b"/py/perm"), [b"b1"])


def test_set_perms_on_special_nodes_is_accepted(d):
    with pyclient(d) as c:
        eq(c.set_perms(b"@introduceDomain", [b"n0", b"r5"]), None)
        eq(c.set_perms(b"@releaseDomain", [b"n0", b"r5"]), None)


# ------------------------------------------------------------ walk

def test_walk_yields_path_value_children_top_down(d):
    with pyclient(d) as c:
        c.write(b"/w/a/x", b"vx")
        c.write(b"/w/a", b"va")
        c.write(b"/w/b", b"vb")
        got = list(c.walk(b"/w"))
        eq(got, [(b"/w", b"", [b"a", b"b"]),
                 (b"/w/a", b"va", [b"x"]),
                 (b"/w/a/x", b"vx", []),
                 (b"/w/b", b"vb", [])])


def test_walk_of_whole_fresh_store(d):
    with pyclient(d) as c:
        got = list(c.walk(b"/"))
        eq(got, [(b"/", b"", [b"tool"]),
                 (b"/tool", b"", [b"xenstored"]),
                 (b"/tool/xenstored", b"", [])])


def test_walk_bottom_up_yields_top_last(d):
    with pyclient(d) as c:
        c.write(b"/wb/k1", b"1")
        c.write(b"/wb/k2", b"2")
        got = list(c.walk(b"/wb", topdown=False))
        eq(got[-1], (b"/wb", b"", [b"k1", b"k2"]))
        eq(sorted(got[:-1]), [(b"/wb/k1", b"1", []), (b"/wb/k2", b"2", [])])


def test_walk_of_missing_node_raises_enoent(d):
    with pyclient(d) as c:
        e = expect_errno(errno.ENOENT, lambda p: list(c.walk(p)), b"/nowalk")
        check(isinstance(e, pyxs.exceptions.PyXSError), "PyXSError subclass")


# ------------------------------------------------------------ domains

def test_get_domain_path(d):
    with pyclient(d) as c:
        eq(c.get_domain_path(0), b"/local/domain/0")
        eq(c.get_domain_path(5), b"/local/domain/5")
        eq(c.get_domain_path(32000), b"/local/domain/32000")


def test_is_domain_introduced(d):
    with pyclient(d) as c:
        eq(c.is_domain_introduced(0), True)
        eq(c.is_domain_introduced(7), False)


# ------------------------------------------------------------ concurrency

def test_concurrent_threads_on_one_client_get_their_own_replies(d):
    # pyxs multiplexes one connection by req_id: the daemon must echo it.
    errors = []
    with pyclient(d) as c:
        def worker(n):
            try:
                for i in range(40):
                    key = b"/conc/%d/%d" % (n, i)
                    val = b"t%d-i%d" % (n, i)
                    c.write(key, val)
                    got = c.read(key)
                    if got != val:
                        errors.append((key, val, got))
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        check(not any(t.is_alive() for t in threads), "worker threads hung")
        eq(errors, [])
        eq(sorted(c.list(b"/conc")), sorted(b"%d" % n for n in range(6)))
        eq(len(c.list(b"/conc/3")), 40)


def test_two_clients_see_each_others_writes(d):
    with pyclient(d) as a, pyclient(d) as b:
        a.write(b"/shared", b"from a")
        eq(b.read(b"/shared"), b"from a")
        b.delete(b"/shared")
        eq(a.exists(b"/shared"), False)


# ------------------------------------------------------------ xs() compat

def _xs(d):
    old = os.environ.get("XENSTORED_PATH")
    os.environ["XENSTORED_PATH"] = d.socket_path
    try:
        return pyxs.xs()
    finally:
        if old is None:
            del os.environ["XENSTORED_PATH"]
        else:
            os.environ["XENSTORED_PATH"] = old


def test_xs_compat_read_write_ls_mkdir_rm(d):
    x = _xs(d)
    try:
        x.write("", b"/compat/k", b"v1")
        eq(x.read("", b"/compat/k"), b"v1")
        eq(x.ls("", b"/compat"), [b"k"])
        x.mkdir("", b"/compat/dir")
        eq(x.ls("", b"/compat"), [b"k", b"dir"])
        eq(x.ls("", b"/compat/dir"), [])
        x.rm("", b"/compat/k")
        eq(x.ls("", b"/compat"), [b"dir"])
        eq(x.ls("", b"/compat/missing"), None)
    finally:
        x.close()


def test_xs_compat_errors_are_pyxs_errors_with_errno(d):
    x = _xs(d)
    try:
        e = expect_errno(errno.ENOENT, x.read, "", b"/compat/missing")
        check(isinstance(e, pyxs.Error), "xs errors are pyxs.Error")
        expect_errno(errno.ENOENT, x.rm, "", b"/compat/no/parent")
        expect_errno(errno.EINVAL, x.rm, "", b"/")
        expect_errno(errno.ENOENT, x.get_permissions, "", b"/compat/missing")
    finally:
        x.close()


def test_xs_compat_set_permissions_and_domain_path(d):
    x = _xs(d)
    try:
        x.write(0, b"/compat/p", b"")
        x.set_permissions(0, b"/compat/p", [b"b2", b"r3"])
        eq(x.client.get_perms(b"/compat/p"), [b"b2", b"r3"])
        eq(x.get_domain_path(3), b"/local/domain/3")
    finally:
        x.close()


if __name__ == "__main__":
    run(globals())
