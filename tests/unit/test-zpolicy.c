/* SPDX-License-Identifier: MIT */
/* Unit tests for fusefs/zpolicy.c, fed synthetic samples: on and off
 * never change, auto starts asking for zstd, probes every other
 * background request until both ways are measured and then one in
 * ZPOLICY_PROBE_EVERY, backing off to one in ZPOLICY_PROBE_MAX while
 * the probes confirm the choice, switches to raw when raw is clearly faster and
 * back when it slows, ignores replies the server sent raw and short
 * ranges, does not flap on noise within the margin, and averages
 * times, not rates. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "zpolicy.h"
#include "tap.h"

#define MIB (1024.0 * 1024.0)

/* A completed 1 MiB background range at mib_s MiB/s. */
static void feed(struct zpolicy *z, bool asked, bool compressed, double mib_s)
{
	uint64_t bytes = 1 << 20;

	zpolicy_sample(z, asked, compressed, bytes,
		       (uint64_t)((double)bytes * 1e9 / (mib_s * MIB)));
}

static struct zpolicy_stats get(struct zpolicy *z)
{
	struct zpolicy_stats st;

	zpolicy_get(z, &st);
	return st;
}

/* Both ways measured: the way in use at zstd_mib_s and raw_mib_s. */
static void warm(struct zpolicy *z, double zstd_mib_s, double raw_mib_s)
{
	for (int i = 0; i < ZPOLICY_MIN_SAMPLES; i++) {
		feed(z, true, true, zstd_mib_s);
		feed(z, false, false, raw_mib_s);
	}
}

static void test_fixed(void)
{
	struct zpolicy on, off;

	zpolicy_init(&on, ZPOLICY_ON);
	zpolicy_init(&off, ZPOLICY_OFF);
	for (int i = 0; i < 100; i++) {
		check(zpolicy_ask(&on, true));
		check(zpolicy_ask(&on, false));
		check(!zpolicy_ask(&off, true));
		check(!zpolicy_ask(&off, false));
	}
	/* Samples are kept for status, but never change the way. */
	warm(&on, 10, 1000);
	warm(&off, 1000, 10);
	check(get(&on).zstd);
	check(!get(&off).zstd);
	check_uint(get(&on).switches, ==, 0);
	check_uint(get(&off).probes, ==, 0);
	check_uint(get(&on).samples[ZPOLICY_RAW], ==, ZPOLICY_MIN_SAMPLES);
	check_uint((uint64_t)get(&on).goodput[ZPOLICY_RAW], ==, 1000 * MIB);
	zpolicy_fini(&on);
	zpolicy_fini(&off);
}

static void test_probe_rate(void)
{
	struct zpolicy z;
	unsigned other = 0;

	zpolicy_init(&z, ZPOLICY_AUTO);
	check(get(&z).zstd);
	/* Unmeasured: every other background request goes raw; demand
	 * requests always go the way in use. */
	for (int i = 0; i < 16; i++) {
		check(zpolicy_ask(&z, false));
		other += !zpolicy_ask(&z, true);
	}
	check_uint(other, ==, 8);
	/* Measured (zstd clearly faster, so no switch): one in 8. */
	warm(&z, 100, 50);
	check(get(&z).zstd);
	other = 0;
	for (int i = 0; i < 80; i++)
		other += !zpolicy_ask(&z, true);
	check_uint(other, ==, 80 / ZPOLICY_PROBE_EVERY);
	check_uint(get(&z).probes, ==, 8 + 80 / ZPOLICY_PROBE_EVERY);
	for (int i = 0; i < 20; i++)
		check(zpolicy_ask(&z, false));
	zpolicy_fini(&z);
}

static void test_switch(void)
{
	struct zpolicy z;
	unsigned other = 0;
	int i;

	zpolicy_init(&z, ZPOLICY_AUTO);
	/* No decision before both ways have their samples. */
	for (i = 0; i < ZPOLICY_MIN_SAMPLES - 1; i++)
		feed(&z, false, false, 1000);
	feed(&z, true, true, 100);
	check(get(&z).zstd);
	/* Loopback: raw far faster, zstd goes. */
	warm(&z, 100, 1000);
	check(!get(&z).zstd);
	check_uint(get(&z).switches, ==, 1);
	check(!zpolicy_ask(&z, false));
	/* The probes now ask for zstd. */
	for (i = 0; i < 2 * ZPOLICY_PROBE_MAX; i++)
		other += zpolicy_ask(&z, true);
	check_uint(other, >=, 2);
	/* The link slows: raw transfers at 20 MiB/s, zstd probes at 100:
	 * back to zstd after a few probes. */
	for (i = 0; i < 100 && !get(&z).zstd; i++) {
		feed(&z, false, false, 20);
		feed(&z, true, true, 100);
	}
	check(get(&z).zstd);
	check_uint(get(&z).switches, ==, 2);
	check_int(i, <, 40);
	check(zpolicy_ask(&z, false));
	zpolicy_fini(&z);
}

/* n background requests; each probe (the way not in use) completes at
 * once at probe_mib_s.  Returns the number of probes. */
static unsigned run_probes(struct zpolicy *z, int n, double probe_mib_s)
{
	unsigned probes = 0;

	for (int i = 0; i < n; i++) {
		bool zstd = zpolicy_ask(z, true);

		if (zstd == get(z).zstd)
			continue;
		probes++;
		feed(z, zstd, true, probe_mib_s);
	}
	return probes;
}

