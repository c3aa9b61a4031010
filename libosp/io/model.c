/* model.c — a model folder: config.json + one safetensors file or shards
 * named by *.safetensors.index.json (see model.h).
 *
 * Which weights a folder means, in order: diffusion_pytorch_model.safetensors
 * or model.safetensors; else an index (the same two stems preferred, else the
 * only one); else the only *.safetensors file; else, for releases that ship
 * PyTorch pickles only, pytorch_model.bin (or diffusion_pytorch_model.bin)
 * or shards named by a *.bin.index.json (io/torch_pickle.h). Anything else
 * is ambiguous and an error rather than a guess. */
#include "model.h"

#include "config_json.h"
#include "core/path.h"
#include "printable.h"
#include "torch_pickle.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct model_entry {
    const osp_st_entry *e;
    size_t shard;
} model_entry;

struct osp_model_dir {
    char *path;
    osp_config *config;
    size_t n_shards;
    osp_safetensors **shards;
    osp_torch_file **torch; /* [i] set (and shards[i] NULL) for a PyTorch .bin shard */
    char **shard_files; /* as the index names them (or the path given) */
    size_t n;
    model_entry *entries;  /* shard then file order */
    model_entry **by_name; /* sorted, for lookups */
};

static const char *const preferred[] = {"diffusion_pytorch_model", "model"};
static const char *const torch_preferred[] = {"diffusion_pytorch_model", "pytorch_model"};

void osp_model_close(osp_model_dir *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_shards; i++) {
        osp_safetensors_close(m->shards[i]);
        osp_torch_close(m->torch[i]);
        free(m->shard_files[i]);
    }
    free(m->shards);
    free(m->torch);
    free(m->shard_files);
    free(m->entries);
    free(m->by_name);
    osp_config_free(m->config);
    free(m->path);
    free(m);
}

static bool is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* dir/<stem><suffix> for the first of the two stems that exists, else NULL. */
static char *preferred_file(const char *dir, const char *const stems[2], const char *suffix)
{
    for (size_t i = 0; i < 2; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%s", stems[i], suffix);
        char *p = osp_path_join(dir, name);
        if (!p || is_file(p))
            return p;
        free(p);
    }
    return NULL;
}

/* The only file in dir ending with suffix; NULL when none, or when several
 * (then *ambiguous is set). */
static char *only_file(const char *dir, const char *suffix, bool *ambiguous)
{
    *ambiguous = false;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char *found = NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && !*ambiguous) {
        if (de->d_name[0] == '.' || !ends_with(de->d_name, suffix))
            continue;
        char *p = osp_path_join(dir, de->d_name);
        if (p && is_file(p)) {
            *ambiguous = found != NULL;
            free(found);
            found = *ambiguous ? NULL : p;
        }
        if (found != p)
            free(p);
    }
    closedir(d);
    return found;
}

/* Opens dir/file (or file alone when dir is NULL) as the next shard. */
static osp_status add_shard(osp_model_dir *m, const char *dir, const char *file)
{
    osp_safetensors **s = realloc(m->shards, (m->n_shards + 1) * sizeof *s);
    if (s)
        m->shards = s;
    char **f = s ? realloc(m->shard_files, (m->n_shards + 1) * sizeof *f) : NULL;
    if (f)
        m->shard_files = f;
    osp_torch_file **t = f ? realloc(m->torch, (m->n_shards + 1) * sizeof *t) : NULL;
    if (t)
        m->torch = t;
    char *name = t ? strdup(file) : NULL;
    char *path = name ? (dir ? osp_path_join(dir, file) : strdup(file)) : NULL;
    if (!path) {
        free(name);
        return osp_error_nomem("shard list", (m->n_shards + 1) * sizeof *s);
    }
    bool is_torch = osp_torch_is_archive(path);
    m->torch[m->n_shards] = is_torch ? osp_torch_open(path) : NULL;
    m->shards[m->n_shards] = is_torch ? NULL : osp_safetensors_open(path);
    free(path);
    if (!m->shards[m->n_shards] && !m->torch[m->n_shards]) {
        free(name);
        return osp_error_code();
    }
    m->shard_files[m->n_shards++] = name;
    return OSP_OK;
}

static bool safe_shard_name(const char *s)
{
    return *s && !strchr(s, '/') && !strchr(s, '\\') && !strstr(s, "..");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp((*(model_entry *const *)a)->e->name, (*(model_entry *const *)b)->e->name);
}

