/* zip_stored.h — a bounds-checked reader of zip archives whose entries are
 * stored uncompressed (what torch.save writes), ZIP64 included.
 *
 * Parsing reads the end-of-central-directory record (and the ZIP64 locator
 * and record when present), then every central directory entry and its
 * local header, and checks that each entry's data lies inside the file
 * before the central directory. Compressed or encrypted entries, spanned
 * archives, duplicate names and names holding a NUL byte are rejected with
 * an OSP_ERR_DATA error naming the archive. Nothing is read outside the
 * buffer given; entry data is not copied (offsets into the buffer). */
#ifndef OSP_ZIP_STORED_H
#define OSP_ZIP_STORED_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct osp_zip_entry {
    char *name;      /* NUL-terminated copy */
    uint64_t offset; /* of the data, from the start of the archive */
    uint64_t size;
    uint32_t crc32;  /* as recorded; checked by osp_zip_check_crc */
} osp_zip_entry;

typedef struct osp_zip {
    size_t n;
    osp_zip_entry *entries;  /* central directory order */
    osp_zip_entry **by_name; /* sorted, for lookups */
} osp_zip;

osp_status osp_zip_parse(const uint8_t *data, size_t size, const char *label, osp_zip *out);
void osp_zip_free(osp_zip *z);
const osp_zip_entry *osp_zip_find(const osp_zip *z, const char *name);
/* OSP_ERR_DATA naming the entry when its data does not match its CRC-32. */
osp_status osp_zip_check_crc(const uint8_t *data, const osp_zip_entry *e, const char *label);
/* CRC-32 (ISO-HDLC, as zip uses) of n bytes, continuing from crc (0 to start). */
uint32_t osp_crc32(uint32_t crc, const void *data, size_t n);

#endif
