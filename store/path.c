/* Path syntax checks: the rules of docs/misc/xenstore.txt. */
#include <string.h>

#include "store/path.h"

static bool path_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '/' || c == '_' ||
	       c == '@';
}

bool path_is_valid(const char *path)
{
	size_t len = strlen(path);

	if (path[0] != '/' || len > PATH_ABS_MAX)
		return false;
	if (len > 1 && path[len - 1] == '/')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!path_char_ok(path[i]))
			return false;
		if (path[i] == '/' && path[i + 1] == '/')
			return false;
	}
	return true;
}

bool path_name_is_valid(const char *name, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (name[i] == '/' || !path_char_ok(name[i]))
			return false;
	return true;
}

size_t path_relative_len(const char *path)
{
	static const char home[] = "/local/domain/";
	size_t len = strlen(path), i = sizeof(home) - 1;

	if (strncmp(path, home, i) != 0)
		return len;
	/* Same shape as upstream: up to five digits, then a slash. */
	size_t digits = 0;
	while (digits < 5 && path[i + digits] >= '0' && path[i + digits] <= '9')
		digits++;
	if (digits == 0 || path[i + digits] != '/')
		return len;
	return len - (i + digits + 1);
}

size_t path_parent_len_n(const char *path, size_t len)
{
	if (len <= 1)
		return 0;
	while (len > 1 && path[len - 1] != '/')
		len--;
	return len > 1 ? len - 1 : 1;
}

size_t path_parent_len(const char *path)
{
	return path[0] == '/' ? path_parent_len_n(path, strlen(path)) : 0;
}

bool path_parent(const char *path, char *buf, size_t size)
{
	size_t len = path_parent_len(path);

	if (len == 0 || len >= size)
		return false;
	memcpy(buf, path, len);
	buf[len] = '\0';
	return true;
}

const char *path_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

unsigned int path_depth(const char *path)
{
	unsigned int depth = 0;

	if (path[0] == '/' && path[1] == '\0')
		return 0;
	for (; *path; path++)
		if (*path == '/')
			depth++;
	return depth;
}
