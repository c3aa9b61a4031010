/* tmpdir.h — scratch folders for tests that write files. */
#ifndef OSP_TEST_TMPDIR_H
#define OSP_TEST_TMPDIR_H

/* A fresh empty folder under $TMPDIR (or /tmp); free() the name. NULL on
 * failure. */
char *test_tmpdir(void);
/* Removes a folder and everything in it. */
void test_rmtree(const char *path);
/* dir/name in a static buffer (valid until the next call). */
const char *test_path(const char *dir, const char *name);

#endif
