/*
 * Quotas as requests see them: the caller's limits, its domain's memory,
 * and GET_QUOTA / SET_QUOTA.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "log/log.h"
#include "domains/domain.h"
#include "ops/ops_impl.h"

unsigned int op_limit(const struct op_call *call, enum quota_kind kind)
{
	const struct who *who = &call->c->who;

	return who->privileged ? 0
	       : quota_limit(&call->srv->quotas, who->domid, kind);
}

size_t ops_conn_memory(struct conn *c)
{
	struct client *cl = c->owner_data;

	return cl->watcher.bytes + txn_set_bytes(&cl->txns) +
	       evbuffer_get_length(c->out);
}

size_t ops_domain_memory(struct server *srv, struct conn *c)
{
	size_t bytes = ops_conn_memory(c);

	if (c->who.domid < STORE_DOMIDS)
		bytes += srv->store.use[c->who.domid].bytes;
	return bytes;
}

int op_check_memory(struct op_call *call, size_t more)
{
	struct client *cl = call->c->owner_data;
	unsigned int hard = op_limit(call, QUOTA_MEMORY);
	unsigned int soft = call->srv->quotas.soft_memory;
	size_t used;

	if (call->c->who.privileged || (!hard && !soft))
		return 0;
	used = ops_domain_memory(call->srv, call->c) + more;
	if (soft && used > soft && !cl->over_soft_memory)
		log_warn("domain %u uses %zu bytes, over the soft memory "
			 "quota of %u", (unsigned int)call->c->who.domid,
			 used, soft);
	cl->over_soft_memory = soft && used > soft;
	if (quota_exceeded(hard, used)) {
		log_debug("domain %u: %zu bytes would pass the memory quota "
			  "of %u", (unsigned int)call->c->who.domid, used,
			  hard);
		return ENOMEM;
	}
	return 0;
}

bool ops_quota_domain(struct server *srv, unsigned int domid)
{
	return domid == srv->master_domid ||
	       domains_is_introduced(srv->domains, domid);
}

bool op_parse_quota_value(const char *s, unsigned int *value)
{
	unsigned long v;

	/* UINT_MAX is refused, as upstream does. */
	if (!wire_parse_uint(s, UINT_MAX - 1, &v))
		return false;
	*value = (unsigned int)v;
	return true;
}

/*
 * GET_QUOTA: no argument: the names, space-separated; <name>: the global
 * limit; <domid> <name>: that domain's.
 */
int op_get_quota(struct op_call *call)
{
	struct quotas *q = &call->srv->quotas;
	const char *argv[3];
	unsigned int n = wire_count_strings(call->req), domid;
	enum quota_kind kind;

	if (n > 2 || wire_split(call->req, argv, 3) != n)
		return EINVAL;
	if (n == 0 || (n == 1 && !argv[0][0])) {
		for (int k = 0; k < QUOTA_KINDS; k++)
			reply_printf(call->reply, "%s%s", k ? " " : "",
				     quota_name((enum quota_kind)k));
		reply_append(call->reply, "", 1);
		return 0;
	}
	if (!quota_parse_name(argv[n - 1], &kind))
		return EINVAL;
	if (n == 2) {
		if (!op_parse_domid(argv[0], &domid))
			return EINVAL;
		if (!ops_quota_domain(call->srv, domid))
			return ENOENT;
	}
	reply_printf(call->reply, "%u",
		     n == 2 ? quota_limit(q, domid, kind) : q->hard[kind]);
	reply_append(call->reply, "", 1);
	return 0;
}

/* SET_QUOTA [<domid>] <name> <value>: 0 is unlimited. */
int op_set_quota(struct op_call *call)
{
	struct quotas *q = &call->srv->quotas;
	const char *argv[4];
	unsigned int n = wire_count_strings(call->req), domid;
	enum quota_kind kind;
	unsigned int value;

	if (n < 2 || n > 3 || wire_split(call->req, argv, 4) != n)
		return EINVAL;
	if (!quota_parse_name(argv[n - 2], &kind) ||
	    !op_parse_quota_value(argv[n - 1], &value))
		return EINVAL;
	if (n == 2) {
		q->hard[kind] = value;
		server_quotas_changed(call->srv);
		return op_ok(call);
	}
	if (!op_parse_domid(argv[0], &domid))
		return EINVAL;
	if (!ops_quota_domain(call->srv, domid))
		return ENOENT;
	if (quota_set_domain(q, domid, kind, value))
		return ENOMEM;
	server_quotas_changed(call->srv);
	return op_ok(call);
}
