/* fuzz_safetensors.c — libFuzzer target for the safetensors header parser.
 * An accepted file must be internally consistent: every entry found by
 * name, inside the data region, readable as a tensor of its shape. */
#include "io/safetensors.h"

#include <stdlib.h>
#include <string.h>

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    osp_safetensors *st = osp_safetensors_open_memory(data, size, "fuzz");
    if (!st)
        return 0;
    (void)osp_safetensors_metadata(st, "format");
    uint64_t header_len = 0; /* accepted, so the 8-byte prefix is there */
    for (int i = 7; i >= 0; i--)
        header_len = header_len << 8 | data[i];
    size_t n = osp_safetensors_count(st);
    for (size_t i = 0; i < n; i++) {
        const osp_st_entry *e = osp_safetensors_entry(st, i);
        REQUIRE(e && osp_safetensors_find(st, e->name) == e);
        REQUIRE(e->offset + e->nbytes >= e->offset &&
                8 + header_len + e->offset + e->nbytes <= size);
        osp_tensor *t = osp_safetensors_get(st, e->name);
        REQUIRE(t && osp_nbytes(t) == e->nbytes && t->ndim == e->ndim);
        if (e->nbytes)
            REQUIRE(memcmp(osp_data(t), data + 8 + header_len + e->offset, e->nbytes) == 0);
        osp_release(t);
    }
    REQUIRE(osp_safetensors_entry(st, n) == NULL);
    osp_safetensors_close(st);
    return 0;
}
