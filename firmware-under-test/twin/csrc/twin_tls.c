/*
 * The firmware twin's TLS client: host BearSSL configured the way the ESP8266
 * Arduino core's BearSSL::WiFiClientSecure configures it (client suites, versions
 * TLS 1.0-1.2, hashes, buffer sizes, the five certificate-checking modes), behind a
 * small opaque API so the Rust side needs no knowledge of BearSSL's structures.
 *
 * The device clock is always passed in explicitly: host BearSSL would otherwise
 * read the host's clock, which a real ESP8266 without SNTP does not have.
 */
#include <bearssl.h>
#include <stdlib.h>
#include <string.h>

#include "twin_tls.h"

/* ---- trust anchors (what X509List builds from PEM) ------------------------- */

struct dn_buffer {
	unsigned char *data;
	size_t len, cap;
	int oom;
};

static void dn_append(void *ctx, const void *buf, size_t len)
{
	struct dn_buffer *dn = ctx;
	if (dn->oom) {
		return;
	}
	if (dn->len + len > dn->cap) {
		size_t cap = (dn->len + len) * 2;
		unsigned char *grown = realloc(dn->data, cap);
		if (grown == NULL) {
			dn->oom = 1;
			return;
		}
		dn->data = grown;
		dn->cap = cap;
	}
	memcpy(dn->data + dn->len, buf, len);
	dn->len += len;
}

static unsigned char *copy_bytes(const unsigned char *src, size_t len)
{
	unsigned char *dst = malloc(len ? len : 1);
	if (dst != NULL && len) {
		memcpy(dst, src, len);
	}
	return dst;
}

static void free_anchor(br_x509_trust_anchor *ta)
{
	free(ta->dn.data);
	if (ta->pkey.key_type == BR_KEYTYPE_RSA) {
		free(ta->pkey.key.rsa.n);
		free(ta->pkey.key.rsa.e);
	} else if (ta->pkey.key_type == BR_KEYTYPE_EC) {
		free(ta->pkey.key.ec.q);
	}
}

/* ---- the "insecure" validator: setInsecure, setFingerprint, allowSelfSignedCerts
 * Only the first certificate is looked at: its SHA-1 (fingerprint mode), whether its
 * issuer DN equals its subject DN (self-signed mode, signature NOT checked), and its
 * public key. No dates, no names. */

struct insecure_x509 {
	const br_x509_class *vtable;
	int done_first;
	int check_fingerprint;
	unsigned char fingerprint[20];
	int allow_self_signed;
	br_sha1_context sha1_cert;
	br_x509_decoder_context decoder;
	/* The first certificate, kept to compare its issuer and subject names (host
	 * BearSSL's decoder reports only the subject). */
	unsigned char *first;
	size_t first_len, first_cap;
};

/* Reads a DER header at `*pos`; on success advances `*pos` past the header and
 * returns the content length, else returns -1. */
static long der_header(const unsigned char *der, size_t len, size_t *pos, unsigned char *tag)
{
	size_t p = *pos, n;
	unsigned char first;
	if (der == NULL || p + 2 > len) {
		return -1;
	}
	*tag = der[p];
	first = der[p + 1];
	p += 2;
	if (first < 0x80) {
		n = first;
	} else {
		size_t count = first & 0x7f, i;
		if (count == 0 || count > 3 || p + count > len) {
			return -1;
		}
		for (n = 0, i = 0; i < count; i++) {
			n = (n << 8) | der[p + i];
		}
		p += count;
	}
	if (p + n > len) {
		return -1;
	}
	*pos = p;
	return (long)n;
}

/* Finds the issuer and subject Name elements (tag and length included) of a DER
 * certificate. Returns 0 on success. */
static int issuer_and_subject(const unsigned char *der, size_t len,
	const unsigned char **issuer, size_t *ilen, const unsigned char **subject, size_t *slen)
{
	size_t pos = 0, start;
	unsigned char tag;
	long n;
	int field;
	if (der_header(der, len, &pos, &tag) < 0 || tag != 0x30) {
		return -1; /* Certificate */
	}
	if (der_header(der, len, &pos, &tag) < 0 || tag != 0x30) {
		return -1; /* TBSCertificate */
	}
	/* version [0] (optional), serial, signature, issuer, validity, subject */
	for (field = 0; field < 6; field++) {
		start = pos;
		n = der_header(der, len, &pos, &tag);
		if (n < 0) {
			return -1;
		}
		if (field == 0 && tag != 0xa0) {
			field++; /* no explicit version: this is the serial number */
		}
		if (field == 3) {
			*issuer = der + start;
			*ilen = pos + (size_t)n - start;
		} else if (field == 5) {
			*subject = der + start;
			*slen = pos + (size_t)n - start;
			return 0;
		}
		pos += (size_t)n;
	}
	return -1;
}

