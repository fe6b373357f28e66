/*
 * watches: who is told about which change.
 *
 * Owns every registered watch.  Watches are indexed by path, so matching a
 * change walks the changed path's ancestors (one hash probe each) instead
 * of every watch; a second index counts the watches below each path, so a
 * recursive removal finds the watches under it only when there are some.
 * Events go straight onto the watching connection's output queue, after a
 * read-permission check of the watcher on the node (or its parent, or the
 * node's old permissions).
 *
 * An event identical to one still queued, unsent, on the connection (the
 * same path and token) is dropped, as upstream does since XSA-326; events
 * of the special watches are always queued.
 *
 * Slow readers: once a connection has more than WATCH_QUEUE_MAX bytes of
 * output waiting, its further events are coalesced per watch instead of
 * queued: when its queue drains below CONN_OUT_LOW, each such watch gets
 * one event carrying the watch's own path ("something below here
 * changed", which the protocol allows as a spurious event).  Memory stays
 * bounded and no change goes unannounced.
 */
#ifndef XS_WATCH_H
#define XS_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "conn/conn.h"
#include "record/record.h"
#include "store/store.h"

#define WATCH_QUEUE_MAX (4 * CONN_OUT_HIGH)

struct watch;
struct watch_bucket;
struct watch_count;
struct queued_event;

/* Every watch of the daemon. */
struct watch_registry {
	struct watch_bucket *by_path;	/* uthash: watched path -> watches */
	struct watch_count *below;	/* uthash: path -> watches strictly below */
	unsigned long count;
	/*
	 * A bit for each by_path hash (masked): clear, no watched path has
	 * that hash, and a change's path or ancestor is passed over without
	 * walking a chain of the table, a cache miss a link (with 10,000
	 * watched paths, 2.4 us of a WRITE's matching).  Bits of removed
	 * paths stay set until a rebuild.  NULL: none (no memory), every
	 * path looked up.
	 */
	uint64_t *filter;
	size_t filter_mask;		/* bits - 1 (a power of two) */
	size_t filter_stale;		/* paths removed since its rebuild */
};

/* The watches of one connection (part of its per-connection state). */
struct watcher {
	struct conn *conn;
	struct watch *watches;		/* utlist, owned, in registration
					 * order */
	struct watch *by_key;		/* uthash: (path, token) -> watch */
	struct watch *coalesced;	/* watches with an event held back */
	/* The events queued on the connection and not yet sent: uthash by
	 * payload, and oldest first (an identical one is dropped). */
	struct queued_event *queued, *queued_head, *queued_tail;
	unsigned int count;
	size_t bytes;			/* memory of its watches */
};

void watch_registry_init(struct watch_registry *reg);
/* Every watcher must have been cleared first. */
void watch_registry_destroy(struct watch_registry *reg);

void watcher_init(struct watcher *wr, struct conn *c);
/* Remove every watch of wr (RESET_WATCHES, connection closed), and
 * forget its queued events (a duplicate of one is then queued again). */
void watcher_clear(struct watch_registry *reg, struct watcher *wr);

/*
 * Register a watch on path (canonical, or '@' special) with token.  strip
 * is the length of the prefix to remove from event paths (relative
 * watches), depth how many levels below path match (-1: all).  Returns the
 * watch, or NULL with errno EEXIST (same path and token) or ENOMEM.
 */
struct watch *watch_add(struct watch_registry *reg, struct watcher *wr,
			const char *path, size_t strip, const char *token,
			int depth);
/* Queue the event every new watch fires once, with its own path. */
void watch_fire_initial(struct watch *w);
/* 0, ENOENT when wr has no watch on (path, token), or ENOMEM. */
int watch_remove(struct watch_registry *reg, struct watcher *wr,
		 const char *path, const char *token);

/*
 * The node at path changed (created, written, permissions set).  perms are
 * its permissions now, old_perms before (or NULL), parent_perms those of
 * its parent (or NULL): a watcher that may read any of them is told.
 */
void watch_fire_changed(struct watch_registry *reg, const char *path,
			const struct perms *perms, const struct perms *old_perms,
			const struct perms *parent_perms);

/*
 * The node at path and its subtree are about to be removed: for each
 * watched path below it, perms_of tells whether a node is there (true)
 * and gives its permissions and its parent's (which the registry keeps,
 * referenced, for watch_fire_removed).
 */
typedef bool watch_perms_fn(const char *path, struct perms **perms,
			    struct perms **parent_perms, void *arg);
void watch_removing(struct watch_registry *reg, const char *path,
		    watch_perms_fn *perms_of, void *arg);

/*
 * The node at path and its subtree were removed.  Watches on it and its
 * ancestors get path, filtered by perms and parent_perms (the removed
 * node's and its parent's); watches below it get their own path,
 * filtered by the permissions watch_removing found there (a node's, and
 * its parent's), or, where no node was, by perms and parent_perms.
 */
void watch_fire_removed(struct watch_registry *reg, const char *path,
			const struct perms *perms,
			const struct perms *parent_perms);

/*
 * A special event: name is "@introduceDomain" or "@releaseDomain", perms
 * the special node's permissions.  Watches on name get name (or, with
 * depth >= 1, "name/<domid>"); watches on "name/<domid>" get that path.
 */
void watch_fire_special(struct watch_registry *reg, const char *name,
			unsigned int domid, const struct perms *perms);

/* For tests: the key comparisons this module's hash tables have made so
 * far (a count of work that does not depend on the machine's speed). */
unsigned long watch_compares(void);
/* For tests: the lookups in the table of watched paths that changes have
 * made so far (a path the filter rules out costs none). */
unsigned long watch_path_lookups(void);
/* For tests: the most watched paths that share one bucket of the path
 * table (each lookup that lands there walks them all). */
unsigned int watch_longest_chain(const struct watch_registry *reg);

/* wr's connection has drained its output: send the coalesced events. */
void watcher_drained(struct watcher *wr);

/*
 * Saving and restoring (restart, live update), as schema/schema.h's watch
 * list.  watcher_save appends every watch of wr, in registration order,
 * with whether an event is held back for it.  watcher_read (from a
 * stream: the live-update image) and watcher_load (a whole record: the
 * database) register them again on wr (no quota check: they were allowed
 * once); with fire, each gets the event a new watch gets (the changes of
 * a crash may never have been told), otherwise only the held back ones
 * do.  0, or -1 for a malformed list or no memory.
 */
void watcher_save(const struct watcher *wr, struct writer *w);
int watcher_read(struct watch_registry *reg, struct watcher *wr,
		 struct reader *r, bool fire);
int watcher_load(struct watch_registry *reg, struct watcher *wr,
		 const void *data, size_t len, bool fire);

#endif
