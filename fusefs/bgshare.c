/* SPDX-License-Identifier: MIT */
/* Background's share of the link while a guest boots.  See bgshare.h.
 *
 * Why this rule (bench/results/NOTES.md, "Hydration that gives way to a
 * booting guest"): a TCG boot reads in bursts with gaps of a few hundred
 * ms between them.  With a fixed 200 ms quiet time after demand and one
 * background request allowed meanwhile, hydration filled every gap at
 * the link's full rate, and on a low-latency link even one background
 * request at a time keeps the link busy: demand then shared the link
 * with 1 MiB ranges, and the server sent 2.1x what the guest read
 * before the boot was over.  So, while demand is recent:
 *   - the quiet time follows the guest: 3x the average gap between its
 *     bursts (gaps under BGSHARE_BURST_GAP_NS are within a burst; a gap
 *     of BGSHARE_QUIET_MAX_NS or more means the guest paused, and the
 *     average starts again), from 200 ms up to 2 s;
 *   - background bytes are paced to a tenth of the fastest delivery
 *     rate the engine has seen over a BGSHARE_WINDOW_NS window (the
 *     link's rate as this mount knows it; BGSHARE_MIN_RATE before any
 *     window), through the engine's one token bucket;
 *   - one background request at a time, as before.
 * Once the quiet time has passed with no demand, background gets every
 * slot and the user's rate again: hydration alone is not slowed.  But a
 * booting guest also pauses for seconds (a trace of a Debian boot under
 * TCG: gaps of 2-6 s between phases of reading, the link idle), and
 * when it reads again its first replies share the link with what
 * background has in flight: four 1 MiB ranges hold a 100 Mbit/s link
 * for a third of a second.  So for BGSHARE_RECENT_NS after a burst of
 * demand that followed a gap the limit says "recent" and hydration asks
 * for short ranges (hydrate.c).  Not after the mount's own first
 * requests, back to back: with 256 KiB ranges for its first 10 s,
 * hydration alone on loopback took 9.9 s where 1 MiB ones took 6.7.
 */
#include "bgshare.h"

void bgshare_init(struct bgshare *s, uint64_t now)
{
	*s = (struct bgshare){.win_start_ns = now};
}

void bgshare_demand_start(struct bgshare *s, uint64_t now)
{
	if (s->idle_since_ns && now > s->idle_since_ns) {
		uint64_t gap = now - s->idle_since_ns;

		if (gap >= BGSHARE_BURST_GAP_NS)
			s->burst_ns = now;
		if (gap >= BGSHARE_QUIET_MAX_NS)
			s->gap_ns = 0; /* a pause: start again */
		else if (gap >= BGSHARE_BURST_GAP_NS)
			s->gap_ns = s->gap_ns ? (s->gap_ns + gap) / 2 : gap;
	}
	s->idle_since_ns = 0;
	s->demand_seen_ns = now;
}

void bgshare_demand_end(struct bgshare *s, uint64_t now, bool idle)
{
	s->demand_seen_ns = now;
	if (idle)
		s->idle_since_ns = now;
}

void bgshare_delivered(struct bgshare *s, uint64_t now, uint64_t bytes)
{
	if (now >= s->win_start_ns + BGSHARE_WINDOW_NS) {
		uint64_t bps = (uint64_t)((double)s->win_bytes * 1e9 /
					  (double)(now - s->win_start_ns));

		if (bps > s->peak_bps)
			s->peak_bps = bps;
		s->win_start_ns = now;
		s->win_bytes = 0;
	}
	s->win_bytes += bytes;
}

uint64_t bgshare_quiet_ns(const struct bgshare *s)
{
	uint64_t q = 3 * s->gap_ns;

	if (q < BGSHARE_QUIET_MIN_NS)
		return BGSHARE_QUIET_MIN_NS;
	return q > BGSHARE_QUIET_MAX_NS ? BGSHARE_QUIET_MAX_NS : q;
}

void bgshare_decide(const struct bgshare *s, uint64_t now,
		    unsigned demand_inflight, unsigned max_background,
		    uint64_t user_rate, struct bgshare_limit *ret)
{
	uint64_t until = s->demand_seen_ns + bgshare_quiet_ns(s);
	uint64_t share;

	*ret = (struct bgshare_limit){
	    .slots = max_background,
	    .rate = user_rate,
	    .recent = s->burst_ns && now < s->burst_ns + BGSHARE_RECENT_NS};
	if (!demand_inflight && (!s->demand_seen_ns || now >= until))
		return;
	share = s->peak_bps / BGSHARE_DIVISOR;
	if (share < BGSHARE_MIN_RATE)
		share = BGSHARE_MIN_RATE;
	ret->restricted = true;
	ret->slots = max_background ? 1 : 0;
	ret->rate = user_rate && user_rate < share ? user_rate : share;
	ret->until_ns = demand_inflight ? 0 : until;
}
