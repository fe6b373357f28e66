/*
 * tests/unit: a real server with two connections over the fake transport,
 * for the suites that drive requests through a dispatcher (test-ops,
 * test-control, test-server): c0 is dom0 (privileged, as a socket client),
 * c5 an unprivileged guest.  rig_xs() sends one request and takes its one
 * reply into rhdr/rbuf.  The state is static, one rig per suite binary.
 */
#ifndef XS_TESTS_SERVER_RIG_H
#define XS_TESTS_SERVER_RIG_H

#include "tests/unit/unit.h"

#include "ops/ops.h"
#include "server/server.h"

#define RIG_STATE __attribute__((unused)) static
RIG_STATE struct event_base *base;
RIG_STATE struct server srv;
RIG_STATE struct unit_tp tp0, tp5;
RIG_STATE struct conn *c0, *c5;
RIG_STATE struct xsd_sockmsg rhdr;		/* the last reply */
RIG_STATE char rbuf[XENSTORE_PAYLOAD_MAX + 1];
RIG_STATE uint32_t next_req_id = 100;

static inline void
rig_setup_with(void (*dispatch)(struct conn *, const struct request *))
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	ck_assert_int_eq(server_init(&srv, base, dispatch), 0);
	c0 = unit_server_conn(&srv, &tp0, 0, true);
	c5 = unit_server_conn(&srv, &tp5, 5, false);
	ck_assert_ptr_nonnull(c0);
	ck_assert_ptr_nonnull(c5);
	ck_assert_uint_eq(srv.nconns, 2);
}

static inline void rig_setup(void)
{
	rig_setup_with(ops_dispatch);
}

/* Both connections freed with the server, once each. */
static inline void rig_teardown(void)
{
	server_destroy(&srv);
	ck_assert_uint_eq(tp0.frees, 1);
	ck_assert_uint_eq(tp5.frees, 1);
	event_base_free(base);
}

/*
 * Send one request on c with tx_id through the ops dispatcher and take the
 * first packet queued on c into rhdr/rbuf: its reply, echoing req_id and
 * tx_id (what the request fired, a WATCH's first event say, stays queued
 * after it).  Its type.
 */
static inline uint32_t rig_xs_tx(struct conn *c, uint32_t type,
				 uint32_t tx_id, const void *payload,
				 size_t len)
{
	struct unit_req u;
	uint32_t req_id = next_req_id++;

	ops_dispatch(c, unit_request(&u, type, req_id, tx_id, payload, len));
	unit_take_packet(c->out, &rhdr, rbuf);
	ck_assert_uint_eq(rhdr.req_id, req_id);
	ck_assert_uint_eq(rhdr.tx_id, tx_id);
	return rhdr.type;
}

static inline uint32_t rig_xs(struct conn *c, uint32_t type,
			      const void *payload, size_t len)
{
	return rig_xs_tx(c, type, 0, payload, len);
}

#endif
