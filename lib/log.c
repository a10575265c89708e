/* SPDX-License-Identifier: MIT */
/* Logging.
 *
 * Owns the process-wide log settings.  Settings are changed at start-up,
 * before threads exist; log_msg() may be called from any thread.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "log.h"

static const char *log_ident = "vmferry";
static enum log_level log_level = LOG_LEVEL_INFO;
/* Relaxed: read by every thread, written only at start-up. */
static atomic_uint log_cats;
static log_sink_fn *log_sink;
static bool log_syslog;

static const struct {
	const char *name;
	enum log_cat cat;
} log_cat_names[] = {
    {"fetch", LOG_CAT_FETCH},	{"cache", LOG_CAT_CACHE},
    {"fuse", LOG_CAT_FUSE},	{"hydrate", LOG_CAT_HYDRATE},
    {"http", LOG_CAT_HTTP},	{"store", LOG_CAT_STORE},
    {"crypto", LOG_CAT_CRYPTO}, {"all", LOG_CAT_ALL},
};

void log_set_ident(const char *ident)
{
	log_ident = ident;
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

void log_set_sink(log_sink_fn *sink)
{
	log_sink = sink;
}

void log_use_syslog(void)
{
	openlog(log_ident, LOG_PID, LOG_DAEMON);
	log_syslog = true;
}

static int log_cat_lookup(const char *name, size_t len, unsigned *ret)
{
	for (size_t i = 0; i < sizeof(log_cat_names) / sizeof(log_cat_names[0]);
	     i++) {
		if (strlen(log_cat_names[i].name) == len &&
		    strncasecmp(log_cat_names[i].name, name, len) == 0) {
			*ret = log_cat_names[i].cat;
			return 0;
		}
	}
	return -EINVAL;
}

int log_enable_debug(const char *spec)
{
	unsigned cats = 0;
	const char *p = spec;

	while (*p) {
		size_t len = strcspn(p, ",");
		unsigned c;

		if (len > 0) {
			if (log_cat_lookup(p, len, &c) < 0)
				return -EINVAL;
			cats |= c;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	atomic_fetch_or_explicit(&log_cats, cats, memory_order_relaxed);
	log_level = LOG_LEVEL_DEBUG;
	return 0;
}

void log_init_from_env(void)
{
	const char *spec = getenv("VMFERRY_DEBUG");

	if (spec && *spec && log_enable_debug(spec) < 0)
		log_warn("VMFERRY_DEBUG: unknown category in \"%s\" (known: "
			 "fetch, cache, fuse, hydrate, http, store, crypto, "
			 "all)",
			 spec);
}

bool log_debug_enabled(enum log_cat cat)
{
	return atomic_load_explicit(&log_cats, memory_order_relaxed) & cat;
}

__attribute__((format(printf, 2, 0))) static void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	static const char *const prefix[] = {"error: ", "warning: ", "",
					     "debug: "};
	static const int syslog_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO,
					  LOG_DEBUG};
	char line[1024];

	if (level > log_level)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (log_sink) {
		log_sink(level, line);
		return;
	}
	if (log_syslog) {
		syslog(syslog_prio[level], "%s", line);
		return;
	}
	/* One fprintf per line keeps lines from threads whole. */
	fprintf(stderr, "%s: %s%s\n", log_ident, prefix[level], line);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
	errno = saved;
}

int log_msg_errno(enum log_level level, int r, const char *fmt, ...)
{
	va_list ap;

	errno = r < 0 ? -r : r;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
	errno = r < 0 ? -r : r;
	return r;
}
