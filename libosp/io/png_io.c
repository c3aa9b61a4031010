/* png_io.c — see png_io.h. libpng reports errors by longjmp, so every
 * libpng call sits between setjmp and the cleanup label. */
#include "png_io.h"
#include "atomic_file.h"
#include "core/checked.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

#define PNG_MAX_SIDE 32768

/* libpng's default handlers print to stderr; these keep the message for
 * the one error line the caller reports. */
typedef struct png_msg {
    char text[128];
} png_msg;

static void png_fail(png_structp png, png_const_charp msg)
{
    png_msg *m = png_get_error_ptr(png);
    snprintf(m->text, sizeof m->text, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

osp_status osp_png_read(const char *path, int *width, int *height, uint8_t **rgb)
{
    *rgb = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return osp_error(OSP_ERR_IO, "%s: cannot open", path);
    png_msg msg = {"unknown error"};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &msg, png_fail, png_warn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *rows = NULL;
    uint8_t *pixels = NULL;
    osp_status st = OSP_OK;
    if (!info) {
        st = osp_error_nomem("PNG reader", 0);
        goto done;
    }
    if (setjmp(png_jmpbuf(png))) {
        st = osp_error(OSP_ERR_DATA, "%s: not a valid PNG file (libpng: %s)", path, msg.text);
        goto done;
    }
    png_init_io(png, f);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (w == 0 || h == 0 || w > PNG_MAX_SIDE || h > PNG_MAX_SIDE) {
        st = osp_error(OSP_ERR_DATA, "%s: unsupported image size %ux%u", path, (unsigned)w,
                       (unsigned)h);
        goto done;
    }
    int type = png_get_color_type(png, info);
    if (png_get_bit_depth(png, info) == 16)
        png_set_strip_16(png);
    if (type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA) {
        png_set_expand_gray_1_2_4_to_8(png);
        png_set_gray_to_rgb(png);
    }
    png_set_strip_alpha(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)w * 3) {
        st = osp_error(OSP_ERR_DATA, "%s: unsupported PNG layout", path);
        goto done;
    }
    size_t n;
    if (!osp_mul_size((size_t)w * 3, h, &n) || !(pixels = malloc(n)) ||
        !(rows = malloc(h * sizeof *rows))) {
        st = osp_error_nomem("PNG pixels", (unsigned long long)w * h * 3);
        goto done;
    }
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = pixels + (size_t)y * w * 3;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    *width = (int)w;
    *height = (int)h;
    *rgb = pixels;
    pixels = NULL;
done:
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    free(pixels);
    fclose(f);
    return st;
}

static void write_to_atomic(png_structp png, png_bytep data, size_t n)
{
    osp_atomic_file *f = png_get_io_ptr(png);
    if (osp_atomic_write(f, data, n) != OSP_OK)
        png_error(png, "write failed");
}

static void flush_nothing(png_structp png) { (void)png; }

osp_status osp_png_write(const char *path, int width, int height, const uint8_t *rgb)
{
    if (width <= 0 || height <= 0 || width > PNG_MAX_SIDE || height > PNG_MAX_SIDE)
        return osp_error(OSP_ERR_USAGE, "%s: invalid image size %dx%d", path, width, height);
    osp_atomic_file f;
    if (osp_atomic_open(&f, path))
        return osp_error_code();
    png_msg msg = {"unknown error"};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &msg, png_fail, png_warn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    osp_status st = OSP_OK;
    if (!info) {
        st = osp_error_nomem("PNG writer", 0);
        goto done;
    }
    if (setjmp(png_jmpbuf(png))) {
        st = osp_error_code() ? osp_error_code()
                              : osp_error(OSP_ERR_IO, "%s: PNG write failed (libpng: %s)", path,
                                          msg.text);
        goto done;
    }
    png_set_write_fn(png, &f, write_to_atomic, flush_nothing);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++)
        png_write_row(png, rgb + (size_t)y * (size_t)width * 3);
    png_write_end(png, NULL);
    st = osp_atomic_commit(&f);
done:
    png_destroy_write_struct(&png, &info);
    osp_atomic_abort(&f);
    return st;
}
