/* Opaque C API over host BearSSL for the firmware twin (see twin_tls.c). */
#ifndef TWIN_TLS_H
#define TWIN_TLS_H

#include <stddef.h>
#include <stdint.h>

typedef struct twin_tls twin_tls;

enum {
	TWIN_MODE_TRUST_ANCHORS = 0,
	TWIN_MODE_INSECURE = 1,
	TWIN_MODE_FINGERPRINT = 2,
	TWIN_MODE_KNOWN_KEY = 3,
	TWIN_MODE_SELF_SIGNED = 4,
};
enum { TWIN_KEY_RSA = 1, TWIN_KEY_EC = 2 };

twin_tls *twin_tls_new(size_t recv_size, size_t xmit_size);
void twin_tls_free(twin_tls *t);
int twin_tls_add_anchor(twin_tls *t, const unsigned char *der, size_t len);
void twin_tls_set_time(twin_tls *t, uint64_t unix_seconds);
void twin_tls_set_mode(twin_tls *t, int mode);
void twin_tls_set_fingerprint(twin_tls *t, const unsigned char fp[20]);
int twin_tls_set_known_rsa(twin_tls *t, const unsigned char *n, size_t nlen,
	const unsigned char *e, size_t elen);
int twin_tls_set_known_ec(twin_tls *t, int curve, const unsigned char *q, size_t qlen);
void twin_tls_set_versions(twin_tls *t, unsigned min, unsigned max);
int twin_tls_add_client_cert(twin_tls *t, const unsigned char *der, size_t len);
int twin_tls_set_client_key(twin_tls *t, const unsigned char *der, size_t len);
int twin_tls_reset(twin_tls *t, const char *server_name);
unsigned twin_tls_state(const twin_tls *t);
int twin_tls_last_error(const twin_tls *t);
unsigned twin_tls_version(const twin_tls *t);
unsigned twin_tls_suite(const twin_tls *t);
unsigned twin_tls_max_frag_len(const twin_tls *t);
unsigned char *twin_tls_sendrec_buf(twin_tls *t, size_t *len);
void twin_tls_sendrec_ack(twin_tls *t, size_t len);
unsigned char *twin_tls_recvrec_buf(twin_tls *t, size_t *len);
void twin_tls_recvrec_ack(twin_tls *t, size_t len);
unsigned char *twin_tls_sendapp_buf(twin_tls *t, size_t *len);
void twin_tls_sendapp_ack(twin_tls *t, size_t len);
unsigned char *twin_tls_recvapp_buf(twin_tls *t, size_t *len);
void twin_tls_recvapp_ack(twin_tls *t, size_t len);
void twin_tls_flush(twin_tls *t);
void twin_tls_close(twin_tls *t);

#endif
