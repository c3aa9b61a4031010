/* path.h — file-system path strings. */
#ifndef OSP_PATH_H
#define OSP_PATH_H

/* "dir/name", malloc'd; NULL with OSP_ERR_NOMEM set when out of memory. */
char *osp_path_join(const char *dir, const char *name);

#endif
