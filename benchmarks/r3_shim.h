/* See r3_shim.c. */
#ifndef TOLLGATE_BENCH_R3_SHIM_H
#define TOLLGATE_BENCH_R3_SHIM_H
#ifdef __cplusplus
extern "C" {
#endif
void* r3s_create(void);
void r3s_free(void* tree);
int r3s_insert(void* tree, const char* path, int len, long id, char** err);
int r3s_compile(void* tree, char** err);
/* The id of the matching route, or -1. */
long r3s_match(const void* tree, const char* path, int len);
#ifdef __cplusplus
}
#endif
#endif
