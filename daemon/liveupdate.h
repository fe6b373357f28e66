/*
 * daemon/liveupdate: replacing the running program without a client
 * noticing (CONTROL live-update, driven by xenstore-control).
 *
 * The old program commits the database, writes an image of what the
 * database does not hold (the listening socket, each socket client's
 * descriptor, queued bytes and watches, each guest connection's queued
 * bytes, and the "OK" owed to the requester) and execs the new binary
 * with --live-update-image.  The new program loads the tree, domains and
 * guests' watches from the database as after a crash, without firing the
 * watches, then takes the rest from the image; the requester reads its
 * OK from the new program.  Transactions open at that moment (only with
 * -F) commit with EAGAIN afterwards, so their clients redo them.
 */
#ifndef XS_LIVEUPDATE_H
#define XS_LIVEUPDATE_H

#include "daemon/socket.h"
#include "server/server.h"

/* What a later exec needs: the listener and the command line we run with. */
void live_update_setup(struct server *srv, struct listener *l, int argc,
		       char **argv);

/*
 * In the new program: read the image at path and serve its listening
 * socket (NULL after a message if the image is unusable).  Then, once the
 * database and domains are restored, live_update_finish serves the
 * clients it names and removes the image: 0 or -1 after a message.
 */
struct listener *live_update_resume(struct server *srv, const char *path);
int live_update_finish(struct server *srv);

#endif
