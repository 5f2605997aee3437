/* SPDX-License-Identifier: Apache-2.0
 * recording_rule: one settings.v1 recording rule compiled for evaluation:
 * its matchers parsed (FlameQL selectors, all of which must match), its
 * profile type (the __profile_type__ matcher), the series it writes a
 * matching profile to (__name__ = metric_name, the group_by labels the
 * profile has, the external labels) and the function it is filtered by.
 * Immutable after compile: shared between threads. */
#ifndef KILN_RECORDING_RULE_H
#define KILN_RECORDING_RULE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "labels.h"
#include "settings/v1/recording_rules.pb-c.h"
#include "status.h"

typedef struct kiln_rule kiln_rule_t;

/** Most matchers, group_by and external labels a rule may name. */
#define KILN_RULE_MAX_LABELS 32

/** Checks and compiles r (borrowed; nothing of it is kept). A metric name
 * that is not a Prometheus name, a matcher that does not parse, no
 * __profile_type__ matcher, a bad group_by or external label name, or too
 * many of them: KILN_INVALID_ARGUMENT naming it. */
/** The API's form of a stored rule: the same fields, sharing its arrays
 * (r is initialised first). */
void kiln_rule_from_store(const Settings__V1__RecordingRuleStore *in,
                          Settings__V1__RecordingRule *r);

kiln_status kiln_rule_compile(const Settings__V1__RecordingRule *r, kiln_rule_t **out,
                              kiln_err *err);
/** Frees a rule; NULL is a no-op. */
void kiln_rule_destroy(kiln_rule_t *rule);

/** The profile type id the rule reads (name:type:unit:ptype:punit). */
const char *kiln_rule_profile_type(const kiln_rule_t *rule);
/** The function whose stacks' value is taken; NULL for the whole profile. */
const char *kiln_rule_function(const kiln_rule_t *rule);
/** True when only the function's self value counts: the samples whose
 * leaf frame it is (MetricType SELF); false for its total. */
bool kiln_rule_self(const kiln_rule_t *rule);

/** True when the profile's sorted labels, __profile_type__ included,
 * satisfy every matcher of the rule. */
bool kiln_rule_match(const kiln_rule_t *rule, const kiln_label_t *l, size_t n);

/** Appends the Prometheus series the profile (sorted labels l) adds to:
 * `metric{a="x",b="y"}` with its labels sorted by name and values escaped
 * as the exposition format wants; a group_by label the profile lacks is
 * left out. writer (NULL = none) is one more label, naming who counts,
 * that wins over a group_by or external label of its name. */
void kiln_rule_series(const kiln_rule_t *rule, const kiln_label_t *l, size_t n,
                      const kiln_label_t *writer, kiln_buf *out);

#endif
