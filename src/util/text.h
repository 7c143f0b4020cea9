/*
 * Small text helpers shared by the libraries and programs.
 */
#ifndef IKV_UTIL_TEXT_H
#define IKV_UTIL_TEXT_H

/* Replaces every control character of s (bytes below 0x20, and 0x7f) by
 * `replacement`, so that a message quoting names or strings read from a
 * file (or a library's multi-line text) stays one line. s may be NULL. */
void ikv_scrub_controls(char *s, char replacement);

#endif
