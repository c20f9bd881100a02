/*
 * Uses more memory than the guest has, so the kernel must swap, then checks every page.
 * Each 8-byte word holds a value derived from its page and position: a page that came back from
 * swap wrong, or from the wrong offset, fails the check.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  size_t mb = argc > 1 ? strtoul(argv[1], NULL, 10) : 384;
  size_t pages = mb * 256;
  uint64_t *mem = malloc(mb << 20);
  if (mem == NULL) {
    printf("VMLAB: memcheck FAILED: cannot allocate %zu MiB\n", mb);
    return 1;
  }
  for (size_t p = 0; p < pages; p++) {
    uint64_t *page = mem + p * 512;
    for (size_t w = 0; w < 512; w++) {
      page[w] = (p * 0x9E3779B97F4A7C15ULL) ^ (w * 0xBF58476D1CE4E5B9ULL) ^ 0x5A5A;
    }
    if (p % (pages / 4) == 0) {
      printf("VMLAB: written %zu of %zu pages\n", p, pages);
      fflush(stdout);
    }
  }
  size_t bad = 0;
  for (size_t p = 0; p < pages; p++) {
    uint64_t *page = mem + p * 512;
    for (size_t w = 0; w < 512; w++) {
      if (page[w] != ((p * 0x9E3779B97F4A7C15ULL) ^ (w * 0xBF58476D1CE4E5B9ULL) ^ 0x5A5A)) {
        bad++;
        break;
      }
    }
  }
  printf("VMLAB: memcheck %s: %zu MiB, %zu pages checked, %zu bad\n", bad ? "FAILED" : "OK", mb, pages, bad);
  fflush(stdout);
  return bad ? 1 : 0;
}
