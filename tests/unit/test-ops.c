/*
 * ops: the request handlers, driven through ops_dispatch on connections of
 * a real server over the fake transport; replies are decoded from c->out.
 * c0 is dom0 (privileged, like a socket client), c5 an unprivileged guest.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "tests/unit/server_rig.h"

#include "ops/ops_impl.h"
#include "store/path.h"


/* rig_xs_tx, on a connection with nothing queued before or after: no
 * stray event or second reply. */
static uint32_t xs_tx(struct conn *c, uint32_t type, uint32_t tx_id,
		      const void *payload, size_t len)
{
	uint32_t t;

	ck_assert_uint_eq(evbuffer_get_length(c->out), 0);
	t = rig_xs_tx(c, type, tx_id, payload, len);
	ck_assert_uint_eq(evbuffer_get_length(c->out), 0);
	return t;
}

static uint32_t xs(struct conn *c, uint32_t type, const void *payload,
		   size_t len)
{
	return xs_tx(c, type, 0, payload, len);
}

/* The reply to (c, type, literal payload) is of type and has want bytes. */
#define EXPECT_REPLY(c, type, lit, want) do { \
	uint32_t t_ = xs((c), (type), UNIT_BYTES(lit)); \
	ck_assert_msg(t_ == (uint32_t)(type), \
		      "%s: got type %u, payload \"%s\"", #lit, \
		      (unsigned int)t_, rbuf); \
	ck_assert_uint_eq(rhdr.len, sizeof(want) - 1); \
	ck_assert_mem_eq(rbuf, (want), sizeof(want) - 1); \
} while (0)

#define EXPECT_OK(c, type, lit) EXPECT_REPLY(c, type, lit, "OK\0")

/* The reply is an ERROR with payload "<name>\0". */
#define EXPECT_ERR(c, type, lit, name) do { \
	uint32_t t_ = xs((c), (type), UNIT_BYTES(lit)); \
	ck_assert_msg(t_ == XS_ERROR, "%s: type %u, not an error (want %s)", \
		      #lit, (unsigned int)t_, (name)); \
	ck_assert_str_eq(rbuf, (name)); \
	ck_assert_uint_eq(rhdr.len, strlen(name) + 1); \
} while (0)

/* /local/domain/5 owned by domain 5, as the toolstack would make it. */
static void make_home5(void)
{
	EXPECT_OK(c0, XS_MKDIR, "/local/domain/5\0");
	EXPECT_OK(c0, XS_SET_PERMS, "/local/domain/5\0n5\0");
}

/* Split a DIRECTORY_PART reply into its generation and the rest. */
static const char *part_listing(uint64_t *gen, size_t *len)
{
	size_t glen = strlen(rbuf);
	char *end;

	ck_assert_uint_gt(glen, 0);
	ck_assert_uint_lt(glen, rhdr.len);
	*gen = strtoull(rbuf, &end, 10);
	ck_assert_ptr_eq(end, rbuf + glen);
	*len = rhdr.len - glen - 1;
	return rbuf + glen + 1;
}

/* ---- dom0: the node operations ---- */

START_TEST(write_then_read_returns_value)
{
	EXPECT_OK(c0, XS_WRITE, "/a/b\0hello");
	EXPECT_REPLY(c0, XS_READ, "/a/b\0", "hello");
	/* The missing parent was made, empty. */
	EXPECT_REPLY(c0, XS_READ, "/a\0", "");
}
END_TEST

START_TEST(write_keeps_value_bytes_with_nuls)
{
	EXPECT_OK(c0, XS_WRITE, "/v\0a\0b\0\0");
	EXPECT_REPLY(c0, XS_READ, "/v\0", "a\0b\0\0");
	/* An empty value. */
	EXPECT_OK(c0, XS_WRITE, "/v\0");
	EXPECT_REPLY(c0, XS_READ, "/v\0", "");
}
END_TEST

START_TEST(write_replaces_value)
{
	EXPECT_OK(c0, XS_WRITE, "/v\0first value");
	EXPECT_OK(c0, XS_WRITE, "/v\0second");
	EXPECT_REPLY(c0, XS_READ, "/v\0", "second");
}
END_TEST

START_TEST(write_of_maximal_value_reads_back)
{
	static char req[XENSTORE_PAYLOAD_MAX];
	size_t vlen = sizeof(req) - 3;

	memcpy(req, "/v", 3);
	memset(req + 3, 'x', vlen);
	ck_assert_uint_eq(xs(c0, XS_WRITE, req, sizeof(req)), XS_WRITE);
	ck_assert_uint_eq(xs(c0, XS_READ, UNIT_BYTES("/v\0")), XS_READ);
	ck_assert_uint_eq(rhdr.len, vlen);
	ck_assert_mem_eq(rbuf, req + 3, vlen);
}
END_TEST

START_TEST(write_without_path_terminator_is_einval)
{
	EXPECT_ERR(c0, XS_WRITE, "/a", "EINVAL");
	EXPECT_ERR(c0, XS_WRITE, "", "EINVAL");
	EXPECT_ERR(c0, XS_READ, "/a\0", "ENOENT");
}
END_TEST

START_TEST(write_to_bad_path_is_einval)
{
	EXPECT_ERR(c0, XS_WRITE, "/a//b\0v", "EINVAL");
	EXPECT_ERR(c0, XS_WRITE, "/a/\0v", "EINVAL");
	EXPECT_ERR(c0, XS_WRITE, "/a b\0v", "EINVAL");
	EXPECT_ERR(c0, XS_WRITE, "@special\0v", "EINVAL");
	EXPECT_ERR(c0, XS_MKDIR, "@special\0", "EINVAL");
}
END_TEST

START_TEST(read_of_missing_node_is_enoent)
{
	EXPECT_ERR(c0, XS_READ, "/nothing\0", "ENOENT");
	EXPECT_ERR(c0, XS_READ, "/tool/nothing/deeper\0", "ENOENT");
}
END_TEST

START_TEST(read_with_bad_framing_or_path_is_einval)
{
	EXPECT_ERR(c0, XS_READ, "/tool", "EINVAL");		/* no NUL */
	EXPECT_ERR(c0, XS_READ, "/tool\0/tool\0", "EINVAL");	/* two args */
	EXPECT_ERR(c0, XS_READ, "", "EINVAL");			/* nothing */
	EXPECT_ERR(c0, XS_READ, "/tool//xenstored\0", "EINVAL");
	EXPECT_ERR(c0, XS_READ, "/tool/\0", "EINVAL");
	EXPECT_ERR(c0, XS_READ, "/to%ol\0", "EINVAL");
	EXPECT_ERR(c0, XS_READ, "@introduceDomain\0", "EINVAL");
}
END_TEST

START_TEST(relative_path_of_dom0_resolves_under_its_home)
{
	EXPECT_OK(c0, XS_WRITE, "name\0Domain-0");
	EXPECT_REPLY(c0, XS_READ, "/local/domain/0/name\0", "Domain-0");
	EXPECT_REPLY(c0, XS_READ, "name\0", "Domain-0");
}
END_TEST

START_TEST(privileged_path_may_exceed_relative_limit)
{
	static char req[PATH_ABS_MAX + 2];

	/* "/" + 3000 bytes: over the guests' 2048, under 3072. */
	req[0] = '/';
	memset(req + 1, 'p', 3000);
	req[3001] = '\0';
	ck_assert_uint_eq(xs(c0, XS_MKDIR, req, 3002), XS_MKDIR);
	/* One byte over the absolute limit. */
	memset(req + 1, 'p', PATH_ABS_MAX);
	req[PATH_ABS_MAX + 1] = '\0';
	ck_assert_uint_eq(xs(c0, XS_MKDIR, req, PATH_ABS_MAX + 2), XS_ERROR);
	ck_assert_str_eq(rbuf, "EINVAL");
}
END_TEST

