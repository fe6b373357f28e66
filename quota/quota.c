/* Quota names, defaults and per-domain overrides. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "quota/quota.h"
#include "schema/schema.h"

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
		if (!q->domains) {
			/* No table for it (HASH_NONFATAL_OOM). */
			free(d);
			return ENOMEM;
		}
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
	struct schema_quota sq;
	uint32_t n = QUOTA_KINDS;

	HASH_ITER(hh, q->domains, d, tmp)
		n += (uint32_t)__builtin_popcount(d->set);
	schema_write_quotas_head(w, q->soft_memory, n);
	for (int k = 0; k < QUOTA_KINDS; k++) {
		sq = (struct schema_quota){ SCHEMA_QUOTA_GLOBAL, kinds[k].name,
					    q->hard[k] };
		schema_write_quota(w, &sq);
	}
	HASH_ITER(hh, q->domains, d, tmp) {
		for (int k = 0; k < QUOTA_KINDS; k++) {
			if (!(d->set & (1u << k)))
				continue;
			sq = (struct schema_quota){ d->domid, kinds[k].name,
						    d->value[k] };
			schema_write_quota(w, &sq);
		}
	}
}

static int load_one(const struct schema_quota *sq, void *arg)
{
	struct quotas *q = arg;
	enum quota_kind kind;

	/* By its exact name: the alias is for the command line. */
	if (strcmp(sq->name, "node-permissions") == 0 ||
	    !quota_parse_name(sq->name, &kind)) {
		log_warn("database: no quota is named '%s' here: its value "
			 "%u is not restored", sq->name, sq->value);
		return 0;
	}
	if (sq->domid == SCHEMA_QUOTA_GLOBAL) {
		q->hard[kind] = sq->value;
		return 0;
	}
	return quota_set_domain(q, sq->domid, kind, sq->value) ? -1 : 0;
}

int quotas_load(struct quotas *q, const void *data, size_t len,
		uint32_t version)
{
	uint32_t soft;

	/* Checked whole first, so a bad record changes nothing. */
	if (schema_decode_quotas(data, len, version, &soft, NULL, NULL) != 0)
		return -1;
	q->soft_memory = soft;
	return schema_decode_quotas(data, len, version, &soft, load_one, q);
}
