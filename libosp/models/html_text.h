/* html_text.h — the two HTML steps of the caption cleaner, on code points:
 * BeautifulSoup(text, "html.parser").text (bs4 4.12 over Python 3.11's
 * html.parser) and Python's html.unescape(). */
#ifndef OSP_HTML_TEXT_H
#define OSP_HTML_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "pyre.h"

/* The text BeautifulSoup's html.parser tree gives: tags, comments,
 * declarations, processing instructions and the contents of script,
 * style, template, rt and rp removed; character and entity references
 * decoded the way bs4 does; CDATA sections kept. Markup that makes the
 * reference raise ParserRejectedMarkup (a "<![" section with an unknown
 * keyword) gives OSP_ERR_DATA. */
osp_status osp_html_soup_text(const uint32_t *text, size_t n, osp_cpbuf *out);

/* html.unescape(text). */
osp_status osp_html_unescape(const uint32_t *text, size_t n, osp_cpbuf *out);

#endif
