/* SPDX-License-Identifier: MIT */
/* Following a VM's console (see console.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "io.h"

#include "../fusefs/crypto.h"
#include "console.h"

struct follow {
	uint64_t *off;
	volatile atomic_int *stop;
	long status;
	int error;
};

static size_t on_data(char *p, size_t size, size_t n, void *opaque)
{
	struct follow *fw = opaque;
	size_t len = size * n;

	if (fw->status == 200 && full_write(STDOUT_FILENO, p, len) < 0) {
		fw->error = -EIO;
		return 0; /* stdout is gone: stop */
	}
	if (fw->status == 200)
		*fw->off += len;
	return len;
}

/* The status line, before any body. */
static size_t on_header(char *p, size_t size, size_t n, void *opaque)
{
	struct follow *fw = opaque;
	long st;

	if (size * n > 9 && strncmp(p, "HTTP/", 5) == 0 &&
	    sscanf(p, "HTTP/%*s %ld", &st) == 1)
		fw->status = st;
	return size * n;
}

static int on_progress(void *opaque, curl_off_t a, curl_off_t b, curl_off_t c,
		       curl_off_t d)
{
	struct follow *fw = opaque;

	(void)a;
	(void)b;
	(void)c;
	(void)d;
	return *fw->stop ? 1 : 0;
}

int console_follow(const struct tool_opts *o, const char *base,
		   const char *token, const char *name, uint64_t *off,
		   volatile atomic_int *stop, char *why)
{
	struct follow fw = {.off = off, .stop = stop};
	char url[1024], auth[512], err[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = NULL;
	CURL *e = curl_easy_init();
	CURLcode rc;

	if (!e)
		return -ENOMEM;
	snprintf(url, sizeof(url), "%s/v1/images/%s/console?offset=%" PRIu64,
		 base, name, *off);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	hdr = curl_slist_append(NULL, auth);
	crypto_cleanse(auth, sizeof(auth));
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "vmferry");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &fw);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &fw);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, &fw);
	tool_curl_tls(o, e);
	rc = curl_easy_perform(e);
	curl_easy_cleanup(e);
	curl_slist_free_all(hdr);
	if (*stop)
		return -EINTR;
	if (fw.error)
		return fw.error;
	if (fw.status == 404)
		return -ENOENT;
	if (rc != CURLE_OK || fw.status != 200) {
		snprintf(why, 256, "%s",
			 rc != CURLE_OK ? (*err ? err : curl_easy_strerror(rc))
					: "unexpected HTTP status");
		return -EIO;
	}
	return 0;
}
