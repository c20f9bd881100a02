package io.vmd.migration.wss;

/**
 * Bytes a VM has swapped in so far, cumulatively: for a VM whose swap is a namespace, the NBD gateway's
 * per-namespace page-in counter times 4096 ({@code NbdGateway.metrics(ns).pagesIn()}).
 *
 * <p>Page-ins, not page-outs: shrinking a reservation makes the kernel write out pages the VM does not
 * use, and counting those would make the tracker give back at once what it rightly took. A page-in
 * means the VM wanted a page it no longer had: that is the signal of a reservation below the working
 * set. (The paper speaks of the swap rate; it leaves the direction open.)
 */
@FunctionalInterface
public interface SwapRateSource {
  long swappedBytes();
}