START_TEST(mkdir_creates_empty_node)
{
	EXPECT_OK(c0, XS_MKDIR, "/m/n\0");
	EXPECT_REPLY(c0, XS_READ, "/m/n\0", "");
	EXPECT_REPLY(c0, XS_DIRECTORY, "/m\0", "n\0");
}
END_TEST

START_TEST(mkdir_of_existing_node_keeps_value)
{
	EXPECT_OK(c0, XS_WRITE, "/m\0kept");
	EXPECT_OK(c0, XS_MKDIR, "/m\0");
	EXPECT_REPLY(c0, XS_READ, "/m\0", "kept");
}
END_TEST

START_TEST(rm_removes_subtree)
{
	EXPECT_OK(c0, XS_WRITE, "/r/a/b\0x");
	EXPECT_OK(c0, XS_WRITE, "/r/c\0y");
	EXPECT_OK(c0, XS_RM, "/r/a\0");
	EXPECT_ERR(c0, XS_READ, "/r/a/b\0", "ENOENT");
	EXPECT_ERR(c0, XS_READ, "/r/a\0", "ENOENT");
	EXPECT_REPLY(c0, XS_READ, "/r/c\0", "y");
	EXPECT_REPLY(c0, XS_DIRECTORY, "/r\0", "c\0");
}
END_TEST

START_TEST(rm_of_missing_node_with_existing_parent_is_ok)
{
	EXPECT_OK(c0, XS_RM, "/tool/nothing\0");
	EXPECT_OK(c0, XS_RM, "/nothing\0");
}
END_TEST

START_TEST(rm_of_missing_parent_is_enoent)
{
	EXPECT_ERR(c0, XS_RM, "/nothing/child\0", "ENOENT");
}
END_TEST

START_TEST(rm_of_root_is_einval)
{
	EXPECT_ERR(c0, XS_RM, "/\0", "EINVAL");
	EXPECT_REPLY(c0, XS_DIRECTORY, "/\0", "tool\0");
}
END_TEST

START_TEST(directory_lists_children_in_creation_order)
{
	EXPECT_OK(c0, XS_MKDIR, "/d/zeta\0");
	EXPECT_OK(c0, XS_MKDIR, "/d/alpha\0");
	EXPECT_OK(c0, XS_WRITE, "/d/mid\0v");
	EXPECT_OK(c0, XS_MKDIR, "/d/alpha/below\0");
	EXPECT_REPLY(c0, XS_DIRECTORY, "/d\0", "zeta\0alpha\0mid\0");
}
END_TEST

START_TEST(directory_of_initial_tree)
{
	EXPECT_REPLY(c0, XS_DIRECTORY, "/\0", "tool\0");
	EXPECT_REPLY(c0, XS_DIRECTORY, "/tool\0", "xenstored\0");
	EXPECT_REPLY(c0, XS_DIRECTORY, "/tool/xenstored\0", "");
}
END_TEST

START_TEST(directory_of_missing_node_is_enoent)
{
	EXPECT_ERR(c0, XS_DIRECTORY, "/nothing\0", "ENOENT");
	EXPECT_ERR(c0, XS_DIRECTORY, "/a//b\0", "EINVAL");
}
END_TEST

/* 25 children with 199-byte names: 5000 bytes of listing. */
static void make_big_directory(void)
{
	char req[256];

	for (int i = 0; i < 25; i++) {
		int n = snprintf(req, sizeof(req), "/big/%02d", i);

		memset(req + n, 'n', 197);
		req[n + 197] = '\0';
		ck_assert_uint_eq(xs(c0, XS_MKDIR, req, (size_t)n + 198),
				  XS_MKDIR);
	}
}

START_TEST(directory_too_big_is_e2big)
{
	make_big_directory();
	EXPECT_ERR(c0, XS_DIRECTORY, "/big\0", "E2BIG");
}
END_TEST

START_TEST(directory_part_lists_from_offset)
{
	uint64_t gen, gen2;
	size_t len;
	const char *list;

	EXPECT_OK(c0, XS_MKDIR, "/d/c1\0");
	EXPECT_OK(c0, XS_MKDIR, "/d/c2\0");
	EXPECT_OK(c0, XS_MKDIR, "/d/c3\0");

	ck_assert_uint_eq(xs(c0, XS_DIRECTORY_PART, UNIT_BYTES("/d\0000\0")),
			  XS_DIRECTORY_PART);
	list = part_listing(&gen, &len);
	ck_assert_uint_eq(len, 10);
	ck_assert_mem_eq(list, "c1\0c2\0c3\0\0", 10);

	ck_assert_uint_eq(xs(c0, XS_DIRECTORY_PART, UNIT_BYTES("/d\0003\0")),
			  XS_DIRECTORY_PART);
	list = part_listing(&gen2, &len);
	ck_assert_uint_eq(gen2, gen);
	ck_assert_uint_eq(len, 7);
	ck_assert_mem_eq(list, "c2\0c3\0\0", 7);

	/* Mid-name offsets are allowed, as upstream does. */
	ck_assert_uint_eq(xs(c0, XS_DIRECTORY_PART, UNIT_BYTES("/d\0004\0")),
			  XS_DIRECTORY_PART);
	list = part_listing(&gen2, &len);
	ck_assert_uint_eq(len, 6);
	ck_assert_mem_eq(list, "2\0c3\0\0", 6);
}
END_TEST

START_TEST(directory_part_past_end_is_empty)
{
	uint64_t gen;
	size_t len;
	const char *list;

	EXPECT_OK(c0, XS_MKDIR, "/d/c1\0");
	ck_assert_uint_eq(xs(c0, XS_DIRECTORY_PART, UNIT_BYTES("/d\0003\0")),
			  XS_DIRECTORY_PART);
	list = part_listing(&gen, &len);
	ck_assert_uint_eq(len, 1);
	ck_assert_int_eq(list[0], '\0');
	ck_assert_uint_eq(xs(c0, XS_DIRECTORY_PART,
			     UNIT_BYTES("/d\0004000000000\0")),
			  XS_DIRECTORY_PART);
	part_listing(&gen, &len);
	ck_assert_uint_eq(len, 1);
	/* A leaf has nothing from offset 0. */
	ck_assert_uint_eq(xs(c0, XS_DIRECTORY_PART,
			     UNIT_BYTES("/d/c1\0000\0")), XS_DIRECTORY_PART);
	part_listing(&gen, &len);
	ck_assert_uint_eq(len, 1);
}
END_TEST

START_TEST(directory_part_generation_changes_with_children)
{
	uint64_t before, after, unchanged;
	size_t len;

	EXPECT_OK(c0, XS_MKDIR, "/d/c1\0");
	xs(c0, XS_DIRECTORY_PART, UNIT_BYTES("/d\0000\0"));
	part_listing(&before, &len);
	EXPECT_OK(c0, XS_MKDIR, "/other\0");
	xs(c0, XS_DIRECTORY_PART, UNIT_BYTES("/d\0000\0"));
	part_listing(&unchanged, &len);
	ck_assert_uint_eq(unchanged, before);
	EXPECT_OK(c0, XS_MKDIR, "/d/c2\0");
	xs(c0, XS_DIRECTORY_PART, UNIT_BYTES("/d\0000\0"));
	part_listing(&after, &len);
	ck_assert_uint_ne(after, before);
	EXPECT_OK(c0, XS_RM, "/d/c1\0");
	xs(c0, XS_DIRECTORY_PART, UNIT_BYTES("/d\0000\0"));
	part_listing(&before, &len);
	ck_assert_uint_ne(after, before);
}
END_TEST

