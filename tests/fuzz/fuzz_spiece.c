/* fuzz_spiece.c — libFuzzer target for spiece.model parsing (protobuf
 * reader, model checks, charsmap) and for encoding with whatever model
 * loads: a fixed set of texts must encode without crashing, and every
 * encoding must be well formed (pieces tile the normalized text, ids are
 * pieces of the model). */
#include "models/spiece.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_encoding(const osp_spiece *sp, const char *text, size_t len)
{
    osp_spiece_encoding enc;
    if (osp_spiece_encode(sp, text, len, &enc) == OSP_OK) {
        if (enc.begin[0] != 0 || enc.begin[enc.n] != enc.normalized_len)
            abort();
        for (size_t i = 0; i < enc.n; i++) {
            if (enc.begin[i] > enc.begin[i + 1])
                abort();
            if (enc.ids[i] < 0 || enc.ids[i] >= osp_spiece_size(sp))
                abort();
        }
        if (enc.normalized[enc.normalized_len] != 0)
            abort();
    }
    osp_spiece_encoding_free(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    osp_spiece *sp = osp_spiece_parse(data, size, "fuzz");
    if (!sp)
        return 0;
    static const char *const texts[] = {
        "A cat wearing sunglasses, playing guitar on the beach at sunset, 4k",
        "",
        "   \t\n  ",
        "\xef\xbc\xa6\xef\xbd\x95\xef\xbd\x8c\xef\xbd\x8c caf\xc3\xa9 \xe2\x91\xa0 \xf0\x9f\x98\x80"
        "\xe6\x97\xa5\xe6\x9c\xac \xe2\x96\x81 <sep> <0x41>",
        "bad \xff\xfe utf8 \xe2\x82 \xed\xa0\x80 \xc0\xaf \xf4\x90\x80\x80 end",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        check_encoding(sp, texts[i], strlen(texts[i]));
    check_encoding(sp, "a\0b", 3);
    osp_spiece_free(sp);
    return 0;
}
