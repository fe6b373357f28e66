/*
 * domains: the introduced domains, their rings and their lifecycle.
 *
 * Owns the table of domains (by domid and by local event channel port),
 * each domain's ring mapping and event channel, and the ring transport
 * that moves bytes between a ring and the domain's connection.  A ring is
 * looked at only when its event channel fires or its connection has output:
 * the cost of serving one domain does not grow with the number of others.
 * VIRQ_DOM_EXC makes it ask the hypervisor which domains shut down or
 * died; dead domains are torn down and their nodes cleaned out of the tree.
 *
 * Calls xen.c for everything Xen, and reports upward through the hooks its
 * owner (the server) gives it: to make connections, fire @introduceDomain
 * and @releaseDomain, clean a dead domain out of the tree, commit.  It
 * includes nothing above itself.
 */
#ifndef XS_DOMAIN_H
#define XS_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record/record.h"

struct conn;
struct conn_transport;
struct db;
struct domains;
struct event_base;

/* What the owner of every connection does for the domain table. */
struct domain_hooks {
	/* A connection of domid over tp (tp_data: the domain); NULL: ENOMEM. */
	struct conn *(*new_conn)(void *owner, const struct conn_transport *tp,
				 void *tp_data, unsigned int domid);
	/* Is domid privileged (the master or the privileged domain)? */
	bool (*privileged)(void *owner, unsigned int domid);
	/* Does some node still name domid (owner or permission)? */
	bool (*referenced)(void *owner, unsigned int domid);
	/* domid is gone: its nodes and permissions go from the tree. */
	void (*forget)(void *owner, unsigned int domid);
	/* Fire "@introduceDomain" or "@releaseDomain" for domid. */
	void (*special)(void *owner, const char *name, unsigned int domid);
	/* Make the changes so far durable now, mid-turn (the turn's end
	 * commits anyway before any reply or event leaves). */
	void (*commit)(void *owner);
	/* c serves a guest again after a restart (its watches come back). */
	void (*restored)(void *owner, struct conn *c, bool fire);
	void *owner;
};

/* Features we offer a guest in its ring page (xenstore-ring.txt). */
#define DOMAIN_FEATURE_RECONNECTION 1u
#define DOMAIN_FEATURE_ERROR 2u
#define DOMAIN_FEATURE_WATCHDEPTH 4u
#define DOMAIN_FEATURE_DOMID_ANY 8u
#define DOMAIN_FEATURES_ALL (DOMAIN_FEATURE_RECONNECTION | DOMAIN_FEATURE_ERROR | \
			     DOMAIN_FEATURE_WATCHDEPTH | DOMAIN_FEATURE_DOMID_ANY)

/* Domain ids at or above this are reserved by Xen (DOMID_FIRST_RESERVED). */
#define DOMAIN_ID_LIMIT 0x7FF0u

/*
 * Open Xen, bind VIRQ_DOM_EXC and serve dom0's own ring (master_domid's)
 * when the kernel offers one.  Without Xen the table still works (guests
 * just cannot be introduced) and this logs that guest rings are
 * unavailable.  db (may be NULL) keeps what a restart needs; hooks and db
 * outlive the table.  NULL only on ENOMEM.
 */
struct domains *domains_new(struct event_base *base, struct db *db,
			    unsigned int master_domid,
			    const struct domain_hooks *hooks);
/* The descriptor any guest's notification makes readable (-1 without
 * Xen): the server asks it whether a guest is waiting. */
int domains_event_fd(const struct domains *ds);
/* Close every domain connection and release every ring (shutdown); never
 * writes the database, which may be closed already. */
void domains_free(struct domains *ds);
/* The database's saver (db_add_saver): every domain's record and held
 * request start, put again.  The database is closed before ds is freed. */
void domains_save_records(void *ds);

/* The requests of the domain management operations: 0 or an errno. */
int domains_introduce(struct domains *ds, unsigned int domid, uint64_t gfn,
		      unsigned int port);
int domains_release(struct domains *ds, unsigned int domid);
int domains_resume(struct domains *ds, unsigned int domid);
int domains_set_target(struct domains *ds, unsigned int domid,
		       unsigned int target);
bool domains_is_introduced(struct domains *ds, unsigned int domid);
/* Does domid exist (introduced, or known to Xen)?  true when Xen cannot
 * tell, or there is no Xen. */
bool domains_domid_exists(struct domains *ds, unsigned int domid);
/* How many domains are introduced (for reports). */
unsigned int domains_count(struct domains *ds);
int domains_get_features(struct domains *ds, unsigned int domid,
			 unsigned int *features);
int domains_set_features(struct domains *ds, unsigned int domid,
			 unsigned int features);

/* Features of the domain whose ring c is; every feature for a socket. */
unsigned int domains_conn_features(struct domains *ds, const struct conn *c);

/*
 * After a restart: serve again every domain the database names.  A live
 * guest's ring is mapped again and served as it is (requests it wrote
 * meanwhile are answered), its channel bound again, its watches restored
 * (with fire, each fires once: changes made while a crashed daemon was
 * down were never told; a live update loses no event, so it does not);
 * one that died meanwhile is released as VIRQ_DOM_EXC would.  Without a
 * database or Xen, nothing to do.
 */
void domains_restore(struct domains *ds, bool fire);

/*
 * Live update: the bytes each served domain's connection holds that are
 * no longer in its ring (requests taken off, replies and events not yet
 * written), with extra appended to the output of the connection `extra_for`.
 * domains_load_conns gives them back to the domains domains_restore
 * served again: 0, or -1 for a malformed image.
 */
void domains_save_conns(struct domains *ds, struct writer *w,
			const struct conn *extra_for, const void *extra,
			size_t extra_len);
int domains_load_conns(struct domains *ds, struct reader *r);

/* Look for shut-down and dead domains now (as VIRQ_DOM_EXC does). */
void domains_check(struct domains *ds);

#endif
