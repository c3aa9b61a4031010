/* zip_stored.c — see zip_stored.h. Layout from the PKWARE APPNOTE
 * (sections 4.3.7 local header, 4.3.12 central directory header, 4.3.14-16
 * ZIP64 end records, 4.5.3 ZIP64 extra field); all integers little-endian. */
#include "zip_stored.h"

#include "printable.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    SIG_LOCAL = 0x04034b50,
    SIG_CENTRAL = 0x02014b50,
    SIG_END = 0x06054b50,
    SIG_END64 = 0x06064b50,
    SIG_LOCATOR64 = 0x07064b50,
    LOCAL_SIZE = 30,
    CENTRAL_SIZE = 46,
    END_SIZE = 22,
    END64_SIZE = 56,
    LOCATOR64_SIZE = 20,
    EXTRA_ZIP64 = 0x0001,
};

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* [off, off + len) lies inside [0, limit). */
static bool inside(uint64_t off, uint64_t len, uint64_t limit)
{
    return off <= limit && len <= limit - off;
}

typedef struct zip_parser {
    const uint8_t *data;
    uint64_t size;
    const char *label;
} zip_parser;

static osp_status bad(const zip_parser *z, const char *what)
{
    return osp_error(OSP_ERR_DATA, "%s: not a valid zip archive: %s", z->label, what);
}

typedef struct central_dir {
    uint64_t offset, size, count;
} central_dir;

/* The end-of-central-directory record: the last one whose comment reaches
 * exactly to the end of the file. */
static osp_status find_end(const zip_parser *z, uint64_t *end)
{
    if (z->size < END_SIZE)
        return bad(z, "too short");
    uint64_t lowest = z->size - END_SIZE > 0xffff ? z->size - END_SIZE - 0xffff : 0;
    for (uint64_t pos = z->size - END_SIZE + 1; pos-- > lowest;) {
        if (le32(z->data + pos) == SIG_END && pos + END_SIZE + le16(z->data + pos + 20) == z->size) {
            *end = pos;
            return OSP_OK;
        }
    }
    return bad(z, "no end of central directory record (truncated?)");
}

/* Central directory position from the end record, or from the ZIP64 end
 * record its locator points to. */
static osp_status read_end(const zip_parser *z, central_dir *cd, uint64_t *cd_limit)
{
    uint64_t end = 0;
    if (find_end(z, &end))
        return osp_error_code();
    const uint8_t *e = z->data + end;
    uint16_t disk = le16(e + 4), cd_disk = le16(e + 6);
    cd->count = le16(e + 10);
    cd->size = le32(e + 12);
    cd->offset = le32(e + 16);
    *cd_limit = end;
    bool maxed = cd->count == 0xffff || cd->size == 0xffffffff || cd->offset == 0xffffffff;
    if (end >= LOCATOR64_SIZE && le32(z->data + end - LOCATOR64_SIZE) == SIG_LOCATOR64) {
        const uint8_t *loc = z->data + end - LOCATOR64_SIZE;
        uint64_t rec = le64(loc + 8);
        if (le32(loc + 4) != 0 || le32(loc + 16) > 1)
            return bad(z, "spanned (multi-disk) archives are not supported");
        if (!inside(rec, END64_SIZE, end - LOCATOR64_SIZE) || le32(z->data + rec) != SIG_END64)
            return bad(z, "ZIP64 end of central directory record out of place");
        const uint8_t *r = z->data + rec;
        if (le32(r + 16) != 0 || le32(r + 20) != 0)
            return bad(z, "spanned (multi-disk) archives are not supported");
        cd->count = le64(r + 32);
        cd->size = le64(r + 40);
        cd->offset = le64(r + 48);
        *cd_limit = rec;
    } else if (maxed) {
        return bad(z, "ZIP64 sizes without a ZIP64 end record");
    } else if (disk != 0 || cd_disk != 0) {
        return bad(z, "spanned (multi-disk) archives are not supported");
    }
    if (!inside(cd->offset, cd->size, *cd_limit))
        return bad(z, "central directory outside the file (truncated?)");
    if (cd->count > cd->size / CENTRAL_SIZE)
        return bad(z, "more entries than the central directory holds");
    return OSP_OK;
}

