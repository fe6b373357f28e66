/*
 * store/path: syntax of Xenstore node paths.
 *
 * Pure functions over canonical (absolute) paths; no allocation.  Relative
 * paths are joined to a connection's home before they get here.
 */
#ifndef XS_STORE_PATH_H
#define XS_STORE_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* XENSTORE_ABS_PATH_MAX: no absolute path may be longer. */
#define PATH_ABS_MAX 3072
/* XENSTORE_REL_PATH_MAX: default limit of the part below a domain's home. */
#define PATH_REL_MAX 2048

/*
 * A valid absolute node path: starts with '/', only [A-Za-z0-9-/_@],
 * no "//", no trailing '/' except for "/" itself, at most PATH_ABS_MAX bytes.
 */
bool path_is_valid(const char *path);

/*
 * A valid last component of len bytes: at least one byte, each of
 * [A-Za-z0-9-_@].  A path whose parent is known valid (a node's path)
 * is valid when what follows the parent's "/" is such a name and the
 * whole is at most PATH_ABS_MAX bytes.
 */
bool path_name_is_valid(const char *name, size_t len);

/* Special watch paths (@introduceDomain, ...) start with '@'. */
static inline bool path_is_special(const char *path) { return path[0] == '@'; }

/*
 * Length of the part a domain's path-length limit applies to: what follows
 * "/local/domain/<domid>/", or the whole path outside any domain's home.
 */
size_t path_relative_len(const char *path);

/*
 * Length of the parent's path within path ("/a/b" -> 2, "/a" -> 1); 0 for
 * "/" and for special paths, which have no parent.
 */
size_t path_parent_len(const char *path);

/* Copy path's parent into buf (size bytes); false when it has none. */
bool path_parent(const char *path, char *buf, size_t size);

/*
 * The same for the prefix path[0..len) of a longer string: the length of
 * that prefix's parent ("/a/b" -> 2, "/a" -> 1); 0 for "/".
 */
size_t path_parent_len_n(const char *path, size_t len);

/* The last component ("/a/b" -> "b"; "/" -> ""). */
const char *path_basename(const char *path);

/* Number of components ("/" -> 0, "/a/b" -> 2). */
unsigned int path_depth(const char *path);

#endif
