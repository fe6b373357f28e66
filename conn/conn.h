/*
 * conn: one client of the daemon, whatever carries its bytes.
 *
 * Owns the input and output byte queues, the framing of input bytes into
 * whole packets, the identity requests are checked with, and the per-turn
 * budget that keeps one busy client from starving the others: a batch of
 * requests a loop turn, cut short after a slice of time when another
 * connection has a request waiting.  A transport
 * (a Unix socket or a guest's ring) moves bytes between its medium
 * and these queues and tells the connection when input arrived or output
 * drained; above this module nothing knows which transport is in use.
 *
 * Held output: what a connection queues (replies, watch events) and the
 * requests it handles wait for the owner's next commit.  The first of them
 * since the last release holds the connection (the hold hook); the owner's
 * commit then releases it (conn_release: the bytes queued and requests
 * handled so far may leave) and conn_flush has the transport send them.
 * A transport never sends past out_released, and a ring gives back to the
 * guest only the request bytes up to in_released: nothing leaves before
 * the change it tells of is durable.
 *
 * Flow control: when more than CONN_OUT_HIGH bytes of replies are unsent
 * (a client that does not read), the connection stops taking requests until
 * the queue drains below CONN_OUT_LOW, so its memory stays bounded and
 * nobody else waits for it.
 */
#ifndef XS_CONN_H
#define XS_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "permissions/permissions.h"
#include "protocol/wire.h"

/*
 * Requests of one connection handled per loop turn: half of those it has
 * queued, between these bounds, and no more than take CONN_TURN_NS.  A
 * turn ends with the commit and the replies sent, so a pipelining client
 * gets the first half's replies and sends more while the second half is
 * handled.  With 64 WRITEs in flight a batch of 32 made 1.6x the WRITEs a
 * second of a batch of 8 and 1.3x those of 64; with 16 in flight a batch
 * of 8 did best (bench/load).  Slow requests (WATCHes, 3-4 us) keep to
 * batches of 8: in batches of 32 a neighbour's p99 while 100,000 were
 * registered was 1.7-1.8x its p99 alone, against 1.3-1.4x.
 */
#define CONN_BATCH_MIN 8
#define CONN_BATCH_MAX 32
#define CONN_TURN_NS 24000
/*
 * A batch has the others with a request waiting served (the
 * serve_waiting hook) each time it has run about this long, judged by
 * its recent batches' time a request: a neighbour waits behind a slice
 * of a busy client, not behind a batch of its WATCHes (25-30 us for 8).
 * The batch goes on after them, so the busy client keeps its turn; asking
 * costs one epoll_wait a slice (about 8 READs): a system call's entry and
 * exit and little more (1.1 us on the benchmark's virtual machine, where a
 * getppid costs 1.0).  A batch of one request never asks.
 */
#define CONN_SLICE_NS 4000
#define CONN_OUT_HIGH (256 * 1024)	/* stop reading requests above this */
#define CONN_OUT_LOW (64 * 1024)	/* ... until output drains below this */

struct conn;

struct conn_transport {
	const char *kind;
	/* c->out's bytes up to out_released may leave (and a ring's
	 * requests up to in_released): send what the medium takes now, the
	 * rest once it can.  Never handles requests. */
	void (*kick)(struct conn *c);
	/* Stop or resume taking bytes from the medium into c->in. */
	void (*set_reading)(struct conn *c, bool on);
	/* Release the medium; c->in and c->out stay valid until conn_free. */
	void (*close)(struct conn *c);
	/* Free what the transport still holds (called once, from conn_free). */
	void (*free)(struct conn *c);
	/* Take what the medium holds now and handle it, as the loop would
	 * when told it is readable: a neighbour served in the middle of a
	 * busy client's batch.  NULL: only the loop can (a guest's ring). */
	void (*read_now)(struct conn *c);
};

/* What the owner of all connections provides. */
struct conn_hooks {
	/* Handle one complete, length-checked request. */
	void (*dispatch)(struct conn *c, const struct request *req);
	/* c queued output or handled requests since its last release: the
	 * owner commits, then calls conn_release or conn_flush (the server
	 * does both once a loop turn, for every connection it holds).
	 * NULL: nothing to wait for, each is released at once. */
	void (*hold)(struct conn *c);
	/* conn_handle_input handled a batch (held): the owner may release
	 * it at once when it has nothing to commit. */
	void (*batch_done)(struct conn *c);
	/* The connection stopped: drop what refers to it (watches, txs). */
	void (*closed)(struct conn *c);
	/* The connection is about to be freed. */
	void (*freed)(struct conn *c);
	/* Its unsent output fell to CONN_OUT_LOW or below. */
	void (*drained)(struct conn *c);
	/* Replies an unprivileged connection may leave unread before its
	 * requests wait (0: no limit); NULL: never limited. */
	unsigned int (*max_outstanding)(struct conn *c);
	/* c's batch has run a slice: serve now the other connections with
	 * a request waiting, those whose transport can (read_now).  True if
	 * one waits that only the loop can serve: c then yields the rest of
	 * its turn.  NULL: each batch runs whole. */
	bool (*serve_waiting)(struct conn *c);
	void *owner;
};

