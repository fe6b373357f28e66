/* Permission lists: parsing, formatting and access decisions. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "permissions/permissions.h"

static bool names(uint32_t entry, const struct who *w)
{
	return entry == w->domid ||
	       (w->target != DOMID_NONE && entry == w->target);
}

unsigned int perms_access(const struct perms *p, const struct who *w)
{
	const unsigned int all = PERM_READ | PERM_WRITE | PERM_OWNER;

	if (w->privileged || names(p->e[0].domid, w))
		return all;
	for (unsigned int i = 1; i < p->n; i++)
		if (!(p->e[i].access & PERM_IGNORE) &&
		    (p->e[i].domid == DOMID_ANY || names(p->e[i].domid, w)))
			return p->e[i].access & (PERM_READ | PERM_WRITE);
	return p->e[0].access;
}

static int letter_access(char c)
{
	switch (c) {
	case 'n': return PERM_NONE;
	case 'r': return PERM_READ;
	case 'w': return PERM_WRITE;
	case 'b': return PERM_READ | PERM_WRITE;
	default: return -1;
	}
}

struct perms *perms_parse(const char *const *strs, unsigned int n)
{
	struct perms *p;

	if (n == 0) {
		errno = EINVAL;
		return NULL;
	}
	p = perms_alloc(n);
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	for (unsigned int i = 0; i < n; i++) {
		int access = letter_access(strs[i][0]);
		const char *num = strs[i] + (access >= 0);
		char *end;
		unsigned long domid;

		if (access < 0 || *num < '0' || *num > '9')
			goto invalid;
		errno = 0;
		domid = strtoul(num, &end, 10);
		if (errno || *end || domid > PERM_DOMID_MAX)
			goto invalid;
		p->e[i].domid = (uint32_t)domid;
		p->e[i].access = (uint32_t)access;
	}
	return p;

invalid:
	perms_unref(p);
	errno = EINVAL;
	return NULL;
}

void perm_format(const struct perm *e, char buf[16])
{
	static const char letters[] = { 'n', 'r', 'w', 'b' };

	snprintf(buf, 16, "%c%u", letters[e->access & 3], (unsigned int)e->domid);
}

struct perms *perms_with_owner(struct perms *p, uint32_t domid)
{
	struct perms *copy;

	if (p->e[0].domid == domid)
		return perms_ref(p);
	copy = perms_alloc(p->n);
	if (!copy)
		return NULL;
	memcpy(copy->e, p->e, p->n * sizeof(p->e[0]));
	copy->e[0].domid = domid;
	return copy;
}
