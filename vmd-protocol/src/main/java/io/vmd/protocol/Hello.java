package io.vmd.protocol;

/**
 * HELLO reply payload: who the server is and what it can take.
 *
 * @param cluster the server's cluster name (must equal the client's)
 * @param instanceId random per server start; a change tells a client that the server restarted
 * @param serverId the server's stable id in the control plane ("" for a standalone server): a client
 *     checks that the server at an address is the member it expects, not a new one that took its place
 * @param maxFrame largest frame body the server accepts
 * @param availability its memory at the time of the reply
 */
public record Hello(String cluster, long instanceId, String serverId, int maxFrame, Availability availability) {}