/* Opens the shards an index names (each once, in name order). */
static osp_status open_index(osp_model_dir *m, const char *dir, const char *index_path,
                             const cJSON **weight_map, osp_config **index)
{
    *index = osp_config_load(index_path);
    if (!*index)
        return osp_error_code();
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(osp_config_root(*index), "weight_map");
    if (!cJSON_IsObject(wm) || !wm->child)
        return osp_error(OSP_ERR_DATA, "%s: weight_map must be a non-empty object of "
                         "tensor name -> shard file", index_path);
    *weight_map = wm;
    size_t n = (size_t)cJSON_GetArraySize(wm), k = 0;
    const char **names = malloc(n * sizeof *names);
    if (!names)
        return osp_error_nomem("shard names", n * sizeof *names);
    const cJSON *it;
    osp_status st = OSP_OK;
    cJSON_ArrayForEach(it, wm) {
        char buf[80];
        if (!cJSON_IsString(it) || !safe_shard_name(it->valuestring)) {
            st = osp_error(OSP_ERR_DATA, "%s: tensor '%s' maps to an invalid shard name (a file "
                           "name in the same folder is expected)", index_path,
                           osp_printable(it->string, strlen(it->string), buf, sizeof buf));
            break;
        }
        names[k++] = it->valuestring;
    }
    if (st == OSP_OK)
        qsort(names, k, sizeof *names, cmp_str);
    for (size_t i = 0; i < k && st == OSP_OK; i++) {
        if (i && strcmp(names[i], names[i - 1]) == 0)
            continue;
        st = add_shard(m, dir, names[i]);
        if (st != OSP_OK)
            osp_error_context("%s lists shard %s", index_path, names[i]);
    }
    free(names);
    return st;
}

/* A shard's tensors, whichever its format. */
static size_t shard_count(const osp_model_dir *m, size_t s)
{
    return m->torch[s] ? osp_torch_count(m->torch[s]) : osp_safetensors_count(m->shards[s]);
}

static const osp_st_entry *shard_entry(const osp_model_dir *m, size_t s, size_t i)
{
    return m->torch[s] ? osp_torch_entry(m->torch[s], i) : osp_safetensors_entry(m->shards[s], i);
}

static osp_tensor *shard_get(osp_model_dir *m, size_t s, const char *name)
{
    return m->torch[s] ? osp_torch_get(m->torch[s], name) : osp_safetensors_get(m->shards[s], name);
}

/* Lists every tensor over all shards and indexes them by name. */
static osp_status build_entries(osp_model_dir *m)
{
    for (size_t s = 0; s < m->n_shards; s++)
        m->n += shard_count(m, s);
    m->entries = malloc((m->n ? m->n : 1) * sizeof *m->entries);
    m->by_name = malloc((m->n ? m->n : 1) * sizeof *m->by_name);
    if (!m->entries || !m->by_name)
        return osp_error_nomem("tensor list", m->n * sizeof *m->entries);
    size_t k = 0;
    for (size_t s = 0; s < m->n_shards; s++) {
        for (size_t i = 0; i < shard_count(m, s); i++) {
            m->entries[k] = (model_entry){shard_entry(m, s, i), s};
            m->by_name[k] = &m->entries[k];
            k++;
        }
    }
    qsort(m->by_name, m->n, sizeof *m->by_name, cmp_entry);
    for (size_t i = 1; i < m->n; i++) {
        if (strcmp(m->by_name[i]->e->name, m->by_name[i - 1]->e->name) == 0) {
            char buf[80];
            const char *name = m->by_name[i]->e->name;
            return osp_error(OSP_ERR_DATA, "%s: tensor '%s' is in two shards", m->path,
                             osp_printable(name, strlen(name), buf, sizeof buf));
        }
    }
    return OSP_OK;
}

static const model_entry *find_entry(const osp_model_dir *m, const char *name)
{
    osp_st_entry key = {.name = name};
    model_entry ke = {&key, 0}, *kp = &ke;
    model_entry **hit = bsearch(&kp, m->by_name, m->n, sizeof *m->by_name, cmp_entry);
    return hit ? *hit : NULL;
}

/* Every weight_map entry must be in the shard the index names. */
static osp_status check_weight_map(const osp_model_dir *m, const cJSON *wm, const char *index_path)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, wm) {
        const model_entry *e = find_entry(m, it->string);
        if (!e || strcmp(m->shard_files[e->shard], it->valuestring) != 0) {
            char buf[80];
            return osp_error(OSP_ERR_DATA, "%s: tensor '%s' is not in shard %s", index_path,
                             osp_printable(it->string, strlen(it->string), buf, sizeof buf),
                             it->valuestring);
        }
    }
    return OSP_OK;
}

/* PyTorch weights, when a folder has no safetensors: sets *single or
 * *index, or fails naming what is missing. */
static osp_status find_torch_weights(const char *dir, char **single, char **index)
{
    bool ambiguous = false;
    if ((*single = preferred_file(dir, torch_preferred, ".bin")) ||
        (*index = preferred_file(dir, torch_preferred, ".bin.index.json")) ||
        (*index = only_file(dir, ".bin.index.json", &ambiguous)))
        return OSP_OK;
    return osp_error(OSP_ERR_DATA, ambiguous ? "%s: several *.bin.index.json files; which one "
                     "is meant is unclear" : "%s: no *.safetensors weights in this folder (nor "
                     "pytorch_model.bin or a *.bin.index.json)", dir);
}

