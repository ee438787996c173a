/* input — one input of a source, and lists of them in run order. */
#include <stdlib.h>
#include <string.h>

#include "source.h"

dp_input *dp_input_new(dp_source *s, const char *name, const char *key) {
    dp_input *in = calloc(1, sizeof *in);
    if (!in) return NULL;
    in->source = s;
    in->name = strdup(name);
    in->key = strdup(key ? key : "");
    if (!in->name || !in->key) {
        free(in->name);
        free(in->key);
        free(in);
        return NULL;
    }
    return in;
}

void dp_input_free(dp_input *in) {
    if (!in) return;
    if (in->source && in->source->ops->release) {
        in->source->ops->release(in->source, in);
        return;
    }
    free(in->name);
    free(in->key);
    free(in);
}

int dp_input_list_push(dp_input_list *l, dp_input *in) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        dp_input **v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            dp_input_free(in);
            return -1;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = in;
    return 0;
}

void dp_input_list_free(dp_input_list *l) {
    for (size_t i = 0; i < l->n; i++) dp_input_free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}
