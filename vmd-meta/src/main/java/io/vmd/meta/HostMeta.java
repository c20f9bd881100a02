package io.vmd.meta;

import io.vmd.common.HostPort;

/**
 * A hypervisor host as the control plane knows it.
 *
 * @param name its agent's identity (the first name of its node certificate)
 * @param api where other hosts and the CLI reach its agent
 * @param status its state
 * @param registeredMillis when its agent last registered, by the control plane's clock
 */
public record HostMeta(String name, HostPort api, HostStatus status, long registeredMillis) {
  public HostMeta withStatus(HostStatus s) {
    return new HostMeta(name, api, s, registeredMillis);
  }
}
