/* SPDX-License-Identifier: MIT */
/* Shared client tool options (see toolopts.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "log.h"

#include "../fusefs/crypto.h"
#include "../fusefs/fetch.h"
#include "../fusefs/remote.h"
#include "toolopts.h"

enum {
	OPT_CACHE = 1000,
	OPT_KEY_FILE,
	OPT_PASS,
	OPT_PASS_FILE,
	OPT_TOKEN_FILE,
	OPT_CACERT,
	OPT_PIN,
	OPT_INSECURE,
};

static const struct {
	unsigned group;
	struct option opt;
} shared[] = {
    {TOOL_OPT_CACHE, {"cache", required_argument, NULL, OPT_CACHE}},
    {TOOL_OPT_KEYS, {"key-file", required_argument, NULL, OPT_KEY_FILE}},
    {TOOL_OPT_KEYS, {"passphrase", no_argument, NULL, OPT_PASS}},
    {TOOL_OPT_KEYS,
     {"passphrase-file", required_argument, NULL, OPT_PASS_FILE}},
    {TOOL_OPT_SERVER, {"token-file", required_argument, NULL, OPT_TOKEN_FILE}},
    {TOOL_OPT_SERVER, {"cacert", required_argument, NULL, OPT_CACERT}},
    {TOOL_OPT_SERVER, {"pin-sha256", required_argument, NULL, OPT_PIN}},
    {TOOL_OPT_SERVER, {"insecure", no_argument, NULL, OPT_INSECURE}},
};

#define NSHARED	  (sizeof(shared) / sizeof(shared[0]))
#define EXTRA_MAX 24

/* A shared option into o; false if c is not one. */
static bool take_shared(struct tool_opts *o, int c, const char *arg)
{
	switch (c) {
	case OPT_CACHE:
		o->cache = arg;
		return true;
	case OPT_KEY_FILE:
		o->keys.key_file = arg;
		return true;
	case OPT_PASS:
		o->keys.passphrase = true;
		return true;
	case OPT_PASS_FILE:
		o->keys.passphrase_file = arg;
		return true;
	case OPT_TOKEN_FILE:
		o->token_file = arg;
		return true;
	case OPT_CACERT:
		o->cacert = arg;
		return true;
	case OPT_PIN:
		o->pin = arg;
		return true;
	case OPT_INSECURE:
		o->insecure = true;
		return true;
	default:
		return false;
	}
}

int tool_parse(int argc, char **argv, struct tool_opts *o,
	       const struct option *extra, tool_opt_fn own, void *opaque,
	       void (*usage)(FILE *out))
{
	struct option all[NSHARED + EXTRA_MAX + 2];
	size_t n = 0;
	int c, r;

	for (size_t i = 0; i < NSHARED; i++)
		if (o->want & shared[i].group)
			all[n++] = shared[i].opt;
	for (size_t i = 0; extra && extra[i].name; i++) {
		if (i == EXTRA_MAX)
			abort(); /* a programming error: more room */
		all[n++] = extra[i];
	}
	all[n++] = (struct option){"help", no_argument, NULL, 'h'};
	all[n] = (struct option){NULL, 0, NULL, 0};
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", all, NULL)) != -1) {
		if (take_shared(o, c, optarg))
			continue;
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c == '?' || !own) {
			usage(stderr);
			return 2;
		}
		r = own(c, optarg, opaque);
		if (r)
			return r;
	}
	if ((o->want & TOOL_OPT_KEYS) && local_key_opts_check(&o->keys, "") < 0)
		return 2;
	if (o->pin) {
		int len = snprintf(o->pin_buf, sizeof(o->pin_buf), "sha256//%s",
				   o->pin);

		if (len < 0 || (size_t)len >= sizeof(o->pin_buf) ||
		    strlen(o->pin) != 44) {
			log_error("--pin-sha256: want the 44-character base64 "
				  "SHA-256 of the server's public key");
			return 2;
		}
	}
	if (o->insecure)
		remote_warn_insecure();
	return -1;
}

void tool_fetch_config(struct tool_opts *o, struct fetch_config *cfg)
{
	cfg->cacert = o->cacert;
	cfg->insecure = o->insecure;
	cfg->pin_sha256 = o->pin ? o->pin_buf : NULL;
}

void tool_curl_tls(const struct tool_opts *o, void *curl_easy)
{
	CURL *e = curl_easy;

	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	if (o->cacert)
		curl_easy_setopt(e, CURLOPT_CAINFO, o->cacert);
	if (o->pin)
		curl_easy_setopt(e, CURLOPT_PINNEDPUBLICKEY, o->pin_buf);
	if (o->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

int tool_image_url(struct tool_opts *o, const char *arg,
		   struct fetch_config *cfg, struct remote_url *url)
{
	const char *why;

	tool_fetch_config(o, cfg);
	if (remote_parse_url(arg, url, &why) < 0) {
		log_error("bad URL \"%s\": %s", arg, why);
		return 2;
	}
	return 0;
}

int tool_read_token(const struct tool_opts *o, char **ret)
{
	return local_load_token(o->token_file, ret);
}

int tool_connect(struct tool_opts *o, const char *base, struct fetch **ret,
		 char **ret_token)
{
	struct fetch_config cfg = {0};
	char *token = NULL;
	int r = tool_read_token(o, &token);

	if (r < 0)
		return r;
	tool_fetch_config(o, &cfg);
	cfg.base_url = base;
	cfg.token = token;
	cfg.connect_timeout_s = 10;
	cfg.stall_timeout_s = 30;
	r = fetch_new(&cfg, ret);
	if (r < 0) {
		crypto_cleanse(token, strlen(token));
		free(token);
		return log_error_errno(r, "starting the fetch engine: %m");
	}
	*ret_token = token;
	return 0;
}
