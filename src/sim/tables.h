/*
 * The simulator's tables (TSV with a header row), each written under a
 * temporary name and renamed when complete:
 *   summary.tsv    per trace (and ALL when several) x job
 *   per_layer.tsv  per trace x job x layer
 *   per_step.tsv   per trace x job x decode position
 *   influence.tsv  trace Forward Influence per token set x distance bucket
 *   sequence.tsv   per trace x position: token, entropy, attention received
 *   traces.tsv     one line per trace: model, lengths, layers
 */
#ifndef IKV_SIM_TABLES_H
#define IKV_SIM_TABLES_H

#include <stddef.h>

#include "sim/run.h"

/* Writes every table into outdir (which exists), summary.tsv last; on a
 * failure (message in err, -1) none of the tables is left there. */
int ikv_sim_write_tables(const ikv_sim_results *res, const char *outdir, char *err, size_t errlen);

#endif
