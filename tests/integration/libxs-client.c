/*
 * libxs-client: exercises libxenstore (the client library shipped with Xen) against the daemon at
 * XENSTORED_PATH, as a privileged (dom0) socket client, and prints TAP on stdout.
 *
 * Every check names the behaviour it pins. Values and errno codes are those of Xen 4.17's C
 * xenstored. A socket client is dom0, which that daemon never refuses for lack of permission, so
 * EACCES cannot be provoked from here.
 *
 * Build: cc -Wall -Wextra -Werror -std=gnu11 libxs-client.c $(pkg-config --cflags --libs xenstore)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xenstore.h>

#include "tests/integration/tap.h"

/* A printable rendering of a byte string, for diagnostics. */
static const char *show(const void *data, size_t len)
{
	static char buf[4][256];
	static int which;
	char *out = buf[which++ % 4];
	const unsigned char *p = data;
	size_t i, o = 0;

	if (!data)
		return "(null)";
	out[o++] = '"';
	for (i = 0; i < len && o < sizeof(buf[0]) - 8; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
			out[o++] = p[i];
		else
			o += snprintf(out + o, 8, "\\x%02x", p[i]);
	}
	if (i < len)
		o += snprintf(out + o, 8, "...");
	out[o++] = '"';
	out[o] = 0;
	return out;
}

/* The read of PATH returns exactly LEN bytes equal to WANT, NUL-terminated after them. */
static void read_is(struct xs_handle *h, const char *path, const void *want, unsigned int wantlen,
		    const char *name)
{
	unsigned int len = 0xdeadbeef;
	char *val;

	errno = 0;
	val = xs_read(h, XBT_NULL, path, &len);
	if (!ok(val && len == wantlen && memcmp(val, want, wantlen) == 0 && val[len] == '\0',
		"%s", name)) {
		diag("xs_read(%s): %s, len %u, errno %s", path, val ? show(val, len) : "NULL", len,
		     errname(errno));
		diag("expected %s, len %u", show(want, wantlen), wantlen);
	}
	free(val);
}

static void read_fails(struct xs_handle *h, const char *path, int want_errno, const char *name)
{
	unsigned int len = 0;
	char *val;

	errno = 0;
	val = xs_read(h, XBT_NULL, path, &len);
	if (!ok(!val && errno == want_errno, "%s", name))
		diag("xs_read(%s): %s, errno %s; expected NULL with errno %s", show(path, strlen(path)),
		     val ? show(val, len) : "NULL", errname(errno), errname(want_errno));
	free(val);
}

static void write_ok(struct xs_handle *h, const char *path, const void *data, unsigned int len,
		     const char *name)
{
	bool r;

	errno = 0;
	r = xs_write(h, XBT_NULL, path, data, len);
	if (!ok(r, "%s", name))
		diag("xs_write(%s, %u bytes) failed: errno %s", path, len, errname(errno));
}

static void write_fails(struct xs_handle *h, const char *path, int want_errno, const char *name)
{
	bool r;

	errno = 0;
	r = xs_write(h, XBT_NULL, path, "x", 1);
	if (!ok(!r && errno == want_errno, "%s", name))
		diag("xs_write(%s): %s, errno %s; expected failure with errno %s",
		     show(path, strlen(path)), r ? "true" : "false", errname(errno),
		     errname(want_errno));
}

/* "a,b,c" from a directory listing, for comparisons. */
static char *join(char **v, unsigned int n)
{
	size_t size = 1, i;
	char *s;

	for (i = 0; i < n; i++)
		size += strlen(v[i]) + 1;
	s = calloc(1, size);
	if (!s)
		abort();
	for (i = 0; i < n; i++) {
		if (i)
			strcat(s, ",");
		strcat(s, v[i]);
	}
	return s;
}

static void dir_is(struct xs_handle *h, const char *path, const char *want, const char *name)
{
	unsigned int num = 0xdeadbeef;
	char **v, *got;

	errno = 0;
	v = xs_directory(h, XBT_NULL, path, &num);
	if (!v) {
		ok(false, "%s", name);
		diag("xs_directory(%s) failed: errno %s", path, errname(errno));
		return;
	}
	got = join(v, num);
	if (!ok(strcmp(got, want) == 0, "%s", name))
		diag("xs_directory(%s): [%s] (%u entries); expected [%s]", path, got, num, want);
	free(got);
	free(v);
}

static void dir_fails(struct xs_handle *h, const char *path, int want_errno, const char *name)
{
	unsigned int num = 0;
	char **v;

	errno = 0;
	v = xs_directory(h, XBT_NULL, path, &num);
	if (!ok(!v && errno == want_errno, "%s", name))
		diag("xs_directory(%s): %s, errno %s; expected NULL with errno %s", path,
		     v ? "a listing" : "NULL", errname(errno), errname(want_errno));
	free(v);
}

