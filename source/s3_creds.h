/* s3_creds.h — the key pair an S3 client signs with (internal to source/). */
#ifndef DP_S3_CREDS_H
#define DP_S3_CREDS_H

#include "dp_error.h"

typedef struct dp_s3_creds {
    char *access_key;
    char *secret_key;
    char *session_token; /* NULL unless temporary credentials */
    char *from;          /* where they came from, for messages: "the environment" or the file's path */
} dp_s3_creds;

/* AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN); else the
 * profile AWS_PROFILE (default "default") of AWS_SHARED_CREDENTIALS_FILE
 * (default ~/.aws/credentials).  0, or -1 and err saying what to set (never
 * a secret). */
int dp_s3_creds_load(dp_s3_creds *c, dp_error *err);
/* Overwrites the secrets, then frees everything. */
void dp_s3_creds_wipe(dp_s3_creds *c);

#endif
