package io.vmd.protocol;

/**
 * HELLO reply payload: who the server is and what it can take.
 *
 * @param cluster the server's cluster name (must equal the client's)
 * @param instanceId random per server start; a change tells a client that the server restarted
 * @param maxFrame largest frame body the server accepts
 * @param availability its memory at the time of the reply
 */
public record Hello(String cluster, long instanceId, int maxFrame, Availability availability) {}
