/* fuzz_pickle.c — libFuzzer target for the PyTorch checkpoint reader.
 *
 * The first input byte picks what is fuzzed:
 *   even: the rest is a whole archive (zip directory, CRCs, unpickler);
 *   odd:  the rest is [count c <= 8][c sizes, u16 LE][data.pkl bytes], and
 *         this target wraps it into a valid archive (CRC computed) holding
 *         storages data/0 .. data/c-1 of those sizes, so that mutations reach
 *         the unpickler instead of failing the CRC check.
 * An accepted file must be internally consistent: every tensor found by
 * name, readable as a tensor of its shape and dtype. */
#include "io/torch_pickle.h"
#include "io/zip_stored.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static void le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A stored zip of n entries; returns its size (buf must be large enough). */
static size_t build_zip(uint8_t *buf, int n, char names[][16], const uint8_t *const *data,
                        const size_t *sizes)
{
    size_t pos = 0, offsets[16];
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(names[i]);
        uint8_t *h = buf + pos;
        memset(h, 0, 30);
        le(h, 0x04034b50, 4);
        le(h + 14, osp_crc32(0, data[i], sizes[i]), 4);
        le(h + 18, sizes[i], 4);
        le(h + 22, sizes[i], 4);
        le(h + 26, nl, 2);
        memcpy(h + 30, names[i], nl);
        if (sizes[i])
            memcpy(h + 30 + nl, data[i], sizes[i]);
        offsets[i] = pos;
        pos += 30 + nl + sizes[i];
    }
    size_t cd = pos;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(names[i]);
        uint8_t *h = buf + pos;
        memset(h, 0, 46);
        le(h, 0x02014b50, 4);
        le(h + 16, osp_crc32(0, data[i], sizes[i]), 4);
        le(h + 20, sizes[i], 4);
        le(h + 24, sizes[i], 4);
        le(h + 28, nl, 2);
        le(h + 42, offsets[i], 4);
        memcpy(h + 46, names[i], nl);
        pos += 46 + nl;
    }
    uint8_t *e = buf + pos;
    memset(e, 0, 22);
    le(e, 0x06054b50, 4);
    le(e + 8, (uint64_t)n, 2);
    le(e + 10, (uint64_t)n, 2);
    le(e + 12, pos - cd, 4);
    le(e + 16, cd, 4);
    return pos + 22;
}

static void check(const uint8_t *data, size_t size)
{
    osp_torch_file *f = osp_torch_open_memory(data, size, "fuzz");
    if (!f)
        return;
    size_t n = osp_torch_count(f);
    for (size_t i = 0; i < n; i++) {
        const osp_st_entry *e = osp_torch_entry(f, i);
        REQUIRE(e && osp_torch_find(f, e->name) == e);
        osp_tensor *t = osp_torch_get(f, e->name);
        REQUIRE(t && t->dtype == e->dtype && t->ndim == e->ndim && osp_nbytes(t) == e->nbytes);
        osp_release(t);
    }
    REQUIRE(osp_torch_entry(f, n) == NULL);
    osp_torch_close(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!(data[0] & 1)) {
        check(data + 1, size - 1);
        return 0;
    }
    if (size < 2 || data[1] > 8 || size < 2 + 2 * (size_t)data[1])
        return 0;
    int c = data[1];
    char names[9][16];
    const uint8_t *parts[9];
    size_t sizes[9], total = 0;
    static const uint8_t zeros[65536];
    snprintf(names[0], sizeof names[0], "a/data.pkl");
    parts[0] = data + 2 + 2 * c;
    sizes[0] = size - 2 - 2 * (size_t)c;
    for (int i = 0; i < c; i++) {
        snprintf(names[i + 1], sizeof names[i + 1], "a/data/%d", i);
        parts[i + 1] = zeros;
        sizes[i + 1] = (size_t)(data[2 + 2 * i] | data[3 + 2 * i] << 8);
        total += sizes[i + 1];
    }
    uint8_t *zip = malloc(total + sizes[0] + 9 * (30 + 46 + 2 * 16) + 22);
    if (!zip)
        return 0;
    check(zip, build_zip(zip, c + 1, names, parts, sizes));
    free(zip);
    return 0;
}
