/*
 * Domain management requests (INTRODUCE, RELEASE, RESUME, SET_TARGET,
 * GET/SET_FEATURE, IS_DOMAIN_INTRODUCED, GET_DOMAIN_PATH).  Argument
 * checks and error names live here; domains/ does the work, and the
 * server (server/forget.c) cleans the tree when a domain is gone.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "domains/domain.h"
#include "ops/ops_impl.h"

#define DOMID_SELF 0x7FF0u

/* argv[0..n) of exactly n strings, each a domid; false if malformed. */
static bool parse_domids(const struct op_call *call, unsigned int *ids,
			 unsigned int n)
{
	const char *argv[2];

	if (wire_count_strings(call->req) != n ||
	    wire_split(call->req, argv, n) != n)
		return false;
	for (unsigned int i = 0; i < n; i++)
		if (!op_parse_domid(argv[i], &ids[i]))
			return false;
	return true;
}

int op_get_domain_path(struct op_call *call)
{
	unsigned int domid;

	if (!op_parse_domid(wire_single_arg(call->req), &domid))
		return EINVAL;
	reply_printf(call->reply, "/local/domain/%u", domid);
	reply_append(call->reply, "", 1);
	return 0;
}

int op_is_domain_introduced(struct op_call *call)
{
	unsigned int domid;
	bool known;

	if (!op_parse_domid(wire_single_arg(call->req), &domid))
		return EINVAL;
	/* The store's own domain is always there, ring or not. */
	known = domid == DOMID_SELF || domid == call->srv->master_domid ||
		domains_is_introduced(call->srv->domains, domid);
	reply_append_str(call->reply, known ? "T" : "F");
	return 0;
}

int op_introduce(struct op_call *call)
{
	const char *argv[3];
	unsigned long gfn, port;
	unsigned int domid;
	int err;

	/* domid, gfn, event channel; extra strings are ignored (upstream). */
	if (wire_split(call->req, argv, 3) < 3 ||
	    !op_parse_domid(argv[0], &domid) || domid >= DOMAIN_ID_LIMIT ||
	    !wire_parse_uint(argv[1], ULONG_MAX, &gfn) ||
	    !wire_parse_uint(argv[2], UINT32_MAX, &port) || port == 0)
		return EINVAL;
	err = domains_introduce(call->srv->domains, domid, gfn,
				(unsigned int)port);
	return err ? err : op_ok(call);
}

/* The domid of RELEASE or RESUME: never the store's or the priv one. */
static bool parse_guest_domid(const struct op_call *call, unsigned int *domid)
{
	return op_parse_domid(wire_single_arg(call->req), domid) &&
	       *domid != call->srv->master_domid &&
	       *domid != call->srv->priv_domid;
}

int op_release(struct op_call *call)
{
	unsigned int domid;
	int err;

	if (!parse_guest_domid(call, &domid))
		return EINVAL;
	err = domains_release(call->srv->domains, domid);
	return err ? err : op_ok(call);
}

int op_resume(struct op_call *call)
{
	unsigned int domid;
	int err;

	if (!parse_guest_domid(call, &domid))
		return EINVAL;
	err = domains_resume(call->srv->domains, domid);
	return err ? err : op_ok(call);
}

int op_set_target(struct op_call *call)
{
	unsigned int ids[2];
	int err;

	if (!parse_domids(call, ids, 2))
		return EINVAL;
	err = domains_set_target(call->srv->domains, ids[0], ids[1]);
	return err ? err : op_ok(call);
}

int op_get_feature(struct op_call *call)
{
	unsigned int n = wire_count_strings(call->req), domid, features;
	int err;

	if (n == 0 || (n == 1 && call->req->hdr.len == 1 &&
		       call->req->payload[0] == '\0')) {
		/* No domid (or an empty one): the caller's own features. */
		features = domains_conn_features(call->srv->domains, call->c);
	} else {
		if (!call->c->who.privileged)
			return EACCES;
		if (n > 1 || !op_parse_domid(wire_single_arg(call->req),
					     &domid))
			return EINVAL;
		err = domains_get_features(call->srv->domains, domid,
					   &features);
		if (err)
			return err;
	}
	reply_printf(call->reply, "%u", features);
	reply_append(call->reply, "", 1);
	return 0;
}

int op_set_feature(struct op_call *call)
{
	const char *argv[2];
	unsigned long features;
	unsigned int domid;
	int err;

	if (wire_count_strings(call->req) != 2 ||
	    wire_split(call->req, argv, 2) != 2 ||
	    !op_parse_domid(argv[0], &domid) ||
	    !wire_parse_uint(argv[1], UINT32_MAX, &features))
		return EINVAL;
	err = domains_set_features(call->srv->domains, domid,
				   (unsigned int)features);
	return err ? err : op_ok(call);
}
