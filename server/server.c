/*
 * The server: connections made and freed, the hooks they and the domain
 * table report through, and the watches a change or a special event fires.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "server/server.h"
#include "store/path.h"

static void server_conn_closed(struct conn *c)
{
	struct server *srv = c->hooks->owner;
	struct client *cl = c->owner_data;

	txn_set_clear(&cl->txns);
	watcher_clear(&srv->watches, &cl->watcher);
	server_watches_changed(srv, c);
}

static void server_conn_drained(struct conn *c)
{
	struct client *cl = c->owner_data;

	watcher_drained(&cl->watcher);
}

static unsigned int server_max_outstanding(struct conn *c)
{
	struct server *srv = c->hooks->owner;

	return quota_limit(&srv->quotas, c->who.domid, QUOTA_OUTSTANDING);
}

static void server_conn_freed(struct conn *c)
{
	struct server *srv = c->hooks->owner;

	free(c->owner_data);
	if (c->held)
		LIST_REMOVE(c, held_link);
	LIST_REMOVE(c, link);
	srv->nconns--;
}

/* ---- what the domain table asks of us (domains/domain.h) ---- */

static struct conn *dom_new_conn(void *owner, const struct conn_transport *tp,
				 void *tp_data, unsigned int domid)
{
	struct server *srv = owner;

	return server_new_conn(srv, tp, tp_data, NULL, NULL, domid,
			       server_domid_privileged(srv, domid));
}

static bool dom_privileged(void *owner, unsigned int domid)
{
	return server_domid_privileged(owner, domid);
}

static bool dom_referenced(void *owner, unsigned int domid)
{
	return store_domid_referenced(&((struct server *)owner)->store, domid);
}

static void dom_forget(void *owner, unsigned int domid)
{
	server_forget_domain(owner, domid);
}

static void dom_special(void *owner, const char *name, unsigned int domid)
{
	server_fire_special(owner, name, domid);
}

static void dom_commit(void *owner)
{
	server_commit(owner);
}

static void dom_restored(void *owner, struct conn *c, bool fire)
{
	server_restore_conn(owner, c, fire);
}

int server_init(struct server *srv, struct event_base *base,
		void (*dispatch)(struct conn *c, const struct request *req))
{
	static const char *const initial[] = {
		"/tool/xenstored", "@introduceDomain", "@releaseDomain",
	};
	struct perms *dom0_only = perms_alloc(1);	/* "n0" */

	if (!dom0_only)
		return -ENOMEM;
	memset(srv, 0, sizeof(*srv));
	srv->waiting_fd = -1;
	srv->base = base;
	srv->hooks.dispatch = dispatch;
	srv->hooks.hold = server_hold;
	srv->hooks.batch_done = server_batch_done;
	srv->hooks.closed = server_conn_closed;
	srv->hooks.freed = server_conn_freed;
	srv->hooks.drained = server_conn_drained;
	srv->hooks.max_outstanding = server_max_outstanding;
	srv->hooks.serve_waiting = server_serve_waiting;
	srv->hooks.owner = srv;
	srv->domain_hooks = (struct domain_hooks){
		.new_conn = dom_new_conn, .privileged = dom_privileged,
		.referenced = dom_referenced, .forget = dom_forget,
		.special = dom_special, .commit = dom_commit,
		.restored = dom_restored, .owner = srv,
	};
	LIST_INIT(&srv->conns);
	LIST_INIT(&srv->held);
	quotas_init(&srv->quotas);
	watch_registry_init(&srv->watches);
	store_init(&srv->store, dom0_only);
	for (size_t i = 0; i < sizeof(initial) / sizeof(initial[0]); i++) {
		if (!store_create(&srv->store, initial[i], dom0_only)) {
			perms_unref(dom0_only);
			store_destroy(&srv->store);
			return -ENOMEM;
		}
	}
	perms_unref(dom0_only);
	server_waiting_init(srv);
	return 0;
}

bool server_domid_privileged(const struct server *srv, unsigned int domid)
{
	return domid == 0 || domid == srv->master_domid ||
	       domid == srv->priv_domid;
}

struct conn *server_new_conn(struct server *srv,
			     const struct conn_transport *tp, void *tp_data,
			     struct evbuffer *in, struct evbuffer *out,
			     uint32_t domid, bool privileged)
{
	struct client *cl = calloc(1, sizeof(*cl));
	struct conn *c;

	if (!cl)
		return NULL;
	txn_set_init(&cl->txns);
	cl->txns.open_total = &srv->open_txns;
	c = conn_new(srv->base, tp, tp_data, in, out, &srv->hooks, domid,
		     privileged);
	if (!c) {
		free(cl);
		return NULL;
	}
	c->owner_data = cl;
	watcher_init(&cl->watcher, c);
	LIST_INSERT_HEAD(&srv->conns, c, link);
	srv->nconns++;
	return c;
}

void server_destroy(struct server *srv)
{
	struct conn *c;

	while ((c = LIST_FIRST(&srv->conns))) {
		conn_close(c, "shutting down");
		conn_free(c);
	}
	watch_registry_destroy(&srv->watches);
	store_destroy(&srv->store);
	quotas_destroy(&srv->quotas);
	server_waiting_destroy(srv);
	free(srv->live_update.binary);
	free(srv->live_update.cmdline);
}

/* The permissions of the node at path and of its parent, if it exists. */
static bool live_perms(const char *path, struct perms **perms,
		       struct perms **parent_perms, void *arg)
{
	struct server *srv = arg;
	struct node *n = store_lookup(&srv->store, path), *p;

	if (!n)
		return false;
	p = node_parent(n);
	*perms = node_perms(n);
	*parent_perms = p ? node_perms(p) : NULL;
	return true;
}

void server_removing(struct server *srv, const char *path)
{
	if (srv->watches.count)
		watch_removing(&srv->watches, path, live_perms, srv);
}

void server_fire(struct server *srv, const char *path, bool removed,
		 const struct perms *perms, const struct perms *old_perms)
{
	char parent[PATH_ABS_MAX + 1];
	const struct perms *parent_perms = NULL;
	struct node *p;

	if (!srv->watches.count)
		return;
	if (path_parent(path, parent, sizeof(parent)) &&
	    (p = store_lookup(&srv->store, parent)))
		parent_perms = node_perms(p);
	if (removed)
		watch_fire_removed(&srv->watches, path, perms, parent_perms);
	else
		watch_fire_changed(&srv->watches, path, perms, old_perms,
				   parent_perms);
}

void server_fire_special(struct server *srv, const char *name,
			 unsigned int domid)
{
	struct node *n = store_lookup(&srv->store, name);

	if (n)
		watch_fire_special(&srv->watches, name, domid, node_perms(n));
}