static void insecure_start_chain(const br_x509_class **ctx, const char *server_name)
{
	struct insecure_x509 *x = (struct insecure_x509 *)ctx;
	(void)server_name;
	x->done_first = 0;
	br_sha1_init(&x->sha1_cert);
	br_x509_decoder_init(&x->decoder, NULL, NULL);
	x->first_len = 0;
}

static void insecure_start_cert(const br_x509_class **ctx, uint32_t length)
{
	(void)ctx;
	(void)length;
}

static void insecure_append(const br_x509_class **ctx, const unsigned char *buf, size_t len)
{
	struct insecure_x509 *x = (struct insecure_x509 *)ctx;
	if (!x->done_first) {
		br_sha1_update(&x->sha1_cert, buf, len);
		br_x509_decoder_push(&x->decoder, buf, len);
		if (x->first_len + len > x->first_cap) {
			size_t cap = (x->first_len + len) * 2;
			unsigned char *grown = realloc(x->first, cap);
			if (grown == NULL) {
				return; /* the self-signed check then fails: nothing is trusted */
			}
			x->first = grown;
			x->first_cap = cap;
		}
		memcpy(x->first + x->first_len, buf, len);
		x->first_len += len;
	}
}

static void insecure_end_cert(const br_x509_class **ctx)
{
	((struct insecure_x509 *)ctx)->done_first = 1;
}

static unsigned insecure_end_chain(const br_x509_class **ctx)
{
	struct insecure_x509 *x = (struct insecure_x509 *)ctx;
	unsigned char digest[20];
	if (!x->done_first) {
		return BR_ERR_X509_EMPTY_CHAIN;
	}
	if (x->check_fingerprint) {
		br_sha1_out(&x->sha1_cert, digest);
		if (memcmp(digest, x->fingerprint, 20) != 0) {
			return BR_ERR_X509_NOT_TRUSTED;
		}
	}
	if (x->allow_self_signed) {
		const unsigned char *issuer = NULL, *subject = NULL;
		size_t ilen = 0, slen = 0;
		if (issuer_and_subject(x->first, x->first_len, &issuer, &ilen, &subject, &slen) != 0
			|| ilen != slen || memcmp(issuer, subject, ilen) != 0) {
			return BR_ERR_X509_NOT_TRUSTED;
		}
	}
	return 0;
}

static const br_x509_pkey *insecure_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
	struct insecure_x509 *x = (struct insecure_x509 *)ctx;
	if (usages != NULL) {
		*usages = BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN;
	}
	return br_x509_decoder_get_pkey(&x->decoder);
}

static const br_x509_class insecure_vtable = {
	sizeof(struct insecure_x509),
	insecure_start_chain,
	insecure_start_cert,
	insecure_append,
	insecure_end_cert,
	insecure_end_chain,
	insecure_get_pkey,
};

/* ---- the client ------------------------------------------------------------ */

/* BearSSL's "full" client suite order, as the ESP8266 core installs it. */
static const uint16_t client_suites[] = {
	BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_CCM,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_CCM,
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8,
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384,
	BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384,
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	BR_TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256,
	BR_TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256,
	BR_TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384,
	BR_TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384,
	BR_TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA,
	BR_TLS_ECDH_RSA_WITH_AES_128_CBC_SHA,
	BR_TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA,
	BR_TLS_ECDH_RSA_WITH_AES_256_CBC_SHA,
	BR_TLS_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_RSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_RSA_WITH_AES_128_CCM,
	BR_TLS_RSA_WITH_AES_256_CCM,
	BR_TLS_RSA_WITH_AES_128_CCM_8,
	BR_TLS_RSA_WITH_AES_256_CCM_8,
	BR_TLS_RSA_WITH_AES_128_CBC_SHA256,
	BR_TLS_RSA_WITH_AES_256_CBC_SHA256,
	BR_TLS_RSA_WITH_AES_128_CBC_SHA,
	BR_TLS_RSA_WITH_AES_256_CBC_SHA,
	BR_TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA,
	BR_TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA,
	BR_TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA,
	BR_TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA,
	BR_TLS_RSA_WITH_3DES_EDE_CBC_SHA,
};

