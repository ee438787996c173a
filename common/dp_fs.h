/* dp_fs — small file-system helpers shared by the stages. */
#ifndef DP_FS_H
#define DP_FS_H

/* mkdir -p: creates `dir` and its missing parents.  0, or -1 with errno. */
int dp_mkdir_p(const char *dir);
/* Creates the directory that will hold `path` (its dirname), if any. */
int dp_mkdir_parent(const char *path);

#endif
