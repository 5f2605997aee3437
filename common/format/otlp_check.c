/* SPDX-License-Identifier: Apache-2.0
 * otlp_check: every index of an OTLP request is checked against its
 * dictionary here, before the converter dereferences any of them; the
 * messages name the table, the entry, the field and the bad index. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "otlp_int.h"

#define idx_ok kiln_otlp__idx_ok

static kiln_status out_of_range(kiln_err *err, int64_t v, const char *table, size_t n,
                                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Sets err to "otlp: <path> <v> out of range (<table> has <n> entries)". */
static kiln_status out_of_range(kiln_err *err, int64_t v, const char *table, size_t n,
                                const char *fmt, ...)
{
    char path[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                        "otlp: %s %" PRId64 " out of range (%s has %zu entries)", path, v, table,
                        n);
}

/* Checks owner[at].field[k] (or owner.field[k] when at is SIZE_MAX) for all k. */
static kiln_status check_list(const int32_t *ix, size_t n, size_t lim, const char *table,
                              const char *owner, size_t at, const char *field, kiln_err *err)
{
    for (size_t k = 0; k < n; k++) {
        if (idx_ok(ix[k], lim))
            continue;
        if (at == SIZE_MAX)
            return out_of_range(err, ix[k], table, lim, "%s.%s[%zu]", owner, field, k);
        return out_of_range(err, ix[k], table, lim, "%s[%zu].%s[%zu]", owner, at, field, k);
    }
    return KILN_OK;
}

/* True when every string index inside v is below n_str; else *bad is the
 * first bad one. Recursion stops at the decode depth bound, below which a
 * request decoded with kiln_otlp_request_descriptor() has no values. */
static bool any_ok(const o_any *v, size_t n_str, unsigned depth, int32_t *bad)
{
    if (v == NULL || depth > KILN_OTLP_MAX_DEPTH)
        return true;
    if (v->value_case == O_ANY(STRING_VALUE_STRINDEX) && !idx_ok(v->string_value_strindex, n_str)) {
        *bad = v->string_value_strindex;
        return false;
    }
    if (v->value_case == O_ANY(ARRAY_VALUE) && v->array_value != NULL) {
        for (size_t i = 0; i < v->array_value->n_values; i++) {
            if (!any_ok(v->array_value->values[i], n_str, depth + 1, bad))
                return false;
        }
    }
    if (v->value_case == O_ANY(KVLIST_VALUE) && v->kvlist_value != NULL) {
        for (size_t i = 0; i < v->kvlist_value->n_values; i++) {
            const o_kv *kv = v->kvlist_value->values[i];
            if (!idx_ok(kv->key_strindex, n_str)) {
                *bad = kv->key_strindex;
                return false;
            }
            if (!any_ok(kv->value, n_str, depth + 1, bad))
                return false;
        }
    }
    return true;
}

static kiln_status check_mappings(const o_dict *d, kiln_err *err)
{
    size_t ns = d->n_string_table;
    for (size_t i = 0; i < d->n_mapping_table; i++) {
        const o_map *m = d->mapping_table[i];
        if (!idx_ok(m->filename_strindex, ns))
            return out_of_range(err, m->filename_strindex, "string_table", ns,
                                "dictionary.mapping_table[%zu].filename_strindex", i);
        kiln_status st =
            check_list(m->attribute_indices, m->n_attribute_indices, d->n_attribute_table,
                       "attribute_table", "dictionary.mapping_table", i, "attribute_indices", err);
        if (st != KILN_OK)
            return st;
    }
    return KILN_OK;
}

static kiln_status check_locations(const o_dict *d, kiln_err *err)
{
    for (size_t i = 0; i < d->n_location_table; i++) {
        const o_loc *l = d->location_table[i];
        if (!idx_ok(l->mapping_index, d->n_mapping_table))
            return out_of_range(err, l->mapping_index, "mapping_table", d->n_mapping_table,
                                "dictionary.location_table[%zu].mapping_index", i);
        for (size_t k = 0; k < l->n_lines; k++) {
            int32_t f = l->lines[k]->function_index;
            if (!idx_ok(f, d->n_function_table))
                return out_of_range(err, f, "function_table", d->n_function_table,
                                    "dictionary.location_table[%zu].lines[%zu].function_index", i,
                                    k);
        }
        kiln_status st =
            check_list(l->attribute_indices, l->n_attribute_indices, d->n_attribute_table,
                       "attribute_table", "dictionary.location_table", i, "attribute_indices", err);
        if (st != KILN_OK)
            return st;
    }
    return KILN_OK;
}

static kiln_status check_functions(const o_dict *d, kiln_err *err)
{
    size_t ns = d->n_string_table;
    for (size_t i = 0; i < d->n_function_table; i++) {
        const o_fn *f = d->function_table[i];
        const int32_t v[3] = {f->name_strindex, f->system_name_strindex, f->filename_strindex};
        static const char *const names[3] = {"name_strindex", "system_name_strindex",
                                             "filename_strindex"};
        for (int k = 0; k < 3; k++) {
            if (!idx_ok(v[k], ns))
                return out_of_range(err, v[k], "string_table", ns,
                                    "dictionary.function_table[%zu].%s", i, names[k]);
        }
    }
    return KILN_OK;
}