START_TEST(directory_part_chunks_rebuild_big_listing)
{
	static char whole[8192];
	size_t have = 0, len;
	uint64_t gen, first_gen = 0;
	const char *list;
	unsigned int chunks = 0;

	make_big_directory();
	for (;;) {
		char req[64];
		int n = snprintf(req, sizeof(req), "/big%c%zu", '\0', have);

		ck_assert_uint_lt(++chunks, 10);
		ck_assert_uint_eq(xs(c0, XS_DIRECTORY_PART, req, (size_t)n + 1),
				  XS_DIRECTORY_PART);
		list = part_listing(&gen, &len);
		if (chunks == 1)
			first_gen = gen;
		ck_assert_uint_eq(gen, first_gen);
		ck_assert_uint_gt(len, 0);
		ck_assert_uint_le(have + len, sizeof(whole));
		/* Every chunk holds whole names. */
		ck_assert_int_eq(list[len - 1], '\0');
		memcpy(whole + have, list, len);
		have += len;
		if (len >= 2 && list[len - 2] == '\0')
			break;	/* the end mark: an empty name */
	}
	ck_assert_uint_ge(chunks, 2);
	ck_assert_uint_eq(have, 25 * 200 + 1);
	for (int i = 0; i < 25; i++) {
		char name[16];

		snprintf(name, sizeof(name), "%02d", i);
		ck_assert_mem_eq(whole + 200 * i, name, 2);
		ck_assert_uint_eq(strlen(whole + 200 * i), 199);
	}
}
END_TEST

START_TEST(directory_part_bad_arguments_are_einval)
{
	EXPECT_ERR(c0, XS_DIRECTORY_PART, "/tool\0", "EINVAL");
	EXPECT_ERR(c0, XS_DIRECTORY_PART, "/tool\0x\0", "EINVAL");
	EXPECT_ERR(c0, XS_DIRECTORY_PART, "/tool\0-1\0", "EINVAL");
	EXPECT_ERR(c0, XS_DIRECTORY_PART, "/tool\0000\0extra\0", "EINVAL");
	EXPECT_ERR(c0, XS_DIRECTORY_PART, "/tool\0000", "EINVAL");
	EXPECT_ERR(c0, XS_DIRECTORY_PART, "/nothing\0000\0", "ENOENT");
}
END_TEST

START_TEST(get_perms_of_initial_nodes)
{
	EXPECT_REPLY(c0, XS_GET_PERMS, "/\0", "n0\0");
	EXPECT_REPLY(c0, XS_GET_PERMS, "/tool/xenstored\0", "n0\0");
	EXPECT_REPLY(c0, XS_GET_PERMS, "@introduceDomain\0", "n0\0");
	EXPECT_REPLY(c0, XS_GET_PERMS, "@releaseDomain\0", "n0\0");
	EXPECT_ERR(c0, XS_GET_PERMS, "@nothing\0", "ENOENT");
	EXPECT_ERR(c0, XS_GET_PERMS, "/nothing\0", "ENOENT");
}
END_TEST

START_TEST(set_perms_then_get_perms)
{
	EXPECT_OK(c0, XS_MKDIR, "/p\0");
	EXPECT_OK(c0, XS_SET_PERMS, "/p\0r5\0w6\0b7\0n8\0");
	EXPECT_REPLY(c0, XS_GET_PERMS, "/p\0", "r5\0w6\0b7\0n8\0");
	/* The privileged may give a node away. */
	EXPECT_OK(c0, XS_SET_PERMS, "/p\0n9\0");
	EXPECT_REPLY(c0, XS_GET_PERMS, "/p\0", "n9\0");
	/* Children made later inherit the list. */
	EXPECT_OK(c0, XS_MKDIR, "/p/q\0");
	EXPECT_REPLY(c0, XS_GET_PERMS, "/p/q\0", "n9\0");
}
END_TEST

START_TEST(set_perms_of_special_node)
{
	EXPECT_OK(c0, XS_SET_PERMS, "@releaseDomain\0n0\0r5\0");
	EXPECT_REPLY(c0, XS_GET_PERMS, "@releaseDomain\0", "n0\0r5\0");
}
END_TEST

START_TEST(set_perms_bad_arguments)
{
	EXPECT_OK(c0, XS_MKDIR, "/p\0");
	EXPECT_ERR(c0, XS_SET_PERMS, "/p\0", "EINVAL");
	EXPECT_ERR(c0, XS_SET_PERMS, "/p\0x5\0", "EINVAL");
	EXPECT_ERR(c0, XS_SET_PERMS, "/p\0r\0", "EINVAL");
	EXPECT_ERR(c0, XS_SET_PERMS, "/p\0r65536\0", "EINVAL");
	EXPECT_ERR(c0, XS_SET_PERMS, "/p\0r1\0\0", "EINVAL");
	EXPECT_ERR(c0, XS_SET_PERMS, "/p//q\0r1\0", "EINVAL");
	EXPECT_ERR(c0, XS_SET_PERMS, "/nothing\0r1\0", "ENOENT");
	/* Nothing changed. */
	EXPECT_REPLY(c0, XS_GET_PERMS, "/p\0", "n0\0");
}
END_TEST

START_TEST(get_domain_path_names_the_home)
{
	EXPECT_REPLY(c0, XS_GET_DOMAIN_PATH, "5\0", "/local/domain/5\0");
	EXPECT_REPLY(c5, XS_GET_DOMAIN_PATH, "0\0", "/local/domain/0\0");
	EXPECT_ERR(c0, XS_GET_DOMAIN_PATH, "x\0", "EINVAL");
	EXPECT_ERR(c0, XS_GET_DOMAIN_PATH, "65536\0", "EINVAL");
}
END_TEST

START_TEST(control_check_by_dom0_is_ok)
{
	EXPECT_OK(c0, XS_CONTROL, "check\0");
	EXPECT_ERR(c0, XS_CONTROL, "no-such-command\0", "EINVAL");
	EXPECT_ERR(c0, XS_CONTROL, "", "EINVAL");
}
END_TEST

START_TEST(control_check_reports_what_is_wrong)
{
	srv.store.use[0].owned++;	/* one node more than dom0 owns */
	ck_assert_uint_eq(xs(c0, XS_CONTROL, UNIT_BYTES("check\0")), XS_CONTROL);
	ck_assert_msg(strstr(rbuf, "accounting of domain 0") != NULL,
		      "report: %s", rbuf);
	ck_assert_msg(strstr(rbuf, "1 problems in ") != NULL, "report: %s", rbuf);
	srv.store.use[0].owned--;
	EXPECT_OK(c0, XS_CONTROL, "check\0");
}
END_TEST

/* ---- quotas ---- */

/* Owned by 5 now, from the store's own count. */
static unsigned int owned5(void)
{
	return srv.store.use[5].owned;
}

/* WATCH on c5: the reply's type; the initial event is dropped. */
static uint32_t watch5(const char *payload)
{
	struct unit_req u;
	size_t len = strlen(payload) + 1;

	len += strlen(payload + len) + 1;
	ops_dispatch(c5, unit_request(&u, XS_WATCH, next_req_id++, 0, payload,
				      len));
	unit_take_packet(c5->out, &rhdr, rbuf);
	evbuffer_drain(c5->out, evbuffer_get_length(c5->out));
	return rhdr.type;
}

START_TEST(quota_nodes_stops_creation_and_rm_gives_room_back)
{
	make_home5();		/* 1 node owned by 5 */
	srv.quotas.hard[QUOTA_NODES] = 3;
	EXPECT_OK(c5, XS_WRITE, "a\0" "1");
	EXPECT_OK(c5, XS_WRITE, "b\0" "1");
	ck_assert_uint_eq(owned5(), 3);
	EXPECT_ERR(c5, XS_WRITE, "c\0" "1", "ENOSPC");
	EXPECT_ERR(c5, XS_MKDIR, "d/e\0", "ENOSPC");
	ck_assert_uint_eq(owned5(), 3);
	EXPECT_OK(c5, XS_WRITE, "a\0" "rewritten");	/* not a creation */
	EXPECT_OK(c5, XS_RM, "b\0");
	EXPECT_OK(c5, XS_WRITE, "c\0" "1");
	/* dom0 has no limit, and its nodes are not 5's. */
	for (int i = 0; i < 5; i++)
		EXPECT_OK(c0, XS_WRITE, "/local/domain/5/x\0" "1");
	EXPECT_OK(c0, XS_MKDIR, "/local/domain/0/a/b/c/d\0");
}
END_TEST

