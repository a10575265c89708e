/* SPDX-License-Identifier: MIT */
/* VNC tickets (see vnc_ticket.h): a fixed table; a free slot has
 * expires == 0.  Lock: t->lock, around table access only. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "hash.h"
#include "mutex.h"

#include "vnc_ticket.h"

struct ticket {
	uint8_t secret[VNC_TICKET_BYTES];
	uint8_t token_hash[VMF_HASH_LEN];
	char name[VMF_NAME_MAX + 1];
	uint64_t expires; /* monotonic ms; 0: a free slot */
};

struct vnc_tickets {
	pthread_mutex_t lock;
	struct ticket slot[VNC_TICKET_MAX]; /* protected by lock */
};

int vnc_tickets_new(struct vnc_tickets **ret)
{
	struct vnc_tickets *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	if (pthread_mutex_init(&t->lock, NULL) != 0)
		abort();
	*ret = t;
	return 0;
}

void vnc_tickets_free(struct vnc_tickets *t)
{
	if (!t)
		return;
	OPENSSL_cleanse(t->slot, sizeof(t->slot));
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int vnc_ticket_issue(struct vnc_tickets *t, const char *name,
		     const uint8_t token_hash[VMF_HASH_LEN], uint64_t now_ms,
		     uint64_t ttl_ms, char *ret_hex)
{
	uint8_t secret[VNC_TICKET_BYTES];
	struct ticket *free_slot = NULL;

	if (RAND_bytes(secret, sizeof(secret)) != 1)
		return -EIO;
	mutex_lock(&t->lock);
	for (size_t i = 0; i < VNC_TICKET_MAX; i++) {
		struct ticket *k = &t->slot[i];

		if (k->expires && k->expires <= now_ms) {
			OPENSSL_cleanse(k, sizeof(*k));
			k->expires = 0;
		}
		if (!k->expires && !free_slot)
			free_slot = k;
	}
	if (free_slot) {
		memcpy(free_slot->secret, secret, sizeof(secret));
		memcpy(free_slot->token_hash, token_hash, VMF_HASH_LEN);
		snprintf(free_slot->name, sizeof(free_slot->name), "%s", name);
		free_slot->expires = now_ms + (ttl_ms ? ttl_ms : 1);
	}
	mutex_unlock(&t->lock);
	if (free_slot)
		hash_to_hex(secret, sizeof(secret), ret_hex);
	OPENSSL_cleanse(secret, sizeof(secret));
	return free_slot ? 0 : -ENOSPC;
}

int vnc_ticket_take(struct vnc_tickets *t, const char *name, const char *hex,
		    uint64_t now_ms, uint8_t ret_token_hash[VMF_HASH_LEN])
{
	uint8_t secret[VNC_TICKET_BYTES];
	struct ticket *hit = NULL;
	int r = -EACCES;

	if (strlen(hex) != VNC_TICKET_HEX_LEN ||
	    hash_from_hex(hex, secret, sizeof(secret)) < 0)
		return -EACCES;
	mutex_lock(&t->lock);
	/* Every live slot is compared, in constant time each: the time
	 * taken says nothing about how close a guess came. */
	for (size_t i = 0; i < VNC_TICKET_MAX; i++) {
		struct ticket *k = &t->slot[i];
		bool same =
		    CRYPTO_memcmp(k->secret, secret, sizeof(secret)) == 0;

		if (k->expires && same)
			hit = k;
	}
	if (hit) {
		if (hit->expires > now_ms && strcmp(hit->name, name) == 0) {
			memcpy(ret_token_hash, hit->token_hash, VMF_HASH_LEN);
			r = 0;
		}
		OPENSSL_cleanse(hit, sizeof(*hit)); /* used: gone */
		hit->expires = 0;
	}
	mutex_unlock(&t->lock);
	OPENSSL_cleanse(secret, sizeof(secret));
	return r;
}