static osp_status open_folder(osp_model_dir *m)
{
    char *config_path = osp_path_join(m->path, "config.json");
    if (!config_path)
        return osp_error_code();
    if (is_file(config_path) && !(m->config = osp_config_load(config_path))) {
        free(config_path);
        return osp_error_code();
    }
    free(config_path);

    bool ambiguous = false;
    osp_status st;
    char *index = NULL, *single = preferred_file(m->path, preferred, ".safetensors");
    if (!single && !(index = preferred_file(m->path, preferred, ".safetensors.index.json")))
        index = only_file(m->path, ".safetensors.index.json", &ambiguous);
    if (ambiguous)
        return osp_error(OSP_ERR_DATA, "%s: several *.safetensors.index.json files; which "
                         "one is meant is unclear", m->path);
    if (!single && !index && !(single = only_file(m->path, ".safetensors", &ambiguous))) {
        if (ambiguous)
            return osp_error(OSP_ERR_DATA, "%s: several *.safetensors files and none is "
                             "model.safetensors; name the file instead", m->path);
        if (find_torch_weights(m->path, &single, &index))
            return osp_error_code();
    }
    if (single) {
        st = add_shard(m, NULL, single);
        free(single);
        return st == OSP_OK ? build_entries(m) : st;
    }
    osp_config *index_cfg = NULL;
    const cJSON *weight_map = NULL;
    st = open_index(m, m->path, index, &weight_map, &index_cfg);
    if (st == OSP_OK)
        st = build_entries(m);
    if (st == OSP_OK)
        st = check_weight_map(m, weight_map, index);
    osp_config_free(index_cfg);
    free(index);
    return st;
}

osp_model_dir *osp_model_open(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        osp_error(OSP_ERR_IO, "%s: cannot open model: %s", path, strerror(errno));
        return NULL;
    }
    osp_model_dir *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        osp_error_nomem("model", sizeof *m);
        return NULL;
    }
    osp_status st;
    if (S_ISDIR(sb.st_mode))
        st = open_folder(m);
    else if (S_ISREG(sb.st_mode))
        st = add_shard(m, NULL, path) == OSP_OK ? build_entries(m) : osp_error_code();
    else
        st = osp_error(OSP_ERR_IO, "%s: not a folder or a weights file", path);
    if (st != OSP_OK) {
        osp_model_close(m);
        return NULL;
    }
    return m;
}

const osp_config *osp_model_config(const osp_model_dir *m)
{
    return m->config;
}

const char *osp_model_path(const osp_model_dir *m)
{
    return m->path;
}

size_t osp_model_tensor_count(const osp_model_dir *m)
{
    return m->n;
}

const osp_st_entry *osp_model_entry(const osp_model_dir *m, size_t i)
{
    return i < m->n ? m->entries[i].e : NULL;
}

const osp_st_entry *osp_model_find(const osp_model_dir *m, const char *name)
{
    const model_entry *e = find_entry(m, name);
    return e ? e->e : NULL;
}

static osp_status no_tensor(const osp_model_dir *m, const char *name)
{
    char buf[80];
    return osp_error(OSP_ERR_DATA, "%s: no tensor '%s'", m->path,
                     osp_printable(name, strlen(name), buf, sizeof buf));
}

osp_tensor *osp_model_get_raw(osp_model_dir *m, const char *name)
{
    const model_entry *e = find_entry(m, name);
    if (!e) {
        no_tensor(m, name);
        return NULL;
    }
    return shard_get(m, e->shard, name);
}

osp_tensor *osp_model_get(osp_model_dir *m, const char *name, osp_dtype dtype, int ndim,
                          const int64_t *shape)
{
    const model_entry *me = find_entry(m, name);
    if (!me) {
        no_tensor(m, name);
        return NULL;
    }
    const osp_st_entry *e = me->e;
    if (ndim >= 0 && (ndim != e->ndim || memcmp(shape, e->shape, (size_t)ndim * sizeof *shape))) {
        char want[160], have[160], buf[80];
        osp_format_shape(want, sizeof want, ndim, shape);
        osp_format_shape(have, sizeof have, e->ndim, e->shape);
        osp_error(OSP_ERR_DATA, "%s: tensor '%s' has shape %s, expected %s", m->path,
                  osp_printable(name, strlen(name), buf, sizeof buf), have, want);
        return NULL;
    }
    osp_tensor *raw = shard_get(m, me->shard, name);
    if (!raw || raw->dtype == dtype)
        return raw;
    osp_tensor *converted = osp_tensor_to_dtype(raw, dtype);
    osp_release(osp_pool_take(raw));
    return converted;
}