START_TEST(quota_nodes_counts_implicit_parents)
{
	make_home5();
	srv.quotas.hard[QUOTA_NODES] = 3;
	EXPECT_ERR(c5, XS_WRITE, "p/q/r\0" "v", "ENOSPC");
	ck_assert_uint_eq(owned5(), 1);
	EXPECT_OK(c5, XS_WRITE, "p/q\0" "v");
	ck_assert_uint_eq(owned5(), 3);
}
END_TEST

START_TEST(quota_nodes_in_a_transaction_and_at_commit)
{
	uint32_t tid;

	make_home5();
	srv.quotas.hard[QUOTA_NODES] = 3;
	ck_assert_uint_eq(xs(c5, XS_TRANSACTION_START, UNIT_BYTES("\0")),
			  XS_TRANSACTION_START);
	tid = (uint32_t)strtoul(rbuf, NULL, 10);
	ck_assert_uint_eq(xs_tx(c5, XS_WRITE, tid, UNIT_BYTES("t1\0" "v")),
			  XS_WRITE);
	ck_assert_uint_eq(xs_tx(c5, XS_WRITE, tid, UNIT_BYTES("t2\0" "v")),
			  XS_WRITE);
	/* The transaction's own creations count. */
	ck_assert_uint_eq(xs_tx(c5, XS_WRITE, tid, UNIT_BYTES("t3\0" "v")),
			  XS_ERROR);
	ck_assert_str_eq(rbuf, "ENOSPC");
	/* Meanwhile 5 creates a node outside: the commit no longer fits. */
	EXPECT_OK(c5, XS_WRITE, "outside\0" "v");
	ck_assert_uint_eq(xs_tx(c5, XS_TRANSACTION_END, tid, UNIT_BYTES("T\0")),
			  XS_ERROR);
	ck_assert_str_eq(rbuf, "ENOSPC");
	ck_assert_uint_eq(owned5(), 2);
	EXPECT_ERR(c0, XS_READ, "/local/domain/5/t1\0", "ENOENT");
}
END_TEST

START_TEST(quota_aborted_transaction_changes_no_count)
{
	uint32_t tid;
	uint64_t bytes;

	make_home5();
	EXPECT_OK(c5, XS_WRITE, "keep\0" "v");
	bytes = srv.store.use[5].bytes;
	ck_assert_uint_eq(xs(c5, XS_TRANSACTION_START, UNIT_BYTES("\0")),
			  XS_TRANSACTION_START);
	tid = (uint32_t)strtoul(rbuf, NULL, 10);
	ck_assert_uint_eq(xs_tx(c5, XS_WRITE, tid, UNIT_BYTES("n/m\0" "v")),
			  XS_WRITE);
	ck_assert_uint_eq(xs_tx(c5, XS_RM, tid, UNIT_BYTES("keep\0")), XS_RM);
	ck_assert_uint_gt(ops_domain_memory(&srv, c5), bytes);
	ck_assert_uint_eq(xs_tx(c5, XS_TRANSACTION_END, tid, UNIT_BYTES("F\0")),
			  XS_TRANSACTION_END);
	ck_assert_uint_eq(owned5(), 2);
	ck_assert_uint_eq(srv.store.use[5].bytes, bytes);
	ck_assert_uint_eq(ops_domain_memory(&srv, c5), bytes);
}
END_TEST

START_TEST(quota_node_size_limits_values_and_listings)
{
	static char req[64 + 2100];
	size_t n = (size_t)snprintf(req, sizeof(req), "/local/domain/5/big") + 1;

	make_home5();
	memset(req + n, 'v', 2100);
	ck_assert_uint_eq(xs(c5, XS_WRITE, req, n + 2100), XS_ERROR);
	ck_assert_str_eq(rbuf, "ENOSPC");
	ck_assert_uint_eq(xs(c5, XS_WRITE, req, n + 1000), XS_WRITE);
	ck_assert_uint_eq(xs(c0, XS_WRITE, req, n + 2100), XS_WRITE);
	/* A node whose children's names fill it takes no more. */
	srv.quotas.hard[QUOTA_NODE_SIZE] = 16 + 8 + 12;
	EXPECT_OK(c5, XS_MKDIR, "d/aaaa\0");
	EXPECT_OK(c5, XS_MKDIR, "d/bbbb\0");
	EXPECT_ERR(c5, XS_MKDIR, "d/cccc\0", "ENOSPC");
}
END_TEST

START_TEST(quota_permissions_watches_and_transactions)
{
	make_home5();
	EXPECT_OK(c5, XS_SET_PERMS, "/local/domain/5\0n5\0r1\0r2\0r3\0r4\0");
	EXPECT_ERR(c5, XS_SET_PERMS, "/local/domain/5\0n5\0r1\0r2\0r3\0r4\0r6\0",
		   "ENOSPC");
	EXPECT_OK(c0, XS_SET_PERMS, "/local/domain/5\0n5\0r1\0r2\0r3\0r4\0r6\0");
	srv.quotas.hard[QUOTA_WATCHES] = 2;
	ck_assert_uint_eq(watch5("a\0t\0"), XS_WATCH);
	ck_assert_uint_eq(watch5("b\0t\0"), XS_WATCH);
	ck_assert_uint_eq(watch5("c\0t\0"), XS_ERROR);
	ck_assert_str_eq(rbuf, "ENOSPC");
	EXPECT_OK(c5, XS_UNWATCH, "a\0t\0");
	ck_assert_uint_eq(watch5("c\0t\0"), XS_WATCH);
	srv.quotas.hard[QUOTA_TRANSACTIONS] = 1;
	ck_assert_uint_eq(xs(c5, XS_TRANSACTION_START, UNIT_BYTES("\0")),
			  XS_TRANSACTION_START);
	EXPECT_ERR(c5, XS_TRANSACTION_START, "\0", "ENOSPC");
	ck_assert_uint_eq(xs(c0, XS_TRANSACTION_START, UNIT_BYTES("\0")),
			  XS_TRANSACTION_START);
}
END_TEST

START_TEST(quota_path_max_and_transaction_nodes)
{
	uint32_t tid;

	make_home5();
	srv.quotas.hard[QUOTA_PATH_MAX] = 10;
	EXPECT_OK(c5, XS_WRITE, "123456789\0" "v");
	EXPECT_ERR(c5, XS_WRITE, "1234567890a\0" "v", "EINVAL");
	EXPECT_OK(c0, XS_WRITE, "/local/domain/5/1234567890a\0" "v");
	srv.quotas.hard[QUOTA_PATH_MAX] = 0;
	srv.quotas.hard[QUOTA_TXN_NODES] = 3;
	ck_assert_uint_eq(xs(c5, XS_TRANSACTION_START, UNIT_BYTES("\0")),
			  XS_TRANSACTION_START);
	tid = (uint32_t)strtoul(rbuf, NULL, 10);
	/* Three nodes touched: the transaction may do no more but end. */
	ck_assert_uint_eq(xs_tx(c5, XS_READ, tid, UNIT_BYTES("123456789\0")),
			  XS_READ);
	ck_assert_uint_eq(xs_tx(c5, XS_READ, tid,
				UNIT_BYTES("/local/domain/5\0")), XS_READ);
	ck_assert_uint_eq(xs_tx(c5, XS_READ, tid,
				UNIT_BYTES("/local/domain/5/1234567890a\0")),
			  XS_READ);
	ck_assert_uint_eq(xs_tx(c5, XS_READ, tid, UNIT_BYTES("123456789\0")),
			  XS_ERROR);
	ck_assert_str_eq(rbuf, "ENOSPC");
	ck_assert_uint_eq(xs(c5, XS_READ, UNIT_BYTES("123456789\0")), XS_READ);
	ck_assert_uint_eq(xs_tx(c5, XS_WRITE, tid, UNIT_BYTES("x\0" "1")),
			  XS_ERROR);
	ck_assert_str_eq(rbuf, "ENOSPC");
	ck_assert_uint_eq(xs_tx(c5, XS_TRANSACTION_END, tid, UNIT_BYTES("F\0")),
			  XS_TRANSACTION_END);
}
END_TEST

