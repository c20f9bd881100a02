package io.vmd.host;

import java.util.List;

/**
 * What a host's agent does when its API is called. An IllegalArgumentException is the caller's
 * mistake (INVALID_ARGUMENT), an IllegalStateException a conflict with what runs (FAILED_PRECONDITION);
 * anything else fails the call as INTERNAL, with its message.
 */
public interface HostService {
  HostApi.VmInfo startVm(HostApi.StartVm request) throws Exception;

  HostApi.VmInfo stopVm(String name) throws Exception;

  List<HostApi.VmInfo> listVms() throws Exception;
}
