/* SPDX-License-Identifier: MIT */
/* Unit tests for server/ratelimit.c: blocking after N failures, per
 * address (IPv4, IPv6 /64), the window, and a full table. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "ratelimit.h"
#include "tap.h"

static struct sockaddr_storage v4(uint32_t host)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(0x0a000000u + host); /* 10.x.x.x */
	return ss;
}

static struct sockaddr_storage v6(const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	in6->sin6_family = AF_INET6;
	check_int(inet_pton(AF_INET6, text, &in6->sin6_addr), ==, 1);
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static void test_disabled(void)
{
	struct ratelimit *rl = (struct ratelimit *)1;
	struct sockaddr_storage a = v4(1);

	check_int(ratelimit_new(0, 60, &rl), ==, 0);
	check(rl == NULL);
	for (int i = 0; i < 100; i++)
		check(!ratelimit_fail(rl, SA(a)));
	check_uint(ratelimit_check(rl, SA(a)), ==, 0);
	ratelimit_free(rl);
}

static void test_block(void)
{
	struct ratelimit *rl = NULL;
	struct sockaddr_storage a = v4(1), b = v4(2);

	check_int(ratelimit_new(3, 60, &rl), ==, 0);
	check(!ratelimit_fail(rl, SA(a)));
	check(!ratelimit_fail(rl, SA(a)));
	check_uint(ratelimit_check(rl, SA(a)), ==, 0);
	check(ratelimit_fail(rl, SA(a))); /* the third blocks */
	check_uint(ratelimit_check(rl, SA(a)), >=, 59);
	check_uint(ratelimit_check(rl, SA(a)), <=, 60);
	check(!ratelimit_fail(rl, SA(a))); /* already blocked */
	check_uint(ratelimit_check(rl, SA(b)), ==, 0);
	check(!ratelimit_fail(rl, SA(b)));
	check_uint(ratelimit_check(rl, NULL), ==, 0);
	ratelimit_free(rl);
}

static void test_ipv6_prefix(void)
{
	struct ratelimit *rl = NULL;
	struct sockaddr_storage a = v6("2001:db8:1:2::1");
	struct sockaddr_storage same = v6("2001:db8:1:2:ffff::9");
	struct sockaddr_storage other = v6("2001:db8:1:3::1");

	check_int(ratelimit_new(2, 60, &rl), ==, 0);
	check(!ratelimit_fail(rl, SA(a)));
	check(ratelimit_fail(rl, SA(same))); /* one /64, one count */
	check_uint(ratelimit_check(rl, SA(a)), >, 0);
	check_uint(ratelimit_check(rl, SA(other)), ==, 0);
	ratelimit_free(rl);
}

static void test_window(void)
{
	struct ratelimit *rl = NULL;
	struct sockaddr_storage a = v4(7);

	check_int(ratelimit_new(2, 1, &rl), ==, 0);
	check(!ratelimit_fail(rl, SA(a)));
	usleep(2100000); /* past the window: the count starts again */
	check(!ratelimit_fail(rl, SA(a)));
	check(ratelimit_fail(rl, SA(a)));
	check_uint(ratelimit_check(rl, SA(a)), >, 0);
	usleep(2100000); /* the block lasts one window */
	check_uint(ratelimit_check(rl, SA(a)), ==, 0);
	ratelimit_free(rl);
}

static void test_full_table(void)
{
	struct ratelimit *rl = NULL;
	struct sockaddr_storage blocked = v4(0);
	struct sockaddr_storage last = v4(2 * RATELIMIT_ENTRIES);

	check_int(ratelimit_new(2, 60, &rl), ==, 0);
	check(!ratelimit_fail(rl, SA(blocked)));
	check(ratelimit_fail(rl, SA(blocked)));
	/* Twice the table's size of other addresses failing once each:
	 * the table stays bounded, forgets the oldest of those, and keeps
	 * the blocked address. */
	for (uint32_t i = 1; i <= 2 * RATELIMIT_ENTRIES; i++) {
		struct sockaddr_storage x = v4(i);

		check(!ratelimit_fail(rl, SA(x)));
	}
	check_uint(ratelimit_check(rl, SA(blocked)), >, 0);
	check(ratelimit_fail(rl, SA(last))); /* its count was kept */
	ratelimit_free(rl);
}

int main(void)
{
	TEST(test_disabled(), "max 0: no limit");
	TEST(test_block(), "blocked after max failures, per address");
	TEST(test_ipv6_prefix(), "IPv6 addresses count per /64");
	TEST(test_window(), "failures and blocks last one window");
	TEST(test_full_table(),
	     "a full table forgets the oldest, not the blocked");
	return test_done();
}