START_TEST(quota_memory_is_enomem_and_keeps_what_was_written)
{
	static char req[64 + 1000];
	int ok = 0, i;

	make_home5();
	srv.quotas.hard[QUOTA_MEMORY] = 20000;
	for (i = 0; i < 100; i++) {
		size_t n = (size_t)snprintf(req, sizeof(req),
					    "/local/domain/5/v%d", i) + 1;

		memset(req + n, 'm', 1000);
		if (xs(c5, XS_WRITE, req, n + 1000) != XS_WRITE)
			break;
		ok++;
	}
	ck_assert_int_gt(ok, 5);
	ck_assert_int_lt(ok, 100);
	ck_assert_str_eq(rbuf, "ENOMEM");
	ck_assert_uint_le(srv.store.use[5].bytes, 20000);
	srv.quotas.hard[QUOTA_MEMORY] = (unsigned int)ops_domain_memory(&srv, c5);
	EXPECT_ERR(c5, XS_WATCH, "w\0t\0", "ENOMEM");
	EXPECT_ERR(c5, XS_TRANSACTION_START, "\0", "ENOMEM");
	/* What fitted is all there; dom0 is not limited. */
	ck_assert_uint_eq(xs(c0, XS_READ, UNIT_BYTES("/local/domain/5/v0\0")),
			  XS_READ);
	ck_assert_uint_eq(rhdr.len, 1000);
	EXPECT_OK(c0, XS_WRITE, "/local/domain/0/big\0" "v");
}
END_TEST

START_TEST(get_and_set_quota)
{
	EXPECT_REPLY(c0, XS_TYPE_GET_QUOTA, "",
		     "nodes watches transactions outstanding transaction-nodes "
		     "memory node-size path-max permissions\0");
	EXPECT_REPLY(c0, XS_TYPE_GET_QUOTA, "nodes\0", "1000\0");
	EXPECT_REPLY(c0, XS_TYPE_GET_QUOTA, "node-permissions\0", "5\0");
	EXPECT_OK(c0, XS_TYPE_SET_QUOTA, "nodes\0" "7\0");
	EXPECT_REPLY(c0, XS_TYPE_GET_QUOTA, "nodes\0", "7\0");
	ck_assert_uint_eq(srv.quotas.hard[QUOTA_NODES], 7);
	/* The master is known; domain 5 is not introduced here. */
	EXPECT_OK(c0, XS_TYPE_SET_QUOTA, "0\0nodes\0" "9\0");
	EXPECT_REPLY(c0, XS_TYPE_GET_QUOTA, "0\0nodes\0", "9\0");
	EXPECT_REPLY(c0, XS_TYPE_GET_QUOTA, "nodes\0", "7\0");
	EXPECT_ERR(c0, XS_TYPE_GET_QUOTA, "5\0nodes\0", "ENOENT");
	EXPECT_ERR(c0, XS_TYPE_SET_QUOTA, "5\0nodes\0" "1\0", "ENOENT");
	EXPECT_ERR(c0, XS_TYPE_GET_QUOTA, "bogus\0", "EINVAL");
	EXPECT_ERR(c0, XS_TYPE_SET_QUOTA, "nodes\0" "4294967295\0", "EINVAL");
	EXPECT_ERR(c0, XS_TYPE_SET_QUOTA, "nodes\0" "x\0", "EINVAL");
	EXPECT_ERR(c0, XS_TYPE_SET_QUOTA, "nodes\0", "EINVAL");
	EXPECT_ERR(c5, XS_TYPE_GET_QUOTA, "nodes\0", "EACCES");
	EXPECT_ERR(c5, XS_TYPE_SET_QUOTA, "nodes\0" "1\0", "EACCES");
}
END_TEST

START_TEST(control_quota_lists_sets_and_reports)
{
	ck_assert_uint_eq(xs(c0, XS_CONTROL, UNIT_BYTES("quota\0")), XS_CONTROL);
	ck_assert_msg(strstr(rbuf, "nodes            :     1000 Nodes per domain\n"),
		      "%s", rbuf);
	EXPECT_OK(c0, XS_CONTROL, "quota\0set\0watches\0" "64\0");
	ck_assert_uint_eq(srv.quotas.hard[QUOTA_WATCHES], 64);
	EXPECT_ERR(c0, XS_CONTROL, "quota\0set\0nope\0" "1\0", "EINVAL");
	EXPECT_OK(c0, XS_WRITE, "/x\0" "1");
	ck_assert_uint_eq(xs(c0, XS_CONTROL, UNIT_BYTES("quota\0" "0\0")),
			  XS_CONTROL);
	ck_assert_msg(strstr(rbuf, "Domain 0:\nnodes           :"), "%s", rbuf);
	EXPECT_ERR(c0, XS_CONTROL, "quota\0" "5\0", "ENOENT");
	EXPECT_OK(c0, XS_CONTROL, "quota-soft\0set\0memory\0" "1000\0");
	ck_assert_uint_eq(srv.quotas.soft_memory, 1000);
	ck_assert_uint_eq(xs(c0, XS_CONTROL, UNIT_BYTES("quota-soft\0")),
			  XS_CONTROL);
	ck_assert_msg(strstr(rbuf, "memory           :     1000"), "%s", rbuf);
}
END_TEST

START_TEST(unknown_types_are_enosys)
{
	static const uint32_t types[] = {
		XS_TYPE_MAX, 1000, UINT32_MAX, XS_WATCH_EVENT, XS_ERROR,
		XS_TYPE_RESTRICT_REMOVED,
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		ck_assert_uint_eq(xs(c0, types[i], UNIT_BYTES("/tool\0")),
				  XS_ERROR);
		ck_assert_str_eq(rbuf, "ENOSYS");
	}
}
END_TEST

START_TEST(read_with_unknown_tx_id_is_enoent)
{
	ck_assert_uint_eq(xs_tx(c0, XS_READ, 42, UNIT_BYTES("/tool\0")),
			  XS_ERROR);
	ck_assert_str_eq(rbuf, "ENOENT");
	ck_assert_uint_eq(xs_tx(c0, XS_WRITE, 7, UNIT_BYTES("/w\0v")),
			  XS_ERROR);
	ck_assert_str_eq(rbuf, "ENOENT");
	EXPECT_ERR(c0, XS_READ, "/w\0", "ENOENT");	/* nothing written */
}
END_TEST

/* ---- unprivileged domain 5 ---- */

START_TEST(unprivileged_access_to_dom0_node_is_eacces)
{
	EXPECT_OK(c0, XS_WRITE, "/secret\0s3cr3t");
	EXPECT_ERR(c5, XS_READ, "/secret\0", "EACCES");
	EXPECT_ERR(c5, XS_WRITE, "/secret\0mine", "EACCES");
	EXPECT_ERR(c5, XS_MKDIR, "/secret\0", "EACCES");
	EXPECT_ERR(c5, XS_RM, "/secret\0", "EACCES");
	EXPECT_ERR(c5, XS_DIRECTORY, "/\0", "EACCES");
	EXPECT_ERR(c5, XS_GET_PERMS, "/secret\0", "EACCES");
	EXPECT_ERR(c5, XS_GET_PERMS, "@introduceDomain\0", "EACCES");
	EXPECT_ERR(c5, XS_SET_PERMS, "/secret\0n5\0", "EACCES");
	EXPECT_REPLY(c0, XS_READ, "/secret\0", "s3cr3t");
}
END_TEST

START_TEST(missing_node_under_unreadable_parent_is_eacces)
{
	EXPECT_OK(c0, XS_MKDIR, "/secret\0");
	EXPECT_ERR(c5, XS_READ, "/secret/missing\0", "EACCES");
	EXPECT_ERR(c5, XS_READ, "/secret/missing/deeper\0", "EACCES");
	EXPECT_ERR(c5, XS_READ, "/nothing\0", "EACCES");
	EXPECT_ERR(c5, XS_WRITE, "/secret/new\0v", "EACCES");
	EXPECT_ERR(c5, XS_RM, "/secret/missing\0", "EACCES");
	EXPECT_ERR(c0, XS_READ, "/secret/missing\0", "ENOENT");
}
END_TEST

