package io.vmd.common;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import io.netty.channel.EventLoopGroup;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;

class TransportsTest {

  @Test
  void shutdownOfALoopThatDoesNotTerminateGivesUpInsteadOfWaitingForever() throws Exception {
    EventLoopGroup group = Transports.group(1, "stuck");
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch running = new CountDownLatch(1);
    // A loop busy for good: its group cannot terminate while this runs.
    group.execute(() -> {
      running.countDown();
      try {
        release.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    });
    running.await();
    try {
      boolean terminated = assertTimeoutPreemptively(Duration.ofSeconds(60), () -> Transports.shutdown(group, 0, "stuck"));
      assertThat(terminated).isFalse();
      assertThat(group.isTerminated()).isFalse();
    } finally {
      release.countDown();
    }
    assertThat(group.terminationFuture().await(30_000)).isTrue();
  }

  @Test
  void shutdownOfIdleLoopsReportsThemTerminated() {
    EventLoopGroup group = Transports.group(2, "idle");
    assertThat(Transports.shutdown(group, 1, "idle")).isTrue();
    assertThat(group.isTerminated()).isTrue();
  }
}