struct conn {
	const struct conn_transport *tp;
	void *tp_data;			/* the transport's state, its to free */
	const struct conn_hooks *hooks;
	struct event_base *base;
	struct evbuffer *in;		/* received bytes not yet handled */
	struct evbuffer *out;		/* bytes not yet sent */
	struct event *resume;		/* zero-timeout timer: continue input */
	struct who who;			/* identity for permission checks */
	char home[32];			/* "/local/domain/<domid>": relative paths */
	unsigned long id;		/* for logs */
	bool closing;			/* no more input handling */
	bool in_progress;		/* conn_handle_input is on the stack */
	bool output_full;		/* paused until output drains */
	bool outstanding_full;		/* paused: too many unread replies */
	bool delayed;			/* paused by conn_delay until delay_ev */
	uint32_t batch_req_ns;		/* its batches of more than one: their
					 * time a request, recent (0: none) */
	unsigned int last_batch;	/* requests its last batch handled */
	bool held;			/* on the owner's list, from conn_hold
					 * to conn_flush */
	struct event *delay_ev;		/* owned */
	bool owns_queues;		/* in and out were made by conn_new */
	bool protocol_error;		/* closed for a malformed packet */
	bool resumable;			/* a guest ring: its peer outlives a
					 * restart, so its watches are saved */
	bool restored;			/* served again after a restart: its
					 * transactions from before may come */
	bool replaying;			/* its first requests since then may
					 * be ones answered before the crash */
	void *owner_data;		/* for the hooks' owner (watches, txs) */
	/* Positions in the streams of bytes: how many were ever queued on
	 * out (so the bytes sent are out_total - length of out) and how many
	 * may leave; how many request bytes were taken from in, and how many
	 * of those requests are durable. */
	uint64_t out_total, out_released;
	uint64_t in_handled, in_released;
	/* Unread replies of an unprivileged connection: where each ends in
	 * the stream of output bytes (a FIFO). */
	uint64_t *reply_ends;		/* owned */
	unsigned int reply_head, nreplies, reply_cap;
	LIST_ENTRY(conn) link;		/* in the owner's list of connections */
	LIST_ENTRY(conn) held_link;	/* in the owner's list, while held */
};

/*
 * Create a connection over tp.  in and out are the byte queues the
 * transport fills and drains: the transport's own (it frees them), or both
 * NULL to get new ones that the connection owns and frees.
 */
struct conn *conn_new(struct event_base *base, const struct conn_transport *tp,
		      void *tp_data, struct evbuffer *in, struct evbuffer *out,
		      const struct conn_hooks *hooks, uint32_t domid,
		      bool privileged);

/*
 * Read no more of c's requests for tv (the ones buffered wait too): a
 * rate limit's pause.  Other pauses still apply when it ends.
 */
void conn_delay(struct conn *c, const struct timeval *tv);

/* The transport appended bytes to c->in. */
void conn_handle_input(struct conn *c);

/* c->in holds the start of one request, not all of it. */
bool conn_input_partial(struct conn *c);

/* The transport sent output; resume input if it was paused for it. */
void conn_output_drained(struct conn *c);

/* c has output or handled requests to release (conn_send and
 * conn_handle_input call it; so may whoever appends to c->out). */
void conn_hold(struct conn *c);

/* The owner's commit made what c queued and handled so far durable: it
 * may leave (the transport sends it when next kicked). */
void conn_release(struct conn *c);

/* conn_release, then kick the transport to send it now. */
void conn_flush(struct conn *c);

/* Bytes at the front of c->out that may be sent. */
size_t conn_out_ready(const struct conn *c);

/*
 * Queue one message (header + payload) on the connection, whole or not
 * at all.  Without memory for it, an event is dropped (and logged) and a
 * reply closes the connection (conn_close: its closed hook runs now), as
 * its client would otherwise wait for it for ever.
 */
void conn_send(struct conn *c, uint32_t type, uint32_t req_id,
	       uint32_t tx_id, const void *payload, size_t len);

/* Reply with an error: type ERROR, payload "E<NAME>\0". */
void conn_send_error(struct conn *c, const struct request *req, int err);

/*
 * End the connection: stops input at once, tells the owner, and frees
 * everything from the event loop (safe to call from inside a request).
 */
void conn_close(struct conn *c, const char *why);

/* Free a closed connection now (shutdown; never from inside a request). */
void conn_free(struct conn *c);

#endif