START_TEST(missing_node_under_readable_parent_is_enoent)
{
	EXPECT_OK(c0, XS_MKDIR, "/pub\0");
	EXPECT_OK(c0, XS_SET_PERMS, "/pub\0n0\0r5\0");
	EXPECT_ERR(c5, XS_READ, "/pub/missing\0", "ENOENT");
	EXPECT_ERR(c5, XS_READ, "/pub/missing/deeper\0", "ENOENT");
	EXPECT_REPLY(c5, XS_READ, "/pub\0", "");
	EXPECT_REPLY(c5, XS_DIRECTORY, "/pub\0", "");
	/* Readable is not writable. */
	EXPECT_ERR(c5, XS_WRITE, "/pub/new\0v", "EACCES");
	EXPECT_ERR(c5, XS_MKDIR, "/pub/new\0", "EACCES");
}
END_TEST

START_TEST(readable_default_lets_everyone_read)
{
	EXPECT_OK(c0, XS_WRITE, "/open\0v");
	EXPECT_OK(c0, XS_SET_PERMS, "/open\0r0\0");
	EXPECT_REPLY(c5, XS_READ, "/open\0", "v");
	EXPECT_ERR(c5, XS_WRITE, "/open\0w", "EACCES");
}
END_TEST

START_TEST(unprivileged_creator_owns_what_it_creates)
{
	EXPECT_OK(c0, XS_MKDIR, "/shared\0");
	EXPECT_OK(c0, XS_SET_PERMS, "/shared\0n0\0b5\0");
	EXPECT_OK(c5, XS_MKDIR, "/shared/mine\0");
	EXPECT_REPLY(c0, XS_GET_PERMS, "/shared/mine\0", "n5\0b5\0");
	EXPECT_OK(c5, XS_WRITE, "/shared/deep/er\0v");
	EXPECT_REPLY(c0, XS_GET_PERMS, "/shared/deep\0", "n5\0b5\0");
	EXPECT_REPLY(c0, XS_GET_PERMS, "/shared/deep/er\0", "n5\0b5\0");
	/* The privileged creator inherits the parent's list unchanged. */
	EXPECT_OK(c0, XS_MKDIR, "/shared/dom0s\0");
	EXPECT_REPLY(c0, XS_GET_PERMS, "/shared/dom0s\0", "n0\0b5\0");
	/* Writing an existing node keeps its owner. */
	EXPECT_OK(c5, XS_WRITE, "/shared/dom0s\0v");
	EXPECT_REPLY(c0, XS_GET_PERMS, "/shared/dom0s\0", "n0\0b5\0");
	/* The parent's list is untouched. */
	EXPECT_REPLY(c0, XS_GET_PERMS, "/shared\0", "n0\0b5\0");
}
END_TEST

START_TEST(relative_paths_resolve_under_domain_home)
{
	make_home5();
	EXPECT_OK(c5, XS_WRITE, "data\0hi");
	EXPECT_REPLY(c0, XS_READ, "/local/domain/5/data\0", "hi");
	EXPECT_REPLY(c5, XS_READ, "data\0", "hi");
	EXPECT_REPLY(c5, XS_READ, "/local/domain/5/data\0", "hi");
	EXPECT_REPLY(c5, XS_GET_PERMS, "data\0", "n5\0");
	EXPECT_OK(c5, XS_MKDIR, "device/vif\0");
	EXPECT_REPLY(c5, XS_DIRECTORY, "device\0", "vif\0");
	EXPECT_REPLY(c0, XS_DIRECTORY, "/local/domain/5\0", "data\0device\0");
	EXPECT_OK(c5, XS_RM, "device\0");
	EXPECT_ERR(c5, XS_READ, "device/vif\0", "ENOENT");
	EXPECT_ERR(c5, XS_READ, "a//b\0", "EINVAL");
	EXPECT_ERR(c5, XS_READ, "\0", "EINVAL");
}
END_TEST

START_TEST(unprivileged_relative_length_limit)
{
	static char req[PATH_REL_MAX + 2];

	make_home5();
	/* One long name would also make its parent too big: not the point. */
	srv.quotas.hard[QUOTA_NODE_SIZE] = 0;
	memset(req, 'r', PATH_REL_MAX);
	req[PATH_REL_MAX] = '\0';
	ck_assert_uint_eq(xs(c5, XS_MKDIR, req, PATH_REL_MAX + 1), XS_MKDIR);
	memset(req, 'r', PATH_REL_MAX + 1);
	req[PATH_REL_MAX + 1] = '\0';
	ck_assert_uint_eq(xs(c5, XS_MKDIR, req, PATH_REL_MAX + 2), XS_ERROR);
	ck_assert_str_eq(rbuf, "EINVAL");
}
END_TEST

START_TEST(unprivileged_owner_change_is_eperm)
{
	make_home5();
	EXPECT_OK(c5, XS_WRITE, "data\0v");
	EXPECT_ERR(c5, XS_SET_PERMS, "data\0n7\0", "EPERM");
	EXPECT_ERR(c5, XS_SET_PERMS, "data\0r0\0b5\0", "EPERM");
	EXPECT_REPLY(c5, XS_GET_PERMS, "data\0", "n5\0");
	/* Keeping the owner and sharing is fine. */
	EXPECT_OK(c5, XS_SET_PERMS, "data\0n5\0r7\0");
	EXPECT_REPLY(c0, XS_GET_PERMS, "/local/domain/5/data\0", "n5\0r7\0");
}
END_TEST

START_TEST(unprivileged_set_perms_needs_ownership)
{
	EXPECT_OK(c0, XS_MKDIR, "/shared\0");
	EXPECT_OK(c0, XS_SET_PERMS, "/shared\0n0\0b5\0");
	/* Read and write, but not owner. */
	EXPECT_ERR(c5, XS_SET_PERMS, "/shared\0n0\0b5\0", "EACCES");
	EXPECT_REPLY(c5, XS_GET_PERMS, "/shared\0", "n0\0b5\0");
}
END_TEST

START_TEST(unprivileged_domain_may_remove_its_nodes)
{
	make_home5();
	EXPECT_OK(c5, XS_WRITE, "a/b\0v");
	EXPECT_OK(c5, XS_RM, "a\0");
	EXPECT_ERR(c5, XS_READ, "a/b\0", "ENOENT");
	EXPECT_OK(c5, XS_RM, "a\0");	/* already gone, parent readable */
}
END_TEST

START_TEST(control_by_unprivileged_domain_is_eacces)
{
	EXPECT_ERR(c5, XS_CONTROL, "check\0", "EACCES");
	EXPECT_ERR(c5, XS_CONTROL, "help\0", "EACCES");
	EXPECT_ERR(c5, XS_IS_DOMAIN_INTRODUCED, "0\0", "EACCES");
}
END_TEST

START_TEST(connections_are_tracked_by_the_server)
{
	struct unit_tp tp7;
	struct conn *c7;

	c7 = unit_server_conn(&srv, &tp7, 7, false);
	ck_assert_ptr_nonnull(c7);
	ck_assert_uint_eq(srv.nconns, 3);
	ck_assert_str_eq(c7->home, "/local/domain/7");
	conn_close(c7, "test");
	ck_assert_uint_eq(tp7.closes, 1);
	unit_loop_once(base);
	ck_assert_uint_eq(tp7.frees, 1);
	ck_assert_uint_eq(srv.nconns, 2);
}
END_TEST

