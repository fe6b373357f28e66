/*
 * What of the server outlives the process: loading the tree and quotas
 * from the database at start-up, and keeping the database's copy of the
 * quotas and of each guest's watches in step.  Socket clients' watches are
 * not saved: those clients reconnect and register them again.
 */
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "server/server.h"
#include "persist/db.h"
#include "schema/schema.h"

static void save_quotas(const void *q, struct writer *w)
{
	quotas_save(q, w);
}

int server_quotas_changed(struct server *srv)
{
	if (!srv->db)
		return 0;
	/* Saved from now on, whatever this put's fate (a rewrite puts it
	 * again): the command line's limits no longer count at a start. */
	srv->quotas_saved = true;
	return db_put_encoded(srv->db, SCHEMA_KEY_QUOTAS, save_quotas,
			      &srv->quotas);
}

static void save_watches(const void *wr, struct writer *w)
{
	watcher_save(wr, w);
}

void server_watches_changed(struct server *srv, struct conn *c)
{
	struct client *cl = c->owner_data;
	char key[SCHEMA_KEY_MAX];

	if (!srv->db || !c->resumable)
		return;
	schema_key_watches(key, c->who.domid);
	if (cl->watcher.count)
		db_put_encoded(srv->db, key, save_watches, &cl->watcher);
	else
		db_delete(srv->db, key);
}

void server_save_records(void *arg)
{
	struct server *srv = arg;
	struct conn *c;

	if (srv->quotas_saved)
		server_quotas_changed(srv);
	LIST_FOREACH(c, &srv->conns, link)
		server_watches_changed(srv, c);
}

void server_forget_watches(struct server *srv, unsigned int domid)
{
	char key[SCHEMA_KEY_MAX];

	schema_key_watches(key, domid);
	db_delete(srv->db, key);
}

struct watches_lookup {
	struct server *srv;
	struct conn *c;
	bool fire;
};

static int restore_watches(const void *data, size_t len, void *arg)
{
	struct watches_lookup *l = arg;
	struct client *cl = l->c->owner_data;

	if (watcher_load(&l->srv->watches, &cl->watcher, data, len,
			 l->fire) != 0)
		log_error("database: the watches of domain %u are unreadable; "
			  "it has none now", l->c->who.domid);
	return 0;
}

void server_restore_conn(struct server *srv, struct conn *c, bool fire)
{
	struct watches_lookup l = { srv, c, fire };
	struct client *cl = c->owner_data;
	struct timespec now;
	char key[SCHEMA_KEY_MAX];

	c->restored = true;
	c->replaying = true;
	/* New transaction ids far from those the guest may still hold. */
	clock_gettime(CLOCK_REALTIME, &now);
	cl->txns.last_id = 0x40000000u ^ (uint32_t)(now.tv_nsec & 0x3fffffff);
	schema_key_watches(key, c->who.domid);
	db_get(srv->db, key, restore_watches, &l);
}

static int load_quotas(const void *data, size_t len, void *arg)
{
	struct server *srv = arg;

	srv->quotas_saved = true;
	if (quotas_load(&srv->quotas, data, len, db_version(srv->db)) != 0) {
		log_error("database %s: the quota record is malformed",
			  db_path(srv->db));
		return -1;
	}
	return 0;
}

int server_load(struct server *srv)
{
	struct store loaded;
	struct perms *root = perms_alloc(1);	/* replaced by the saved one */

	if (!root) {
		log_error("cannot load the database: out of memory");
		return -1;
	}
	store_init(&loaded, root);
	perms_unref(root);
	if (db_load_nodes(srv->db, &loaded) != 0 ||
	    db_get(srv->db, SCHEMA_KEY_QUOTAS, load_quotas, srv) != 0) {
		store_destroy(&loaded);
		return -1;
	}
	if (!store_lookup(&loaded, "@introduceDomain") ||
	    !store_lookup(&loaded, "@releaseDomain")) {
		log_error("database %s is unusable: the special nodes are "
			  "missing", db_path(srv->db));
		store_destroy(&loaded);
		return -1;
	}
	/* A file of an older version: the records that differ put again in
	 * this one's encoding, marked with it, all in the next commit. */
	if (db_version(srv->db) != SCHEMA_DB_VERSION &&
	    (server_quotas_changed(srv) != 0 || db_upgraded(srv->db) != 0)) {
		store_destroy(&loaded);
		return -1;
	}
	store_destroy(&srv->store);
	srv->store = loaded;
	log_info("loaded %lu nodes from %s", store_count(&srv->store),
		 db_path(srv->db));
	return 0;
}

void server_save_conn_watches(struct server *srv, struct conn *c,
			      struct writer *w)
{
	struct client *cl = c->owner_data;

	(void)srv;
	watcher_save(&cl->watcher, w);
}

int server_load_conn_watches(struct server *srv, struct conn *c,
			     struct reader *r)
{
	struct watcher skip;

	if (!c) {	/* a client not restored: read past its watches */
		struct watch_registry scratch;
		int rc;

		watch_registry_init(&scratch);
		watcher_init(&skip, NULL);
		rc = watcher_read(&scratch, &skip, r, false);
		watcher_clear(&scratch, &skip);
		watch_registry_destroy(&scratch);
		return rc;
	}
	return watcher_read(&srv->watches,
			    &((struct client *)c->owner_data)->watcher, r,
			    false);
}
