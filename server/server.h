/*
 * server: the owner of every connection and of the state requests share.
 *
 * Owns the store, the watch registry, the quotas and the set of live
 * connections, each with its struct client (its transactions and watches),
 * and fills in the hooks the connections (conn/) and the domain table
 * (domains/) report through.  It holds every connection's output (replies,
 * watch events) until the loop turn's one commit made what it tells of
 * durable, fires the watches of changes and of the special nodes, and
 * forgets dead domains.  The requests themselves are handled by the
 * dispatcher given to server_init: the handlers (ops/) sit above this
 * module and see its state; it never calls them by name.
 */
#ifndef XS_SERVER_H
#define XS_SERVER_H

#include <sys/queue.h>
#include <time.h>

#include "conn/conn.h"
#include "domains/domain.h"
#include "quota/quota.h"
#include "store/store.h"
#include "transactions/transaction.h"
#include "watches/watch.h"

/* Per-connection state, in conn->owner_data: made and freed here. */
struct client {
	struct txn_set txns;		/* open transactions, owned */
	struct watcher watcher;		/* watches, owned */
	bool over_soft_memory;		/* warned: past the soft memory quota */
	double write_credit;		/* the write rate limit's tokens */
	struct timespec credit_time;	/* when they were last counted (0:
					 * never: ops/ fills the bucket) */
	bool waiting_set;		/* its socket is in the server's set of
					 * waiting descriptors */
};

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
	bool quotas_saved;		/* the database has a "#quotas" */
	struct watch_registry watches;
	struct conn_hooks hooks;	/* given to every connection */
	struct domain_hooks domain_hooks; /* given to the domain table */
	LIST_HEAD(, conn) conns;	/* every live connection, owned */
	LIST_HEAD(, conn) held;		/* those with output or handled
					 * requests waiting for the commit */
	unsigned long nconns;
	int waiting_fd;			/* epoll set of the descriptors that
					 * bring requests (server/waiting.c);
					 * -1: none */
	unsigned int waiting_count;	/* descriptors in that set */
	bool serving_waiting;		/* server_serve_waiting is on the
					 * stack: no nesting */
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

/* Set up the initial tree; the connections made with server_new_conn
 * hand their requests to dispatch. */
int server_init(struct server *srv, struct event_base *base,
		void (*dispatch)(struct conn *c, const struct request *req));
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
 * The live subtree at path is about to be removed (its server_fire
 * follows): the watchers below it will be told by the permissions of
 * the nodes there now.
 */
void server_removing(struct server *srv, const char *path);

/*
 * Tell the watchers that path changed (removed: it and its subtree are
 * gone).  perms: the node's permissions now (or before removal); old_perms
 * those it had before a SET_PERMS, else NULL.
 */
void server_fire(struct server *srv, const char *path, bool removed,
		 const struct perms *perms, const struct perms *old_perms);

/*
 * Fire a special watch event ("@introduceDomain" or "@releaseDomain") for
 * domid, to the watchers the special node's permissions allow.
 */
void server_fire_special(struct server *srv, const char *name,
			 unsigned int domid);

/*
 * A domain is gone: delete the nodes it owns (their watches fire) and drop
 * it from every other node's permissions, so a new domain given the same
 * id inherits nothing.
 */
void server_forget_domain(struct server *srv, unsigned int domid);

/*
 * What outlives the process (server/state.c).  server_load: the tree and the
 * quotas saved in srv->db replace the initial ones; 0, or -1 after a log
 * message (the store is then the initial one).  The *_changed calls keep
 * the database in step (no-ops without one): the quotas (0, or -1 logged
 * without memory to encode them), and the watches of a guest's
 * connection.  server_restore_conn: c serves a guest again
 * after a restart: its saved watches come back (each firing once), and it
 * may replay requests and use transactions from before (ops/).
 */
int server_load(struct server *srv);
int server_quotas_changed(struct server *srv);
void server_watches_changed(struct server *srv, struct conn *c);
void server_restore_conn(struct server *srv, struct conn *c, bool fire);
void server_forget_watches(struct server *srv, unsigned int domid);
/* The database's saver (db_add_saver): the quotas, if they were ever
 * saved, and every guest connection's watches, put again. */
void server_save_records(void *srv);
/*
 * The loop turn (server/turn.c).  server_turn_end: the daemon calls it
 * after each turn of the event loop (and once before the first): one
 * commit for all the turn changed, then the output every connection
 * queued, and the requests it handled, released and sent at once.
 * server_commit: make the changes so far durable now, releasing what was
 * held until then (a ring's partial request, a live update, the start-up
 * need that before the turn ends); the sending still waits for the turn's
 * end.  server_hold and server_batch_done: the connections' hooks (the
 * latter sends at once what is held when no change waits for a commit,
 * db_pending: reads, or no database).
 */
void server_turn_end(struct server *srv);
void server_commit(struct server *srv);
void server_hold(struct conn *c);
void server_batch_done(struct conn *c);

/*
 * Who else has a request waiting (server/waiting.c).  server_waiting_set
 * puts fd in the set (on) or takes it out: a socket client's while it is
 * read (c: the connection it brings requests for), the event channel's
 * (c NULL: some guest).  server_serve_waiting is the connections' hook:
 * the connections other than c whose descriptor is ready are served now
 * (read_now); true if a guest waits, which only the loop can serve.  Made
 * by server_init, closed by server_destroy.
 */
void server_waiting_init(struct server *srv);
void server_waiting_destroy(struct server *srv);
void server_waiting_set(struct server *srv, int fd, struct conn *c, bool on);
bool server_serve_waiting(struct conn *c);

/* Live update: a socket client's watches, saved / loaded without firing. */
void server_save_conn_watches(struct server *srv, struct conn *c,
			      struct writer *w);
int server_load_conn_watches(struct server *srv, struct conn *c,
			     struct reader *r);

#endif
