#include "config.h"

#include "util/text.h"

void ikv_scrub_controls(char *s, char replacement)
{
    for (unsigned char *p = (unsigned char *)s; p && *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = (unsigned char)replacement;
}
