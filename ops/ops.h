/*
 * ops: the request handlers, one per message type, behind one table.
 *
 * Owns the server state every handler shares (the store, the set of live
 * connections).  The table says which types need privilege and which
 * ignore tx_id, so handlers never repeat those checks.  Handlers parse
 * their arguments with protocol/, check access with permissions/ and
 * change the tree through store/.
 */
#ifndef XS_OPS_H
#define XS_OPS_H

#include <sys/queue.h>
#include <time.h>

#include "conn/conn.h"
#include "domains/domain.h"
#include "quota/quota.h"
#include "store/store.h"
#include "watches/watch.h"

struct db;
struct domains;

struct server {
	struct event_base *base;
	unsigned int master_domid;	/* the domain we run in: socket clients */
	unsigned int priv_domid;	/* the other privileged domain */
	struct domains *domains;	/* domains/, owned by daemon/ (may be NULL) */
	struct db *db;			/* persist/, owned by daemon/ (NULL: off) */
	struct store store;
	struct quotas quotas;		/* limits of unprivileged domains */
	struct watch_registry watches;
	struct conn_hooks hooks;	/* given to every connection */
	struct domain_hooks domain_hooks; /* given to the domain table */
	LIST_HEAD(, conn) conns;	/* every live connection, owned */
	unsigned long nconns;
	unsigned long open_txns;	/* transactions open, all connections */
	/* CONTROL live-update: what -f and -c set, when -s was first tried,
	 * and daemon/'s hook that saves the state and runs the new binary
	 * (returns only on failure, with the reason). */
	struct {
		char *binary, *cmdline;
		bool trying;		/* a -s is pending since first_try */
		struct timespec first_try;	/* CLOCK_MONOTONIC */
		const char *(*exec)(struct server *srv, struct conn *c,
				    const struct request *req,
				    const char *binary, const char *cmdline);
	} live_update;
};

/* Set up the initial tree; the server dispatches for conns made with
 * server_new_conn. */
int server_init(struct server *srv, struct event_base *base);
/* Close and free every connection, then the store. */
void server_destroy(struct server *srv);

/* Is a connection of domid privileged (dom0, master or priv domain)? */
bool server_domid_privileged(const struct server *srv, unsigned int domid);

/*
 * Make a connection over a transport (see conn_new) and track it.
 * Socket clients are the master domain and privileged.
 */
struct conn *server_new_conn(struct server *srv,
			     const struct conn_transport *tp, void *tp_data,
			     struct evbuffer *in, struct evbuffer *out,
			     uint32_t domid, bool privileged);

/*
 * Fire a special watch event ("@introduceDomain" or "@releaseDomain") for
 * domid, to the watchers the special node's permissions allow.
 */
void ops_fire_special(struct server *srv, const char *name,
		      unsigned int domid);

/*
 * A domain is gone: delete the nodes it owns (their watches fire) and drop
 * it from every other node's permissions, so a new domain given the same
 * id inherits nothing.
 */
void server_forget_domain(struct server *srv, unsigned int domid);

/*
 * What outlives the process (ops/state.c).  server_load: the tree and the
 * quotas saved in srv->db replace the initial ones; 0, or -1 after a log
 * message (the store is then the initial one).  The *_changed calls keep
 * the database in step (no-ops without one): the quotas, and the watches
 * of a guest's connection.  server_restore_conn: c serves a guest again
 * after a restart: its saved watches come back (each firing once), and it
 * may replay requests and use transactions from before (ops.c).
 * server_commit: make the
 * changes so far durable (before their replies leave); server_batch_done,
 * the connections' batch_done hook, calls it after each batch of requests.
 */
int server_load(struct server *srv);
void server_quotas_changed(struct server *srv);
void server_watches_changed(struct server *srv, struct conn *c);
void server_restore_conn(struct server *srv, struct conn *c, bool fire);
void server_forget_watches(struct server *srv, unsigned int domid);
void server_commit(struct server *srv);
void server_batch_done(struct conn *c);
/* Live update: a socket client's watches, saved / loaded without firing. */
void server_save_conn_watches(struct server *srv, struct conn *c,
			      struct writer *w);
int server_load_conn_watches(struct server *srv, struct conn *c,
			     struct reader *r);

/* Handle one request of c: exactly one reply is queued on c. */
void ops_dispatch(struct conn *c, const struct request *req);

#endif
