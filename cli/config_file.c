/* config_file — the YAML configuration file, read with libyaml's
 * document loader (the file is small: a few dozen keys), each value put
 * into its row's file layer with the line it stands on; see
 * config_file.h.
 *
 * Scalars are taken as text, whatever YAML would resolve them to: the
 * option's own check says what it accepts, so `readahead: on` is "on" and
 * `workers: 4` is "4".  Only a switch reads true/false (and yes/no,
 * on/off, 1/0) as such.
 */
#include "config_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct reader {
    dp_options *o;
    const char *path;
    char *msg;
    size_t cap;
    yaml_document_t *doc;
    unsigned char *seen; /* per row: a key given twice is an error */
} reader;

static int fail(reader *rd, const yaml_node_t *at, const char *key, const char *why) {
    if (key)
        snprintf(rd->msg, rd->cap, "%s:%lu: key '%s': %s", rd->path, (unsigned long)at->start_mark.line + 1, key,
                 why);
    else
        snprintf(rd->msg, rd->cap, "%s:%lu: %s", rd->path, (unsigned long)at->start_mark.line + 1, why);
    return -1;
}

static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

/* A null: `key:`, `key: ~` or `key: null`, unquoted. */
static int is_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *s = scalar(n);
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static int put(reader *rd, size_t row, const yaml_node_t *at, const char *value) {
    char where[600];
    snprintf(where, sizeof where, "%s:%lu", rd->path, (unsigned long)at->start_mark.line + 1);
    if (dp_options_set(rd->o, row, DP_OPTIONS_FILE, where, value) == 0) return 0;
    snprintf(rd->msg, rd->cap, "%s: out of memory", rd->path);
    return -1;
}

/* One KEY=VALUE property, from a mapping's pair or a list's item. */
static int put_prop(reader *rd, size_t row, const char *key, const yaml_node_t *k, const yaml_node_t *v) {
    if (k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE || !*scalar(k) || strchr(scalar(k), '='))
        return fail(rd, k, key, "a librdkafka property is NAME: VALUE, both plain values");
    size_t n = strlen(scalar(k)) + strlen(scalar(v)) + 2;
    char *kv = malloc(n);
    if (!kv) return fail(rd, k, key, "out of memory");
    snprintf(kv, n, "%s=%s", scalar(k), scalar(v));
    int rc = put(rd, row, k, kv);
    free(kv);
    return rc;
}

static int take(reader *rd, const yaml_node_t *kn, const yaml_node_t *vn) {
    const dp_options_command *cmd = rd->o->cmd;
    if (kn->type != YAML_SCALAR_NODE) return fail(rd, kn, NULL, "a key must be an option's name");
    const char *key = scalar(kn);
    long row = dp_options_find(cmd, key);
    const dp_options_row *r = row >= 0 ? &cmd->rows[row] : NULL;
    if (!r || (r->flags & (DP_OPTIONS_NOFILE | DP_OPTIONS_HELP))) {
        char why[200];
        snprintf(why, sizeof why, "unknown key: no option of dmarcpipe %s is called so%s", cmd->name,
                 r ? " in a file" : "");
        return fail(rd, kn, key, why);
    }
    if (rd->seen[row]++) return fail(rd, kn, key, "given twice");
    if (is_null(vn)) return fail(rd, vn, key, "no value (remove the key to keep the default)");
    if (r->flags & DP_OPTIONS_PROPS) {
        if (vn->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *p = vn->data.mapping.pairs.start; p < vn->data.mapping.pairs.top; p++)
                if (put_prop(rd, (size_t)row, key, yaml_document_get_node(rd->doc, p->key),
                             yaml_document_get_node(rd->doc, p->value)) != 0)
                    return -1;
            return 0;
        }
        if (vn->type != YAML_SEQUENCE_NODE)
            return fail(rd, vn, key, "expected a mapping of librdkafka properties (NAME: VALUE)");
    }
    if (vn->type == YAML_MAPPING_NODE) return fail(rd, vn, key, "expected a value, not a mapping");
    if (vn->type == YAML_SEQUENCE_NODE) {
        if (!(r->flags & (DP_OPTIONS_REPEAT | DP_OPTIONS_PROPS | DP_OPTIONS_POSITIONAL)))
            return fail(rd, vn, key, "expected one value, not a list (the option is not repeatable)");
        for (yaml_node_item_t *it = vn->data.sequence.items.start; it < vn->data.sequence.items.top; it++) {
            yaml_node_t *item = yaml_document_get_node(rd->doc, *it);
            if (item->type != YAML_SCALAR_NODE || is_null(item))
                return fail(rd, item, key, "a list item must be a plain value");
            if ((r->flags & DP_OPTIONS_PROPS) && !strchr(scalar(item), '='))
                return fail(rd, item, key, "a librdkafka property in a list is NAME=VALUE");
            if (put(rd, (size_t)row, item, scalar(item)) != 0) return -1;
        }
        return 0;
    }
    const char *v = scalar(vn);
    if (!r->arg && !(r->flags & DP_OPTIONS_POSITIONAL)) {
        if (!(v = dp_options_bool(v))) return fail(rd, vn, key, "expected true or false");
    }
    return put(rd, (size_t)row, vn, v);
}

int dp_config_file_load(dp_options *o, const char *path, char *msg, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(msg, cap, "%s: cannot read the configuration file: %s", path, strerror(errno));
        return -1;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    reader rd = {o, path, msg, cap, &doc, calloc(o->cmd->n_rows + 1, 1)};
    int rc = -1;
    if (!rd.seen || !yaml_parser_initialize(&parser)) {
        snprintf(msg, cap, "%s: out of memory", path);
        free(rd.seen);
        fclose(f);
        return -1;
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(msg, cap, "%s:%lu: not YAML: %s", path, (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "parse error");
        goto out_parser;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || is_null(root)) {
        rc = 0; /* an empty file sets nothing */
    } else if (root->type != YAML_MAPPING_NODE) {
        fail(&rd, root, NULL, "expected a mapping of option names to values");
    } else {
        rc = 0;
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start; rc == 0 && p < root->data.mapping.pairs.top; p++)
            rc = take(&rd, yaml_document_get_node(&doc, p->key), yaml_document_get_node(&doc, p->value));
    }
    if (rc == 0) {
        /* one document: a second one would be silently ignored */
        yaml_document_t more;
        if (yaml_parser_load(&parser, &more)) {
            if (yaml_document_get_root_node(&more)) {
                snprintf(msg, cap, "%s: more than one YAML document", path);
                rc = -1;
            }
            yaml_document_delete(&more);
        }
    }
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&parser);
    fclose(f);
    free(rd.seen);
    return rc;
}
