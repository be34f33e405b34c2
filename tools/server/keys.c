/* keys.c: project keys: drawn from getrandom(), stored as SHA-256 hashes,
 * compared in constant time (OpenSSL's libcrypto does the hashing). */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "server.h"

/* 20 random bytes are exactly 32 base32 characters (160 bits), lowercase so
 * a key survives a URL, a shell and a case-insensitive eye. */
int srv_key_new(const char *prefix, char *out, size_t outlen)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
	unsigned char raw[20];
	size_t got = 0, plen = strlen(prefix);

	if (outlen < plen + 33)
		return -1;
	while (got < sizeof raw) {
		ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)n;
	}
	memcpy(out, prefix, plen);
	char *p = out + plen;
	for (int i = 0; i < 32; i++) {
		unsigned bit = (unsigned)i * 5, byte = bit / 8, shift = bit % 8;
		unsigned v = (unsigned)raw[byte] << 8 | (byte + 1 < sizeof raw ? raw[byte + 1] : 0);
		*p++ = alphabet[(v >> (11 - shift)) & 31];
	}
	*p = '\0';
	OPENSSL_cleanse(raw, sizeof raw);
	return 0;
}

void srv_key_hash(const char *key, unsigned char hash[SRV_HASHLEN])
{
	SHA256((const unsigned char *)key, strlen(key), hash);
}

int srv_hash_equal(const unsigned char *a, const unsigned char *b)
{
	return CRYPTO_memcmp(a, b, SRV_HASHLEN) == 0;
}

const char *srv_bearer(const char *header)
{
	if (!header || strncasecmp(header, "Bearer ", 7) != 0)
		return NULL;
	header += 7;
	while (*header == ' ')
		header++;
	return header;
}