static void test_backoff(void)
{
	struct zpolicy z;
	unsigned p;

	zpolicy_init(&z, ZPOLICY_AUTO);
	warm(&z, 100, 30);
	/* Raw clearly slower: the interval doubles up to 1 in 64. */
	(void)run_probes(&z, 1000, 30); /* backing off */
	p = run_probes(&z, 64 * ZPOLICY_PROBE_MAX, 30);
	check_uint(p, >=, 63);
	check_uint(p, <=, 65);
	/* Raw now close (within the margin): once the averaged ratio says
	 * so (16 probes from 3.3 to 1.32), 1 in 8 again. */
	p = run_probes(&z, 16 * ZPOLICY_PROBE_MAX, 95);
	check_uint(p, >=, 16);
	p = run_probes(&z, 80 * ZPOLICY_PROBE_EVERY, 95);
	check_uint(p, >=, 79);
	check_uint(p, <=, 81);
	check(get(&z).zstd);
	check_uint(get(&z).switches, ==, 0);
	zpolicy_fini(&z);
}

static void test_raw_by_server(void)
{
	struct zpolicy z;

	zpolicy_init(&z, ZPOLICY_AUTO);
	warm(&z, 100, 90);
	/* Asked, but the server sent them raw (incompressible): however
	 * fast, they are not zstd's samples and decide nothing. */
	for (int i = 0; i < 100; i++)
		feed(&z, true, false, 5000);
	check(get(&z).zstd);
	check_uint(get(&z).samples[ZPOLICY_ZSTD], ==, ZPOLICY_MIN_SAMPLES);
	check_uint((uint64_t)get(&z).goodput[ZPOLICY_ZSTD], ==, 100 * MIB);
	/* Short ranges and zero times are not samples either. */
	zpolicy_sample(&z, false, false, ZPOLICY_MIN_BYTES - 1, 1);
	zpolicy_sample(&z, false, false, 1 << 20, 0);
	check_uint(get(&z).samples[ZPOLICY_RAW], ==, ZPOLICY_MIN_SAMPLES);
	check(get(&z).zstd);
	zpolicy_fini(&z);
}

static void test_no_flapping(void)
{
	struct zpolicy z;
	unsigned seed = 1;

	zpolicy_init(&z, ZPOLICY_AUTO);
	warm(&z, 200, 200);
	/* Both ways at 200 MiB/s +-8%, samples in random order. */
	for (int i = 0; i < 2000; i++) {
		double noise =
		    1 + 0.08 * ((double)rand_r(&seed) / RAND_MAX * 2 - 1);

		feed(&z, rand_r(&seed) % 2, true, 200 * noise);
	}
	check_uint(get(&z).switches, ==, 0);
	check(get(&z).zstd);
	zpolicy_fini(&z);
}

static void test_fast_outliers(void)
{
	struct zpolicy z;

	zpolicy_init(&z, ZPOLICY_AUTO);
	warm(&z, 100, 80);
	/* Raw mostly at 80 MiB/s, one transfer in 8 at 2000 (a quiet
	 * moment): rates averaged would say ~320, but the time a MiB takes
	 * is ~91 MiB/s' worth, within the margin. */
	for (int i = 0; i < 200; i++)
		feed(&z, false, false, i % 8 == 7 ? 2000 : 80);
	check(get(&z).zstd);
	check_uint(get(&z).switches, ==, 0);
	check_uint((uint64_t)(get(&z).goodput[ZPOLICY_RAW] / MIB), <, 115);
	zpolicy_fini(&z);
}

static void test_parse(void)
{
	static const char *const bad[] = {"", "ON", "yes", "auto ", "of", "1"};
	enum zpolicy_mode m = ZPOLICY_ON;

	check_int(zpolicy_parse("auto", &m), ==, 0);
	check_int(m, ==, ZPOLICY_AUTO);
	check_int(zpolicy_parse("off", &m), ==, 0);
	check_int(m, ==, ZPOLICY_OFF);
	check_int(zpolicy_parse("on", &m), ==, 0);
	check_int(m, ==, ZPOLICY_ON);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		check_int(zpolicy_parse(bad[i], &m), ==, -EINVAL);
	check_int(m, ==, ZPOLICY_ON);
	check(strcmp(zpolicy_name(ZPOLICY_AUTO), "auto") == 0);
	check(strcmp(zpolicy_name(ZPOLICY_OFF), "off") == 0);
}

int main(void)
{
	TEST(test_fixed(), "on and off never change the way");
	TEST(test_probe_rate(), "auto probes every other, then 1 in %d",
	     ZPOLICY_PROBE_EVERY);
	TEST(test_switch(), "auto switches to raw when faster, back when "
			    "it slows");
	TEST(test_backoff(),
	     "probes back off to 1 in %d while the choice is "
	     "clear",
	     ZPOLICY_PROBE_MAX);
	TEST(test_raw_by_server(), "raw-by-server replies and short ranges "
				   "decide nothing");
	TEST(test_no_flapping(), "no switch on noise within the margin");
	TEST(test_fast_outliers(), "a few fast transfers do not hide slow "
				   "ones");
	TEST(test_parse(), "auto, on, off parsed; anything else refused");
	return test_done();
}
