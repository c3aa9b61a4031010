/* config_json.h — the cJSON tree behind an osp_config, for io code that
 * walks JSON the typed getters do not cover (the shard index's weight_map).
 * Internal to libosp/io. */
#ifndef OSP_CONFIG_JSON_H
#define OSP_CONFIG_JSON_H

#include <cjson/cJSON.h>

#include "config.h"

/* The top-level object; owned by the config. */
const cJSON *osp_config_root(const osp_config *c);

#endif