static void rm_fails(struct xs_handle *h, const char *path, int want_errno, const char *name)
{
	bool r;

	errno = 0;
	r = xs_rm(h, XBT_NULL, path);
	if (!ok(!r && errno == want_errno, "%s", name))
		diag("xs_rm(%s): %s, errno %s; expected failure with errno %s", path,
		     r ? "true" : "false", errname(errno), errname(want_errno));
}

/* Permissions of PATH rendered as "n0,r5,b7" (the wire form), or NULL with errno. */
static char *perms_of(struct xs_handle *h, const char *path)
{
	struct xs_permissions *p;
	unsigned int n, i;
	char *s, one[32];

	p = xs_get_permissions(h, XBT_NULL, path, &n);
	if (!p)
		return NULL;
	s = calloc(1, n * sizeof(one) + 1);
	if (!s)
		abort();
	for (i = 0; i < n; i++) {
		unsigned int bits = p[i].perms;

		/* Letters as on the wire; any other flag bits are shown so that they are noticed. */
		if (bits & ~(XS_PERM_READ | XS_PERM_WRITE))
			snprintf(one, sizeof(one), "%c%u{%#x}", "nrwb"[bits & 3], p[i].id, bits);
		else
			snprintf(one, sizeof(one), "%c%u", "nrwb"[bits & 3], p[i].id);
		if (i)
			strcat(s, ",");
		strcat(s, one);
	}
	free(p);
	return s;
}

static void perms_are(struct xs_handle *h, const char *path, const char *want, const char *name)
{
	char *got;

	errno = 0;
	got = perms_of(h, path);
	if (!ok(got && strcmp(got, want) == 0, "%s", name))
		diag("permissions of %s: %s (errno %s); expected %s", path, got ? got : "NULL",
		     errname(errno), want);
	free(got);
}

static bool set_perms(struct xs_handle *h, const char *path, const char *spec)
{
	struct xs_permissions p[16];
	unsigned int n;

	/* spec is "n0,r5": parse it with libxenstore's own parser, one entry at a time. */
	n = 0;
	for (const char *s = spec; *s && n < 16; n++) {
		char one[32];
		size_t l = strcspn(s, ",");

		snprintf(one, sizeof(one), "%.*s", (int)l, s);
		if (!xs_strings_to_perms(&p[n], 1, one))
			abort();
		s += l;
		if (*s == ',')
			s++;
	}
	return xs_set_permissions(h, XBT_NULL, path, p, n);
}

static void set_perms_ok(struct xs_handle *h, const char *path, const char *spec, const char *name)
{
	bool r;

	errno = 0;
	r = set_perms(h, path, spec);
	if (!ok(r, "%s", name))
		diag("xs_set_permissions(%s, %s) failed: errno %s", path, spec, errname(errno));
}