struct twin_tls {
	br_ssl_client_context sc;
	br_x509_minimal_context minimal;
	br_x509_knownkey_context knownkey;
	struct insecure_x509 insecure;
	int mode;
	unsigned char fingerprint[20];
	br_rsa_public_key known_rsa;
	br_ec_public_key known_ec;
	int known_key_set;
	br_x509_trust_anchor *anchors;
	size_t anchor_count;
	uint32_t days, seconds;
	unsigned version_min, version_max;
	unsigned char *ibuf, *obuf;
	size_t ilen, olen;
	br_x509_certificate *client_chain;
	size_t client_chain_len;
	br_skey_decoder_context client_key;
	int client_key_set;
};

twin_tls *twin_tls_new(size_t recv_size, size_t xmit_size)
{
	twin_tls *t = calloc(1, sizeof *t);
	if (t == NULL) {
		return NULL;
	}
	t->ibuf = malloc(recv_size);
	t->obuf = malloc(xmit_size);
	if (t->ibuf == NULL || t->obuf == NULL) {
		twin_tls_free(t);
		return NULL;
	}
	t->ilen = recv_size;
	t->olen = xmit_size;
	t->mode = TWIN_MODE_TRUST_ANCHORS;
	t->version_min = BR_TLS10;
	t->version_max = BR_TLS12;
	return t;
}

void twin_tls_free(twin_tls *t)
{
	size_t i;
	if (t == NULL) {
		return;
	}
	for (i = 0; i < t->anchor_count; i++) {
		free_anchor(&t->anchors[i]);
	}
	free(t->anchors);
	for (i = 0; i < t->client_chain_len; i++) {
		free(t->client_chain[i].data);
	}
	free(t->client_chain);
	free(t->known_rsa.n);
	free(t->known_rsa.e);
	free(t->known_ec.q);
	free(t->insecure.first);
	free(t->ibuf);
	free(t->obuf);
	/* The skey decoder holds the client's private key: wipe it. */
	memset(&t->client_key, 0, sizeof t->client_key);
	free(t);
}

int twin_tls_add_anchor(twin_tls *t, const unsigned char *der, size_t len)
{
	br_x509_decoder_context dc;
	struct dn_buffer dn = { 0 };
	const br_x509_pkey *pk;
	br_x509_trust_anchor ta, *grown;
	int err;

	br_x509_decoder_init(&dc, dn_append, &dn);
	br_x509_decoder_push(&dc, der, len);
	pk = br_x509_decoder_get_pkey(&dc);
	if (pk == NULL || dn.oom) {
		err = br_x509_decoder_last_error(&dc);
		free(dn.data);
		return err ? err : BR_ERR_X509_TRUNCATED;
	}
	memset(&ta, 0, sizeof ta);
	ta.dn.data = dn.data;
	ta.dn.len = dn.len;
	ta.flags = br_x509_decoder_isCA(&dc) ? BR_X509_TA_CA : 0;
	ta.pkey.key_type = pk->key_type;
	if (pk->key_type == BR_KEYTYPE_RSA) {
		ta.pkey.key.rsa.n = copy_bytes(pk->key.rsa.n, pk->key.rsa.nlen);
		ta.pkey.key.rsa.nlen = pk->key.rsa.nlen;
		ta.pkey.key.rsa.e = copy_bytes(pk->key.rsa.e, pk->key.rsa.elen);
		ta.pkey.key.rsa.elen = pk->key.rsa.elen;
	} else {
		ta.pkey.key.ec.curve = pk->key.ec.curve;
		ta.pkey.key.ec.q = copy_bytes(pk->key.ec.q, pk->key.ec.qlen);
		ta.pkey.key.ec.qlen = pk->key.ec.qlen;
	}
	grown = realloc(t->anchors, (t->anchor_count + 1) * sizeof *grown);
	if (grown == NULL) {
		free_anchor(&ta);
		return -1;
	}
	t->anchors = grown;
	t->anchors[t->anchor_count++] = ta;
	return 0;
}

void twin_tls_set_time(twin_tls *t, uint64_t unix_seconds)
{
	/* What setX509Time does: days since year 0, seconds into the day. */
	t->days = (uint32_t)(unix_seconds / 86400 + 719528);
	t->seconds = (uint32_t)(unix_seconds % 86400);
}

void twin_tls_set_mode(twin_tls *t, int mode)
{
	t->mode = mode;
}

void twin_tls_set_fingerprint(twin_tls *t, const unsigned char fp[20])
{
	memcpy(t->fingerprint, fp, 20);
}

int twin_tls_set_known_rsa(twin_tls *t, const unsigned char *n, size_t nlen,
	const unsigned char *e, size_t elen)
{
	free(t->known_rsa.n);
	free(t->known_rsa.e);
	t->known_rsa.n = copy_bytes(n, nlen);
	t->known_rsa.nlen = nlen;
	t->known_rsa.e = copy_bytes(e, elen);
	t->known_rsa.elen = elen;
	t->known_key_set = TWIN_KEY_RSA;
	return t->known_rsa.n != NULL && t->known_rsa.e != NULL ? 0 : -1;
}

