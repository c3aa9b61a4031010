/* fuzz_captions.c — libFuzzer target for the caption file of
 * `osp-train prepare` (libosp/train/captions.c).
 *
 * Checks, beyond "no crash, no leak, no UB": an accepted file yields
 * records whose path is a non-empty string and whose caption is a string,
 * a rejected one leaves no records, and the parse does not read past the
 * `size` bytes it was given (the input is copied to a buffer of exactly
 * that size, without a terminator, so AddressSanitizer sees an overread). */
#include "train/captions.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    REQUIRE(text);
    memcpy(text, data, size);
    osp_captions c;
    osp_status st = osp_captions_parse(text, size, "fuzz", &c);
    if (st) {
        REQUIRE(c.n == 0 && c.items == NULL);
    } else {
        for (size_t i = 0; i < c.n; i++)
            REQUIRE(c.items[i].path && c.items[i].path[0] && c.items[i].caption);
    }
    osp_captions_free(&c);
    free(text);
    return 0;
}
