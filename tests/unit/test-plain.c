/* SPDX-License-Identifier: MIT */
/* Unit tests for fusefs/plain.c's URL rules: which URLs name a plain
 * export, and the name and copy directory each gets.  (The conversation
 * with a server is tested against nginx and an FTP server:
 * tests/integration/06x.) */
#include <errno.h>
#include <string.h>

#include "plain.h"
#include "remote.h"

#include "tap.h"

static void test_is_plain(void)
{
	check(!plain_url_is_plain("https://h:8443/web01"));
	check(!plain_url_is_plain("https://h/web01"));
	check(plain_url_is_plain("https://h/exports/web01/vmferry.json"));
	check(plain_url_is_plain("https://h/exports/web01.json"));
	check(plain_url_is_plain("https://h/exports/web01/"));
	check(plain_url_is_plain("https://h/e/web01/vmferry.json?sig=abc"));
	check(plain_url_is_plain("ftp://h/pub/web01/vmferry.json"));
	check(plain_url_is_plain("http://h/web01"));
	check(plain_url_is_tls("https://h/x/"));
	check(!plain_url_is_tls("ftp://h/x/"));
}

static void test_parse(void)
{
	struct remote_url u, u2;
	const char *why = NULL;

	check_int(plain_parse_url("https://h:8080/e/web01/vmferry.json?sig=x",
				  &u, &why),
		  ==, 0);
	check(strcmp(u.name, "web01") == 0);
	check(strcmp(u.base, "https://h:8080/e/web01/vmferry.json") == 0);
	check(strncmp(u.host_port, "h_8080-", 7) == 0);
	check_int(strlen(u.host_port), ==, 7 + 12);
	/* The query is not part of the copy's identity. */
	check_int(plain_parse_url("https://h:8080/e/web01/", &u2, &why), ==, 0);
	check(strcmp(u2.name, "web01") == 0);
	check(strcmp(u.host_port, u2.host_port) != 0); /* other URL */
	check_int(
	    plain_parse_url("https://h:8080/e/web01/vmferry.json", &u2, &why),
	    ==, 0);
	check(strcmp(u.host_port, u2.host_port) == 0);
	check_int(plain_parse_url("ftp://127.0.0.1/pub/db.json", &u, &why), ==,
		  0);
	check(strcmp(u.name, "db") == 0);
	check(strncmp(u.host_port, "127.0.0.1_21-", 13) == 0);
	check_int(plain_parse_url("https://[::1]:9/x/y/", &u, &why), ==, 0);
	check(strchr(u.host_port, ':') == NULL);
	check(strchr(u.host_port, '/') == NULL);

	check_int(plain_parse_url("gopher://h/x.json", &u, &why), ==, -EINVAL);
	check_int(plain_parse_url("ftp://user:pw@h/x.json", &u, &why), ==,
		  -EINVAL);
	check_int(plain_parse_url("https://h/", &u, &why), ==, -EINVAL);
	check_int(plain_parse_url("https://h/.hidden/", &u, &why), ==, -EINVAL);
	check_int(plain_parse_url("https://h/x/data", &u, &why), ==, -EINVAL);
	check_int(plain_parse_url("not a url", &u, &why), ==, -EINVAL);
	check(why != NULL);
}

int main(void)
{
	TEST(test_is_plain(), "which URLs name a plain export");
	TEST(test_parse(), "a plain URL's name and copy directory");
	return test_done();
}
