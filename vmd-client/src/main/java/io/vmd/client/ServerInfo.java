package io.vmd.client;

import io.vmd.common.HostPort;
import io.vmd.meta.ServerStatus;
import io.vmd.protocol.Availability;

/**
 * A server as this client sees it at one moment: its slot and stable id, its address and state in the
 * control plane, whether it is up (connected, answering), and its last report of memory and pages.
 * {@code free} is what placement counts on: the report less the pages placed there since;
 * {@code downForNanos} how long it has been down (0 while up).
 */
public record ServerInfo(int slot, String id, HostPort address, ServerStatus status, boolean up, long free,
    Availability availability, long downForNanos) {}
