/*
 * The end of a loop turn: one commit for every change the turn made, then
 * the output it held on every connection released and sent.  A client is
 * never told of a change before it is durable, and no client can read one
 * before: its reply waits for the same commit.  A commit costs tens of
 * microseconds whatever it holds, so busy clients share one a turn.
 */
#include "server/server.h"
#include "persist/db.h"

void server_hold(struct conn *c)
{
	struct server *srv = c->hooks->owner;

	LIST_INSERT_HEAD(&srv->held, c, held_link);
}

void server_commit(struct server *srv)
{
	struct conn *c;

	db_commit(srv->db);
	/* Everything queued or handled so far is durable now; it is sent
	 * at the turn's end (or by a transport writing anyway). */
	LIST_FOREACH(c, &srv->held, held_link)
		conn_release(c);
}

/*
 * Without a database there is nothing to make durable: what a batch
 * queued goes at its end, while the next connections' requests are
 * handled, as the turn's end would send it after a commit that does
 * nothing.  Holding it to the turn's end cost eight clients about 5% of
 * their rate (each waited for the others' requests too).
 */
void server_batch_done(struct conn *c)
{
	struct server *srv = c->hooks->owner;

	if (!srv->db)
		server_turn_end(srv);
}

void server_turn_end(struct server *srv)
{
	struct conn *c;

	server_commit(srv);
	/* Sending changes nothing in the store, so what it queues (watch
	 * events coalesced while a client did not read) is about committed
	 * changes too: it goes in this same loop. */
	while ((c = LIST_FIRST(&srv->held))) {
		LIST_REMOVE(c, held_link);
		conn_flush(c);
	}
}
