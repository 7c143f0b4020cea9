/*
 * Status codes of the engine library (src/model). It shares the eviction
 * core's codes (infokv/core.h: IKV_OK, IKV_EINVAL, IKV_ENOMEM, IKV_ESTATE,
 * IKV_ECAPACITY) and adds the ones that only file-reading code needs.
 * Every failing call also leaves one line of text in an err buffer or in
 * its handle.
 */
#ifndef IKV_MODEL_STATUS_H
#define IKV_MODEL_STATUS_H

#include "infokv/core.h"

enum {
    IKV_EIO = -20,        /* the file could not be opened, mapped or read */
    IKV_EFORMAT = -21,    /* the file is not a valid model (corrupt, truncated) */
    IKV_EUNSUPPORTED = -22 /* valid, but uses something not supported yet */
};

/* Short English text for any status code of the core or the engine. */
const char *ikv_model_strerror(int status);

/* Replaces control characters (newlines, escapes) in a message by '?':
 * messages quote names and strings read from files, and must stay one
 * harmless line whatever the file holds. */
void ikv_message_one_line(char *msg);

#endif
