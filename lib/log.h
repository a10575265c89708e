/* SPDX-License-Identifier: MIT */
/* Logging: levels, run-time debug categories, one swappable sink.
 *
 * Thread-safe: the sink is called with a whole formatted line.  Messages
 * are lower case, without a trailing period, and name their object.
 */
#ifndef VMFERRY_LOG_H
#define VMFERRY_LOG_H

#include <errno.h>
#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Debug categories, one bit each (VMFERRY_DEBUG=fetch,cache or -D all). */
enum log_cat {
	LOG_CAT_NONE = 0,
	LOG_CAT_FETCH = 1u << 0,
	LOG_CAT_CACHE = 1u << 1,
	LOG_CAT_FUSE = 1u << 2,
	LOG_CAT_HYDRATE = 1u << 3,
	LOG_CAT_HTTP = 1u << 4,
	LOG_CAT_STORE = 1u << 5,
	LOG_CAT_CRYPTO = 1u << 6,
	LOG_CAT_ALL = ~0u,
};

typedef void log_sink_fn(enum log_level level, const char *line);

/* Program name shown in front of each line (default "vmferry"). */
void log_set_ident(const char *ident);
/* Lowest level printed (default LOG_LEVEL_INFO). */
void log_set_level(enum log_level level);
/* Parse "fetch,cache" or "all"; returns 0 or -EINVAL (unknown name).
 * Adds to the enabled set and lowers the level to DEBUG. */
int log_enable_debug(const char *spec);
/* Read VMFERRY_DEBUG; unknown names are warned about and ignored. */
void log_init_from_env(void);
/* Replace the sink (NULL restores stderr). */
void log_set_sink(log_sink_fn *sink);
/* Send further lines to syslog (for a daemon). */
void log_use_syslog(void);

bool log_debug_enabled(enum log_cat cat);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Log with errno = -r so %m prints it; returns r (negative). */
int log_msg_errno(enum log_level level, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(...)		log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)		log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)		log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_error_errno(r, ...) log_msg_errno(LOG_LEVEL_ERROR, (r), __VA_ARGS__)
#define log_warn_errno(r, ...)	log_msg_errno(LOG_LEVEL_WARN, (r), __VA_ARGS__)
/* Debug lines test their category before any formatting. */
#define log_debug(cat, ...)                                    \
	do {                                                   \
		if (log_debug_enabled(cat))                    \
			log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__); \
	} while (0)

static inline int log_oom(void)
{
	log_error("out of memory");
	return -ENOMEM;
}

#endif
