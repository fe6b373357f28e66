/*
 * permissions: who may read or write a node.
 *
 * Parses and formats permission strings ("r5", "b0", ...) and decides the
 * access of a domain to a node from its permission list.  The rules: the
 * privileged domain and the owner (entry 0) get everything; otherwise the
 * first other entry naming the domain (or the domain it targets, or
 * DOMID_ANY) decides;
 * otherwise entry 0's access is the default for everyone.
 */
#ifndef XS_PERMISSIONS_H
#define XS_PERMISSIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

#define DOMID_NONE UINT32_MAX	/* "no target domain" */
#define PERM_DOMID_MAX 65535	/* domids are 16 bits on the wire */
#define DOMID_ANY 0x7FF5u	/* an entry (not the owner) naming every domain */

/* The identity a request is checked with. */
struct who {
	uint32_t domid;
	uint32_t target;	/* domain this one acts for (SET_TARGET), or DOMID_NONE */
	bool privileged;	/* dom0 / the privileged domain: all access */
};

/* PERM_READ | PERM_WRITE | PERM_OWNER bits that w has on a node with p. */
unsigned int perms_access(const struct perms *p, const struct who *w);

/*
 * Parse n permission strings.  Each is one letter of r, w, b, n followed
 * by a domid (0..65535).  Returns a new list (one reference) or NULL with
 * errno EINVAL (malformed) or ENOMEM.
 */
struct perms *perms_parse(const char *const *strs, unsigned int n);

/* Format one entry as "<letter><domid>"; buf must hold 16 bytes. */
void perm_format(const struct perm *e, char buf[16]);

/*
 * p with its owner replaced by domid: p itself (one more reference) when
 * the owner is already domid, else a copy.  NULL on ENOMEM.
 */
struct perms *perms_with_owner(struct perms *p, uint32_t domid);

#endif
