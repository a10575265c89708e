/* SPDX-License-Identifier: MIT */
/* Self-signed TLS certificate generation (OpenSSL).
 *
 * Stateless; any thread.
 */
#ifndef VMFERRY_TLS_H
#define VMFERRY_TLS_H

/* Make an ECDSA P-256 key and a self-signed certificate for it, valid
 * for ten years, that is its own trust anchor (CA:TRUE, so `curl
 * --cacert cert.pem` accepts it) and names 127.0.0.1, ::1, localhost
 * and this host's name.  Writes key_path (mode 0600) and cert_path
 * (mode 0644) atomically.  Returns 0, -EIO (OpenSSL failed; the detail
 * is logged at debug level, category "http") or an I/O -errno. */
int tls_make_self_signed(const char *cert_path, const char *key_path);

#endif