/* Replaces the 0xffffffff fields by the ZIP64 extra field's values, in
 * the APPNOTE's order (uncompressed size, compressed size, offset). */
static osp_status apply_zip64(const zip_parser *z, const uint8_t *extra, uint16_t len,
                              uint64_t *usize, uint64_t *csize, uint64_t *offset)
{
    uint64_t *fields[3] = {usize, csize, offset};
    for (uint32_t at = 0; at + 4 <= len;) {
        uint16_t id = le16(extra + at), n = le16(extra + at + 2);
        if (at + 4 + n > len)
            return bad(z, "extra field runs past its entry");
        if (id == EXTRA_ZIP64) {
            uint16_t used = 0;
            for (int i = 0; i < 3; i++) {
                if (*fields[i] != 0xffffffff)
                    continue;
                if (used + 8 > n)
                    return bad(z, "ZIP64 extra field too short");
                *fields[i] = le64(extra + at + 4 + used);
                used += 8;
            }
            return OSP_OK;
        }
        at += 4 + n;
    }
    for (int i = 0; i < 3; i++)
        if (*fields[i] == 0xffffffff)
            return bad(z, "ZIP64 size or offset without a ZIP64 extra field");
    return OSP_OK;
}

/* One central directory entry at *pos (advanced past it) into *out. */
static osp_status read_entry(const zip_parser *z, const central_dir *cd, uint64_t *pos,
                             osp_zip_entry *out)
{
    uint64_t cd_end = cd->offset + cd->size;
    if (!inside(*pos, CENTRAL_SIZE, cd_end) || le32(z->data + *pos) != SIG_CENTRAL)
        return bad(z, "central directory entry out of place");
    const uint8_t *h = z->data + *pos;
    uint16_t flags = le16(h + 8), method = le16(h + 10);
    uint16_t name_len = le16(h + 28), extra_len = le16(h + 30), comment_len = le16(h + 32);
    uint64_t csize = le32(h + 20), usize = le32(h + 24), local = le32(h + 42);
    uint64_t total = (uint64_t)CENTRAL_SIZE + name_len + extra_len + comment_len;
    if (!inside(*pos, total, cd_end))
        return bad(z, "central directory entry runs past the directory");
    const char *name = (const char *)h + CENTRAL_SIZE;
    char shown[80];
    osp_printable(name, name_len, shown, sizeof shown);
    if (memchr(name, 0, name_len))
        return osp_error(OSP_ERR_DATA, "%s: zip entry name '%s' holds a NUL byte", z->label, shown);
    if (flags & 1)
        return osp_error(OSP_ERR_DATA, "%s: zip entry '%s' is encrypted", z->label, shown);
    if (method != 0)
        return osp_error(OSP_ERR_DATA, "%s: zip entry '%s' is compressed (method %u); only "
                         "stored entries are supported, as torch.save writes them",
                         z->label, shown, method);
    if (apply_zip64(z, h + CENTRAL_SIZE + name_len, extra_len, &usize, &csize, &local))
        return osp_error_code();
    if (csize != usize)
        return osp_error(OSP_ERR_DATA, "%s: stored zip entry '%s' has compressed size %llu != "
                         "size %llu", z->label, shown, (unsigned long long)csize,
                         (unsigned long long)usize);
    if (!inside(local, LOCAL_SIZE, cd->offset) || le32(z->data + local) != SIG_LOCAL)
        return osp_error(OSP_ERR_DATA, "%s: zip entry '%s': local header out of place",
                         z->label, shown);
    const uint8_t *lh = z->data + local;
    uint16_t local_name_len = le16(lh + 26), local_extra_len = le16(lh + 28);
    uint64_t data = local + LOCAL_SIZE + local_name_len + local_extra_len;
    if (local_name_len != name_len || !inside(local + LOCAL_SIZE, name_len, cd->offset) ||
        memcmp(lh + LOCAL_SIZE, name, name_len) != 0)
        return osp_error(OSP_ERR_DATA, "%s: zip entry '%s': local header names another file",
                         z->label, shown);
    if (!inside(data, usize, cd->offset))
        return osp_error(OSP_ERR_DATA, "%s: zip entry '%s' (%llu bytes) runs past the end of "
                         "its data (truncated?)", z->label, shown, (unsigned long long)usize);
    out->name = malloc((size_t)name_len + 1);
    if (!out->name)
        return osp_error_nomem("zip entry name", name_len + 1u);
    memcpy(out->name, name, name_len);
    out->name[name_len] = 0;
    out->offset = data;
    out->size = usize;
    out->crc32 = le32(h + 16);
    *pos += total;
    return OSP_OK;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp((*(osp_zip_entry *const *)a)->name, (*(osp_zip_entry *const *)b)->name);
}

