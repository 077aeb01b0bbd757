/* fuzz_b64: authz_b64url_decode on arbitrary text.
 *
 * Checks: an accepted input decodes within authz_b64url_decoded_max and
 * encodes back to exactly the same text (the decoder is strict, so the text
 * is canonical); the input taken as raw bytes encodes and decodes back to
 * itself. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_b64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    authz_slice in = {(const char *)data, size};
    size_t max = authz_b64url_decoded_max(size);
    size_t enc_size = 4 * ((size + 2) / 3) + 1;
    unsigned char *dec = malloc(max > 0 ? max : 1);
    char *enc = malloc(enc_size);
    long n;

    if (dec == NULL || enc == NULL) {
        abort();
    }
    n = authz_b64url_decode(in, dec, max);
    if (n >= 0) {
        size_t back_size = 4 * (((size_t)n + 2) / 3) + 1;
        char *back = malloc(back_size);
        size_t m;
        if (back == NULL || (size_t)n > max) {
            abort();
        }
        m = authz_b64url_encode(dec, (size_t)n, back, back_size);
        if (m != size || back[m] != '\0' || memcmp(back, data, size) != 0) {
            fprintf(stderr, "b64: accepted input does not re-encode to itself\n");
            abort();
        }
        free(back);
    }

    /* The other direction: any bytes survive encode then decode. */
    {
        size_t m = authz_b64url_encode(data, size, enc, enc_size);
        size_t back_max = authz_b64url_decoded_max(m);
        unsigned char *back = malloc(back_max > 0 ? back_max : 1);
        long k;
        if (back == NULL || m >= enc_size || enc[m] != '\0') {
            abort();
        }
        k = authz_b64url_decode((authz_slice){enc, m}, back, back_max);
        if (k < 0 || (size_t)k != size || (size > 0 && memcmp(back, data, size) != 0)) {
            fprintf(stderr, "b64: encode/decode does not round-trip\n");
            abort();
        }
        free(back);
    }
    free(dec);
    free(enc);
    return 0;
}
