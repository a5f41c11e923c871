/* fuzz.h: what the libFuzzer harnesses in fuzz/ share: a scratch folder of their own and a
 * fixed test key (never a real one). Built only with WALKEEP_FUZZ (scripts/fuzz.sh). */
#ifndef WALKEEP_FUZZ_H
#define WALKEEP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "crypt.h"

/* A folder made once per process under /tmp (removed at exit). */
const char *fz_scratch(void);

/* Writes len bytes to path (replacing it); returns 0 or -1. */
int fz_write(const char *path, const void *data, size_t len);

/* Removes everything below dir (dir itself stays). */
void fz_empty(const char *dir);

/* The fixed test key of docs/format.md's golden object, loaded once. */
const wk_key *fz_key(void);

#endif
