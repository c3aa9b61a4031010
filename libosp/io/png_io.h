/* png_io.h — PNG files as RGB24 frames (libpng). Palette, grey and 16-bit
 * images are converted to 8-bit RGB; an alpha channel is dropped. */
#ifndef OSP_PNG_IO_H
#define OSP_PNG_IO_H

#include <stdint.h>

#include "core/error.h"

/* *rgb is malloc'd (width*height*3 bytes); the caller frees it. */
osp_status osp_png_read(const char *path, int *width, int *height, uint8_t **rgb);
/* Written to a temporary name and renamed into place. */
osp_status osp_png_write(const char *path, int width, int height, const uint8_t *rgb);

#endif
