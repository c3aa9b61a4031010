/* stream_sniff.c — telling an osp stream from a media file (stream.h). */
#include "stream.h"

#include <stdint.h>
#include <string.h>

static bool is_str_type(int b)
{
    return (b >= 0xa0 && b <= 0xbf) || b == 0xd9 || b == 0xda || b == 0xdb;
}

bool osp_stream_sniff(const char *path)
{
    if (!path || strcmp(path, "-") == 0)
        return true;
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    uint8_t h[4];
    size_t n = fread(h, 1, sizeof h, f);
    fclose(f);
    if (n >= 2 && (h[0] == 0x85 || h[0] == 0x86))
        return is_str_type(h[1]);
    /* map16 holding 5 or 6 entries (legal, if unusual, from other packers) */
    return n >= 4 && h[0] == 0xde && h[1] == 0 && (h[2] == 5 || h[2] == 6) && is_str_type(h[3]);
}
