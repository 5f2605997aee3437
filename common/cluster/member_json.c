/* SPDX-License-Identifier: Apache-2.0
 * member_json: the membership bucket's entry of one member (member_json.h). */
#include "member_json.h"

#include <string.h>

#include "arena.h"
#include "json_writer.h"
#include "json_reader.h"

void kiln_member_json_encode(kiln_buf *out, const char *role, const kiln_ring_member *m)
{
    kiln_buf_puts(out, "{\"role\":");
    kiln_json_string(out, role, strlen(role));
    kiln_buf_puts(out, ",\"id\":");
    kiln_json_string(out, m->id, strlen(m->id));
    kiln_buf_puts(out, ",\"addr\":");
    kiln_json_string(out, m->addr, strlen(m->addr));
    kiln_buf_puts(out, ",\"http_addr\":");
    kiln_json_string(out, m->http_addr, strlen(m->http_addr));
    kiln_buf_puts(out, ",\"zone\":");
    kiln_json_string(out, m->zone, strlen(m->zone));
    kiln_buf_printf(out, ",\"state\":\"%s\",\"heartbeat_ms\":%lld,\"tokens\":[",
                    kiln_ring_state_str(m->state), (long long)m->heartbeat_ms);
    for (size_t i = 0; i < m->n_tokens; i++)
        kiln_buf_printf(out, "%s%u", i > 0 ? "," : "", (unsigned)m->tokens[i]);
    kiln_buf_puts(out, "]}");
}

/* Reads a JSON string into a fixed array; too long is an error. */
static bool read_fixed(kiln_json *j, kiln_arena_t *a, char *out, size_t cap)
{
    kiln_str_t s;
    if (!kiln_json_str(j, a, &s))
        return false;
    if (s.len >= cap)
        return kiln_json_fail(j, "string of %zu bytes too long", s.len);
    memcpy(out, s.ptr, s.len);
    out[s.len] = '\0';
    return true;
}

static bool read_tokens(kiln_json *j, kiln_ring_member *m)
{
    if (!kiln_json_arr_begin(j))
        return false;
    while (kiln_json_arr_next(j)) {
        double v;
        if (!kiln_json_num(j, &v))
            return false;
        if (m->n_tokens == KILN_RING_TOKENS || v < 0 || v > 4294967295.0)
            return kiln_json_fail(j, "bad token list");
        m->tokens[m->n_tokens++] = (uint32_t)v;
    }
    return !kiln_json_failed(j);
}

static bool read_field(kiln_json *j, kiln_arena_t *a, kiln_str_t key, char *role,
                       kiln_ring_member *m)
{
    char state[16];
    double hb;
    if (kiln_str_eq(key, "role"))
        return read_fixed(j, a, role, KILN_MEMBER_ROLE_MAX);
    if (kiln_str_eq(key, "id"))
        return read_fixed(j, a, m->id, sizeof(m->id));
    if (kiln_str_eq(key, "addr"))
        return read_fixed(j, a, m->addr, sizeof(m->addr));
    if (kiln_str_eq(key, "http_addr"))
        return read_fixed(j, a, m->http_addr, sizeof(m->http_addr));
    if (kiln_str_eq(key, "zone"))
        return read_fixed(j, a, m->zone, sizeof(m->zone));
    if (kiln_str_eq(key, "state")) {
        if (!read_fixed(j, a, state, sizeof(state)))
            return false;
        int st = kiln_ring_state_parse(state);
        m->state = (kiln_ring_state)st;
        return st >= 0 || kiln_json_fail(j, "unknown state %s", state);
    }
    if (kiln_str_eq(key, "heartbeat_ms")) {
        if (!kiln_json_num(j, &hb))
            return false;
        if (!(hb >= 0 && hb < 9.2e18)) /* the cast of a larger double is undefined */
            return kiln_json_fail(j, "heartbeat_ms out of range");
        m->heartbeat_ms = (int64_t)hb;
        return true;
    }
    if (kiln_str_eq(key, "tokens"))
        return read_tokens(j, m);
    return kiln_json_skip(j); /* newer writers may add fields */
}

bool kiln_member_json_decode(const void *val, size_t len, char *role, kiln_ring_member *m,
                             kiln_err *err)
{
    kiln_json j;
    kiln_arena_t *a = kiln_arena_create(64 * 1024);
    memset(m, 0, sizeof(*m));
    role[0] = '\0';
    kiln_json_init(&j, val, len, "member", err);
    bool ok = kiln_json_obj_begin(&j);
    kiln_str_t k;
    while (ok && kiln_json_obj_next(&j, &k))
        ok = read_field(&j, a, k, role, m);
    ok = ok && !kiln_json_failed(&j) && kiln_json_end(&j);
    if (ok && (role[0] == '\0' || m->id[0] == '\0'))
        ok = kiln_json_fail(&j, "no role or id");
    kiln_arena_destroy(a);
    return ok;
}
