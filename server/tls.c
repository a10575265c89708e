/* SPDX-License-Identifier: MIT */
/* Self-signed certificate generation.
 *
 * Owns nothing past one call.  ECDSA P-256: fast to make, and accepted
 * by both TLS stacks involved (GnuTLS inside libmicrohttpd on the server,
 * OpenSSL inside libcurl on the client).  OpenSSL errors are translated
 * here, at the module boundary, into -EIO.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "io.h"
#include "log.h"
#include "util.h"

#include "tls.h"

#define TLS_DAYS	 3650
#define TLS_SERIAL_BYTES 16

static void tls_log_errors(const char *what)
{
	unsigned long e;
	char buf[256];

	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		log_debug(LOG_CAT_HTTP, "%s: %s", what, buf);
	}
}

/* True if s can be a DNS name in a certificate: letters, digits, '-'
 * and '.', not empty, not "localhost" (already there). */
static bool dns_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253 || strcmp(s, "localhost") == 0 || s[0] == '-' ||
	    s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '.'))
			return false;
	return true;
}

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -EIO;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -EIO;
}

static int set_serial(X509 *x)
{
	unsigned char rnd[TLS_SERIAL_BYTES];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -EIO;
	rnd[0] &= 0x7f; /* a positive serial number (RFC 5280 4.1.2.2) */
	bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
	ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	return ok ? 0 : -EIO;
}

static int set_names(X509 *x, const char *host)
{
	X509_NAME *name = X509_get_subject_name(x);
	char san[400];

	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
					(const unsigned char *)"vmferry", -1,
					-1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)host, -1, -1,
					0) ||
	    !X509_set_issuer_name(x, name))
		return -EIO;
	snprintf(san, sizeof(san), "IP:127.0.0.1,IP:::1,DNS:localhost%s%s",
		 strcmp(host, "localhost") ? ",DNS:" : "",
		 strcmp(host, "localhost") ? host : "");
	return add_ext(x, NID_subject_alt_name, san);
}

static X509 *make_cert(EVP_PKEY *key, const char *host)
{
	X509 *x = X509_new();

	if (!x)
		return NULL;
	if (!X509_set_version(x, 2) || set_serial(x) < 0 ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), TLS_DAYS, 0, NULL) ||
	    !X509_set_pubkey(x, key) || set_names(x, host) < 0 ||
	    add_ext(x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") <
		0 ||
	    add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign") <
		0 ||
	    add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
	    add_ext(x, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(x, NID_authority_key_identifier, "keyid:always") < 0 ||
	    !X509_sign(x, key, EVP_sha256())) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Write what a PEM writer put into bio to path atomically. */
static int write_bio(BIO *bio, const char *path, mode_t mode)
{
	char *data;
	long len = BIO_get_mem_data(bio, &data);

	if (len <= 0)
		return -EIO;
	return write_file_atomic(path, data, (size_t)len, mode);
}

int tls_make_self_signed(const char *cert_path, const char *key_path)
{
	char host[256] = "localhost";
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	BIO *kbio = NULL, *cbio = NULL;
	int r = -EIO;

	if (gethostname(host, sizeof(host) - 1) < 0 || !dns_name_ok(host))
		snprintf(host, sizeof(host), "localhost");
	key = EVP_EC_gen("P-256");
	if (!key)
		goto out;
	x = make_cert(key, host);
	kbio = BIO_new(BIO_s_secmem());
	cbio = BIO_new(BIO_s_mem());
	if (!x || !kbio || !cbio ||
	    !PEM_write_bio_PrivateKey(kbio, key, NULL, NULL, 0, NULL, NULL) ||
	    !PEM_write_bio_X509(cbio, x))
		goto out;
	r = write_bio(kbio, key_path, 0600);
	if (r == 0)
		r = write_bio(cbio, cert_path, 0644);
out:
	if (r == -EIO)
		tls_log_errors("making the certificate");
	BIO_free(kbio); /* a secmem BIO clears its memory when freed */
	BIO_free(cbio);
	X509_free(x);
	EVP_PKEY_free(key);
	return r;
}
