/* SPDX-License-Identifier: MIT */
/* Compression policy (zpolicy.h): ask for zstd, or not, from measured
 * goodput.
 *
 * Owns nothing but its averages and counters, under z->lock.  Why
 * goodput per transfer rather than the mount's overall rate: the two
 * ways run side by side (a probe among requests of the way in use), so
 * each transfer's wall time sees the same link, the same load and the
 * same concurrency, and the comparison is fair from the first seconds;
 * an overall rate would need one way to run alone for a while.  The
 * time includes everything the choice changes: the server compressing
 * (before its first byte), fewer bytes on the wire, and the client
 * decoding (on the fetch thread, as the bytes come).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mutex.h"

#include "zpolicy.h"

void zpolicy_init(struct zpolicy *z, enum zpolicy_mode mode)
{
	assert(mode == ZPOLICY_OFF || mode == ZPOLICY_ON ||
	       mode == ZPOLICY_AUTO);
	memset(z, 0, sizeof(*z));
	if (pthread_mutex_init(&z->lock, NULL) != 0)
		abort();
	z->st.mode = mode;
	/* AUTO starts asking: on a slow link that is what pays. */
	z->st.zstd = mode != ZPOLICY_OFF;
}

void zpolicy_fini(struct zpolicy *z)
{
	if (pthread_mutex_destroy(&z->lock) != 0)
		abort();
}

/* Both ways have enough samples to be compared.  Under z->lock. */
static bool zpolicy_measured(const struct zpolicy *z)
{
	return z->st.samples[ZPOLICY_RAW] >= ZPOLICY_MIN_SAMPLES &&
	       z->st.samples[ZPOLICY_ZSTD] >= ZPOLICY_MIN_SAMPLES;
}

bool zpolicy_ask(struct zpolicy *z, bool background)
{
	bool zstd, probe;
	uint64_t n;

	mutex_lock(&z->lock);
	zstd = z->st.zstd;
	if (z->st.mode == ZPOLICY_AUTO && background) {
		n = z->bg_count++;
		/* Every other request until both ways are measured, then
		 * one in ZPOLICY_PROBE_EVERY. */
		probe = zpolicy_measured(z)
			    ? n % ZPOLICY_PROBE_EVERY == ZPOLICY_PROBE_EVERY - 1
			    : n % 2 == 1;
		if (probe) {
			zstd = !zstd;
			z->st.probes++;
		}
	}
	mutex_unlock(&z->lock);
	return zstd;
}

/* In AUTO, use the other way if its average is clearly higher.  Under
 * z->lock. */
static void zpolicy_decide(struct zpolicy *z)
{
	int cur = z->st.zstd ? ZPOLICY_ZSTD : ZPOLICY_RAW;
	int other = 1 - cur;

	if (z->st.mode != ZPOLICY_AUTO || !zpolicy_measured(z))
		return;
	if (z->st.goodput[other] > z->st.goodput[cur] * (1 + ZPOLICY_MARGIN)) {
		z->st.zstd = other == ZPOLICY_ZSTD;
		z->st.switches++;
	}
}

void zpolicy_sample(struct zpolicy *z, bool asked, bool compressed,
		    uint64_t bytes, uint64_t ns)
{
	int i = asked ? ZPOLICY_ZSTD : ZPOLICY_RAW;
	double g;

	/* Raw by the server's choice: compression did not take part.
	 * Compressed unasked cannot reach here (fetch_xfer.c refuses). */
	if ((asked && !compressed) || bytes < ZPOLICY_MIN_BYTES || ns == 0)
		return;
	g = (double)bytes * 1e9 / (double)ns;
	mutex_lock(&z->lock);
	if (z->st.samples[i] == 0)
		z->st.goodput[i] = g;
	else
		z->st.goodput[i] += ZPOLICY_ALPHA * (g - z->st.goodput[i]);
	z->st.samples[i]++;
	zpolicy_decide(z);
	mutex_unlock(&z->lock);
}

void zpolicy_get(struct zpolicy *z, struct zpolicy_stats *ret)
{
	mutex_lock(&z->lock);
	*ret = z->st;
	mutex_unlock(&z->lock);
}

static const char *const zpolicy_names[] = {
    [ZPOLICY_OFF] = "off",
    [ZPOLICY_ON] = "on",
    [ZPOLICY_AUTO] = "auto",
};

int zpolicy_parse(const char *s, enum zpolicy_mode *ret)
{
	for (unsigned i = 0; i < sizeof(zpolicy_names) / sizeof(*zpolicy_names);
	     i++) {
		if (strcmp(s, zpolicy_names[i]) == 0) {
			*ret = (enum zpolicy_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *zpolicy_name(enum zpolicy_mode mode)
{
	assert(mode == ZPOLICY_OFF || mode == ZPOLICY_ON ||
	       mode == ZPOLICY_AUTO);
	return zpolicy_names[mode];
}
