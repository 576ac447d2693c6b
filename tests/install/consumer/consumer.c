/* A host that links the installed libtollgate through the C ABI. */
#include <stdio.h>
#include <tollgate/tollgate.h>

int main(void) {
  tg_limiter* lim = NULL;
  tg_error err;
  tg_limit_decision d;
  if (tg_version_number() != TG_VERSION_NUMBER) {
    fprintf(stderr, "header %d, library %u\n", TG_VERSION_NUMBER, tg_version_number());
    return 1;
  }
  if (tg_limiter_new(NULL, &lim, &err) != TG_OK) {
    fprintf(stderr, "tg_limiter_new: %s\n", err.message);
    return 1;
  }
  if (tg_limiter_acquire(lim, "acct", 4, 0, 1, 0, &d) != TG_OK || d.allowed != 1) return 1;
  tg_limiter_free(lim);
  puts("consumer (C ABI): ok");
  return 0;
}
