/*
 * ops: the request handlers, one per message type, behind one table.
 *
 * The table says which types need privilege and which ignore tx_id, so
 * handlers never repeat those checks.  Handlers parse their arguments with
 * protocol/, check access with permissions/ and change the tree through
 * store/ and transactions/, in the state the server owns (server/).
 */
#ifndef XS_OPS_H
#define XS_OPS_H

#include "server/server.h"

/* Handle one request of c: exactly one reply is queued on c. */
void ops_dispatch(struct conn *c, const struct request *req);

#endif