START_TEST(unprivileged_connection_may_hold_ten_transactions)
{
	for (int i = 0; i < 10; i++)
		ck_assert_uint_eq(xs(c5, XS_TRANSACTION_START, UNIT_BYTES("\0")),
				  XS_TRANSACTION_START);
	EXPECT_ERR(c5, XS_TRANSACTION_START, "\0", "ENOSPC");
	/* Ending one makes room again. */
	ck_assert_uint_eq(xs_tx(c5, XS_TRANSACTION_END, 1, UNIT_BYTES("F\0")),
			  XS_TRANSACTION_END);
	ck_assert_uint_eq(xs(c5, XS_TRANSACTION_START, UNIT_BYTES("\0")),
			  XS_TRANSACTION_START);
}
END_TEST

START_TEST(dom0_is_not_limited_to_ten_transactions)
{
	for (int i = 0; i < 30; i++)
		ck_assert_uint_eq(xs(c0, XS_TRANSACTION_START, UNIT_BYTES("\0")),
				  XS_TRANSACTION_START);
}
END_TEST

/* Take the next packet queued on c, which must be a watch event. */
static const char *next_event(struct conn *c)
{
	static char ev[XENSTORE_PAYLOAD_MAX + 1];

	unit_take_packet(c->out, &rhdr, ev);
	ck_assert_uint_eq(rhdr.type, XS_WATCH_EVENT);
	return ev;
}

START_TEST(special_event_reaches_a_domain_once_set_perms_allows)
{
	struct unit_req u;
	static const char watch[] = "@introduceDomain\0tok\0";

	ops_dispatch(c5, unit_request(&u, XS_WATCH, 1, 0, watch,
				      sizeof(watch) - 1));
	unit_take_packet(c5->out, &rhdr, rbuf);
	ck_assert_uint_eq(rhdr.type, XS_WATCH);		/* OK, then ... */
	ck_assert_str_eq(next_event(c5), "@introduceDomain");	/* the first */
	server_fire_special(&srv, "@introduceDomain", 7);
	ck_assert_uint_eq(evbuffer_get_length(c5->out), 0);
	EXPECT_OK(c0, XS_SET_PERMS, "@introduceDomain\0n0\0r5\0");
	server_fire_special(&srv, "@introduceDomain", 7);
	ck_assert_str_eq(next_event(c5), "@introduceDomain");
	ck_assert_uint_eq(evbuffer_get_length(c5->out), 0);
}
END_TEST


/* ---- domain management without Xen (the table is empty) ---- */

START_TEST(introduce_without_xen_is_eio)
{
	EXPECT_ERR(c0, XS_INTRODUCE, "5\0" "4096\0" "7\0", "EIO");
	EXPECT_REPLY(c0, XS_IS_DOMAIN_INTRODUCED, "5\0", "F\0");
}
END_TEST

START_TEST(introduce_bad_arguments_are_einval)
{
	EXPECT_ERR(c0, XS_INTRODUCE, "5\0" "4096\0", "EINVAL");
	EXPECT_ERR(c0, XS_INTRODUCE, "5\0" "4096\0" "0\0", "EINVAL");
	EXPECT_ERR(c0, XS_INTRODUCE, "5\0" "4096\0" "-1\0", "EINVAL");
	EXPECT_ERR(c0, XS_INTRODUCE, "5\0" "x\0" "7\0", "EINVAL");
	EXPECT_ERR(c0, XS_INTRODUCE, "32752\0" "1\0" "7\0", "EINVAL");
	EXPECT_ERR(c0, XS_INTRODUCE, "5x\0" "1\0" "7\0", "EINVAL");
}
END_TEST

START_TEST(domain_management_by_a_guest_is_eacces)
{
	EXPECT_ERR(c5, XS_INTRODUCE, "6\0" "1\0" "7\0", "EACCES");
	EXPECT_ERR(c5, XS_RELEASE, "6\0", "EACCES");
	EXPECT_ERR(c5, XS_RESUME, "6\0", "EACCES");
	EXPECT_ERR(c5, XS_SET_TARGET, "6\0" "5\0", "EACCES");
	EXPECT_ERR(c5, XS_TYPE_SET_FEATURE, "6\0" "1\0", "EACCES");
	EXPECT_ERR(c5, XS_TYPE_GET_FEATURE, "6\0", "EACCES");
}
END_TEST

START_TEST(release_and_resume_of_the_store_domain_are_einval)
{
	EXPECT_ERR(c0, XS_RELEASE, "0\0", "EINVAL");
	EXPECT_ERR(c0, XS_RESUME, "0\0", "EINVAL");
}
END_TEST

START_TEST(release_resume_set_target_of_unknown_domain_are_enoent)
{
	EXPECT_ERR(c0, XS_RELEASE, "9\0", "ENOENT");
	EXPECT_ERR(c0, XS_RESUME, "9\0", "ENOENT");
	EXPECT_ERR(c0, XS_SET_TARGET, "9\0" "8\0", "ENOENT");
	EXPECT_ERR(c0, XS_RELEASE, "nine\0", "EINVAL");
	EXPECT_ERR(c0, XS_SET_TARGET, "9\0", "EINVAL");
	EXPECT_ERR(c0, XS_SET_TARGET, "9\0" "8\0" "7\0", "EINVAL");
}
END_TEST

START_TEST(get_feature_of_own_connection_lists_every_feature)
{
	EXPECT_REPLY(c0, XS_TYPE_GET_FEATURE, "", "15\0");
	EXPECT_REPLY(c5, XS_TYPE_GET_FEATURE, "\0", "15\0");
}
END_TEST

START_TEST(feature_requests_check_their_arguments)
{
	EXPECT_ERR(c0, XS_TYPE_GET_FEATURE, "9\0", "ENOENT");
	EXPECT_ERR(c0, XS_TYPE_GET_FEATURE, "9\0" "1\0", "EINVAL");
	EXPECT_ERR(c0, XS_TYPE_GET_FEATURE, "x\0", "EINVAL");
	EXPECT_ERR(c0, XS_TYPE_SET_FEATURE, "9\0" "1\0", "ENOENT");
	EXPECT_ERR(c0, XS_TYPE_SET_FEATURE, "9\0", "EINVAL");
	EXPECT_ERR(c0, XS_TYPE_SET_FEATURE, "9\0" "one\0", "EINVAL");
}
END_TEST

START_TEST(domid_any_entry_grants_every_domain)
{
	EXPECT_OK(c0, XS_WRITE, "/shared\0v");
	EXPECT_ERR(c5, XS_READ, "/shared\0", "EACCES");
	EXPECT_OK(c0, XS_SET_PERMS, "/shared\0n0\0r32757\0");
	EXPECT_REPLY(c5, XS_READ, "/shared\0", "v");
	EXPECT_ERR(c5, XS_WRITE, "/shared\0w", "EACCES");
}
END_TEST

/* ---- a domain is gone: the tree forgets it ---- */

START_TEST(forget_domain_deletes_what_it_owns_and_strips_its_entries)
{
	make_home5();
	EXPECT_OK(c0, XS_WRITE, "/local/domain/5/device/vif/0/state\0" "1");
	EXPECT_OK(c0, XS_WRITE, "/backend/vif/5/0\0x");
	EXPECT_OK(c0, XS_SET_PERMS, "/backend/vif/5/0\0n0\0r5\0b7\0");
	EXPECT_OK(c0, XS_SET_PERMS, "@releaseDomain\0n0\0r5\0");
	server_forget_domain(&srv, 5);
	EXPECT_ERR(c0, XS_READ, "/local/domain/5\0", "ENOENT");
	EXPECT_ERR(c0, XS_READ, "/local/domain/5/device/vif/0/state\0",
		   "ENOENT");
	EXPECT_REPLY(c0, XS_READ, "/backend/vif/5/0\0", "x");
	EXPECT_REPLY(c0, XS_GET_PERMS, "/backend/vif/5/0\0", "n0\0b7\0");
	EXPECT_REPLY(c0, XS_GET_PERMS, "@releaseDomain\0", "n0\0");
	EXPECT_REPLY(c0, XS_DIRECTORY, "/local/domain\0", "");
}
END_TEST

