/* SPDX-License-Identifier: Apache-2.0
 * libFuzzer target for common/otlp: arbitrary bytes decoded as an OTLP
 * ExportProfilesServiceRequest (protobuf through the bounded descriptor, or
 * OTLP/JSON when the input starts with '{') under a 64 MiB arena cap, then
 * converted, and every series validated and normalised as the distributor
 * does. Conversion may only fail on bad input or the cap, and a series it
 * produces from a dictionary it accepted must never crash the pipeline. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "arena.h"
#include "otlp.h"
#include "pprof.h"

#define ARENA_CAP (64u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void expect_input_error(kiln_status st)
{
    if (st != KILN_OK && st != KILN_INVALID_ARGUMENT && st != KILN_RESOURCE_EXHAUSTED)
        abort();
}

/* Every series: one sample type, one value per sample, labels in range;
 * valid with the symbol tables all series share (sym, NULL when those
 * failed their checks). */
static void check_series(kiln_arena_t *a, kiln_otlp_series *s, const kiln_pprof_symbols *sym)
{
    kiln_pprof_t *p = &s->profile;
    kiln_err err;
    if (p->n_sample_types != 1 || p->n_values != p->n_samples || s->n_labels < 4)
        abort();
    if (p->n_strings == 0 || p->strings[0].len != 0)
        abort();
    if (sym != NULL)
        expect_input_error(kiln_pprof_samples_prepare(a, p, sym, 1000, &err));
}

/* The shared symbol tables of r's series, prepared once; NULL when they
 * fail their checks (e.g. invalid UTF-8 in a string). */
static kiln_pprof_symbols *prepare_symbols(kiln_arena_t *a, kiln_otlp_result *r)
{
    kiln_pprof_symbols *sym = NULL;
    kiln_err err;
    if (r->n_series == 0)
        return NULL;
    kiln_status st = kiln_pprof_symbols_prepare(a, &r->series[0].profile, &sym, &err);
    expect_input_error(st);
    return st == KILN_OK ? sym : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    kiln_otlp_request *req = NULL;
    kiln_otlp_result r;
    kiln_err err;
    kiln_status st = size > 0 && data[0] == '{'
                         ? kiln_otlp_decode_json(a, (const char *)data, size, &req, &err)
                         : kiln_otlp_unpack(a, data, size, &req, &err);
    expect_input_error(st);
    if (st == KILN_OK) {
        st = kiln_otlp_convert(a, req, &r, &err);
        expect_input_error(st);
    }
    if (st == KILN_OK) {
        if (r.n_rejected > r.n_profiles)
            abort();
        kiln_pprof_symbols *sym = prepare_symbols(a, &r);
        for (size_t i = 0; i < r.n_series; i++)
            check_series(a, &r.series[i], sym);
    }
    kiln_arena_destroy(a);
    return 0;
}