static kiln_status check_stacks_and_attributes(const o_dict *d, kiln_err *err)
{
    size_t ns = d->n_string_table;
    for (size_t i = 0; i < d->n_stack_table; i++) {
        const o_stack *s = d->stack_table[i];
        kiln_status st =
            check_list(s->location_indices, s->n_location_indices, d->n_location_table,
                       "location_table", "dictionary.stack_table", i, "location_indices", err);
        if (st != KILN_OK)
            return st;
    }
    for (size_t i = 0; i < d->n_attribute_table; i++) {
        const o_kvu *a = d->attribute_table[i];
        int32_t bad = 0;
        if (!idx_ok(a->key_strindex, ns))
            return out_of_range(err, a->key_strindex, "string_table", ns,
                                "dictionary.attribute_table[%zu].key_strindex", i);
        if (!idx_ok(a->unit_strindex, ns))
            return out_of_range(err, a->unit_strindex, "string_table", ns,
                                "dictionary.attribute_table[%zu].unit_strindex", i);
        if (!any_ok(a->value, ns, 1, &bad))
            return out_of_range(err, bad, "string_table", ns,
                                "dictionary.attribute_table[%zu].value string index", i);
    }
    return KILN_OK;
}

kiln_status kiln_otlp__check_dictionary(const o_dict *d, kiln_err *err)
{
    if (d == NULL)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "otlp: missing profile metadata dictionary "
                            "(ExportProfilesServiceRequest.dictionary)");
    if (d->n_string_table == 0 || d->string_table[0][0] != '\0')
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "otlp: dictionary.string_table[0] must be the empty string");
    kiln_status st = check_mappings(d, err);
    if (st == KILN_OK)
        st = check_locations(d, err);
    if (st == KILN_OK)
        st = check_functions(d, err);
    if (st == KILN_OK)
        st = check_stacks_and_attributes(d, err);
    return st;
}

static kiln_status check_vtype(const o_vtype *v, size_t ns, const char *where, const char *name,
                               kiln_err *err)
{
    if (v == NULL)
        return KILN_OK;
    if (!idx_ok(v->type_strindex, ns))
        return out_of_range(err, v->type_strindex, "string_table", ns, "%s.%s.type_strindex", where,
                            name);
    if (!idx_ok(v->unit_strindex, ns))
        return out_of_range(err, v->unit_strindex, "string_table", ns, "%s.%s.unit_strindex", where,
                            name);
    return KILN_OK;
}

/* Resource or scope attributes: their key_strindex and value string indices. */
static kiln_status check_kvs(o_kv *const *kv, size_t n, size_t ns, const char *where,
                             const char *owner, kiln_err *err)
{
    for (size_t i = 0; i < n; i++) {
        int32_t bad = 0;
        if (!idx_ok(kv[i]->key_strindex, ns))
            return out_of_range(err, kv[i]->key_strindex, "string_table", ns,
                                "%s: %s.attributes[%zu].key_strindex", where, owner, i);
        if (!any_ok(kv[i]->value, ns, 1, &bad))
            return out_of_range(err, bad, "string_table", ns,
                                "%s: %s.attributes[%zu].value string index", where, owner, i);
    }
    return KILN_OK;
}

static kiln_status check_sample(const o_dict *d, const o_sample *s, const char *where, size_t i,
                                kiln_err *err)
{
    if (!idx_ok(s->stack_index, d->n_stack_table))
        return out_of_range(err, s->stack_index, "stack_table", d->n_stack_table,
                            "%s.samples[%zu].stack_index", where, i);
    if (!idx_ok(s->link_index, d->n_link_table) && s->link_index != 0)
        return out_of_range(err, s->link_index, "link_table", d->n_link_table,
                            "%s.samples[%zu].link_index", where, i);
    for (size_t k = 0; k < s->n_attribute_indices; k++) {
        if (!idx_ok(s->attribute_indices[k], d->n_attribute_table))
            return out_of_range(err, s->attribute_indices[k], "attribute_table",
                                d->n_attribute_table, "%s.samples[%zu].attribute_indices[%zu]",
                                where, i, k);
    }
    size_t nv = s->n_values, nt = s->n_timestamps_unix_nano;
    if (nv == 0 && nt == 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "otlp: %s.samples[%zu] has neither values nor timestamps", where, i);
    if (nv > 1 && nt != 0 && nv != nt)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "otlp: %s.samples[%zu] has %zu values but %zu timestamps", where, i, nv,
                            nt);
    return KILN_OK;
}

kiln_status kiln_otlp__check_profile(const o_dict *d, const o_rprof *rp, const o_sprof *sp,
                                     const o_profile *p, const char *where, kiln_err *err)
{
    size_t ns = d->n_string_table;
    if (p->sample_type == NULL)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "otlp: %s: sample_type is missing", where);
    kiln_status st = check_vtype(p->sample_type, ns, where, "sample_type", err);
    if (st == KILN_OK)
        st = check_vtype(p->period_type, ns, where, "period_type", err);
    if (st == KILN_OK)
        st = check_list(p->attribute_indices, p->n_attribute_indices, d->n_attribute_table,
                        "attribute_table", where, SIZE_MAX, "attribute_indices", err);
    if (st == KILN_OK && rp->resource != NULL)
        st = check_kvs(rp->resource->attributes, rp->resource->n_attributes, ns, where, "resource",
                       err);
    if (st == KILN_OK && sp->scope != NULL)
        st = check_kvs(sp->scope->attributes, sp->scope->n_attributes, ns, where, "scope", err);
    for (size_t i = 0; st == KILN_OK && i < p->n_samples; i++)
        st = check_sample(d, p->samples[i], where, i, err);
    return st;
}