START_TEST(forget_domain_fires_watches_on_deleted_nodes)
{
	static const char watch[] = "/local/domain/5\0tok\0";
	struct unit_req u;

	make_home5();
	ops_dispatch(c0, unit_request(&u, XS_WATCH, 1, 0, watch,
				      sizeof(watch) - 1));
	unit_take_packet(c0->out, &rhdr, rbuf);
	ck_assert_uint_eq(rhdr.type, XS_WATCH);
	ck_assert_str_eq(next_event(c0), "/local/domain/5");
	server_forget_domain(&srv, 5);
	ck_assert_str_eq(next_event(c0), "/local/domain/5");
	ck_assert_uint_eq(evbuffer_get_length(c0->out), 0);
}
END_TEST

START_TEST(forget_domain_leaves_other_domains_alone)
{
	make_home5();
	EXPECT_OK(c0, XS_MKDIR, "/local/domain/6\0");
	EXPECT_OK(c0, XS_SET_PERMS, "/local/domain/6\0n6\0r5\0");
	server_forget_domain(&srv, 7);
	EXPECT_REPLY(c0, XS_GET_PERMS, "/local/domain/5\0", "n5\0");
	server_forget_domain(&srv, 5);
	EXPECT_REPLY(c0, XS_GET_PERMS, "/local/domain/6\0", "n6\0");
	EXPECT_REPLY(c0, XS_DIRECTORY, "/local/domain\0", "6\0");
}
END_TEST

START_TEST(new_domain_with_reused_id_inherits_no_access)
{
	EXPECT_OK(c0, XS_WRITE, "/secret\0s");
	EXPECT_OK(c0, XS_SET_PERMS, "/secret\0n0\0r5\0");
	EXPECT_REPLY(c5, XS_READ, "/secret\0", "s");
	server_forget_domain(&srv, 5);	/* domain 5 died; c5 plays the new one */
	EXPECT_ERR(c5, XS_READ, "/secret\0", "EACCES");
}
END_TEST

static Suite *ops_suite(void)
{
	Suite *s = suite_create("ops");
	TCase *t = tcase_create("nodes");

	tcase_add_checked_fixture(t, rig_setup, rig_teardown);
	tcase_add_test(t, write_then_read_returns_value);
	tcase_add_test(t, write_keeps_value_bytes_with_nuls);
	tcase_add_test(t, write_replaces_value);
	tcase_add_test(t, write_of_maximal_value_reads_back);
	tcase_add_test(t, write_without_path_terminator_is_einval);
	tcase_add_test(t, write_to_bad_path_is_einval);
	tcase_add_test(t, read_of_missing_node_is_enoent);
	tcase_add_test(t, read_with_bad_framing_or_path_is_einval);
	tcase_add_test(t, relative_path_of_dom0_resolves_under_its_home);
	tcase_add_test(t, privileged_path_may_exceed_relative_limit);
	tcase_add_test(t, mkdir_creates_empty_node);
	tcase_add_test(t, mkdir_of_existing_node_keeps_value);
	tcase_add_test(t, rm_removes_subtree);
	tcase_add_test(t, rm_of_missing_node_with_existing_parent_is_ok);
	tcase_add_test(t, rm_of_missing_parent_is_enoent);
	tcase_add_test(t, rm_of_root_is_einval);
	suite_add_tcase(s, t);

	t = tcase_create("listing");
	tcase_add_checked_fixture(t, rig_setup, rig_teardown);
	tcase_add_test(t, directory_lists_children_in_creation_order);
	tcase_add_test(t, directory_of_initial_tree);
	tcase_add_test(t, directory_of_missing_node_is_enoent);
	tcase_add_test(t, directory_too_big_is_e2big);
	tcase_add_test(t, directory_part_lists_from_offset);
	tcase_add_test(t, directory_part_past_end_is_empty);
	tcase_add_test(t, directory_part_generation_changes_with_children);
	tcase_add_test(t, directory_part_chunks_rebuild_big_listing);
	tcase_add_test(t, directory_part_bad_arguments_are_einval);
	suite_add_tcase(s, t);

	t = tcase_create("perms");
	tcase_add_checked_fixture(t, rig_setup, rig_teardown);
	tcase_add_test(t, get_perms_of_initial_nodes);
	tcase_add_test(t, set_perms_then_get_perms);
	tcase_add_test(t, set_perms_of_special_node);
	tcase_add_test(t, set_perms_bad_arguments);
	suite_add_tcase(s, t);

	t = tcase_create("misc");
	tcase_add_checked_fixture(t, rig_setup, rig_teardown);
	tcase_add_test(t, get_domain_path_names_the_home);
	tcase_add_test(t, control_check_by_dom0_is_ok);
	tcase_add_test(t, control_check_reports_what_is_wrong);
	tcase_add_test(t, control_quota_lists_sets_and_reports);
	tcase_add_test(t, unknown_types_are_enosys);
	tcase_add_test(t, read_with_unknown_tx_id_is_enoent);
	tcase_add_test(t, connections_are_tracked_by_the_server);
	suite_add_tcase(s, t);

	t = tcase_create("unprivileged");
	tcase_add_checked_fixture(t, rig_setup, rig_teardown);
	tcase_add_test(t, unprivileged_access_to_dom0_node_is_eacces);
	tcase_add_test(t, missing_node_under_unreadable_parent_is_eacces);
	tcase_add_test(t, missing_node_under_readable_parent_is_enoent);
	tcase_add_test(t, readable_default_lets_everyone_read);
	tcase_add_test(t, unprivileged_creator_owns_what_it_creates);
	tcase_add_test(t, relative_paths_resolve_under_domain_home);
	tcase_add_test(t, unprivileged_relative_length_limit);
	tcase_add_test(t, unprivileged_owner_change_is_eperm);
	tcase_add_test(t, unprivileged_set_perms_needs_ownership);
	tcase_add_test(t, unprivileged_domain_may_remove_its_nodes);
	tcase_add_test(t, control_by_unprivileged_domain_is_eacces);
	tcase_add_test(t, unprivileged_connection_may_hold_ten_transactions);
	tcase_add_test(t, dom0_is_not_limited_to_ten_transactions);
	tcase_add_test(t, special_event_reaches_a_domain_once_set_perms_allows);
	suite_add_tcase(s, t);

	t = tcase_create("domains");
	tcase_add_checked_fixture(t, rig_setup, rig_teardown);
	tcase_add_test(t, introduce_without_xen_is_eio);
	tcase_add_test(t, introduce_bad_arguments_are_einval);
	tcase_add_test(t, domain_management_by_a_guest_is_eacces);
	tcase_add_test(t, release_and_resume_of_the_store_domain_are_einval);
	tcase_add_test(t, release_resume_set_target_of_unknown_domain_are_enoent);
	tcase_add_test(t, get_feature_of_own_connection_lists_every_feature);
	tcase_add_test(t, feature_requests_check_their_arguments);
	tcase_add_test(t, domid_any_entry_grants_every_domain);
	tcase_add_test(t, forget_domain_deletes_what_it_owns_and_strips_its_entries);
	tcase_add_test(t, forget_domain_fires_watches_on_deleted_nodes);
	tcase_add_test(t, forget_domain_leaves_other_domains_alone);
	tcase_add_test(t, new_domain_with_reused_id_inherits_no_access);
	suite_add_tcase(s, t);
	t = tcase_create("quotas");
	tcase_add_checked_fixture(t, rig_setup, rig_teardown);
	tcase_add_test(t, quota_nodes_stops_creation_and_rm_gives_room_back);
	tcase_add_test(t, quota_nodes_counts_implicit_parents);
	tcase_add_test(t, quota_nodes_in_a_transaction_and_at_commit);
	tcase_add_test(t, quota_aborted_transaction_changes_no_count);
	tcase_add_test(t, quota_node_size_limits_values_and_listings);
	tcase_add_test(t, quota_permissions_watches_and_transactions);
	tcase_add_test(t, quota_path_max_and_transaction_nodes);
	tcase_add_test(t, quota_memory_is_enomem_and_keeps_what_was_written);
	tcase_add_test(t, get_and_set_quota);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return unit_main(ops_suite());
}