osp_status osp_zip_parse(const uint8_t *data, size_t size, const char *label, osp_zip *out)
{
    memset(out, 0, sizeof *out);
    zip_parser z = {data, size, label};
    central_dir cd = {0};
    uint64_t cd_limit = 0;
    if (read_end(&z, &cd, &cd_limit))
        return osp_error_code();
    size_t n = (size_t)cd.count;
    out->entries = calloc(n ? n : 1, sizeof *out->entries);
    out->by_name = calloc(n ? n : 1, sizeof *out->by_name);
    if (!out->entries || !out->by_name) {
        osp_zip_free(out);
        return osp_error_nomem("zip directory", n * sizeof *out->entries);
    }
    uint64_t pos = cd.offset;
    for (size_t i = 0; i < n; i++) {
        if (read_entry(&z, &cd, &pos, &out->entries[i])) {
            out->n = i + 1; /* frees what was read */
            osp_zip_free(out);
            return osp_error_code();
        }
        out->by_name[i] = &out->entries[i];
    }
    out->n = n;
    qsort(out->by_name, n, sizeof *out->by_name, cmp_entry);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(out->by_name[i]->name, out->by_name[i - 1]->name) == 0) {
            char shown[80];
            const char *name = out->by_name[i]->name;
            osp_error(OSP_ERR_DATA, "%s: zip entry '%s' appears twice", label,
                      osp_printable(name, strlen(name), shown, sizeof shown));
            osp_zip_free(out);
            return OSP_ERR_DATA;
        }
    }
    return OSP_OK;
}

void osp_zip_free(osp_zip *z)
{
    for (size_t i = 0; z->entries && i < z->n; i++)
        free(z->entries[i].name);
    free(z->entries);
    free(z->by_name);
    memset(z, 0, sizeof *z);
}

const osp_zip_entry *osp_zip_find(const osp_zip *z, const char *name)
{
    osp_zip_entry key = {.name = (char *)name}, *kp = &key;
    osp_zip_entry **hit = bsearch(&kp, z->by_name, z->n, sizeof *z->by_name, cmp_entry);
    return hit ? *hit : NULL;
}

uint32_t osp_crc32(uint32_t crc, const void *data, size_t n)
{
    uint32_t table[256]; /* reflected polynomial 0xEDB88320; cheap next to the data */
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

osp_status osp_zip_check_crc(const uint8_t *data, const osp_zip_entry *e, const char *label)
{
    if (osp_crc32(0, data + e->offset, (size_t)e->size) != e->crc32) {
        char shown[80];
        return osp_error(OSP_ERR_DATA, "%s: zip entry '%s' fails its CRC-32 check (corrupt file)",
                         label, osp_printable(e->name, strlen(e->name), shown, sizeof shown));
    }
    return OSP_OK;
}
