/*
 * Validates one certificate chain with BearSSL's minimal X.509 engine against
 * the trust anchors of a file `hil pki export` wrote (compiled in with
 * `-include hil_lab_root_ta.h`), the way a device configured with exactly those
 * anchors would, and prints BearSSL's verdict: 0, or its error number.
 *
 *   bearssl_chain SERVER_NAME UNIX_TIME CERT.der...   (leaf first; "-" for no name)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bearssl.h>

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long size;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0) {
		return NULL;
	}
	rewind(f);
	buf = malloc((size_t)size + 1);
	if (buf == NULL || fread(buf, 1, (size_t)size, f) != (size_t)size) {
		return NULL;
	}
	fclose(f);
	*len = (size_t)size;
	return buf;
}

int main(int argc, char **argv)
{
	br_x509_minimal_context xc;
	const br_x509_class **engine = &xc.vtable;
	const char *name;
	long long now;
	int i;

	if (argc < 4) {
		fprintf(stderr, "usage: %s SERVER_NAME UNIX_TIME CERT.der...\n", argv[0]);
		return 2;
	}
	name = strcmp(argv[1], "-") == 0 ? NULL : argv[1];
	now = atoll(argv[2]);

	br_x509_minimal_init(&xc, &br_sha256_vtable, TAs, TAs_NUM);
	br_x509_minimal_set_hash(&xc, br_sha1_ID, &br_sha1_vtable);
	br_x509_minimal_set_hash(&xc, br_sha224_ID, &br_sha224_vtable);
	br_x509_minimal_set_hash(&xc, br_sha256_ID, &br_sha256_vtable);
	br_x509_minimal_set_hash(&xc, br_sha384_ID, &br_sha384_vtable);
	br_x509_minimal_set_hash(&xc, br_sha512_ID, &br_sha512_vtable);
	br_x509_minimal_set_rsa(&xc, br_rsa_pkcs1_vrfy_get_default());
	br_x509_minimal_set_ecdsa(&xc, br_ec_get_default(), br_ecdsa_vrfy_asn1_get_default());
	/* Days since 1 January of year 0 (proleptic Gregorian), and seconds. */
	br_x509_minimal_set_time(&xc, (uint32_t)(now / 86400 + 719528), (uint32_t)(now % 86400));

	(*engine)->start_chain(engine, name);
	for (i = 3; i < argc; i++) {
		size_t len;
		unsigned char *der = read_file(argv[i], &len);

		if (der == NULL) {
			fprintf(stderr, "cannot read %s\n", argv[i]);
			return 2;
		}
		(*engine)->start_cert(engine, (uint32_t)len);
		(*engine)->append(engine, der, len);
		(*engine)->end_cert(engine);
		free(der);
	}
	printf("%u\n", (*engine)->end_chain(engine));
	return 0;
}
