/* A C shim over libr3 for router_bench: r3.h is C only (a struct member
 * shares its type's name, which C++ rejects). Costs one call per match. */
#include "r3_shim.h"

#include <r3.h>

void* r3s_create(void) { return r3_tree_create(64); }

void r3s_free(void* tree) { r3_tree_free((node*)tree); }

int r3s_insert(void* tree, const char* path, int len, long id, char** err) {
  /* data must not be NULL: r3 reads a NULL data node as "no route". */
  return r3_tree_insert_pathl_ex((node*)tree, path, len, NULL, (void*)(id + 1), err) != NULL;
}

int r3s_compile(void* tree, char** err) { return r3_tree_compile((node*)tree, err); }

long r3s_match(const void* tree, const char* path, int len) {
  node* hit = r3_tree_matchl((const node*)tree, path, len, NULL);
  return hit != NULL && hit->data != NULL ? (long)hit->data - 1 : -1;
}
