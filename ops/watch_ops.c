/* WATCH, UNWATCH and RESET_WATCHES. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "domains/domain.h"
#include "ops/ops_impl.h"

/* Bytes to strip from event paths of a watch given as path. */
static size_t relative_prefix(const struct op_call *call, const char *path)
{
	if (path[0] == '/' || path_is_special(path))
		return 0;
	return strlen(call->c->home) + 1;
}

int op_watch(struct op_call *call)
{
	struct client *cl = call->c->owner_data;
	unsigned int n = wire_count_strings(call->req);
	const char *argv[3];
	unsigned long depth = ULONG_MAX;
	struct watch *w;
	int err;

	/* <path> <token> [<depth>] */
	if (n < 2 || n > 3 || wire_split(call->req, argv, 3) != n)
		return EINVAL;
	if (n == 3 && !wire_parse_uint(argv[2], INT_MAX, &depth))
		return EINVAL;
	/* A depth only from a guest that was offered the feature. */
	if (n == 3 && !(domains_conn_features(call->srv->domains, call->c) &
			DOMAIN_FEATURE_WATCHDEPTH))
		return EINVAL;
	err = op_path(call, argv[0], true);
	if (err)
		return err;
	if (quota_exceeded(op_limit(call, QUOTA_WATCHES),
			   cl->watcher.count + 1UL))
		return ENOSPC;
	err = op_check_memory(call, strlen(call->path) + strlen(argv[1]));
	if (err)
		return err;
	w = watch_add(&call->srv->watches, &cl->watcher, call->path,
		      relative_prefix(call, argv[0]), argv[1],
		      depth == ULONG_MAX ? -1 : (int)depth);
	if (!w && errno == EEXIST && call->c->replaying)
		return op_ok(call);	/* answered before a crash; it fired */
	if (!w)
		return errno;
	call->new_watch = w;	/* its first event follows the reply */
	server_watches_changed(call->srv, call->c);
	return op_ok(call);
}

int op_unwatch(struct op_call *call)
{
	struct client *cl = call->c->owner_data;
	const char *argv[2];
	int err;

	if (wire_count_strings(call->req) != 2 ||
	    wire_split(call->req, argv, 2) != 2)
		return EINVAL;
	/* No watch can have a path that is not valid: like both upstreams,
	 * say there is none (ENOENT) rather than judge the path (EINVAL). */
	if (op_path(call, argv[0], true) != 0)
		return ENOENT;
	err = watch_remove(&call->srv->watches, &cl->watcher, call->path,
			   argv[1]);
	if (err)
		return err;
	server_watches_changed(call->srv, call->c);
	return op_ok(call);
}

int op_reset_watches(struct op_call *call)
{
	struct client *cl = call->c->owner_data;

	/* Drops the caller's transactions, the one of this request too. */
	txn_set_clear(&cl->txns);
	watcher_clear(&call->srv->watches, &cl->watcher);
	server_watches_changed(call->srv, call->c);
	return op_ok(call);
}
