/* manpage.h — dmarcpipe(1), written from every command's option table
 * (`dmarcpipe help --man`; the build makes dmarcpipe.1 with it). */
#ifndef DP_MANPAGE_H
#define DP_MANPAGE_H

#include <stdio.h>

void dp_manpage_write(FILE *f);

#endif
