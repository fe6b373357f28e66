/*
 * daemon/socket: the Unix socket listener and the socket transport.
 *
 * Every accepted client becomes a connection of the server, as dom0 with
 * privilege.  Bytes move through a libevent bufferevent, so a slow reader
 * never blocks the loop.
 */
#ifndef XS_DAEMON_SOCKET_H
#define XS_DAEMON_SOCKET_H

#include "ops/ops.h"

struct listener;

/*
 * Listen on path.  A stale socket file is replaced; a path where another
 * daemon answers, or that is not a socket, is refused.  NULL with a message on stderr/log on error.
 */
struct listener *listener_open(struct server *srv, const char *path);
/*
 * Serve a socket that is already bound and listening (socket activation):
 * its file belongs to whoever made it and stays when we stop.
 */
struct listener *listener_adopt(struct server *srv, int fd);
/* Stop listening and remove the socket file we made. */
void listener_close(struct listener *l);

#endif
