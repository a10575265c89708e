/* SPDX-License-Identifier: MIT */
/* Unit tests for server/vnc_ticket.c: a ticket opens once, for its
 * image, until it expires; the token it stands for comes back; a
 * malformed or unknown one is refused; the table is bounded and
 * expired tickets make room. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "tap.h"
#include "vnc_ticket.h"

static const uint8_t tok_a[VMF_HASH_LEN] = {1, 2, 3};
static const uint8_t tok_b[VMF_HASH_LEN] = {9, 8, 7};

static void test_once(void)
{
	struct vnc_tickets *t = NULL;
	char a[VNC_TICKET_HEX_LEN + 1], b[VNC_TICKET_HEX_LEN + 1];
	uint8_t got[VMF_HASH_LEN];

	check_int(vnc_tickets_new(&t), ==, 0);
	check_int(vnc_ticket_issue(t, "vm1", tok_a, 1000, 30000, a), ==, 0);
	check_int(vnc_ticket_issue(t, "vm1", tok_b, 1000, 30000, b), ==, 0);
	check_uint(strlen(a), ==, VNC_TICKET_HEX_LEN);
	check(strcmp(a, b) != 0);
	check_int(vnc_ticket_take(t, "vm1", b, 2000, got), ==, 0);
	check_mem(got, tok_b, VMF_HASH_LEN);
	check_int(vnc_ticket_take(t, "vm1", b, 2000, got), ==, -EACCES);
	check_int(vnc_ticket_take(t, "vm1", a, 2000, got), ==, 0);
	check_mem(got, tok_a, VMF_HASH_LEN);
	vnc_tickets_free(t);
	vnc_tickets_free(NULL);
}

static void test_refused(void)
{
	struct vnc_tickets *t = NULL;
	char a[VNC_TICKET_HEX_LEN + 1], bad[VNC_TICKET_HEX_LEN + 1];
	uint8_t got[VMF_HASH_LEN];

	check_int(vnc_tickets_new(&t), ==, 0);
	/* Another image: refused, and used up. */
	check_int(vnc_ticket_issue(t, "vm1", tok_a, 0, 30000, a), ==, 0);
	check_int(vnc_ticket_take(t, "vm2", a, 1, got), ==, -EACCES);
	check_int(vnc_ticket_take(t, "vm1", a, 1, got), ==, -EACCES);
	/* Expired: at its end, not a millisecond later. */
	check_int(vnc_ticket_issue(t, "vm1", tok_a, 0, 30000, a), ==, 0);
	check_int(vnc_ticket_take(t, "vm1", a, 30000, got), ==, -EACCES);
	/* Malformed, unknown. */
	check_int(vnc_ticket_issue(t, "vm1", tok_a, 0, 30000, a), ==, 0);
	memcpy(bad, a, sizeof(bad));
	bad[0] = bad[0] == '0' ? '1' : '0';
	check_int(vnc_ticket_take(t, "vm1", bad, 1, got), ==, -EACCES);
	check_int(vnc_ticket_take(t, "vm1", "", 1, got), ==, -EACCES);
	check_int(vnc_ticket_take(t, "vm1", "zz", 1, got), ==, -EACCES);
	bad[5] = 'g';
	check_int(vnc_ticket_take(t, "vm1", bad, 1, got), ==, -EACCES);
	/* The right one still opens after the wrong ones. */
	check_int(vnc_ticket_take(t, "vm1", a, 1, got), ==, 0);
	vnc_tickets_free(t);
}

static void test_bounded(void)
{
	struct vnc_tickets *t = NULL;
	char a[VNC_TICKET_HEX_LEN + 1];
	uint8_t got[VMF_HASH_LEN];

	check_int(vnc_tickets_new(&t), ==, 0);
	for (int i = 0; i < VNC_TICKET_MAX; i++)
		check_int(vnc_ticket_issue(t, "vm1", tok_a, 0, 1000, a), ==, 0);
	check_int(vnc_ticket_issue(t, "vm1", tok_a, 999, 1000, a), ==, -ENOSPC);
	/* Once they expired, they make room. */
	check_int(vnc_ticket_issue(t, "vm1", tok_b, 1000, 1000, a), ==, 0);
	check_int(vnc_ticket_take(t, "vm1", a, 1001, got), ==, 0);
	check_mem(got, tok_b, VMF_HASH_LEN);
	vnc_tickets_free(t);
}

int main(void)
{
	TEST(test_once(), "a ticket opens once, for its token");
	TEST(test_refused(), "other image, expired, malformed, unknown");
	TEST(test_bounded(), "at most VNC_TICKET_MAX; expired make room");
	return test_done();
}