int twin_tls_set_known_ec(twin_tls *t, int curve, const unsigned char *q, size_t qlen)
{
	free(t->known_ec.q);
	t->known_ec.curve = curve;
	t->known_ec.q = copy_bytes(q, qlen);
	t->known_ec.qlen = qlen;
	t->known_key_set = TWIN_KEY_EC;
	return t->known_ec.q != NULL ? 0 : -1;
}

void twin_tls_set_versions(twin_tls *t, unsigned min, unsigned max)
{
	t->version_min = min;
	t->version_max = max;
}

int twin_tls_add_client_cert(twin_tls *t, const unsigned char *der, size_t len)
{
	br_x509_certificate *grown = realloc(t->client_chain, (t->client_chain_len + 1) * sizeof *grown);
	if (grown == NULL) {
		return -1;
	}
	t->client_chain = grown;
	t->client_chain[t->client_chain_len].data = copy_bytes(der, len);
	t->client_chain[t->client_chain_len].data_len = len;
	t->client_chain_len++;
	return 0;
}

int twin_tls_set_client_key(twin_tls *t, const unsigned char *der, size_t len)
{
	br_skey_decoder_init(&t->client_key);
	br_skey_decoder_push(&t->client_key, der, len);
	if (br_skey_decoder_key_type(&t->client_key) == 0) {
		int err = br_skey_decoder_last_error(&t->client_key);
		t->client_key_set = 0;
		return err ? err : -1;
	}
	t->client_key_set = 1;
	return 0;
}

static void install_hashes_minimal(br_x509_minimal_context *x)
{
	br_x509_minimal_set_hash(x, br_md5_ID, &br_md5_vtable);
	br_x509_minimal_set_hash(x, br_sha1_ID, &br_sha1_vtable);
	br_x509_minimal_set_hash(x, br_sha224_ID, &br_sha224_vtable);
	br_x509_minimal_set_hash(x, br_sha256_ID, &br_sha256_vtable);
	br_x509_minimal_set_hash(x, br_sha384_ID, &br_sha384_vtable);
	br_x509_minimal_set_hash(x, br_sha512_ID, &br_sha512_vtable);
}

static void base_init(br_ssl_client_context *sc, unsigned vmin, unsigned vmax)
{
	br_ssl_engine_context *eng = &sc->eng;
	br_ssl_client_zero(sc);
	br_ssl_engine_add_flags(eng, BR_OPT_NO_RENEGOTIATION);
	br_ssl_engine_set_versions(eng, vmin, vmax);
	br_ssl_engine_set_suites(eng, client_suites, sizeof client_suites / sizeof client_suites[0]);
	br_ssl_client_set_default_rsapub(sc);
	br_ssl_engine_set_default_rsavrfy(eng);
	br_ssl_engine_set_default_ecdsa(eng);
	br_ssl_engine_set_hash(eng, br_md5_ID, &br_md5_vtable);
	br_ssl_engine_set_hash(eng, br_sha1_ID, &br_sha1_vtable);
	br_ssl_engine_set_hash(eng, br_sha224_ID, &br_sha224_vtable);
	br_ssl_engine_set_hash(eng, br_sha256_ID, &br_sha256_vtable);
	br_ssl_engine_set_hash(eng, br_sha384_ID, &br_sha384_vtable);
	br_ssl_engine_set_hash(eng, br_sha512_ID, &br_sha512_vtable);
	br_ssl_engine_set_prf10(eng, &br_tls10_prf);
	br_ssl_engine_set_prf_sha256(eng, &br_tls12_sha256_prf);
	br_ssl_engine_set_prf_sha384(eng, &br_tls12_sha384_prf);
	br_ssl_engine_set_default_aes_cbc(eng);
	br_ssl_engine_set_default_aes_gcm(eng);
	br_ssl_engine_set_default_aes_ccm(eng);
	br_ssl_engine_set_default_des_cbc(eng);
	br_ssl_engine_set_default_chapol(eng);
}