int main(void)
{
	struct xs_handle *h, *h2;
	const char *sock = getenv("XENSTORED_PATH");
	char *s, **v;
	unsigned int num, i;
	bool r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!sock) {
		printf("1..1\nnot ok 1 - XENSTORED_PATH is set to the daemon's socket\n");
		return 1;
	}
	diag("daemon socket: %s", sock);

	/* ---- connection */
	errno = 0;
	h = xs_open(0);
	if (!ok(h != NULL, "xs_open connects to the daemon's socket")) {
		diag("xs_open: errno %s", errname(errno));
		printf("1..%d\n", checks);
		return 1;
	}
	h2 = xs_open(0);
	if (!ok(h2 != NULL, "a second xs_open connects too")) {
		printf("1..%d\n", checks);
		return 1;
	}

	/* ---- the fresh tree */
	dir_is(h, "/", "tool", "fresh tree: / has the single child tool");
	dir_is(h, "/tool", "xenstored", "fresh tree: /tool has the single child xenstored");
	read_is(h, "/", "", 0, "fresh tree: / has an empty value");
	read_is(h, "/tool/xenstored", "", 0, "fresh tree: /tool/xenstored has an empty value");
	dir_is(h, "/tool/xenstored", "", "fresh tree: /tool/xenstored has no children");
	perms_are(h, "/", "n0", "fresh tree: / has perms n0");
	perms_are(h, "/tool", "n0", "fresh tree: /tool has perms n0");
	perms_are(h, "/tool/xenstored", "n0", "fresh tree: /tool/xenstored has perms n0");

	/* ---- write and read */
	write_ok(h, "/t/node", "hello", 5, "write of a new node whose parent is missing succeeds");
	read_is(h, "/t/node", "hello", 5, "read returns the written value and its length");
	read_is(h, "/t", "", 0, "write creates missing parents with empty values");
	errno = 0;
	s = xs_read(h, XBT_NULL, "/t/node", NULL);
	ok(s && strcmp(s, "hello") == 0, "read with a NULL length pointer returns the value");
	free(s);

	write_ok(h, "/t/node", "hi", 2, "overwrite with a shorter value succeeds");
	read_is(h, "/t/node", "hi", 2, "read after an overwrite returns only the new value");
	write_ok(h, "/t/node", "", 0, "write of an empty value succeeds");
	read_is(h, "/t/node", "", 0, "read of an empty value returns length 0");

	{
		static const char bin[] = { 'a', 0, 'b', 0, 0, (char)0xff, '\n', 0 };

		write_ok(h, "/t/bin", bin, sizeof(bin), "write of a value with embedded NULs succeeds");
		read_is(h, "/t/bin", bin, sizeof(bin), "binary value with NULs reads back byte for byte");
	}
	{
		char all[256];

		for (i = 0; i < 256; i++)
			all[i] = (char)(255 - i);
		write_ok(h, "/t/bytes", all, sizeof(all), "write of all 256 byte values succeeds");
		read_is(h, "/t/bytes", all, sizeof(all), "all 256 byte values read back unchanged");
	}
	{
		/* The largest value that fits one 4096-byte request with this path. */
		static char big[4096];
		const char *p = "/t/big";
		unsigned int max = 4096 - (strlen(p) + 1);

		memset(big, 'z', sizeof(big));
		big[0] = 'A';
		big[max - 1] = 'Z';
		write_ok(h, p, big, max, "dom0 write of a value filling the whole 4096-byte payload succeeds");
		read_is(h, p, big, max, "a value filling the whole payload reads back unchanged");
	}

	read_is(h2, "/t/node", "", 0, "a write on one connection is seen by another connection");
	write_ok(h2, "/t/other", "from h2", 7, "second connection writes a node");
	read_is(h, "/t/other", "from h2", 7, "the first connection reads the second's write");

	/* relative paths of a socket client live under /local/domain/0 */
	write_ok(h, "rel/x", "r", 1, "write of a relative path succeeds");
	read_is(h, "/local/domain/0/rel/x", "r", 1, "a relative path is under /local/domain/0 for dom0");
	read_is(h, "rel/x", "r", 1, "read of a relative path finds the node");

	/* ---- read failures */
	read_fails(h, "/t/missing", ENOENT, "read of a missing node fails with ENOENT");
	read_fails(h, "/nowhere/deeper/node", ENOENT, "read below a missing parent fails with ENOENT");
	read_fails(h, "/t/node/", EINVAL, "read of a path with a trailing slash fails with EINVAL");
	read_fails(h, "/t//node", EINVAL, "read of a path with a double slash fails with EINVAL");
	read_fails(h, "/t/no de", EINVAL, "read of a path with a space fails with EINVAL");
	read_fails(h, "/t/n*de", EINVAL, "read of a path with a '*' fails with EINVAL");
	read_fails(h, "", EINVAL, "read of the empty path fails with EINVAL");
	read_fails(h, "@introduceDomain", EINVAL, "read of special node @introduceDomain fails with EINVAL");

	/* ---- write failures */
	write_fails(h, "/t/bad/", EINVAL, "write of a path with a trailing slash fails with EINVAL");
	write_fails(h, "/t//bad", EINVAL, "write of a path with a double slash fails with EINVAL");
	write_fails(h, "/t/b d", EINVAL, "write of a path with a space fails with EINVAL");
	write_fails(h, "@releaseDomain", EINVAL, "write of special node @releaseDomain fails with EINVAL");
	read_fails(h, "/t/bad", ENOENT, "a failed write creates nothing");
	write_ok(h, "/t/A-z_0@9", "ok", 2, "write of a path using - _ @ digits and both cases succeeds");
	read_is(h, "/t/A-z_0@9", "ok", 2, "a node named with - _ @ digits and both cases reads back");

	/* ---- mkdir */
	errno = 0;
	r = xs_mkdir(h, XBT_NULL, "/m/a/b");
	ok(r, "mkdir of a new node with a missing parent succeeds");
	read_is(h, "/m/a/b", "", 0, "mkdir creates a node with an empty value");
	dir_is(h, "/m", "a", "mkdir creates its missing parents");
	write_ok(h, "/m/a", "keep", 4, "write a value on a directory node");
	errno = 0;
	r = xs_mkdir(h, XBT_NULL, "/m/a");
	ok(r, "mkdir of an existing node succeeds");
	read_is(h, "/m/a", "keep", 4, "mkdir of an existing node keeps its value");
	dir_is(h, "/m/a", "b", "mkdir of an existing node keeps its children");
	errno = 0;
	r = xs_mkdir(h, XBT_NULL, "/m/bad/");
	ok(!r && errno == EINVAL, "mkdir of a path with a trailing slash fails with EINVAL");
	errno = 0;
	r = xs_mkdir(h, XBT_NULL, "@introduceDomain");
	ok(!r && errno == EINVAL, "mkdir of a special node fails with EINVAL");

	/* ---- directory */
	write_ok(h, "/d/zeta", "", 0, "create child zeta");
	write_ok(h, "/d/alpha", "", 0, "create child alpha");
	write_ok(h, "/d/mid/deep", "", 0, "create child mid (implicitly) and its child");
	write_ok(h, "/d/0", "", 0, "create child 0");
	dir_is(h, "/d", "zeta,alpha,mid,0", "directory lists children in creation order");
	write_ok(h, "/d/alpha", "again", 5, "overwrite of child alpha");
	dir_is(h, "/d", "zeta,alpha,mid,0", "overwriting a child keeps the listing order");
	errno = 0;
	r = xs_rm(h, XBT_NULL, "/d/zeta");
	ok(r, "rm of the first child succeeds");
	write_ok(h, "/d/zeta", "", 0, "re-create child zeta");
	dir_is(h, "/d", "alpha,mid,0,zeta", "a re-created child is listed last");
	dir_is(h, "/d/mid/deep", "", "directory of a leaf is empty");
	errno = 0;
	v = xs_directory(h, XBT_NULL, "/d/0", &num);
	ok(v && num == 0, "directory of a leaf returns a list with 0 entries");
	free(v);
	dir_fails(h, "/d/missing", ENOENT, "directory of a missing node fails with ENOENT");
	dir_fails(h, "/d/", EINVAL, "directory of a path with a trailing slash fails with EINVAL");
	dir_fails(h, "@releaseDomain", EINVAL, "directory of a special node fails with EINVAL");
	dir_is(h, "rel", "x", "directory of a relative path lists the node's children");

	{
		/* More children than one 4096-byte reply holds: libxenstore falls back to
		 * DIRECTORY_PART and must still get every name, in order. */
		char path[64], *want, *got;
		const unsigned int n = 300;
		bool all = true;

		want = calloc(n, 32);
		if (!want)
			abort();
		for (i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "/big/child-with-a-long-name-%04u", i);
			if (!xs_write(h, XBT_NULL, path, "", 0))
				all = false;
			snprintf(want + strlen(want), 40, "%schild-with-a-long-name-%04u", i ? "," : "", i);
		}
		ok(all, "create %u children with 32-byte names", n);
		errno = 0;
		v = xs_directory(h, XBT_NULL, "/big", &num);
		got = v ? join(v, num) : NULL;
		if (!ok(v && num == n && strcmp(got, want) == 0,
			"directory larger than one reply (%u names, 9900 bytes) returns all names in order", n))
			diag("got %s, %u entries, errno %s", v ? "a list" : "NULL", v ? num : 0,
			     errname(errno));
		free(got);
		free(v);
		free(want);
	}

	/* ---- rm */
	errno = 0;
	r = xs_rm(h, XBT_NULL, "/t/other");
	ok(r, "rm of a leaf succeeds");
	read_fails(h, "/t/other", ENOENT, "read of a removed node fails with ENOENT");
	errno = 0;
	r = xs_rm(h, XBT_NULL, "/t/other");
	ok(r, "rm of a missing node whose parent exists succeeds");
	rm_fails(h, "/nowhere/node", ENOENT, "rm of a node whose parent is missing fails with ENOENT");
	rm_fails(h, "/", EINVAL, "rm of / fails with EINVAL");
	rm_fails(h, "/t/", EINVAL, "rm of a path with a trailing slash fails with EINVAL");
	rm_fails(h, "@introduceDomain", EINVAL, "rm of a special node fails with EINVAL");
	errno = 0;
	r = xs_rm(h, XBT_NULL, "/d");
	ok(r, "rm of a node with a subtree succeeds");
	read_fails(h, "/d/mid/deep", ENOENT, "rm removes the whole subtree");
	read_fails(h, "/d", ENOENT, "rm removes the node itself");
	dir_is(h, "/", "tool,t,local,m,big", "rm unlinks the node from its parent's listing");
	dir_is(h, "/tool", "xenstored", "rm leaves unrelated nodes alone");

	/* ---- permissions */
	perms_are(h, "/t/node", "n0", "a node created by dom0 below / has perms n0");
	write_ok(h, "/p/parent", "", 0, "create /p/parent");
	set_perms_ok(h, "/p/parent", "r5,n6,w7,b8", "set four perms entries succeeds");
	perms_are(h, "/p/parent", "r5,n6,w7,b8", "perms read back in order, owner first");
	write_ok(h, "/p/parent/child", "c", 1, "create a child of a node with explicit perms");
	perms_are(h, "/p/parent/child", "r5,n6,w7,b8", "a new node inherits its parent's perms");
	write_ok(h, "/p/parent/child/sub/leaf", "l", 1, "create a node and implicit parents");
	perms_are(h, "/p/parent/child/sub", "r5,n6,w7,b8", "an implicitly created parent inherits perms");
	set_perms_ok(h, "/p/parent", "b0", "set a single perms entry succeeds");
	perms_are(h, "/p/parent", "b0", "a single perms entry reads back");
	perms_are(h, "/p/parent/child", "r5,n6,w7,b8", "setting perms does not change existing children");
	set_perms_ok(h, "/p/parent", "n3,r3", "set perms naming the owner twice succeeds");
	perms_are(h, "/p/parent", "n3,r3", "perms with the owner named twice read back as given");
	write_ok(h, "/p/parent", "dom0 still writes", 17, "dom0 writes a node owned by another domain");
	read_is(h, "/p/parent", "dom0 still writes", 17, "dom0 reads a node owned by another domain with n");
	/* Xen 4.17 accepts SET_PERMS on special nodes but answers GET_PERMS on them with EINVAL
	 * (later versions answer it): only the former is checked. */
	set_perms_ok(h, "@releaseDomain", "n0,r3", "set perms of special node @releaseDomain succeeds");
	set_perms_ok(h, "@introduceDomain", "n0", "set perms of special node @introduceDomain succeeds");
	set_perms_ok(h, "rel/x", "n1,b2", "set perms on a relative path");
	perms_are(h, "/local/domain/0/rel/x", "n1,b2", "perms set on a relative path are on that node");
	{
		errno = 0;
		r = set_perms(h, "/p/missing", "n0");
		ok(!r && errno == ENOENT, "set perms of a missing node fails with ENOENT");
		read_fails(h, "/p/missing", ENOENT, "set perms of a missing node does not create it");
		errno = 0;
		s = perms_of(h, "/p/missing");
		ok(!s && errno == ENOENT, "get perms of a missing node fails with ENOENT");
		free(s);
		errno = 0;
		s = perms_of(h, "/p/parent/");
		ok(!s && errno == EINVAL, "get perms of a path with a trailing slash fails with EINVAL");
		free(s);
		errno = 0;
		r = xs_set_permissions(h, XBT_NULL, "/p/parent", NULL, 0);
		ok(!r && errno == EINVAL, "set perms with no entries fails with EINVAL");
		perms_are(h, "/p/parent", "n3,r3", "a failed set perms leaves the perms unchanged");
	}

	/* ---- domains */
	s = xs_get_domain_path(h, 0);
	ok(s && strcmp(s, "/local/domain/0") == 0, "domain path of domain 0 is /local/domain/0");
	if (s && strcmp(s, "/local/domain/0"))
		diag("got %s", s);
	free(s);
	s = xs_get_domain_path(h, 7);
	ok(s && strcmp(s, "/local/domain/7") == 0, "domain path of a domain that is not introduced is /local/domain/<id>");
	free(s);
	s = xs_get_domain_path(h, 32752);
	ok(s && strcmp(s, "/local/domain/32752") == 0, "domain path of domid 32752 is /local/domain/32752");
	free(s);
	errno = 0;
	r = xs_is_domain_introduced(h, 0);
	if (!ok(r, "domain 0 is introduced"))
		diag("errno %s", errname(errno));
	errno = 0;
	r = xs_is_domain_introduced(h, 7);
	if (!ok(!r && errno == 0, "domain 7 is not introduced (the daemon answers F)"))
		diag("returned %d, errno %s", r, errname(errno));
	errno = 0;
	r = xs_is_domain_introduced(h, 0x7ff0);
	if (!ok(r && errno == 0, "DOMID_SELF (0x7ff0) counts as introduced"))
		diag("returned %d, errno %s", r, errname(errno));

	/* ---- the connection still works after all the errors above */
	read_is(h, "/t/node", "", 0, "the connection still works after the failed requests");

	xs_close(h2);
	xs_close(h);
	printf("1..%d\n", checks);
	return failures ? 1 : 0;
}
