package io.vmd.client;

import io.vmd.common.HostPort;

/** A namespace's pages on one server, as {@code vmd ns info} shows them. */
public record ServerUsage(HostPort server, boolean up, long pages, long bytes) {}
