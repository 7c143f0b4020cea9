/*
 * The recorder: turns a session's observer callbacks into trace rows.
 *
 * It buffers the signals of up to `window` consecutive positions (the
 * largest number a single prefill or decode call processes), computes what
 * the trace stores from what the engine hands out (entropy and top-k from
 * logits, evolution from residuals, log-sum-exp and head outputs from the
 * attention rows and the session's cache), and writes whole positions in
 * order once the caller says their tokens and signals are all there.
 *
 *   ikv_recorder_create(&rec, writer, &config, err, sizeof err);
 *   ikv_observer obs = ikv_recorder_observer(rec);
 *   ikv_session_set_observer(session, &obs);
 *   ikv_session_prefill(session, tokens, n);        // fills the buffer
 *   ikv_recorder_write(rec, tokens, n, err, ...);   // writes positions < n
 *   ...
 *   ikv_recorder_finish(rec, err, ...);             // all written
 *
 * With config.background set, the positions are written on a thread of
 * the recorder's own, behind the engine: ikv_recorder_write only hands
 * positions over, and the writer belongs to that thread until
 * ikv_recorder_finish returns. The logit signals (entropy, top-k) are
 * computed there too, or for a large vocabulary in the logits callback
 * (config.logit_summary). The trace is the same bit for bit either way.
 */
#ifndef IKV_CAPTURE_RECORDER_H
#define IKV_CAPTURE_RECORDER_H

#include <stddef.h>
#include <stdint.h>

#include "model/observer.h"
#include "model/session.h"
#include "trace/trace.h"

typedef struct ikv_recorder ikv_recorder;

/* The trace metadata a model's details give (name, architecture, shape,
 * RoPE and norm constants) and n_prompt; the rest zero, for the caller
 * (producer, command, model hash). */
void ikv_recorder_meta(const ikv_model_details *model, int n_prompt, ikv_trace_meta *meta);

/* Where the entropy, log-sum-exp and top-k of each position's logits are
 * computed (ikv_recorder_config.logit_summary). */
enum {
    IKV_LOGITS_AUTO = 0,        /* in the callback from a vocabulary of
                                   IKV_LOGITS_CALLBACK_VOCAB up, unless the
                                   full logits are saved; else when written */
    IKV_LOGITS_IN_CALLBACK = 1, /* on the engine's thread, as they arrive:
                                   the buffer holds no logits */
    IKV_LOGITS_WHEN_WRITTEN = 2 /* from a copy in the buffer, on the thread
                                   that writes (behind the engine) */
};
/* From here on a copy of the logits (and the memory for a window of them:
 * 64 MB for Llama-3.2-1B's 128256) costs more than the summary itself. */
#define IKV_LOGITS_CALLBACK_VOCAB 16384

typedef struct ikv_recorder_config {
    const ikv_session *session;  /* read for cached keys/values (attn stats) */
    const ikv_trace_spec *spec;  /* the writer's spec: signals, topk, layers */
    int window;                  /* most positions one session call processes */
    int max_positions;           /* longest sequence (dense attention rows) */
    int track_received;          /* 1: sum the attention each key receives */
    int background;              /* 1: write on a thread of its own (above) */
    int logit_summary;           /* IKV_LOGITS_* (0: automatic) */
} ikv_recorder_config;

int ikv_recorder_create(ikv_recorder **out, ikv_trace_writer *writer,
                        const ikv_recorder_config *config, char *err, size_t errlen);
void ikv_recorder_free(ikv_recorder *r);

/* The observer to attach to the session: only the callbacks the recorded
 * signals need are set, so the engine computes nothing else. */
ikv_observer ikv_recorder_observer(ikv_recorder *r);

/* Writes positions [written so far, upto): tokens[t] is the token at
 * position t. Every position written must have been processed by the
 * session since the previous write. In the background, hands them over
 * (tokens are copied) and reports an earlier failure of the thread. */
int ikv_recorder_write(ikv_recorder *r, const int32_t *tokens, int upto, char *err,
                       size_t errlen);

/* Takes the writing back from the background thread (it finishes the
 * position at hand) and writes what is left on the caller's thread, as
 * every later write. IKV_OK, or an error that says which write failed.
 * Call it before closing the writer or reading what follows. */
int ikv_recorder_finish(ikv_recorder *r, char *err, size_t errlen);

/* Positions written so far. */
int ikv_recorder_positions(const ikv_recorder *r);

/* Attention received by each position, summed over stored layers and all
 * query heads ([max_positions]), when track_received is set; else NULL. */
const double *ikv_recorder_received(const ikv_recorder *r);

/* Entropy (full distribution, nats) at each written position
 * ([max_positions]); NaN where not recorded. In the background, complete
 * once ikv_recorder_finish has returned. */
const float *ikv_recorder_entropy(const ikv_recorder *r);

#endif
