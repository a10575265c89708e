/* SPDX-License-Identifier: MIT */
/* Compression policy: whether a range request asks vmferry-server for
 * zstd (Vmferry-Accept-Encoding, docs/protocol.md).
 *
 * ZPOLICY_ON always asks, ZPOLICY_OFF never.  ZPOLICY_AUTO decides from
 * this mount's own transfers, hydration's background ranges:
 *   - It starts by asking (the safe choice on a slow link) and sends
 *     every other background request the other way until each way has
 *     ZPOLICY_MIN_SAMPLES samples.
 *   - Then every other request goes the way in use, and every
 *     ZPOLICY_PROBE_EVERY-th background request the other way (a probe);
 *     while the averaged ratio (below) says the other way is slower by
 *     more than twice the margin, each probe doubles the interval, up
 *     to ZPOLICY_PROBE_MAX, so a clear choice costs few probes (each one
 *     is a range sent the slower way); once it is closer, the interval
 *     is ZPOLICY_PROBE_EVERY again.
 *   - A sample is a transfer's time per decoded byte (wall time from
 *     start to end: the server's compression, the wire and the client's
 *     decoding).  The way in use keeps an exponentially weighted average
 *     of its own; a probe is compared with that average as it stands
 *     when the probe ends, and the ratio is averaged too.  Pairing them
 *     so matters on a shared machine: load that slows everything for a
 *     while slows the probe and the average it is compared with alike,
 *     whereas an average of the rare probes alone would be stale.
 *     Averaging times (not rates) keeps a few transfers that happen to
 *     be fast from hiding slow ones.
 *   - It switches when the ratio says the other way is faster by more
 *     than ZPOLICY_MARGIN, so noise within the margin does not make it
 *     flap.
 * A reply the server sent raw although zstd was asked (an incompressible
 * range) says nothing about compression and is not a sample; nor is a
 * range shorter than ZPOLICY_MIN_BYTES (latency, not rate, decides its
 * time).  On an image that does not compress, the zstd way thus gets no
 * samples and AUTO keeps asking (and alternating), which costs nothing.
 * The reported goodputs are the inverse of the averages: the way in
 * use's own, and the other way's as the ratio puts it (so the way in use
 * is never beaten by more than the margin).  ON and OFF keep each way's
 * own average, for `vmferry status`.
 *
 * Threads: the fetch thread asks and feeds; any thread may read the
 * stats.  One lock (z->lock) guards the state; it is a leaf (nothing is
 * called while it is held) and never blocks for long.
 */
#ifndef VMFERRY_ZPOLICY_H
#define VMFERRY_ZPOLICY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* ZPOLICY_OFF is 0, so a zeroed fetch_config never asks. */
enum zpolicy_mode {
	ZPOLICY_OFF,
	ZPOLICY_ON,
	ZPOLICY_AUTO,
};

#define ZPOLICY_PROBE_EVERY 8		/* one background request in 8 */
#define ZPOLICY_PROBE_MAX   64		/* backed off: one in 64 */
#define ZPOLICY_MIN_SAMPLES 8		/* per way, before any switch */
#define ZPOLICY_MIN_BYTES   (256 << 10) /* smaller ranges: no sample */
#define ZPOLICY_ALPHA	    0.125	/* weight of a new sample, or ratio */
#define ZPOLICY_MARGIN	    0.15	/* the other way must be 15% faster */

/* Index of the averages: [ZPOLICY_RAW] not asked, [ZPOLICY_ZSTD] asked. */
#define ZPOLICY_RAW  0
#define ZPOLICY_ZSTD 1

struct zpolicy_stats {
	enum zpolicy_mode mode;
	bool zstd;	     /* the way in use: asking for zstd */
	double goodput[2];   /* bytes/s, by ZPOLICY_RAW/_ZSTD; 0: none */
	uint64_t samples[2]; /* samples behind each average */
	uint64_t probes;     /* background requests sent the other way */
	uint64_t switches;   /* changes of the way in use */
};

struct zpolicy {
	pthread_mutex_t lock; /* protects everything below */
	struct zpolicy_stats st;
	double ns_per_byte[2]; /* each way's own average */
	/* Once both ways are measured (AUTO): the other way's time per
	 * byte over the way in use's average, averaged over the probes. */
	double rel;
	bool paired;	     /* rel is set */
	unsigned interval;   /* probe every interval-th background request */
	uint64_t next_probe; /* bg_count of the next probe */
	uint64_t bg_count;   /* background requests asked about */
};

/* Start in mode (assert: a valid one), asking for zstd unless OFF. */
void zpolicy_init(struct zpolicy *z, enum zpolicy_mode mode);
void zpolicy_fini(struct zpolicy *z);

/* Should the request about to start ask for zstd?  background: one of
 * hydration's ranges, which AUTO may send the other way as a probe.
 * Never blocks. */
bool zpolicy_ask(struct zpolicy *z, bool background);

/* A completed background range: asked (what zpolicy_ask() said),
 * compressed (the reply came as zstd), bytes decoded in ns of wall time
 * from start to end.  Updates the averages and, in AUTO, the way in
 * use.  Never blocks. */
void zpolicy_sample(struct zpolicy *z, bool asked, bool compressed,
		    uint64_t bytes, uint64_t ns);

/* A snapshot.  Any thread. */
void zpolicy_get(struct zpolicy *z, struct zpolicy_stats *ret);

/* "auto", "on" or "off" into *ret; -EINVAL for anything else. */
int zpolicy_parse(const char *s, enum zpolicy_mode *ret);

/* "auto", "on" or "off". */
const char *zpolicy_name(enum zpolicy_mode mode);

#endif