int twin_tls_reset(twin_tls *t, const char *server_name)
{
	br_ssl_engine_context *eng = &t->sc.eng;
	base_init(&t->sc, t->version_min, t->version_max);

	switch (t->mode) {
	case TWIN_MODE_INSECURE:
	case TWIN_MODE_FINGERPRINT:
	case TWIN_MODE_SELF_SIGNED:
		free(t->insecure.first);
		memset(&t->insecure, 0, sizeof t->insecure);
		t->insecure.vtable = &insecure_vtable;
		t->insecure.check_fingerprint = t->mode == TWIN_MODE_FINGERPRINT;
		memcpy(t->insecure.fingerprint, t->fingerprint, 20);
		t->insecure.allow_self_signed = t->mode == TWIN_MODE_SELF_SIGNED;
		br_ssl_engine_set_x509(eng, &t->insecure.vtable);
		break;
	case TWIN_MODE_KNOWN_KEY:
		if (t->known_key_set == TWIN_KEY_RSA) {
			br_x509_knownkey_init_rsa(&t->knownkey, &t->known_rsa,
				BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN);
		} else if (t->known_key_set == TWIN_KEY_EC) {
			br_x509_knownkey_init_ec(&t->knownkey, &t->known_ec,
				BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN);
		} else {
			return -1;
		}
		br_ssl_engine_set_x509(eng, &t->knownkey.vtable);
		break;
	default:
		br_x509_minimal_init(&t->minimal, &br_sha256_vtable, t->anchors, t->anchor_count);
		br_x509_minimal_set_rsa(&t->minimal, br_ssl_engine_get_rsavrfy(eng));
		br_x509_minimal_set_ecdsa(&t->minimal, br_ssl_engine_get_ec(eng),
			br_ssl_engine_get_ecdsa(eng));
		install_hashes_minimal(&t->minimal);
		br_x509_minimal_set_time(&t->minimal, t->days, t->seconds);
		br_ssl_engine_set_x509(eng, &t->minimal.vtable);
		break;
	}

	br_ssl_engine_set_buffers_bidi(eng, t->ibuf, t->ilen, t->obuf, t->olen);

	if (t->client_key_set) {
		if (br_skey_decoder_key_type(&t->client_key) == BR_KEYTYPE_RSA) {
			br_ssl_client_set_single_rsa(&t->sc, t->client_chain, t->client_chain_len,
				br_skey_decoder_get_rsa(&t->client_key), br_rsa_pkcs1_sign_get_default());
		} else {
			br_ssl_client_set_single_ec(&t->sc, t->client_chain, t->client_chain_len,
				br_skey_decoder_get_ec(&t->client_key), BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN,
				BR_KEYTYPE_RSA, br_ec_get_default(), br_ecdsa_sign_asn1_get_default());
		}
	}
	return br_ssl_client_reset(&t->sc, server_name, 0) ? 0 : br_ssl_engine_last_error(eng);
}

unsigned twin_tls_state(const twin_tls *t) { return br_ssl_engine_current_state(&t->sc.eng); }
int twin_tls_last_error(const twin_tls *t) { return br_ssl_engine_last_error(&t->sc.eng); }
unsigned twin_tls_version(const twin_tls *t) { return br_ssl_engine_get_version(&t->sc.eng); }
unsigned twin_tls_suite(const twin_tls *t) { return t->sc.eng.session.cipher_suite; }
unsigned twin_tls_max_frag_len(const twin_tls *t) { return 1u << t->sc.eng.log_max_frag_len; }

unsigned char *twin_tls_sendrec_buf(twin_tls *t, size_t *len) { return br_ssl_engine_sendrec_buf(&t->sc.eng, len); }
void twin_tls_sendrec_ack(twin_tls *t, size_t len) { br_ssl_engine_sendrec_ack(&t->sc.eng, len); }
unsigned char *twin_tls_recvrec_buf(twin_tls *t, size_t *len) { return br_ssl_engine_recvrec_buf(&t->sc.eng, len); }
void twin_tls_recvrec_ack(twin_tls *t, size_t len) { br_ssl_engine_recvrec_ack(&t->sc.eng, len); }
unsigned char *twin_tls_sendapp_buf(twin_tls *t, size_t *len) { return br_ssl_engine_sendapp_buf(&t->sc.eng, len); }
void twin_tls_sendapp_ack(twin_tls *t, size_t len) { br_ssl_engine_sendapp_ack(&t->sc.eng, len); }
unsigned char *twin_tls_recvapp_buf(twin_tls *t, size_t *len) { return br_ssl_engine_recvapp_buf(&t->sc.eng, len); }
void twin_tls_recvapp_ack(twin_tls *t, size_t len) { br_ssl_engine_recvapp_ack(&t->sc.eng, len); }
void twin_tls_flush(twin_tls *t) { br_ssl_engine_flush(&t->sc.eng, 0); }
void twin_tls_close(twin_tls *t) { br_ssl_engine_close(&t->sc.eng); }
