/* store/path: syntax of node paths. */
#include "tests/unit/unit.h"

#include "store/path.h"

/* A path of exactly len bytes: "/" then "a/a/a..." without a trailing '/'. */
static char *long_path(size_t len)
{
	char *p = malloc(len + 1);

	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (i % 2 == 0) ? '/' : 'a';
	if (p[len - 1] == '/')
		p[len - 1] = 'b';
	p[len] = '\0';
	return p;
}

START_TEST(root_is_valid)
{
	ck_assert(path_is_valid("/"));
}
END_TEST

START_TEST(ordinary_paths_are_valid)
{
	ck_assert(path_is_valid("/a"));
	ck_assert(path_is_valid("/local/domain/0/name"));
	ck_assert(path_is_valid("/A-Z_a-z/0-9/@x"));
	ck_assert(path_is_valid("/tool/xenstored"));
}
END_TEST

START_TEST(every_allowed_char_is_valid)
{
	static const char allowed[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		"0123456789-_@";
	char buf[4] = "/x";

	for (size_t i = 0; i < sizeof(allowed) - 1; i++) {
		buf[1] = allowed[i];
		ck_assert_msg(path_is_valid(buf), "'%c' refused", allowed[i]);
	}
}
END_TEST

START_TEST(other_chars_are_invalid)
{
	char buf[4] = "/x";

	for (int ch = 1; ch < 256; ch++) {
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
			  ch == '@' || ch == '/';

		if (ok)
			continue;
		buf[1] = (char)ch;
		ck_assert_msg(!path_is_valid(buf), "byte %d accepted", ch);
	}
	ck_assert(!path_is_valid("/a b"));
	ck_assert(!path_is_valid("/a.b"));
	ck_assert(!path_is_valid("/a\tb"));
}
END_TEST

/* A name is what path_is_valid allows between two slashes, and no less:
 * every byte of 0..255 is judged as the path "/<byte>" is. */
START_TEST(name_allows_what_a_path_allows_but_slash)
{
	char buf[4] = "/x";

	for (int ch = 1; ch < 256; ch++) {
		buf[1] = (char)ch;
		ck_assert_msg(path_name_is_valid(buf + 1, 1) ==
			      (ch != '/' && path_is_valid(buf)),
			      "byte %d judged apart", ch);
	}
	ck_assert(path_name_is_valid("domain", 6));
	ck_assert(path_name_is_valid("ab/", 2));	/* only len bytes */
	ck_assert(!path_name_is_valid("", 0));
	ck_assert(!path_name_is_valid("a/b", 3));
	ck_assert(!path_name_is_valid("a b", 3));
}
END_TEST

START_TEST(double_slash_is_invalid)
{
	ck_assert(!path_is_valid("//"));
	ck_assert(!path_is_valid("//a"));
	ck_assert(!path_is_valid("/a//b"));
}
END_TEST

START_TEST(trailing_slash_is_invalid)
{
	ck_assert(!path_is_valid("/a/"));
	ck_assert(!path_is_valid("/a/b/"));
}
END_TEST

START_TEST(empty_path_is_invalid)
{
	ck_assert(!path_is_valid(""));
}
END_TEST

START_TEST(path_not_starting_with_slash_is_invalid)
{
	ck_assert(!path_is_valid("a"));
	ck_assert(!path_is_valid("a/b"));
	ck_assert(!path_is_valid("@introduceDomain"));
	ck_assert(!path_is_valid("local/domain/0"));
}
END_TEST

START_TEST(path_of_abs_max_bytes_is_valid)
{
	char *p = long_path(PATH_ABS_MAX);

	ck_assert_uint_eq(strlen(p), PATH_ABS_MAX);
	ck_assert(path_is_valid(p));
	free(p);
}
END_TEST

START_TEST(path_one_over_abs_max_is_invalid)
{
	char *p = long_path(PATH_ABS_MAX + 1);

	ck_assert_uint_eq(strlen(p), PATH_ABS_MAX + 1);
	ck_assert(!path_is_valid(p));
	free(p);
}
END_TEST

START_TEST(relative_len_outside_domain_home_is_whole_path)
{
	ck_assert_uint_eq(path_relative_len("/"), 1);
	ck_assert_uint_eq(path_relative_len("/tool/xenstored"), 15);
	ck_assert_uint_eq(path_relative_len("/local/domain"), 13);
	ck_assert_uint_eq(path_relative_len("/local/domainx/5/a"), 18);
	ck_assert_uint_eq(path_relative_len("/local/domain/x/a"), 17);
}
END_TEST

START_TEST(relative_len_inside_domain_home_counts_below_it)
{
	ck_assert_uint_eq(path_relative_len("/local/domain/5/a"), 1);
	ck_assert_uint_eq(path_relative_len("/local/domain/5/name/x"), 6);
	ck_assert_uint_eq(path_relative_len("/local/domain/0/abc"), 3);
	ck_assert_uint_eq(path_relative_len("/local/domain/65535/abcd"), 4);
	ck_assert_uint_eq(path_relative_len("/local/domain/12345/"), 0);
}
END_TEST

START_TEST(relative_len_with_six_digit_domid_is_whole_path)
{
	/* Upstream reads at most five digits ("%5u/"): no home matched. */
	const char *p = "/local/domain/123456/a";

	ck_assert_uint_eq(path_relative_len(p), strlen(p));
}
END_TEST

START_TEST(relative_len_of_domain_home_without_slash_is_whole_path)
{
	ck_assert_uint_eq(path_relative_len("/local/domain/5"), 15);
	ck_assert_uint_eq(path_relative_len("/local/domain/"), 14);
	ck_assert_uint_eq(path_relative_len("/local/domain/5x"), 16);
}
END_TEST

START_TEST(parent_len_of_nested_path)
{
	ck_assert_uint_eq(path_parent_len("/a/b"), 2);
	ck_assert_uint_eq(path_parent_len("/a/b/c"), 4);
	ck_assert_uint_eq(path_parent_len("/local/domain/5"), 13);
}
END_TEST

START_TEST(parent_len_of_top_level_path_is_root)
{
	ck_assert_uint_eq(path_parent_len("/a"), 1);
	ck_assert_uint_eq(path_parent_len("/abc"), 1);
}
END_TEST

START_TEST(parent_copies_the_parent_or_says_there_is_none)
{
	char buf[8];

	ck_assert(path_parent("/a/b", buf, sizeof(buf)));
	ck_assert_str_eq(buf, "/a");
	ck_assert(path_parent("/a", buf, sizeof(buf)));
	ck_assert_str_eq(buf, "/");
	ck_assert(!path_parent("/", buf, sizeof(buf)));
	ck_assert(!path_parent("@releaseDomain/7", buf, sizeof(buf)));
	ck_assert_uint_eq(path_parent_len("@releaseDomain/7"), 0);
	ck_assert(!path_parent("/longer-than-8/x", buf, sizeof(buf)));
}
END_TEST

START_TEST(parent_len_of_root_is_zero)
{
	ck_assert_uint_eq(path_parent_len("/"), 0);
}
END_TEST

START_TEST(basename_is_last_component)
{
	ck_assert_str_eq(path_basename("/a/b"), "b");
	ck_assert_str_eq(path_basename("/a"), "a");
	ck_assert_str_eq(path_basename("/local/domain/5"), "5");
	ck_assert_str_eq(path_basename("/"), "");
}
END_TEST

START_TEST(basename_points_into_the_path)
{
	const char *p = "/x/yz";

	ck_assert_ptr_eq(path_basename(p), p + 3);
}
END_TEST

START_TEST(depth_counts_components)
{
	ck_assert_uint_eq(path_depth("/"), 0);
	ck_assert_uint_eq(path_depth("/a"), 1);
	ck_assert_uint_eq(path_depth("/a/b"), 2);
	ck_assert_uint_eq(path_depth("/local/domain/5/x"), 4);
}
END_TEST

START_TEST(special_paths_start_with_at)
{
	ck_assert(path_is_special("@introduceDomain"));
	ck_assert(path_is_special("@releaseDomain"));
	ck_assert(path_is_special("@"));
	ck_assert(!path_is_special("/"));
	ck_assert(!path_is_special("/@x"));
	ck_assert(!path_is_special("x@"));
	ck_assert(!path_is_special(""));
}
END_TEST

static Suite *path_suite(void)
{
	Suite *s = suite_create("path");
	TCase *t = tcase_create("validity");

	tcase_add_test(t, root_is_valid);
	tcase_add_test(t, ordinary_paths_are_valid);
	tcase_add_test(t, every_allowed_char_is_valid);
	tcase_add_test(t, other_chars_are_invalid);
	tcase_add_test(t, name_allows_what_a_path_allows_but_slash);
	tcase_add_test(t, double_slash_is_invalid);
	tcase_add_test(t, trailing_slash_is_invalid);
	tcase_add_test(t, empty_path_is_invalid);
	tcase_add_test(t, path_not_starting_with_slash_is_invalid);
	tcase_add_test(t, path_of_abs_max_bytes_is_valid);
	tcase_add_test(t, path_one_over_abs_max_is_invalid);
	suite_add_tcase(s, t);

	t = tcase_create("relative_len");
	tcase_add_test(t, relative_len_outside_domain_home_is_whole_path);
	tcase_add_test(t, relative_len_inside_domain_home_counts_below_it);
	tcase_add_test(t, relative_len_with_six_digit_domid_is_whole_path);
	tcase_add_test(t, relative_len_of_domain_home_without_slash_is_whole_path);
	suite_add_tcase(s, t);

	t = tcase_create("components");
	tcase_add_test(t, parent_len_of_nested_path);
	tcase_add_test(t, parent_copies_the_parent_or_says_there_is_none);
	tcase_add_test(t, parent_len_of_top_level_path_is_root);
	tcase_add_test(t, parent_len_of_root_is_zero);
	tcase_add_test(t, basename_is_last_component);
	tcase_add_test(t, basename_points_into_the_path);
	tcase_add_test(t, depth_counts_components);
	tcase_add_test(t, special_paths_start_with_at);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return unit_main(path_suite());
}
