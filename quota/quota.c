/* Quota names, defaults and per-domain overrides. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "quota/quota.h"

struct quota_domain {
	UT_hash_handle hh;
	unsigned int domid;
	unsigned int set;		/* bit per kind overridden */
	unsigned int value[QUOTA_KINDS];
};

static const struct {
	const char *name;
	const char *description;
	unsigned int value;		/* upstream's default */
	int letter;			/* upstream's short option, or 0 */
	const char *long_name;
} kinds[QUOTA_KINDS] = {
#define QUOTA_ENTRY(id, name, value, letter, long_name, description) \
	[QUOTA_##id] = { name, description, value, letter, long_name },
	QUOTA_LIST(QUOTA_ENTRY)
#undef QUOTA_ENTRY
};

/* The soft memory limit upstream logs at: 2 MiB. */
#define QUOTA_SOFT_MEMORY_DEFAULT 2097152

void quotas_init(struct quotas *q)
{
	memset(q, 0, sizeof(*q));
	for (int k = 0; k < QUOTA_KINDS; k++)
		q->hard[k] = kinds[k].value;
	q->soft_memory = QUOTA_SOFT_MEMORY_DEFAULT;
}

void quotas_destroy(struct quotas *q)
{
	struct quota_domain *d, *tmp;

	HASH_ITER(hh, q->domains, d, tmp) {
		HASH_DEL(q->domains, d);
		free(d);
	}
}

bool quota_parse_name(const char *name, enum quota_kind *kind)
{
	if (strcmp(name, "node-permissions") == 0)
		name = "permissions";	/* the name upstream's -Q takes */
	for (int k = 0; k < QUOTA_KINDS; k++)
		if (strcmp(name, kinds[k].name) == 0) {
			*kind = (enum quota_kind)k;
			return true;
		}
	return false;
}

const char *quota_name(enum quota_kind kind)
{
	return kinds[kind].name;
}

const char *quota_description(enum quota_kind kind)
{
	return kinds[kind].description;
}

unsigned int quota_default(enum quota_kind kind)
{
	return kinds[kind].value;
}

int quota_option(enum quota_kind kind)
{
	return kinds[kind].letter;
}

const char *quota_long_option(enum quota_kind kind)
{
	return kinds[kind].long_name;
}

bool quota_parse_option(int letter, enum quota_kind *kind)
{
	for (int k = 0; k < QUOTA_KINDS; k++)
		if (letter && kinds[k].letter == letter) {
			*kind = (enum quota_kind)k;
			return true;
		}
	return false;
}

unsigned int quota_limit(const struct quotas *q, unsigned int domid,
			 enum quota_kind kind)
{
	struct quota_domain *d = NULL;

	if (q->domains)
		HASH_FIND(hh, q->domains, &domid, sizeof(domid), d);
	return d && (d->set & (1u << kind)) ? d->value[kind] : q->hard[kind];
}

int quota_set_domain(struct quotas *q, unsigned int domid,
		     enum quota_kind kind, unsigned int value)
{
	struct quota_domain *d;

	HASH_FIND(hh, q->domains, &domid, sizeof(domid), d);
	if (!d) {
		d = calloc(1, sizeof(*d));
		if (!d)
			return ENOMEM;
		d->domid = domid;
		HASH_ADD(hh, q->domains, domid, sizeof(d->domid), d);
	}
	d->set |= 1u << kind;
	d->value[kind] = value;
	return 0;
}

void quota_forget_domain(struct quotas *q, unsigned int domid)
{
	struct quota_domain *d;

	HASH_FIND(hh, q->domains, &domid, sizeof(domid), d);
	if (d) {
		HASH_DEL(q->domains, d);
		free(d);
	}
}

void quotas_save(const struct quotas *q, struct writer *w)
{
	const struct quota_domain *d, *tmp;

	wr_u32(w, QUOTA_KINDS);
	for (int k = 0; k < QUOTA_KINDS; k++)
		wr_u32(w, q->hard[k]);
	wr_u32(w, q->soft_memory);
	wr_u32(w, HASH_COUNT(q->domains));
	HASH_ITER(hh, q->domains, d, tmp) {
		wr_u32(w, d->domid);
		wr_u32(w, d->set);
		for (int k = 0; k < QUOTA_KINDS; k++)
			wr_u32(w, d->value[k]);
	}
}

int quotas_load(struct quotas *q, struct reader *r)
{
	unsigned int hard[QUOTA_KINDS], soft;
	uint32_t ndomains;

	if (rd_u32(r) != QUOTA_KINDS)
		return -1;
	for (int k = 0; k < QUOTA_KINDS; k++)
		hard[k] = rd_u32(r);
	soft = rd_u32(r);
	ndomains = rd_u32(r);
	if (!rd_ok(r))
		return -1;
	memcpy(q->hard, hard, sizeof(hard));
	q->soft_memory = soft;
	for (uint32_t i = 0; i < ndomains && rd_ok(r); i++) {
		uint32_t domid = rd_u32(r), set = rd_u32(r);

		for (int k = 0; k < QUOTA_KINDS; k++) {
			uint32_t v = rd_u32(r);

			if (rd_ok(r) && (set & (1u << k)) &&
			    quota_set_domain(q, domid, (enum quota_kind)k, v))
				return -1;
		}
	}
	return rd_done(r) ? 0 : -1;
}
