package io.vmd.migration.wss;

import io.vmd.migration.guest.EmulatedGuest;

/** The emulated guest's resident limit as a reservation, in whole pages. */
final class GuestReservation implements ReservationActuator {
  private final EmulatedGuest guest;

  public GuestReservation(EmulatedGuest guest) {
    this.guest = guest;
  }

  @Override
  public long reserve(long bytes) {
    int pages = (int) Math.max(1, Math.min(guest.pages(), bytes / 4096));
    guest.residentLimit(pages);
    return pages * 4096L;
  }

  @Override
  public long reserved() {
    return guest.residentLimit() * 4096L;
  }

  /** The guest's page-ins, as the gateway counts them for its namespace (pages read). */
  public static SwapRateSource swapRate(EmulatedGuest guest) {
    return () -> guest.swapIns() * 4096;
  }
}
