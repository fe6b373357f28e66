/*
 * The end of a loop turn: one commit for every change the turn made, then
 * the output it held on every connection released and sent.  A client is
 * never told of a change before it is durable, and no client can read one
 * before: its reply waits for the same commit.  Busy clients share that
 * commit, one frame of the journal a turn (persist/db.h).
 */
#include "server/server.h"
#include "log/probes.h"
#include "persist/db.h"

void server_hold(struct conn *c)
{
	struct server *srv = c->hooks->owner;

	LIST_INSERT_HEAD(&srv->held, c, held_link);
}

void server_commit(struct server *srv)
{
	struct conn *c;
	PROBE_START(t);

	db_commit(srv->db);
	PROBE_STOP(t, PROBE_COMMIT);
	/* Everything queued or handled so far is durable now; it is sent
	 * at the turn's end (or by a transport writing anyway). */
	LIST_FOREACH(c, &srv->held, held_link)
		conn_release(c);
}

/*
 * Release and send what every held connection queued: nothing of it is
 * about a change waiting for a commit.  Sending changes nothing in the
 * store, so what it queues (watch events coalesced while a client did not
 * read) is about committed changes too: it goes in this same loop.
 */
static void send_held(struct server *srv)
{
	struct conn *c;
	PROBE_START(t);

	while ((c = LIST_FIRST(&srv->held))) {
		LIST_REMOVE(c, held_link);
		conn_flush(c);
	}
	PROBE_STOP_SPLIT(t, PROBE_SEND, PROBE_SEND_SLOW);
}

/*
 * With no change waiting for a commit (no database, or a batch of reads)
 * there is nothing to make durable: what was queued goes at the batch's
 * end, while the next connections' requests are handled, as the turn's
 * end would send it after a commit that does nothing.  Holding it to the
 * turn's end cost eight clients 5 to 10% of their rate (each waited for
 * the others' requests too).
 */
void server_batch_done(struct conn *c)
{
	struct server *srv = c->hooks->owner;

	if (!db_pending(srv->db))
		send_held(srv);
}

void server_turn_end(struct server *srv)
{
	PROBE_COUNT(PROBE_TURN, 1);
	server_commit(srv);
	send_held(srv);
}
