#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
int main(int argc, char **argv) {
  long pages = argc > 1 ? atol(argv[1]) : 1024;
  /* "plain": wait for a line first (time to be put in a cgroup), then only touch the pages. */
  int plain = argc > 2 && strcmp(argv[2], "plain") == 0;
  long ps = 4096;
  char line[16];
  if (plain && fgets(line, sizeof line, stdin) == NULL) { return 1; }
  unsigned char *m = mmap(NULL, pages * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) { perror("mmap"); return 1; }
  for (long i = 0; i < pages; i++) {
    for (long j = 0; j < ps; j += 8) { unsigned long v = (unsigned long) i * 1000003UL + j; memcpy(m + i * ps + j, &v, 8); }
  }
  long q = pages / 4;
  int dn = plain ? 0 : madvise(m + q * ps, q * ps, MADV_DONTNEED);
  int po = plain ? 0 : madvise(m + 2 * q * ps, q * ps, MADV_PAGEOUT);
  printf("%lx %ld %d %d\n", (unsigned long) m, pages, dn, po);
  fflush(stdout);
  char buf[16];
  if (fgets(buf, sizeof buf, stdin) == NULL) {}
  return 0;
}
