/* SPDX-License-Identifier: MIT */
/* Compression policy (zpolicy.h): ask for zstd, or not, from measured
 * transfer times.
 *
 * Owns nothing but its averages and counters, under z->lock.  Why each
 * transfer's own time rather than the mount's overall rate: the two
 * ways run side by side (a probe among requests of the way in use), so
 * a probe and the transfers it is compared with see the same link, load
 * and concurrency, and the comparison is fair from the first seconds;
 * an overall rate would need one way to run alone for a while.
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
	z->interval = ZPOLICY_PROBE_EVERY;
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
		if (!z->paired) {
			probe = n % 2 == 1; /* every other, until measured */
		} else {
			probe = n >= z->next_probe;
			if (probe)
				z->next_probe = n + z->interval;
		}
		if (probe) {
			zstd = !zstd;
			z->st.probes++;
		}
	}
	mutex_unlock(&z->lock);
	return zstd;
}

/* The reported goodputs, from the averages.  Under z->lock. */
static void zpolicy_report(struct zpolicy *z)
{
	int cur = z->st.zstd ? ZPOLICY_ZSTD : ZPOLICY_RAW;

	for (int i = 0; i < 2; i++)
		z->st.goodput[i] =
		    z->st.samples[i] ? 1e9 / z->ns_per_byte[i] : 0;
	if (z->paired)
		z->st.goodput[1 - cur] = z->st.goodput[cur] / z->rel;
}

/* A probe's time per byte t, against the way in use's average: the
 * ratio and the probe interval.  Under z->lock. */
static void zpolicy_probed(struct zpolicy *z, double t)
{
	int cur = z->st.zstd ? ZPOLICY_ZSTD : ZPOLICY_RAW;
	const double clear = (1 + ZPOLICY_MARGIN) * (1 + ZPOLICY_MARGIN);

	z->rel += ZPOLICY_ALPHA * (t / z->ns_per_byte[cur] - z->rel);
	/* The average, not this one probe, decides: single probes are
	 * noisy.  (On 100 Mbit/s, where raw was ~1.4x slower per transfer,
	 * backing off on single probes left 59 probes in a hydration of
	 * the large bench image, where steady 1-in-64 would send ~15.) */
	if (z->rel > clear) {
		if (z->interval < ZPOLICY_PROBE_MAX)
			z->interval *= 2;
	} else if (z->interval > ZPOLICY_PROBE_EVERY) {
		z->interval = ZPOLICY_PROBE_EVERY;
		if (z->next_probe > z->bg_count + ZPOLICY_PROBE_EVERY)
			z->next_probe = z->bg_count + ZPOLICY_PROBE_EVERY;
	}
}

/* Switch if the other way is faster by more than the margin.  The way
 * that goes keeps, as its average, what the ratio said it was. */
static void zpolicy_decide(struct zpolicy *z)
{
	int cur = z->st.zstd ? ZPOLICY_ZSTD : ZPOLICY_RAW;

	if (z->rel * (1 + ZPOLICY_MARGIN) >= 1)
		return;
	z->ns_per_byte[1 - cur] = z->ns_per_byte[cur] * z->rel;
	z->rel = 1 / z->rel;
	z->st.zstd = !z->st.zstd;
	z->st.switches++;
	z->interval = ZPOLICY_PROBE_EVERY;
	z->next_probe = z->bg_count + ZPOLICY_PROBE_EVERY;
}

void zpolicy_sample(struct zpolicy *z, bool asked, bool compressed,
		    uint64_t bytes, uint64_t ns)
{
	int i = asked ? ZPOLICY_ZSTD : ZPOLICY_RAW;
	bool in_use;
	double t;

	/* Raw by the server's choice: compression did not take part.
	 * Compressed unasked cannot reach here (fetch_xfer.c refuses). */
	if ((asked && !compressed) || bytes < ZPOLICY_MIN_BYTES || ns == 0)
		return;
	t = (double)ns / (double)bytes;
	mutex_lock(&z->lock);
	in_use = asked == z->st.zstd;
	if (z->paired && !in_use) {
		zpolicy_probed(z, t);
	} else if (z->st.samples[i] == 0) {
		z->ns_per_byte[i] = t;
	} else {
		z->ns_per_byte[i] += ZPOLICY_ALPHA * (t - z->ns_per_byte[i]);
	}
	z->st.samples[i]++;
	if (z->st.mode == ZPOLICY_AUTO && !z->paired && zpolicy_measured(z)) {
		/* Measured side by side: the first ratio. */
		int cur = z->st.zstd ? ZPOLICY_ZSTD : ZPOLICY_RAW;

		z->rel = z->ns_per_byte[1 - cur] / z->ns_per_byte[cur];
		z->paired = true;
		z->next_probe = z->bg_count;
	}
	if (z->paired)
		zpolicy_decide(z);
	zpolicy_report(z);
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
