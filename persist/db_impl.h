/*
 * persist/ internals: struct db, shared by db.c (the file, writes and
 * commits) and load.c (reading it back at start-up).  Nothing else sees it.
 */
#ifndef XS_DB_IMPL_H
#define XS_DB_IMPL_H

#include <stdbool.h>
#include <string.h>

#include <tdb.h>

#include "persist/db.h"

struct side_record;

struct db {
	struct tdb_context *tdb;
	char *path;
	bool in_txn;		/* a tdb transaction holds uncommitted changes */
	bool failed;		/* a write failed: persistence is off */
	uint32_t version;	/* the file's format (SCHEMA_DB_VERSION...) */
	struct evbuffer *scratch;	/* node encoding, reused */
	struct event *commit_ev;	/* zero-timeout: commit what is left */
	struct store_observer observer;
	/* The '#' records as db_load_nodes found them, for db_each until
	 * db_loaded_done (owned). */
	struct side_record *side;
	size_t nside;
	bool side_loaded;
};

static inline TDB_DATA key_of(const char *s)
{
	return (TDB_DATA){ .dptr = (unsigned char *)s, .dsize = strlen(s) };
}

/* load.c: forget the '#' records the load kept (db_loaded_done, db_close). */
void drop_side_records(struct db *db);

#endif
