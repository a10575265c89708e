/* SPDX-License-Identifier: MIT */
/* Unit tests for fusefs/mountwatch.c's reading of /proc/self/mountinfo:
 * the newest FUSE mount on a path (escaped names, optional fields,
 * other file systems on the same path), whether an ID is present, and
 * malformed lines skipped.  The watch itself is tested with real mounts
 * (tests/integration/072-unmount-elsewhere.sh). */
#include <errno.h>
#include <stdbool.h>

#include "tap.h"
#include "mountwatch.h"

static const char table[] =
    "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
    "40 22 0:40 / /tmp/a rw,relatime shared:7 - fuse.vmferry vmferry:x "
    "rw,user_id=0\n"
    "41 22 0:41 / /tmp/a rw,relatime - tmpfs tmpfs rw\n"
    "42 41 0:42 / /tmp/a rw,relatime master:3 shared:9 - fuse.vmferry "
    "vmferry:y rw\n"
    "43 22 0:43 / /tmp/with\\040space rw - fuse vmferry:z rw\n"
    "44 22 0:44 / /tmp/back\\134slash rw - fuseblk dev rw\n"
    "45 22 0:45 / /tmp/ext4 rw - ext4 /dev/vda rw\n";

static void test_find(void)
{
	long id = -1;

	/* The last FUSE mount on the path: the newest, on top. */
	check_int(mountinfo_find(table, "/tmp/a", &id), ==, 0);
	check_int(id, ==, 42);
	check_int(mountinfo_find(table, "/tmp/with space", &id), ==, 0);
	check_int(id, ==, 43);
	check_int(mountinfo_find(table, "/tmp/back\\slash", &id), ==, 0);
	check_int(id, ==, 44);
	/* Not FUSE, a prefix, a longer path, the escaped form itself. */
	check_int(mountinfo_find(table, "/tmp/ext4", &id), ==, -ENOENT);
	check_int(mountinfo_find(table, "/tmp", &id), ==, -ENOENT);
	check_int(mountinfo_find(table, "/tmp/a/b", &id), ==, -ENOENT);
	check_int(mountinfo_find(table, "/tmp/with\\040space", &id), ==,
		  -ENOENT);
	check_int(mountinfo_find("", "/tmp/a", &id), ==, -ENOENT);
}

static void test_has(void)
{
	check(mountinfo_has(table, 22));
	check(mountinfo_has(table, 40));
	check(mountinfo_has(table, 45));
	check(!mountinfo_has(table, 4));
	check(!mountinfo_has(table, 46));
	check(!mountinfo_has("", 40));
}

static void test_malformed(void)
{
	long id = -1;

	/* No ID, too few fields, no " - " separator: skipped, and the
	 * good line after them still found. */
	check_int(mountinfo_find("x 1 0:1 / /m rw - fuse f rw\n"
				 "7 1 0:1 /\n"
				 "8 1 0:1 / /m rw fuse f rw\n"
				 "9 1 0:1 / /m rw - fuse f rw",
				 "/m", &id),
		  ==, 0);
	check_int(id, ==, 9);
	check(!mountinfo_has("7 1 0:1 /\n", 7));
	/* A truncated escape is compared as written. */
	check_int(
	    mountinfo_find("5 1 0:1 / /m\\04 rw - fuse f rw\n", "/m\\04", &id),
	    ==, 0);
	check_int(id, ==, 5);
}

static bool never(void *o)
{
	(void)o;
	return false;
}

static void gone(void *o)
{
	(void)o;
}

static void test_start_nothing_mounted(void)
{
	struct mountwatch_config cfg = {.mountpoint = "/nonexistent/vmferry",
					.grace_ns = 1,
					.in_use = never,
					.gone = gone};
	struct mountwatch *w = NULL;

	check_int(mountwatch_start(&cfg, &w), ==, -ENOENT);
	check(w == NULL);
	mountwatch_stop(NULL);
}

int main(void)
{
	TEST(test_find(), "the newest FUSE mount on a path, escapes");
	TEST(test_has(), "mount IDs present and absent");
	TEST(test_malformed(), "malformed lines are skipped");
	TEST(test_start_nothing_mounted(), "no FUSE mount there: -ENOENT");
	return test_done();
}
