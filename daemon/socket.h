/*
 * daemon/socket: the Unix socket listener and the socket transport.
 *
 * Every accepted client becomes a connection of the server, as dom0 with
 * privilege.  Bytes move through libevent buffers with non-blocking reads
 * and writes, so a slow reader never blocks the loop; what a loop turn
 * queued is written as soon as the turn's commit releases it.
 */
#ifndef XS_DAEMON_SOCKET_H
#define XS_DAEMON_SOCKET_H

#include "server/server.h"

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
/*
 * Live update: the listening socket and the clients' sockets pass to the
 * new program as open descriptors.  listener_resume serves a listening fd
 * as listener_adopt does, but owns path (removed at close; NULL: none).
 * socket_conn_fd: the fd of a socket client (-1 for other connections);
 * socket_conn_resume: serve an inherited client fd (NULL: no memory).
 */
struct listener *listener_resume(struct server *srv, int fd, const char *path);
int listener_fd(const struct listener *l);
const char *listener_path(const struct listener *l);
int socket_conn_fd(const struct conn *c);
struct conn *socket_conn_resume(struct server *srv, int fd);

/* Stop listening and remove the socket file we made. */
void listener_close(struct listener *l);

#endif
