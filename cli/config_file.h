/* config_file.h — the configuration file (YAML, libyaml) as a layer of
 * a command's options.
 *
 * The file is one mapping whose keys are the command's long option
 * names: a scalar for an option with one value (`workers: 4`), true or
 * false for a switch (`follow: true`), a scalar or a list for a
 * repeatable one (`sink: [file:/out/r.ndjson]`), the positional
 * arguments under their row's name (`sources: [maildir:/mail]`), and
 * librdkafka properties as a mapping (`kafka: {sasl.mechanism: PLAIN}`).
 * An unknown key, a value of the wrong shape, or a key given twice is an
 * error naming the file, the line and the key.
 */
#ifndef DP_CONFIG_FILE_H
#define DP_CONFIG_FILE_H

#include <stddef.h>

#include "options.h"

/* The file's values into o's file layer.  0, or -1 with msg, one line
 * that starts with the file's name. */
int dp_config_file_load(dp_options *o, const char *path, char *msg, size_t cap);

#endif
