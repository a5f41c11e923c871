/* cluster: facts read from a PostgreSQL data directory without a server: its identity
 * (system identifier, WAL segment size, major version) for the repository metadata. */
#ifndef WK_CLUSTER_H
#define WK_CLUSTER_H

#include <stdint.h>

#include "error.h"
#include "repo.h"

/* Reads PG_VERSION and the long page header of a WAL segment in pg_wal to fill
 * system_identifier, seg_size and pg_version of *identity (other fields zeroed).
 * WK_ERR_NOTFOUND when pgdata is no data directory; WK_ERR_CORRUPT when its files
 * cannot be understood. */
int wk_cluster_read_identity(const char *pgdata, wk_repo_meta *identity, wk_error *err);

/* The system identifier global/pg_control starts with (the first 8 bytes, in every
 * supported major). WK_ERR_NOTFOUND when there is no pg_control; WK_ERR_IO when it
 * cannot be read. */
int wk_cluster_control_identifier(const char *pgdata, uint64_t *system_identifier, wk_error *err);

#endif
